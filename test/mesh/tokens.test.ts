/**
 * Caller credentials across a cluster: node tokens and admin tokens issued on one node work on
 * every node (only their digests travel), and a revocation heard on any node is journaled there.
 * Real nodes, real nats-server, real SDS streams and the real wimsectl.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startNatsServer } from '../helpers/nats-server.ts';
import { FakeEnvoy } from '../envoy/helpers/fake-envoy.ts';
import { wimsectl } from '../admin/cli.ts';
import { adminClientConstructor } from '../../src/admin/api.ts';
import { hashToken, tokenIdOf } from '../../src/identity/node-tokens.ts';
import { createBus } from '../../src/cluster/index.ts';
import { converged, startMeshNode, storedValues, until, type MeshNode } from './helpers.ts';

const adminTokenFile = (n: MeshNode): string => join(n.node.config.stateDir, 'admin-token');
const adminTokenOf = (n: MeshNode): string => readFileSync(adminTokenFile(n), 'utf8').trim();

function admin(n: MeshNode, token = adminTokenOf(n)) {
  const Ctor = adminClientConstructor();
  const client = new Ctor(n.node.grpcAddress, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  const call = (method: string, req: unknown) =>
    new Promise<any>((resolve, reject) => client[method](req, md, { deadline: Date.now() + 30_000 }, (e: unknown, r: unknown) => (e ? reject(e) : resolve(r))));
  return { client, call };
}

/** A NATS server and nodes named `names` on it, converged. */
async function mesh(t: ExecutionContext, names: string[]) {
  const nats = await startNatsServer(t);
  const servers = [nats.url];
  const nodes = await Promise.all(names.map((name) => startMeshNode(t, { name, servers })));
  await converged(nodes.map((n) => n.node));
  return { nats, servers, nodes };
}

/** One SDS fetch of `default` for sidecar-b with `token`: the gRPC status code (0: served). */
async function sdsStatus(n: MeshNode, token: string): Promise<number> {
  const envoy = new FakeEnvoy(n.node.grpcAddress, { nodeId: 'sidecar-b', token });
  try {
    await envoy.fetch(['default']);
    return grpc.status.OK;
  } catch (e) {
    return (e as grpc.ServiceError).code;
  } finally {
    envoy.close();
  }
}

test('mesh tokens - a node token issued on one node serves SDS on every node; a revocation on another survives a restart with NATS down', async (t) => {
  const { nats, servers, nodes } = await mesh(t, ['cp-1', 'cp-2', 'cp-3']);
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];
  const onA = admin(a);
  const onC = admin(c);
  t.teardown(() => {
    onA.client.close();
    onC.client.close();
  });

  const revoked = (await onA.call('CreateNodeToken', { node_id: 'sidecar-b' })).token as string;
  const kept = (await onA.call('CreateNodeToken', { node_id: 'sidecar-b' })).token as string;
  for (const n of [b, c]) await until(`${n.name} serves SDS with the token issued on cp-1`, async () => (await sdsStatus(n, revoked)) === grpc.status.OK, 20_000);
  t.is(await sdsStatus(c, kept), grpc.status.OK);

  // Revoked through cp-3's admin API, by the id cp-3 learned from the bus.
  const listed = (await onC.call('ListNodeTokens', {})).tokens as Array<{ token_id: string; node_id: string }>;
  t.true(listed.some((x) => x.token_id === tokenIdOf(hashToken(revoked))), 'cp-3 lists the token issued on cp-1');
  await onC.call('RevokeNodeToken', { token_id: tokenIdOf(hashToken(revoked)) });
  for (const n of nodes) await until(`${n.name} refuses the revoked token`, async () => (await sdsStatus(n, revoked)) === grpc.status.UNAUTHENTICATED, 20_000);

  // NATS goes away; cp-2 restarts on its own journal: the revocation holds, the other token works.
  await nats.kill();
  await b.stop();
  const back = await startMeshNode(t, { name: 'cp-2', servers, dir: b.dir });
  t.false(back.node.cluster.bus.connected);
  t.is(await sdsStatus(back, revoked), grpc.status.UNAUTHENTICATED, 'the revocation learned over NATS was journaled');
  t.is(back.node.nodeTokens.verify(revoked), undefined);
  t.is(await sdsStatus(back, kept), grpc.status.OK, 'the token learned over NATS was journaled too');
  // Only digests were written: the token itself is in no file of cp-2's state.
  const journal = readFileSync(join(back.node.config.stateDir, 'node-tokens.json'), 'utf8');
  t.false(journal.includes(revoked) || journal.includes(kept));
});

