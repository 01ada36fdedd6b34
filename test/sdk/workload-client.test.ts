import test from 'ava';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import { ManualClock, nowSeconds } from '../../src/identity/clock.ts';
import { WorkloadClient, WorkloadApiError, fromGrpcError, type WorkloadCredential } from '../../src/sdk/index.ts';
import { openChannel, callMetadata } from '../../src/sdk/connection.ts';
import { hashToken } from '../../src/identity/node-tokens.ts';
import { CLIENT_ID, NODE_TOKEN, ManualTimers, SERVER_ID, startWorkloadApi, until, witKey } from './helpers.ts';

const setup = async (opts: { witTtlSec?: number; entitlements?: Record<string, string[]> } = {}) => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1));
  const timers = new ManualTimers(clock);
  const api = await startWorkloadApi({ clock, ...opts });
  return { clock, timers, api };
};

test('sdk client - fetches a WIT bound to a key it generated; only the public key is sent', async (t) => {
  const { clock, timers, api } = await setup();
  const client = new WorkloadClient({ address: api.address, nodeToken: NODE_TOKEN, workloadId: CLIENT_ID, clock, timers, watchBundles: false });
  t.teardown(async () => { await client.close(); await api.close(); });
  const cred = await client.start();
  // The WIT verifies with the issuer key and names our identity and our key.
  const kid = decodeProtectedHeader(cred.wit).kid!;
  const { payload, protectedHeader } = await jwtVerify(cred.wit, await importJWK(witKey(api, kid), 'ES256'), { currentDate: new Date(clock.now()) });
  t.is(protectedHeader.typ, 'wit+jwt');
  t.is(payload.sub, CLIENT_ID);
  const cnf = (payload as { cnf: { jwk: Record<string, unknown> } }).cnf.jwk;
  t.is(cnf.x, cred.key.publicJwk.x);
  t.is(cnf.alg, 'ES256');
  t.is(cred.expiresAt, nowSeconds(clock) + 3600);
  // The proof the server received carries the public key only and is the wit-request+jwt format.
  const proofHeader = decodeProtectedHeader(api.requests[0]!.proof) as { typ: string; jwk: Record<string, unknown> };
  t.is(proofHeader.typ, 'wit-request+jwt');
  t.false('d' in proofHeader.jwk);
  t.deepEqual(decodeJwt(api.requests[0]!.proof).aud, 'wimse:workload-api');
  t.is(cred.key.privateKey.type, 'private');
  t.is(client.current().wit, cred.wit);
});

test('sdk client - renews before expiry at refresh_at, with a new key each time', async (t) => {
  const { clock, timers, api } = await setup({ witTtlSec: 3600 });
  const updates: WorkloadCredential[] = [];
  const client = new WorkloadClient({ address: api.address, nodeToken: NODE_TOKEN, workloadId: CLIENT_ID, clock, timers, watchBundles: false, onUpdate: (c) => updates.push(c) });
  t.teardown(async () => { await client.close(); await api.close(); });
  const first = await client.start();
  const due = timers.nextAt()!;
  const issuedMs = clock.now();
  // The server suggests 50-60% of the life; the client adds at most 5% jitter, capped at 90%.
  t.true(due >= issuedMs + 0.5 * 3600_000 && due <= issuedMs + 0.9 * 3600_000, `renewal at ${(due - issuedMs) / 1000}s`);
  timers.advance(due - clock.now() - 1000);
  t.is(api.issued, 1, 'not renewed before the planned time');
  timers.advance(1000);
  await until(() => updates.length === 2);
  const second = client.current();
  t.not(second.wit, first.wit);
  t.not(second.key.publicJwk.x, first.key.publicJwk.x, 'a new key per WIT (workload-creds-02 §9.4)');
  t.true(second.expiresAt > first.expiresAt);
  // And again: the renewal is rescheduled from the new WIT.
  timers.advance(timers.nextAt()! - clock.now());
  await until(() => updates.length === 3);
  t.is(new Set(updates.map((u) => u.key.publicJwk.x)).size, 3);
});

