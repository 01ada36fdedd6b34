/**
 * Partitions against real nats-server processes: a node cut off from the bus bounds its
 * staleness (cluster.maxStaleness), the activation gate waits for peers it cannot hear, and
 * emergency admin actions never queue behind an activation waiting at the gate.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startNatsCluster, startNatsServer } from '../helpers/nats-server.ts';
import { FakeEnvoy, secretsOf } from '../envoy/helpers/fake-envoy.ts';
import { IdentityServer } from '../../src/ca/index.ts';
import { systemClock } from '../../src/identity/clock.ts';
import { hashToken, NodeTokenStore, tokenIdOf } from '../../src/identity/node-tokens.ts';
import { toSpiffeBundle } from '../../src/identity/trust-bundle.ts';
import { tokenMetadata, watchBundles, workloadApiClient } from '../helpers/workload-watch.ts';
import {
  A,
  B,
  admin,
  callerHeaders,
  checkRequest,
  converged,
  metricsText,
  policyFor,
  readyz,
  recordingLogger,
  TUNING,
  startMeshNode,
  trusts,
  until,
} from './helpers.ts';

const PARTNER = 'wimse://other.org/svc/p';

/** A node pinned to the servers it lists (never the ones NATS advertises), so killing them cuts it off. */
const PINNED = { ...TUNING, nats: { ...TUNING.nats, onlyListedServers: true } };

/** The problem code of a denied Check, or 'allowed'. */
const outcome = (res: any): string => (res.status.code === 0 ? 'allowed' : `${res.denied_response.status.code} ${JSON.parse(res.denied_response.body).code}`);

/** A node-token file holding one token for `sidecar-b`, for nodes that share it. */
function tokenFile(t: { teardown(fn: () => void): void }): { path: string; token: string; tokenId: string } {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-tokens-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = new NodeTokenStore([], { now: () => Date.now() });
  const token = store.issue('sidecar-b');
  const path = join(dir, 'node-tokens.json');
  writeFileSync(path, JSON.stringify(store.toJSON()));
  return { path, token, tokenId: tokenIdOf(hashToken(token)) };
}

function fetchWit(address: string, token: string): Promise<unknown> {
  const c = workloadApiClient(address);
  return new Promise((resolve, reject) =>
    c.FetchWIT({ workload_id: B, proof: 'unused' }, tokenMetadata(token), (e: unknown, r: unknown) => {
      c.close();
      if (e) reject(e);
      else resolve(r);
    }),
  );
}

/** An application's WatchBundles stream on the Workload API: its first message and its end status. */
function openWatch(address: string, token: string) {
  const c = workloadApiClient(address);
  return { ...watchBundles(c, token), close: () => c.close() };
}