test('mesh tokens - a revocation heard over NATS is journaled: a token provisioned in every node\'s file stays revoked after a restart with NATS down', async (t) => {
  const nats = await startNatsServer(t);
  const servers = [nats.url];
  const token = 'wnt_provisioned-on-every-node-0123456789abcdef012';
  const nodes: MeshNode[] = [];
  for (const name of ['cp-1', 'cp-2']) {
    const dir = mkdtempSync(join(tmpdir(), `wimse-mesh-${name}-`));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const nodeTokensFile = join(dir, 'tokens.json');
    writeFileSync(nodeTokensFile, JSON.stringify({ tokens: [{ nodeId: 'sidecar-b', sha256: hashToken(token) }] }));
    nodes.push(await startMeshNode(t, { name, servers, dir, nodeTokensFile }));
  }
  await converged(nodes.map((n) => n.node));
  const [a, b] = nodes as [MeshNode, MeshNode];
  t.true(a.node.nodeTokens.revokeDigest(hashToken(token)));
  await until('cp-2 refuses the token', () => b.node.nodeTokens.verify(token) === undefined);
  await nats.kill();
  await b.stop();
  const back = await startMeshNode(t, { name: 'cp-2', servers, dir: b.dir, nodeTokensFile: join(b.dir, 'tokens.json') });
  t.is(back.node.nodeTokens.verify(token), undefined);
  t.is(await sdsStatus(back, token), grpc.status.UNAUTHENTICATED);
});

test('mesh tokens - a revocation is sticky: a later re-publication of the unrevoked record does not bring the token back', async (t) => {
  const { servers, nodes } = await mesh(t, ['cp-1', 'cp-2']);
  const [a, b] = nodes as [MeshNode, MeshNode];
  const token = a.node.nodeTokens.issue('sidecar-b');
  const sha256 = hashToken(token);
  await until('cp-2 knows the token', () => b.node.nodeTokens.verify(token) !== undefined);
  t.true(b.node.nodeTokens.revokeDigest(sha256));
  await until('cp-1 refuses the token', () => a.node.nodeTokens.verify(token) === undefined);

  // A node that never heard of the revocation (a stale peer) writes the unrevoked record again.
  const stale = createBus({ trustDomain: 'example.org', nodeName: 'cp-stale', cluster: { servers, replicas: 1, reconcileInterval: 1000 } });
  t.teardown(() => stale.close());
  await stale.start();
  await stale.put('nodeTokens', sha256, { nodeId: 'sidecar-b', sha256 });
  await until('the cluster re-asserts the revocation over the stale write', () => stale.get('nodeTokens', sha256)?.record.revoked === true, 20_000);
  for (const n of nodes) t.is(n.node.nodeTokens.verify(token), undefined, `${n.name} still refuses the token`);
});