test('sdk client - retries with backoff after server errors while the WIT is still valid', async (t) => {
  const { clock, timers, api } = await setup({ witTtlSec: 600 });
  const errors: Error[] = [];
  const client = new WorkloadClient({ address: api.address, nodeToken: NODE_TOKEN, workloadId: CLIENT_ID, clock, timers, watchBundles: false, onError: (e) => errors.push(e), retry: { baseMs: 1000, maxMs: 8000 } });
  t.teardown(async () => { await client.close(); await api.close(); });
  const first = await client.start();
  api.failNext(3);
  timers.advance(timers.nextAt()! - clock.now());
  await until(() => errors.length === 1);
  t.is((errors[0] as WorkloadApiError).code, 'workload_api.internal');
  t.is(client.current().wit, first.wit, 'the current WIT stays in use');
  const gaps: number[] = [];
  for (let i = 2; i <= 3; i++) {
    const wait = timers.nextAt()! - clock.now();
    gaps.push(wait);
    timers.advance(wait);
    await until(() => errors.length === i);
  }
  // Exponential backoff with jitter: [base/2, base], then [base, 2*base].
  t.true(gaps[0]! >= 500 && gaps[0]! <= 1000, `second attempt after ${gaps[0]} ms`);
  t.true(gaps[1]! >= 1000 && gaps[1]! <= 2000, `third attempt after ${gaps[1]} ms`);
  timers.advance(timers.nextAt()! - clock.now());
  await until(() => client.current().wit !== first.wit);
  t.is(api.issued, 2);
  t.not(client.current().key.publicJwk.x, first.key.publicJwk.x);
});

test('sdk client - a WIT that expires while renewal keeps failing is no longer handed out', async (t) => {
  const { clock, timers, api } = await setup({ witTtlSec: 120 });
  const client = new WorkloadClient({ address: api.address, nodeToken: NODE_TOKEN, workloadId: CLIENT_ID, clock, timers, watchBundles: false, retry: { baseMs: 5000, maxMs: 5000 } });
  t.teardown(async () => { await client.close(); await api.close(); });
  await client.start();
  api.failNext(1000);
  for (let i = 0; i < 40 && clock.now() < Date.UTC(2026, 5, 1) + 125_000; i++) {
    const before = api.requests.length;
    timers.advance(timers.nextAt()! - clock.now());
    await until(() => api.requests.length > before);
    // The client schedules its next retry once it has handled the failure: wait for that timer,
    // not for a fixed delay (a loaded machine can take longer than any fixed delay).
    await until(() => timers.nextAt() !== undefined);
  }
  t.is(client.credential, undefined);
  const err = t.throws(() => client.current()) as WorkloadApiError;
  t.is(err.code, 'workload_api.unavailable');
});

test('sdk client - the server rejects a replayed or tampered proof', async (t) => {
  const { clock, timers, api } = await setup();
  const client = new WorkloadClient({ address: api.address, nodeToken: NODE_TOKEN, workloadId: CLIENT_ID, clock, timers, watchBundles: false });
  t.teardown(async () => { await client.close(); await api.close(); });
  await client.start();
  const captured = api.requests[0]!;
  const stub = await openChannel({ address: api.address });
  t.teardown(() => stub.close());
  const call = async (req: { workload_id: string; proof: string }) => {
    const md = await callMetadata({ address: api.address, nodeToken: NODE_TOKEN });
    return new Promise<unknown>((resolve, reject) => stub.FetchWIT(req, md, {}, (e, r) => (e ? reject(e) : resolve(r))));
  };
  const replayed = fromGrpcError(await t.throwsAsync(call(captured)));
  t.is(replayed.code, 'workload_api.proof_rejected');
  t.is(replayed.proofCode, 'proof.replay');
  // The same proof with its claims changed (another identity) no longer verifies.
  const [h, , s] = captured.proof.split('.');
  const claims = Buffer.from(JSON.stringify({ sub: SERVER_ID, aud: 'wimse:workload-api', iat: nowSeconds(clock), jti: randomBytes(16).toString('base64url') })).toString('base64url');
  const tampered = fromGrpcError(await t.throwsAsync(call({ workload_id: SERVER_ID, proof: `${h}.${claims}.${s}` })));
  t.is(tampered.proofCode, 'proof.bad_signature');
  t.is(api.issued, 1);
});