test('mesh partition - a cut-off node turns stale after cluster.maxStaleness: node tokens and peers\' keys are refused, its own and file-federated keys serve; it is fresh again only after catching up', async (t) => {
  const nats = await startNatsCluster(t, 3);
  const [s1, s2, s3] = nats;
  // A partner trust domain, federated through a bundle file on node 2.
  const partnerDir = mkdtempSync(join(tmpdir(), 'wimse-partner-'));
  t.teardown(() => rmSync(partnerDir, { recursive: true, force: true }));
  const partner = await IdentityServer.open({ stateDir: join(partnerDir, 'state'), trustDomain: 'other.org', clock: systemClock });
  t.teardown(() => partner.close());
  const partnerBundle = join(partnerDir, 'bundle.json');
  writeFileSync(partnerBundle, JSON.stringify(toSpiffeBundle(partner.bundle())));

  const tokens = tokenFile(t);
  const policy = policyFor([A, PARTNER]);
  const n1 = await startMeshNode(t, { name: 'cp-1', servers: [s1!.url, s2!.url], replicas: 3, policy, nodeTokensFile: tokens.path });
  const n2 = await startMeshNode(t, {
    name: 'cp-2',
    servers: [s3!.url],
    replicas: 3,
    policy,
    nodeTokensFile: tokens.path,
    maxStaleness: '4s',
    tuning: PINNED,
    extraYaml: `federation:\n  - trustDomain: other.org\n    bundleFile: ${partnerBundle}\n`,
  });
  await converged([n1.node, n2.node]);
  const peerSigned = await callerHeaders(n1.node); // signed by node 1's WIT key
  const ownSigned = await callerHeaders(n2.node); // signed by node 2's own key
  const federated = await callerHeaders({ ca: partner }, PARTNER);
  for (const c of [peerSigned, ownSigned, federated]) t.is(outcome(await n2.check(checkRequest(c.fresh()))), 'allowed');
  const envoy = new FakeEnvoy(n2.node.grpcAddress, { nodeId: 'sidecar-b', token: tokens.token });
  t.teardown(() => envoy.close());
  const open = envoy.open(['default']);
  t.truthy(secretsOf(await open.next()).get('default'));
  // An application on the same host watches the trust bundles with the same node token.
  const bundles = openWatch(n2.node.grpcAddress, tokens.token);
  t.teardown(() => bundles.close());
  await bundles.first;

  // Node 2's only NATS server dies: node 2 is cut off, node 1 keeps the JetStream quorum.
  await s3!.kill();
  await until('node 2 sees the bus lost', () => !n2.node.cluster.bus.connected, 20_000);
  // Meanwhile, on node 1: the Envoy's token is revoked, node 1's WIT key is tainted and revoked.
  t.true(n1.node.nodeTokens.revokeToken(tokens.tokenId));
  await n1.node.ca.taint('wit', peerSigned.kid);
  await n1.node.ca.revoke('wit', peerSigned.kid);
  await until('node 1 has stored the revocations in the shared store', () => n1.node.cluster.bus.stats().pending === 0, 30_000);
  // Node 2 cannot know.
  t.true(trusts(n2.node, peerSigned.kid));
  t.false(n2.node.nodeTokens.list().find((x) => x.tokenId === tokens.tokenId)!.revoked);

  await until('node 2 reports itself stale', async () => (await readyz(n2.node)).body.reasons.some((r: string) => r.startsWith('cluster state stale')), 30_000);
  const { status, body } = await readyz(n2.node);
  t.is(status, 503);
  t.true(body.reasons.includes('bus not connected'));
  t.true(
    body.reasons.some((r: string) => /^cluster state stale: bus lost, last confirmed contact \d+ s ago \(cluster\.maxStaleness 4s\)$/.test(r)),
    body.reasons.join(' | '),
  );
  const metrics = await metricsText(n2.node);
  t.regex(metrics, /^wimse_cluster_stale 1$/m);
  t.true(Number(/^wimse_cluster_contact_age_seconds (\S+)$/m.exec(metrics)![1]) >= 4);
  t.regex(await metricsText(n1.node), /^wimse_cluster_stale 0$/m);

  // ext_authz: a credential resting on node 1's key (revoked meanwhile) is refused with 503; node
  // 2's own key and the federation file's key still serve.
  t.is(outcome(await n2.check(checkRequest(peerSigned.fresh()))), 'ServiceUnavailable cluster.stale');
  t.is(outcome(await n2.check(checkRequest(ownSigned.fresh()))), 'allowed');
  t.is(outcome(await n2.check(checkRequest(federated.fresh()))), 'allowed');
  // Node tokens: the open SDS and WatchBundles streams end, new streams and the Workload API get UNAVAILABLE.
  const ended = await open.status;
  t.is(ended.code, grpc.status.UNAVAILABLE);
  t.regex(ended.details, /^cluster state stale: .*node tokens cannot be confirmed on this node/);
  const watchEnded = await bundles.status;
  t.is(watchEnded.code, grpc.status.UNAVAILABLE);
  t.regex(watchEnded.details, /^cluster state stale: .*node tokens cannot be confirmed on this node/);
  const refused = await envoy.open(['default']).status;
  t.is(refused.code, grpc.status.UNAVAILABLE);
  t.regex(refused.details, /cluster state stale/);
  const wapi = (await t.throwsAsync(fetchWit(n2.node.grpcAddress, tokens.token))) as grpc.ServiceError;
  t.is(wapi.code, grpc.status.UNAVAILABLE);
  t.regex(wapi.details, /cluster state stale/);

  // The partition heals: node 2 catches up from the store before it counts as fresh again.
  await s3!.start();
  let atRecovery: { tokenRevoked: boolean; keyTrusted: boolean } | undefined;
  await until('node 2 is fresh again', () => {
    if (n2.node.cluster.staleness().stale) return false;
    atRecovery = {
      tokenRevoked: n2.node.nodeTokens.list().find((x) => x.tokenId === tokens.tokenId)!.revoked,
      keyTrusted: trusts(n2.node, peerSigned.kid),
    };
    return true;
  }, 60_000, 5);
  t.deepEqual(atRecovery, { tokenRevoked: true, keyTrusted: false }, 'the revocations were applied before staleness cleared');
  await until('node 2 is ready', async () => (await readyz(n2.node)).status === 200, 20_000);
  t.regex(await metricsText(n2.node), /^wimse_cluster_stale 0$/m);
  t.regex(outcome(await n2.check(checkRequest(peerSigned.fresh()))), /^Unauthorized /);
  t.is(outcome(await n2.check(checkRequest(ownSigned.fresh()))), 'allowed');
  t.is((await envoy.open(['default']).status).code, grpc.status.UNAUTHENTICATED);
});