test('mesh tokens - wimsectl with one node\'s admin token works against another; only digests are on the bus', async (t) => {
  const { servers, nodes } = await mesh(t, ['cp-1', 'cp-2']);
  const [a, b] = nodes as [MeshNode, MeshNode];
  const tokenOfA = adminTokenOf(a);
  t.not(tokenOfA, adminTokenOf(b), 'each node generated its own admin token');

  let ran = { code: null as number | null, stdout: '', stderr: '' };
  await until('wimsectl with cp-1\'s admin token is accepted by cp-2', async () => {
    ran = await wimsectl(['--server', b.node.grpcAddress, '--token-file', adminTokenFile(a), 'token', 'create', '--node-id', 'sidecar-b']);
    return ran.code === 0;
  }, 30_000, 200);
  const issued = /wnt_[A-Za-z0-9_-]+/.exec(ran.stdout)?.[0];
  t.truthy(issued, ran.stdout);
  await until('the token issued on cp-2 works on cp-1', async () => (await sdsStatus(a, issued!)) === grpc.status.OK, 20_000);

  // A token that is no node's admin token is refused everywhere.
  const wrong = await wimsectl(['--server', b.node.grpcAddress, 'entry', 'list'], { env: { WIMSE_ADMIN_TOKEN: 'not-an-admin-token-0123456789' } });
  t.not(wrong.code, 0);
  t.regex(wrong.stderr, /UNAUTHENTICATED|admin token/);

  // What the shared store holds about tokens: digests, never a token.
  const values = await storedValues(servers);
  t.true(values.some((v) => v.includes(hashToken(tokenOfA))), 'cp-1\'s admin token travels as its digest');
  t.true(values.some((v) => v.includes(hashToken(issued!))), 'the node token travels as its digest');
  for (const v of values) t.false(v.includes(tokenOfA) || v.includes(issued!), 'no token on the bus');
});

test('mesh tokens - a node restarted with a new admin token withdraws its old one on every node', async (t) => {
  const { servers, nodes } = await mesh(t, ['cp-1', 'cp-2']);
  const [a, b] = nodes as [MeshNode, MeshNode];
  const old = adminTokenOf(a);
  const listWith = async (n: MeshNode, token: string) => {
    const c = admin(n, token);
    try {
      await c.call('ListEntries', {});
      return grpc.status.OK;
    } catch (e) {
      return (e as grpc.ServiceError).code;
    } finally {
      c.client.close();
    }
  };
  await until('cp-2 accepts cp-1\'s admin token', async () => (await listWith(b, old)) === grpc.status.OK, 20_000);

  await a.stop();
  const rotated = 'rotated-admin-token-of-cp-1-0123456789abcdef';
  writeFileSync(adminTokenFile(a), `${rotated}\n`);
  await startMeshNode(t, { name: 'cp-1', servers, dir: a.dir });
  await until('cp-2 accepts the new admin token', async () => (await listWith(b, rotated)) === grpc.status.OK, 20_000);
  t.is(await listWith(b, old), grpc.status.UNAUTHENTICATED, 'the old admin token is withdrawn');
  t.is(await listWith(b, adminTokenOf(b)), grpc.status.OK, 'cp-2\'s own token still works');
});

