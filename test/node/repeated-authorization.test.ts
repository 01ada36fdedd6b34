/**
 * Two `authorization` fields on one gRPC call are refused on every service, over plaintext and
 * TLS. node:http2 keeps only the first value of a single-value header in the object grpc-js
 * reads, so a call carrying a valid token and then anything else would pass as the valid
 * token; the node looks at the raw header list. The calls are written frame by frame
 * (bench/_h2-frames.ts): neither grpc-js nor node:http2 will send two values.
 */
import test, { type ExecutionContext } from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { GrpcStatusError, H2GrpcClient } from '../../bench/_h2-frames.ts';
import { adminServiceDefinition } from '../../src/admin/api.ts';
import { envoyProtos, TYPE_URL } from '../../src/envoy/protos.ts';
import { rootsPem } from '../../src/identity/trust-bundle.ts';
import { createWitRequestProof } from '../../src/sdk/proof.ts';
import { generateWorkloadKey } from '../../src/sdk/keys.ts';
import { workloadServiceDefinition } from '../../src/workload-api/server.ts';
import { refuseRepeatedAuthorization } from '../../src/grpc-guard.ts';
import { getCheckRequest, startTestNode, type TestNode } from '../helpers/node.ts';

const B = 'wimse://example.org/svc/b';
const REGISTRATION = `sds:\n  registrations:\n    - nodeId: sidecar-b\n      workloads: [${B}]\n`;

type Method = { path: string; requestSerialize(v: unknown): Buffer };
const method = (def: unknown, name: string): Method => (def as Record<string, Method>)[name]!;

/** One unary call per service, each with the credential that service takes. */
function calls(n: TestNode) {
  const nodeToken = n.node.nodeTokens.issue('sidecar-b');
  const adminToken = readFileSync(join(n.node.config.stateDir, 'admin-token'), 'utf8').trim();
  const sds = method(envoyProtos().SecretDiscoveryService, 'FetchSecrets');
  const check = method(envoyProtos().Authorization, 'Check');
  const fetchWit = method(workloadServiceDefinition(), 'FetchWIT');
  const listEntries = method(adminServiceDefinition(), 'ListEntries');
  const key = generateWorkloadKey();
  return {
    admin: { token: adminToken, path: listEntries.path, body: () => listEntries.requestSerialize({}) },
    sds: { token: nodeToken, path: sds.path, body: () => sds.requestSerialize({ node: { id: 'sidecar-b' }, resource_names: ['default'], type_url: TYPE_URL.secret }) },
    extAuthz: { token: nodeToken, path: check.path, body: () => check.requestSerialize(getCheckRequest(B, 'https://b.example.org', {})) },
    workloadApi: { token: nodeToken, path: fetchWit.path, body: () => fetchWit.requestSerialize({ workload_id: B, proof: createWitRequestProof(key, B, Math.floor(Date.now() / 1000)) }) },
  };
}

async function eachServiceRefusesTwoValues(t: ExecutionContext, n: TestNode, client: H2GrpcClient): Promise<void> {
  for (const [service, { token, path, body }] of Object.entries(calls(n))) {
    const bearer = `Bearer ${token}`;
    // One value: the call is served (the credential is good).
    await t.notThrowsAsync(client.unary(path, body(), 10_000, [['authorization', bearer]]), `${service}: one value is served`);
    for (const second of [bearer, 'Bearer wnt_not-a-token-0123456789', 'WPT abc']) {
      const err = await t.throwsAsync(client.unary(path, body(), 10_000, [['authorization', bearer], ['authorization', second]]), { instanceOf: GrpcStatusError }, service);
      t.is((err as GrpcStatusError | undefined)?.code, grpc.status.UNAUTHENTICATED, `${service}: two values are refused`);
      t.false((err as GrpcStatusError | undefined)?.details.includes(token), 'the token is never echoed');
    }
    // The connection and the service still work.
    await t.notThrowsAsync(client.unary(path, body(), 10_000, [['authorization', bearer]]), `${service}: still served`);
  }
}

test('node - two authorization values are UNAUTHENTICATED on SDS, ext_authz, the Workload API and the admin API (plaintext)', async (t) => {
  const n = await startTestNode(t, { yaml: REGISTRATION });
  const client = new H2GrpcClient(n.node.grpcAddress);
  t.teardown(() => client.close());
  await client.ready;
  await eachServiceRefusesTwoValues(t, n, client);
});

test('node - two authorization values are UNAUTHENTICATED on every service over TLS', async (t) => {
  const issuer = await startTestNode(t);
  const serving = await issuer.node.ca.issueWic({ id: 'wimse://example.org/control-plane', dnsNames: ['localhost'] });
  const dir = issuer.dir;
  writeFileSync(join(dir, 'tls.crt'), serving.chainPem);
  writeFileSync(join(dir, 'tls.key'), serving.privateKeyPem!);
  const n = await startTestNode(t, { yaml: `${REGISTRATION}grpc:\n  listen: 127.0.0.1:0\n  tls:\n    certFile: ${join(dir, 'tls.crt')}\n    keyFile: ${join(dir, 'tls.key')}\n` });
  const client = new H2GrpcClient(n.node.grpcAddress.replace('127.0.0.1', 'localhost'), { tls: { ca: rootsPem(issuer.node.ca.bundle()) } });
  t.teardown(() => client.close());
  await client.ready;
  await eachServiceRefusesTwoValues(t, n, client);
});

test('node - the guard cannot be installed on a server that listens nowhere (it says so instead of serving unguarded)', (t) => {
  const server = new grpc.Server();
  t.throws(() => refuseRepeatedAuthorization(server), { message: /no listener/ });
});
