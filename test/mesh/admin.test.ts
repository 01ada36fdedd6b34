import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startNatsServer } from '../helpers/nats-server.ts';
import { adminClientConstructor } from '../../src/admin/api.ts';
import { converged, startMeshNode, until, type MeshNode } from './helpers.ts';

function admin(n: MeshNode) {
  const Ctor = adminClientConstructor();
  const client = new Ctor(n.node.grpcAddress, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${readFileSync(join(n.node.config.stateDir, 'admin-token'), 'utf8').trim()}`);
  const call = (method: string, req: unknown) =>
    new Promise<any>((resolve, reject) => client[method](req, md, (e: unknown, r: unknown) => (e ? reject(e) : resolve(r))));
  return { client, call };
}

test('mesh admin - bundle status lists every live node with the keys it trusts; an entry created on one node serves on another', async (t) => {
  const nats = await startNatsServer(t);
  const nodes = await Promise.all(['cp-1', 'cp-2'].map((name) => startMeshNode(t, { name, servers: [nats.url] })));
  await converged(nodes.map((n) => n.node));
  const a1 = admin(nodes[0]!);
  t.teardown(() => a1.client.close());

  const status = JSON.parse((await a1.call('BundleStatus', {})).text) as { nodes: Array<{ node: string; trustDomains: Array<{ x509Authorities: string[]; witKeys: string[] }> }> };
  t.deepEqual(status.nodes.map((n) => n.node).sort(), ['cp-1', 'cp-2']);
  const kids2 = nodes[1]!.node.ca.keys().filter((k) => k.origin === undefined && k.status === 'active').map((k) => k.kid);
  for (const n of status.nodes) {
    const trusted = [...n.trustDomains[0]!.x509Authorities, ...n.trustDomains[0]!.witKeys];
    for (const kid of kids2) t.true(trusted.includes(kid), `${n.node} trusts cp-2's ${kid}`);
  }

  await a1.call('CreateEntry', { node_id: 'sidecar-z', workloads: ['wimse://example.org/svc/z'] });
  await until('cp-2 has the entry', () => nodes[1]!.node.registrations.identitiesFor('sidecar-z').includes('wimse://example.org/svc/z'));
  t.pass();
});