test('sdk client - a WIT bound to another key, or for another identity, is refused', async (t) => {
  const { clock, timers, api } = await setup();
  const client = new WorkloadClient({ address: api.address, nodeToken: NODE_TOKEN, workloadId: CLIENT_ID, clock, timers, watchBundles: false });
  t.teardown(async () => { await client.close(); await api.close(); });
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  // Real WITs from the real CA, but not the ones asked for.
  api.tamper = async () => (await api.ca.mintWit({ sub: CLIENT_ID, cnf: { ...(other.publicKey.export({ format: 'jwk' }) as object), alg: 'ES256' } as never })).token;
  const e1 = (await t.throwsAsync(client.start())) as WorkloadApiError;
  t.is(e1.code, 'workload_api.bad_response');
  t.regex(e1.message, /cnf\.jwk/);
  api.tamper = (wit) => {
    const jwk = (decodeJwt(wit) as { cnf: { jwk: object } }).cnf.jwk;
    return api.ca.mintWit({ sub: SERVER_ID, cnf: jwk as never }).then((m) => m.token);
  };
  const e2 = (await t.throwsAsync(client.renewNow())) as WorkloadApiError;
  t.is(e2.code, 'workload_api.bad_response');
  t.is(client.credential, undefined);
});

test('sdk client - entitlement denial and a bad node token surface typed errors', async (t) => {
  const { clock, timers, api } = await setup({ entitlements: { 'node-1': [SERVER_ID] } });
  t.teardown(() => api.close());
  const denied = new WorkloadClient({ address: api.address, nodeToken: NODE_TOKEN, workloadId: CLIENT_ID, clock, timers, watchBundles: false });
  const e1 = (await t.throwsAsync(denied.start())) as WorkloadApiError;
  await denied.close();
  t.true(e1 instanceof WorkloadApiError);
  t.is(e1.code, 'workload_api.permission_denied');
  t.is(e1.grpcStatus, grpc.status.PERMISSION_DENIED);
  t.false(e1.retryable);
  const badToken = new WorkloadClient({ address: api.address, nodeToken: 'wrong', workloadId: SERVER_ID, clock, timers, watchBundles: false });
  const e2 = (await t.throwsAsync(badToken.start())) as WorkloadApiError;
  await badToken.close();
  t.is(e2.code, 'workload_api.unauthenticated');
  t.is(api.issued, 0);
});

test('sdk client - EdDSA keys, a node token file and a Unix socket address', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sdk-'));
  const clock = new ManualClock(Date.UTC(2026, 5, 1));
  const api = await startWorkloadApi({ clock, bind: `unix:${join(dir, 'api.sock')}` });
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, NODE_TOKEN + '\n');
  const client = new WorkloadClient({ address: api.address, nodeTokenFile: tokenFile, workloadId: CLIENT_ID, keyAlg: 'EdDSA', clock, timers: new ManualTimers(clock), watchBundles: false });
  t.teardown(async () => { await client.close(); await api.close(); await rm(dir, { recursive: true, force: true }); });
  const cred = await client.start();
  const cnf = (decodeJwt(cred.wit) as { cnf: { jwk: Record<string, unknown> } }).cnf.jwk;
  t.is(cnf.alg, 'EdDSA');
  t.is(cnf.crv, 'Ed25519');
  t.is(cred.key.alg, 'EdDSA');
});