test('mesh partition - connected to a NATS server that lost the JetStream quorum: the store does not answer, and the node turns stale all the same', async (t) => {
  const nats = await startNatsCluster(t, 3);
  const [s1, s2, s3] = nats;
  const tokens = tokenFile(t);
  const n = await startMeshNode(t, { name: 'cp-1', servers: [s3!.url], replicas: 3, nodeTokensFile: tokens.path, maxStaleness: '4s', tuning: PINNED });
  await until('node 1 is ready and in contact with the store', async () => (await readyz(n.node)).status === 200 && n.node.cluster.staleness().contactAgeMs === 0, 20_000);

  await Promise.all([s1!.kill(), s2!.kill()]);
  await until('node 1 reports itself stale', async () => (await readyz(n.node)).body.reasons.some((r: string) => r.startsWith('cluster state stale')), 30_000);
  t.true(n.node.cluster.bus.connected, 'the NATS connection itself is up');
  const { body } = await readyz(n.node);
  t.is(body.reasons.length, 1);
  t.regex(body.reasons[0], /^cluster state stale: the shared store is not answering, last confirmed contact \d+ s ago \(cluster\.maxStaleness 4s\)$/);
  const envoy = new FakeEnvoy(n.node.grpcAddress, { nodeId: 'sidecar-b', token: tokens.token });
  t.teardown(() => envoy.close());
  t.is((await envoy.open(['default']).status).code, grpc.status.UNAVAILABLE);

  await Promise.all([s1!.start({ waitReady: false }), s2!.start({ waitReady: false })]);
  await until('node 1 is fresh and ready again', async () => !n.node.cluster.staleness().stale && (await readyz(n.node)).status === 200, 60_000);
  const s = envoy.open(['default']);
  t.truthy(secretsOf(await s.next()).get('default'));
  s.end();
});

test('mesh partition - a node started with NATS down does not count its silent peers as agreeing: its activation waits for the timeout, then warns and counts', async (t) => {
  const nats = await startNatsServer(t);
  const servers = [nats.url];
  const n1 = await startMeshNode(t, { name: 'cp-1', servers });
  const n2 = await startMeshNode(t, { name: 'cp-2', servers });
  await converged([n1.node, n2.node]);
  await Promise.all([n1.stop(), n2.stop()]);
  await nats.kill();

  const log = recordingLogger();
  const back = await startMeshNode(t, { name: 'cp-1', servers, dir: n1.dir, activationTimeout: '6s', logger: log.logger });
  t.false(back.node.cluster.bus.connected);
  t.deepEqual(back.node.cluster.knownPeers(), ['cp-2'], 'the journal names the peer');
  const before = back.node.ca.slot('wit').current!.kid;
  const prepared = await back.node.ca.prepare('wit');
  const activation = back.node.ca.activate('wit');
  await until('the activation waits at the gate', async () => /^wimse_activation_gate_waiting 1$/m.test(await metricsText(back.node)));
  t.is(back.node.ca.slot('wit').current!.kid, before, 'not activated while the peer cannot be heard');
  t.regex(await metricsText(back.node), /^wimse_activation_gate_timeouts_total 0$/m);

  await activation;
  t.is(back.node.ca.slot('wit').current!.kid, prepared.kid);
  const metrics = await metricsText(back.node);
  t.regex(metrics, /^wimse_activation_gate_timeouts_total 1$/m);
  t.regex(metrics, /^wimse_activation_gate_waiting 0$/m);
  await until('the warning is logged', () => log.lines().some((l) => /^ACTIVATING A KEY NOT YET TRUSTED BY EVERY KNOWN NODE/.test(l.msg)));
  const warn = log.lines().find((l) => /^ACTIVATING A KEY/.test(l.msg))!;
  t.is(warn.level, 40);
  t.is(warn.kid, prepared.kid);
  t.deepEqual(warn.missing, ['cp-2']);
  t.false(warn.storeRead);
});

