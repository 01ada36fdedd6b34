import test from 'ava';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { CompactSign, decodeJwt, decodeProtectedHeader } from 'jose';
import { startTestNode } from '../helpers/node.ts';
import { tokenMetadata, watchBundles, workloadApiClient } from '../helpers/workload-watch.ts';
import { PROOF_AUDIENCE, PROOF_TYP } from '../../src/workload-api/proof.ts';
import { parseSpiffeBundleMap } from '../../src/identity/trust-bundle.ts';
import { hashToken, tokenIdOf } from '../../src/identity/node-tokens.ts';

const ID = 'wimse://example.org/svc/app';
const REG = `sds:\n  registrations:\n    - nodeId: app-node\n      workloads: [${ID}]\n`;

async function proofFor(sub: string) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk: Record<string, string> = { ...(publicKey.export({ format: 'jwk' }) as Record<string, string>), alg: 'ES256' };
  const claims = { sub, aud: PROOF_AUDIENCE, iat: Math.floor(Date.now() / 1000), jti: randomBytes(16).toString('base64url') };
  const proof = await new CompactSign(Buffer.from(JSON.stringify(claims))).setProtectedHeader({ alg: 'ES256', typ: PROOF_TYP, jwk }).sign(privateKey);
  return { proof, jwk };
}

const client = workloadApiClient;
const md = tokenMetadata;
const fetchWit = (c: any, req: unknown, m: grpc.Metadata) =>
  new Promise<any>((resolve, reject) => c.FetchWIT(req, m, (e: any, r: any) => (e ? reject(e) : resolve(r))));

test('node Workload API - an entitled caller gets a WIT bound to its key', async (t) => {
  const { node } = await startTestNode(t, { yaml: REG });
  const token = node.nodeTokens.issue('app-node');
  const c = client(node.grpcAddress);
  t.teardown(() => c.close());
  const { proof, jwk } = await proofFor(ID);
  const res = await fetchWit(c, { workload_id: ID, proof }, md(token));
  const claims = decodeJwt(res.wit) as any;
  t.is(claims.sub, ID);
  t.is(claims.cnf.jwk.x, jwk.x);
  t.is(decodeProtectedHeader(res.wit).typ, 'wit+jwt');
  t.true(res.refresh_at < res.expires_at);
});

test('node Workload API - unauthenticated, unentitled and replayed requests are refused', async (t) => {
  const { node } = await startTestNode(t, { yaml: REG });
  const token = node.nodeTokens.issue('app-node');
  const c = client(node.grpcAddress);
  t.teardown(() => c.close());
  const { proof } = await proofFor(ID);
  t.is(((await t.throwsAsync(fetchWit(c, { workload_id: ID, proof }, md()))) as any).code, grpc.status.UNAUTHENTICATED);
  const other = await proofFor('wimse://example.org/svc/other');
  t.is(((await t.throwsAsync(fetchWit(c, { workload_id: 'wimse://example.org/svc/other', proof: other.proof }, md(token)))) as any).code, grpc.status.PERMISSION_DENIED);
  await fetchWit(c, { workload_id: ID, proof }, md(token));
  const replay = (await t.throwsAsync(fetchWit(c, { workload_id: ID, proof }, md(token)))) as any;
  t.is(replay.code, grpc.status.INVALID_ARGUMENT);
  t.regex(replay.details, /proof\.replay/);
});

test('node Workload API - WatchBundles sends the current bundle map', async (t) => {
  const { node } = await startTestNode(t, { yaml: REG });
  const token = node.nodeTokens.issue('app-node');
  const c = client(node.grpcAddress);
  t.teardown(() => c.close());
  const call = c.WatchBundles({}, md(token));
  const first = await new Promise<any>((resolve, reject) => {
    call.once('data', resolve);
    call.once('error', reject);
  });
  call.cancel();
  const parsed = parseSpiffeBundleMap(first.bundle_map_json);
  t.true(parsed.ok);
  if (parsed.ok) t.true(parsed.value.get('example.org')!.witKeys.length >= 1);
});

const watch = watchBundles;