test('mesh tokens - expired tokens\' records leave every node, journal and the shared store; a restart from an old journal or a stale write brings none back, and a revoked token is never accepted', async (t) => {
  const nats = await startNatsServer(t);
  const servers = [nats.url];
  const retention = { expiredTokenRetention: '2s' }; // pruned every second (a tenth of the retention, at least 1 s)
  const nodes = await Promise.all(['cp-1', 'cp-2', 'cp-3'].map((name) => startMeshNode(t, { name, servers, ...retention })));
  await converged(nodes.map((n) => n.node));
  const [a, b, c] = nodes as [MeshNode, MeshNode, MeshNode];

  const expiresAt = Date.now() + 4_000;
  const dead = a.node.nodeTokens.issue('sidecar-b', { expiresAt }); // revoked, then expires
  const lapsed = a.node.nodeTokens.issue('sidecar-b', { expiresAt }); // expires unrevoked
  const revokedLive = a.node.nodeTokens.issue('sidecar-b'); // revoked, never expires: kept
  const kept = a.node.nodeTokens.issue('sidecar-b');
  const digest = (tok: string) => hashToken(tok);
  await until('every node holds the four tokens', () => nodes.every((n) => [dead, lapsed, revokedLive, kept].every((tok) => n.node.nodeTokens.get(digest(tok)) !== undefined)));
  t.true(c.node.nodeTokens.revokeDigest(digest(dead)));
  t.true(c.node.nodeTokens.revokeDigest(digest(revokedLive)));
  await until('every node refuses the revoked tokens', () => nodes.every((n) => n.node.nodeTokens.verify(dead) === undefined && n.node.nodeTokens.verify(revokedLive) === undefined));

  // From here on, no node may accept a revoked token at any moment.
  let running = [a, b, c];
  const accepted: string[] = [];
  const watch = setInterval(() => {
    for (const n of running) for (const [what, tok] of [['dead', dead], ['revoked', revokedLive]] as const) if (n.node.nodeTokens.verify(tok)) accepted.push(`${what} on ${n.name}`);
  }, 10);
  t.teardown(() => clearInterval(watch));

  const prunedDigests = [digest(dead), digest(lapsed)];
  const journalOf = (n: MeshNode) => readFileSync(join(n.node.config.stateDir, 'node-tokens.json'), 'utf8');
  const holds = (n: MeshNode) => prunedDigests.some((h) => n.node.nodeTokens.get(h) !== undefined || journalOf(n).includes(h));
  const busHolds = async () => (await storedValues(servers)).some((v) => prunedDigests.some((h) => v.includes(h)));

  // cp-2 stops now; the others prune without it.
  await b.stop();
  running = [a, c];
  await until('cp-1 and cp-3 dropped the expired records, from memory and journal', () => !holds(a) && !holds(c));
  await until('the shared store no longer holds them (nodeTokens and revocations records)', async () => !(await busHolds()), 30_000, 200);
  for (const n of [a, c]) t.deepEqual(n.node.cluster.bus.list('nodeTokens').filter((e) => prunedDigests.includes(e.key)), [], `${n.name}'s replica forgot them`);

  // cp-2 comes back from a journal that holds them as they were before any revocation (an old copy).
  const file = join(b.dir, 'state', 'node-tokens.json');
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { tokens: Array<{ sha256: string }> };
  doc.tokens = [...doc.tokens.filter((r) => !prunedDigests.includes(r.sha256)), ...prunedDigests.map((sha256) => ({ nodeId: 'sidecar-b', sha256, expiresAt }))];
  writeFileSync(file, JSON.stringify(doc));
  const back = await startMeshNode(t, { name: 'cp-2', servers, dir: b.dir, ...retention });
  running = [a, back, c];
  t.false(prunedDigests.some((h) => back.node.nodeTokens.get(h) !== undefined), 'dropped at start, before anything was shared');
  // Two complete catch-ups on every node after the restart: whatever cp-2 could have handed back is in by then.
  const after = running.map((n) => n.node.cluster.bus.stats().reconciles);
  await until('every node reconciled twice since', () => running.every((n, i) => n.node.cluster.bus.stats().reconciles >= after[i]! + 2));
  await until('cp-2 rewrote its journal', () => !journalOf(back).includes(prunedDigests[0]!));
  for (const n of running) t.false(holds(n), `${n.name} holds none of them`);
  t.false(await busHolds(), 'nothing came back to the shared store');

  // A node that never learned the rule (an earlier version) writes the unrevoked record again.
  const stale = createBus({ trustDomain: 'example.org', nodeName: 'cp-stale', cluster: { servers, replicas: 1, reconcileInterval: 1000 } });
  await stale.start();
  const refusedBefore = running.map((n) => n.node.cluster.bus.stats().forgotten);
  await stale.put('nodeTokens', digest(dead), { nodeId: 'sidecar-b', sha256: digest(dead), expiresAt });
  await stale.close();
  await until('every node refused the copy', () => running.every((n, i) => n.node.cluster.bus.stats().forgotten > refusedBefore[i]!));
  await until('and removed it from the shared store', async () => !(await busHolds()), 30_000, 200);
  for (const n of running) t.false(holds(n), `${n.name} did not take it in`);

  // What stays: the revoked token that never expires (refused everywhere) and the live one.
  for (const n of running) {
    t.truthy(n.node.nodeTokens.get(digest(revokedLive))?.revoked, `${n.name} keeps the revocation`);
    t.is(await sdsStatus(n, revokedLive), grpc.status.UNAUTHENTICATED);
    t.is(await sdsStatus(n, kept), grpc.status.OK);
  }
  clearInterval(watch);
  t.deepEqual(accepted, [], 'no node accepted a revoked token at any time');
});