test('sdk client - keeps the trust bundles current from WatchBundles', async (t) => {
  const { clock, timers, api } = await setup();
  const client = new WorkloadClient({ address: api.address, nodeToken: NODE_TOKEN, workloadId: CLIENT_ID, clock, timers });
  t.teardown(async () => { await client.close(); await api.close(); });
  await client.start();
  const first = await client.waitForBundles();
  const kids = (b: ReturnType<typeof client.bundles>) => (b.get('example.org')?.witKeys ?? []).map((k) => k.kid);
  t.deepEqual(kids(first), kids(api.bundles()));
  let seen: string[] = [];
  client.on('bundles', (b) => (seen = kids(b)));
  // The CA prepares its next WIT key: it is published in the bundle before it signs anything.
  const next = await api.ca.prepare('wit');
  await until(() => seen.includes(next.kid));
  t.true(kids(client.bundles()).includes(next.kid));
  t.is(kids(client.bundles()).length, kids(first).length + 1);
});

test('sdk client - the bundle watch reopens a stream the server ended, with the node token read again; the backoff starts over once it answers', async (t) => {
  const { clock, timers, api } = await setup();
  let token = NODE_TOKEN;
  const errors: WorkloadApiError[] = [];
  // random 0: each retry waits exactly half its ceiling (500 ms, 1 s, 2 s, ...).
  const client = new WorkloadClient({ address: api.address, nodeToken: () => token, workloadId: CLIENT_ID, clock, timers, random: () => 0, onError: (e) => errors.push(e as WorkloadApiError) });
  t.teardown(async () => { await client.close(); await api.close(); });
  await client.start();
  const first = await client.waitForBundles();
  await until(() => api.service.stats().streams === 1);
  const retryIn = () => timers.nextAt()! - clock.now();

  // The token is revoked: the server ends the stream; the watch retries and is refused again.
  t.true(api.tokens.revokeDigest(hashToken(NODE_TOKEN)));
  await until(() => errors.length === 1);
  t.is(errors[0]!.code, 'workload_api.unauthenticated');
  t.regex(errors[0]!.message, /node credentials revoked/);
  t.is(retryIn(), 500);
  timers.advance(retryIn());
  await until(() => errors.length === 2);
  t.is(errors[1]!.code, 'workload_api.unauthenticated');
  t.is(retryIn(), 1000);
  t.is(client.bundles(), first, 'the last bundles stay in use');

  // A new token replaces it (with an expiry): the next reopen uses it and the stream is back.
  token = api.tokens.issue('node-1', { expiresAt: clock.now() + 60_000 });
  timers.advance(retryIn());
  await until(() => api.service.stats().streams === 1);

  // That token expires: the server's next check ends the stream. The stream had answered (the
  // bundles already held, before its end on the same stream), so the retry waits the first
  // backoff step again, not a third.
  clock.advance(60_000);
  api.service.tick();
  await until(() => errors.length === 3);
  t.is(errors[2]!.code, 'workload_api.unauthenticated');
  t.regex(errors[2]!.message, /node credentials expired/);
  t.is(retryIn(), 500);

  // With a lasting token the stream is back, and updates flow again.
  token = api.tokens.issue('node-1');
  timers.advance(retryIn());
  await until(() => api.service.stats().streams === 1);
  let seen: string[] = [];
  client.on('bundles', (b) => (seen = (b.get('example.org')?.witKeys ?? []).map((k) => k.kid)));
  const next = await api.ca.prepare('wit');
  await until(() => seen.includes(next.kid));
  t.is(errors.length, 3);
});

test('sdk client - close stops renewal; options are checked at construction', async (t) => {
  const { clock, timers, api } = await setup();
  const client = new WorkloadClient({ address: api.address, nodeToken: NODE_TOKEN, workloadId: CLIENT_ID, clock, timers, watchBundles: false });
  await client.start();
  t.is(timers.size, 1);
  await client.close();
  await api.close();
  t.is(timers.size, 0);
  t.is(client.credential, undefined);
  t.is(((await t.throwsAsync(client.renewNow())) as WorkloadApiError).code, 'workload_api.closed');
  t.throws(() => new WorkloadClient({ address: api.address, workloadId: 'not an id' }), { instanceOf: TypeError });
  t.throws(() => new WorkloadClient({ address: api.address, workloadId: CLIENT_ID, keyAlg: 'HS256' as never }), { instanceOf: TypeError });
});
