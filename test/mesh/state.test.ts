import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNatsServer } from '../helpers/nats-server.ts';
import { FakeEnvoy, secretsOf } from '../envoy/helpers/fake-envoy.ts';
import { spiffeBundlesOf, tlsCertificateOf } from '../envoy/helpers/verify.ts';
import { connect } from 'nats';
import { hashToken } from '../../src/identity/node-tokens.ts';
import { IdentityServer } from '../../src/ca/index.ts';
import { systemClock, toSpiffeBundle } from '../../src/identity/index.ts';
import { A, B, callerHeaders, checkRequest, converged, metricsText, policyFor, sleep, startMeshNode, storedValues, trusts, until, type MeshNode } from './helpers.ts';

async function threeNodes(t: Parameters<typeof startMeshNode>[0], extra: Partial<Parameters<typeof startMeshNode>[1]> = {}): Promise<MeshNode[]> {
  const nats = await startNatsServer(t);
  const nodes = await Promise.all(['cp-1', 'cp-2', 'cp-3'].map((name) => startMeshNode(t, { name, servers: [nats.url], policy: policyFor([A]), ...extra })));
  await converged(nodes.map((n) => n.node));
  return nodes;
}

test('mesh - a taint keeps the key trusted (flagged) everywhere and re-issues its leaves; a revoke makes every node reject it', async (t) => {
  const [n1, n2, n3] = await threeNodes(t);
  const witKid = n1!.node.ca.slot('wit').current!.kid;
  const caller = await callerHeaders(n1!.node);
  t.is(caller.kid, witKid);

  // Node 1's Envoy holds a leaf signed by node 1's X.509 key.
  const token = n1!.node.nodeTokens.issue('sidecar-b');
  const envoy = new FakeEnvoy(n1!.node.grpcAddress, { nodeId: 'sidecar-b', token });
  t.teardown(() => envoy.close());
  const def = envoy.open(['default']);
  const leaf1 = await def.next();
  def.ack(leaf1);
  const x509Kid = n1!.node.ca.slot('x509').current!.kid;

  await n1!.node.ca.taint('wit', witKid);
  await n1!.node.ca.taint('x509', x509Kid);
  for (const n of [n2!, n3!])
    await until(`${n.name} flags the key tainted`, () => n.node.ca.keys().some((k) => k.kid === witKid && k.status === 'tainted' && k.origin === 'cp-1'));
  // Tainted: still trusted, so credentials in flight keep working while they are re-issued.
  t.is((await n2!.check(checkRequest(caller.fresh()))).status.code, 0);
  const leaf2 = await def.next();
  def.ack(leaf2);
  const before = tlsCertificateOf(secretsOf(leaf1).get('default')!);
  const after = tlsCertificateOf(secretsOf(leaf2).get('default')!);
  t.not(after.leaf.issuer, before.leaf.issuer, 'the leaf was re-issued by the replacement key');

  await n1!.node.ca.revoke('wit', witKid);
  for (const n of [n2!, n3!]) await until(`${n.name} drops the revoked key`, () => !trusts(n.node, witKid));
  for (const n of [n1!, n2!, n3!]) {
    const res = await n.check(checkRequest(caller.fresh()));
    t.is(res.denied_response?.status?.code, 'Unauthorized', `${n.name} rejects a WIT of the revoked key`);
  }
  // The replacement key works everywhere.
  const fresh = await callerHeaders(n1!.node);
  t.not(fresh.kid, witKid);
  await until('peers trust the replacement', () => trusts(n3!.node, fresh.kid));
  t.is((await n3!.check(checkRequest(fresh.fresh()))).status.code, 0);
  def.end();
});

test('mesh - a policy accepted on one node is enforced by all, without echo', async (t) => {
  const [n1, n2, n3] = await threeNodes(t);
  const caller = await callerHeaders(n1!.node);
  t.is((await n3!.check(checkRequest(caller.fresh()))).status.code, 0);
  const v1 = n1!.node.policy.version;
  const r = n1!.node.policy.load(policyFor(['wimse://example.org/svc/other']), 'api');
  t.true(r.ok && r.changed);
  for (const n of [n2!, n3!]) await until(`${n.name} loads the policy`, () => n.node.policy.digest === n1!.node.policy.digest);
  for (const n of [n1!, n2!, n3!]) t.is((await n.check(checkRequest(caller.fresh()))).denied_response?.status?.code, 'Forbidden');
  await sleep(500);
  t.is(n1!.node.policy.version, v1 + 1, 'the change did not come back as another load');
  t.is(n2!.node.policy.version, n3!.node.policy.version);

  // Node 2's unchanged policy file is re-read (touched): the cluster's newer policy stays.
  let reread = false;
  n2!.node.policy.onLoad(({ source }) => source?.endsWith('policy.yaml') && (reread = true));
  writeFileSync(join(n2!.dir, 'policy.yaml'), policyFor([A]));
  await until('node 2 re-reads its file', () => reread);
  await until('node 2 is back on the cluster policy', () => n2!.node.policy.digest === n1!.node.policy.digest);
  await sleep(300);
  t.is(n1!.node.policy.version, v1 + 1, 'nothing was published');
  t.is(n3!.node.policy.digest, n1!.node.policy.digest);
});