test('node Workload API - revoking a node token ends its open WatchBundles stream with UNAUTHENTICATED; a stream on another token stays', async (t) => {
  const { node } = await startTestNode(t, { yaml: REG });
  const revoked = node.nodeTokens.issue('app-node');
  const kept = node.nodeTokens.issue('app-node');
  const c = client(node.grpcAddress);
  t.teardown(() => c.close());
  const a = watch(c, revoked);
  const b = watch(c, kept);
  t.teardown(() => b.cancel());
  await Promise.all([a.first, b.first]);
  const scrape = async () => (await (await fetch(`${node.adminUrl}/metrics`)).text()).match(/^wimse_workload_api_streams (\d+)$/m)?.[1];
  t.is(await scrape(), '2', 'the gauge counts both open streams');
  t.true(node.nodeTokens.revokeToken(tokenIdOf(hashToken(revoked))));
  const st = await a.status;
  t.is(st.code, grpc.status.UNAUTHENTICATED);
  t.is(st.details, 'node credentials revoked');
  t.is(node.workloadApi.stats().streams, 1);
  t.is(await scrape(), '1', 'and the ended one no longer');
});

test('node Workload API - an open WatchBundles stream ends with UNAUTHENTICATED once its node token expires', async (t) => {
  const { node } = await startTestNode(t, { yaml: REG });
  const token = node.nodeTokens.issue('app-node', { expiresAt: Date.now() + 3_600_000 });
  const c = client(node.grpcAddress);
  t.teardown(() => c.close());
  const s = watch(c, token);
  await s.first;
  // The token's expiry is brought forward to now, as a shortened record heard from another node
  // would be (the earlier expiry wins); the node's next stream check ends the stream.
  const record = node.nodeTokens.get(hashToken(token))!;
  node.nodeTokens.merge({ ...record, expiresAt: Date.now() });
  const st = await s.status;
  t.is(st.code, grpc.status.UNAUTHENTICATED);
  t.is(st.details, 'node credentials expired');
});

test('node Workload API - closing the node ends open WatchBundles streams with UNAVAILABLE, and the close completes', async (t) => {
  const { node } = await startTestNode(t, { yaml: REG });
  const c = client(node.grpcAddress);
  t.teardown(() => c.close());
  const s = watch(c, node.nodeTokens.issue('app-node'));
  await s.first;
  const [st] = await Promise.all([s.status, node.close()]);
  t.is(st.code, grpc.status.UNAVAILABLE);
  t.is(st.details, 'control plane shutting down');
});

test('node Workload API - a proof replay cache full of live proofs refuses a new one with UNAVAILABLE and counts it under cache="wit_request"', async (t) => {
  const SIZE = 100; // workloadApi.replayCacheSize's minimum
  const { node } = await startTestNode(t, { yaml: `${REG}workloadApi:\n  replayCacheSize: ${SIZE}\n` });
  const token = node.nodeTokens.issue('app-node');
  const c = client(node.grpcAddress);
  t.teardown(() => c.close());
  const metric = async (name: string): Promise<number | undefined> => {
    const m = new RegExp(`^${name}\\{cache="wit_request"\\} (\\d+)$`, 'm').exec(await node.metrics.registry.metrics());
    return m ? Number(m[1]) : undefined;
  };
  t.is(await metric('wimse_replay_cache_capacity'), SIZE);
  const held = await proofFor(ID);
  await fetchWit(c, { workload_id: ID, proof: held.proof }, md(token));
  for (let i = 1; i < SIZE; i++) await fetchWit(c, { workload_id: ID, proof: (await proofFor(ID)).proof }, md(token));
  t.is(await metric('wimse_replay_cache_entries'), SIZE);
  t.is(await metric('wimse_replay_cache_rejections_total'), 0);

  const refused = (await t.throwsAsync(fetchWit(c, { workload_id: ID, proof: (await proofFor(ID)).proof }, md(token)))) as grpc.ServiceError;
  t.is(refused.code, grpc.status.UNAVAILABLE);
  t.regex(refused.details, /^proof\.replay_cache_full: /);
  t.is(await metric('wimse_replay_cache_rejections_total'), 1);
  // Nothing still valid was evicted to make room: the first proof is still a replay.
  const replayed = (await t.throwsAsync(fetchWit(c, { workload_id: ID, proof: held.proof }, md(token)))) as grpc.ServiceError;
  t.regex(replayed.details, /^proof\.replay: /);
  t.is(await metric('wimse_replay_cache_entries'), SIZE);
  // The ext_authz caches are counted apart.
  t.regex(await node.metrics.registry.metrics(), /^wimse_replay_cache_rejections_total\{cache="wpt"\} 0$/m);
});