test('mesh partition - emergency admin actions complete while an activation waits at the gate for a partitioned peer', async (t) => {
  const nats = await startNatsCluster(t, 3);
  const [s1, s2, s3] = nats;
  const policy = policyFor([A]);
  // Node 2 stays live in node 1's eyes for a long time: even a gate that only looks at live
  // nodes keeps waiting, so the admin calls below are measured against a gate that holds.
  const tuning = { ...PINNED, heartbeatTimeoutMs: 120_000 };
  const n1 = await startMeshNode(t, { name: 'cp-1', servers: [s1!.url, s2!.url], replicas: 3, policy, activationTimeout: '1h', tuning });
  const n2 = await startMeshNode(t, { name: 'cp-2', servers: [s3!.url], replicas: 3, policy, tuning });
  await converged([n1.node, n2.node]);
  const a1 = admin(n1);
  t.teardown(() => a1.client.close());

  // A rotation while everyone is connected leaves an old WIT key that signed a credential.
  const old = await callerHeaders(n1.node);
  await a1.call('PrepareAuthority', { kind: 'wit' });
  await a1.call('ActivateAuthority', { kind: 'wit' });
  t.is(outcome(await n1.check(checkRequest(old.fresh()))), 'allowed');
  const { token, token_id } = await a1.call('CreateNodeToken', { node_id: 'sidecar-b', ttl_seconds: 0 });
  const envoy = new FakeEnvoy(n1.node.grpcAddress, { nodeId: 'sidecar-b', token });
  t.teardown(() => envoy.close());
  const stream = envoy.open(['default']);
  t.truthy(secretsOf(await stream.next()).get('default'));

  // Node 2 is cut off; node 1 prepares a key and an operator activates it: it waits at the gate.
  await s3!.kill();
  await until('node 2 sees the bus lost', () => !n2.node.cluster.bus.connected, 20_000);
  const prepared = JSON.parse((await a1.call('PrepareAuthority', { kind: 'wit' })).text);
  let activated = false;
  const activation = a1.call('ActivateAuthority', { kind: 'wit' }).then((r) => {
    activated = true;
    return JSON.parse(r.text);
  });
  await until('the activation waits at the gate', async () => /^wimse_activation_gate_waiting 1$/m.test(await metricsText(n1.node)));

  // Taint and revoke the old WIT key, taint the active X.509 key, revoke the node token: each
  // returns while the activation still waits.
  const tainted = JSON.parse((await a1.call('TaintAuthority', { kind: 'wit', kid: old.kid })).text);
  t.false(activated, 'taint returned while the activation waits');
  t.is(tainted.status, 'tainted');
  const revoked = JSON.parse((await a1.call('RevokeAuthority', { kind: 'wit', kid: old.kid })).text);
  t.false(activated, 'revoke returned while the activation waits');
  t.is(revoked.status, 'revoked');
  const x509 = n1.node.ca.slot('x509').current!.kid;
  await a1.call('TaintAuthority', { kind: 'x509', kid: x509 });
  t.false(activated, 'the X.509 taint returned while the activation waits');
  await a1.call('RevokeNodeToken', { token_id, node_id: '' });
  t.false(activated, 'the token revocation returned while the activation waits');

  // Their effects are in force.
  t.regex(outcome(await n1.check(checkRequest(old.fresh()))), /^Unauthorized /);
  t.false(n1.node.ca.bundle().witKeys.some((k) => k.kid === old.kid));
  t.not(n1.node.ca.slot('x509').current!.kid, x509, 'a replacement X.509 key is active at once');
  t.is(n1.node.ca.keys().find((k) => k.kid === x509)!.status, 'tainted');
  t.is((await stream.status).code, grpc.status.UNAUTHENTICATED);
  t.is((await envoy.open(['default']).status).code, grpc.status.UNAUTHENTICATED);
  t.is(n1.node.ca.slot('wit').next?.kid, prepared.kid, 'the gated key is still prepared');
  t.regex(await metricsText(n1.node), /^wimse_activation_gate_waiting 1$/m);

  // The partition heals: node 2 takes the key in, and the activation goes through the gate.
  await s3!.start();
  const done = await activation;
  t.is(done.kid, prepared.kid);
  t.is(n1.node.ca.slot('wit').current!.kid, prepared.kid);
  t.true(trusts(n2.node, prepared.kid));
  t.regex(await metricsText(n1.node), /^wimse_activation_gate_timeouts_total 0$/m);
});