test('mesh - a node-token revocation on one node ends the streams on every node; registrations travel', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-mesh-tokens-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const token = 'wnt_shared-token-for-the-mesh-test-0123456789abcdef';
  const tokensFile = join(dir, 'tokens.json');
  writeFileSync(tokensFile, JSON.stringify({ tokens: [{ nodeId: 'sidecar-b', sha256: hashToken(token) }] }));
  const [n1, n2, n3] = await threeNodes(t, { nodeTokensFile: tokensFile });

  // A registration published on node 1 is served by node 3's SDS.
  await n1!.node.cluster.publishRegistrations([
    { nodeId: 'sidecar-b', workloads: [B] },
    { nodeId: 'sidecar-c', workloads: ['wimse://example.org/svc/c', 'wimse://example.org/svc/c2'] },
  ]);
  await until('node 3 knows sidecar-c', () => n3!.node.registrations.identitiesFor('sidecar-c').length === 2);
  t.deepEqual(n3!.node.registrations.identitiesFor('sidecar-c'), ['wimse://example.org/svc/c', 'wimse://example.org/svc/c2']);

  const envoy = new FakeEnvoy(n2!.node.grpcAddress, { nodeId: 'sidecar-b', token });
  t.teardown(() => envoy.close());
  const s = envoy.open(['default']);
  s.ack(await s.next());
  t.is(n1!.node.nodeTokens.revokeNode('sidecar-b'), 1);
  const status = await s.status;
  t.is(status.code, 16, 'node 2 ended the stream of the revoked token');
  await until('node 3 refuses the token', () => n3!.node.nodeTokens.verify(token) === undefined);
  t.is(n2!.node.nodeTokens.verify(token), undefined);
});

test('mesh - revoking one token revokes that token on every node, not the other tokens of its node id', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-mesh-token-scope-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = 'wnt_first-token-of-sidecar-b-0123456789abcdef0123';
  const second = 'wnt_second-token-of-sidecar-b-0123456789abcdef012';
  const tokensFile = join(dir, 'tokens.json');
  writeFileSync(tokensFile, JSON.stringify({ tokens: [{ nodeId: 'sidecar-b', sha256: hashToken(first) }, { nodeId: 'sidecar-b', sha256: hashToken(second) }] }));
  const [n1, , n3] = await threeNodes(t, { nodeTokensFile: tokensFile });
  t.true(n1!.node.nodeTokens.revokeDigest(hashToken(first)));
  await until('node 3 refuses the revoked token', () => n3!.node.nodeTokens.verify(first) === undefined);
  await sleep(300);
  t.truthy(n3!.node.nodeTokens.verify(second), 'the other token of the same node id still works on node 3');
  t.truthy(n1!.node.nodeTokens.verify(second));
  // Revoking the node id revokes what is left, everywhere.
  t.is(n1!.node.nodeTokens.revokeNode('sidecar-b'), 1);
  await until('node 3 refuses the second token', () => n3!.node.nodeTokens.verify(second) === undefined);
});

test('mesh - a federated bundle configured on one node is served by every node; forged messages are counted', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-mesh-fed-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const partner = await IdentityServer.open({ trustDomain: 'partner.example', stateDir: join(dir, 'partner'), clock: systemClock });
  t.teardown(() => partner.close());
  const file = join(dir, 'partner.json');
  const writeBundle = (seq: number) => writeFileSync(file, JSON.stringify(toSpiffeBundle({ ...partner.bundle(), sequence: seq })));
  writeBundle(2);
  const nats = await startNatsServer(t);
  const n1 = await startMeshNode(t, { name: 'cp-1', servers: [nats.url], extraYaml: `federation:\n  - trustDomain: partner.example\n    bundleFile: ${file}\n` });
  const n2 = await startMeshNode(t, { name: 'cp-2', servers: [nats.url] });
  await until('node 2 serves the partner bundle', () => n2.node.ca.bundles().get('partner.example')?.sequence === 2);

  const token = n2.node.nodeTokens.issue('sidecar-b');
  const envoy = new FakeEnvoy(n2.node.grpcAddress, { nodeId: 'sidecar-b', token });
  t.teardown(() => envoy.close());
  const all = envoy.open(['ALL']);
  const first = await all.next();
  all.ack(first);
  t.is(spiffeBundlesOf(secretsOf(first).get('ALL')!).get('partner.example')?.length, 1);

  // The partner rotates: a new root, a higher sequence, reloaded on node 1 only.
  await partner.prepare('x509');
  writeBundle(3);
  await n1.node.ca.reloadFederation();
  await until('node 2 has the new partner bundle', () => n2.node.ca.bundles().get('partner.example')?.sequence === 3);
  let roots = 0;
  await until('node 2 pushes it over SDS', async () => {
    const r = await all.next();
    all.ack(r);
    roots = spiffeBundlesOf(secretsOf(r).get('ALL')!).get('partner.example')?.length ?? 0;
    return roots === 2;
  });
  t.is(roots, 2);

  // A message claiming to come from cp-1 on another node's subject, and plain garbage.
  const nc = await connect({ servers: [nats.url] });
  t.teardown(() => nc.close());
  const forged = { v: 1, kind: 'policy', key: 'current', origin: 'cp-1', seq: Date.now(), revision: 999, record: { version: 'x', digest: 'sha256:' + '0'.repeat(64), text: 'x' } };
  nc.publish('wimse.example_2eorg.policy.cp-9', new TextEncoder().encode(JSON.stringify(forged)));
  nc.publish('wimse.example_2eorg.policy.cp-9', new TextEncoder().encode('{not json'));
  await nc.flush();
  await until('node 2 counts both', async () => {
    const m = await metricsText(n2.node);
    return /wimse_bus_rejected_messages_total\{reason="origin_mismatch"\} 1/.test(m) && /wimse_bus_rejected_messages_total\{reason="bad_json"\} 1/.test(m);
  });
  t.is(n2.node.policy.digest, n1.node.policy.digest);

  // What the shared store holds: public keys only, never private material.
  const values = await storedValues([nats.url]);
  t.true(values.some((v) => v.includes('"kind":"keys"')));
  for (const v of values) {
    t.false(/PRIVATE KEY|"d":|privateKeyPem/.test(v), 'no private key material on the bus');
  }
  all.end();
});
