import test from 'ava';
import { startNatsServer } from '../helpers/nats-server.ts';
import { admin, converged, startMeshNode, until } from './helpers.ts';

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
