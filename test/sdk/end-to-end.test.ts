import test from 'ava';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ManualClock } from '../../src/identity/clock.ts';
import { AuthnError } from '../../src/authn/errors.ts';
import { WorkloadClient, wimseMiddleware, type WimseIncomingMessage } from '../../src/sdk/index.ts';
import { CLIENT_ID, NODE_TOKEN, ManualTimers, SERVER_ID, startWorkloadApi, type TestWorkloadApi } from './helpers.ts';

interface Env {
  api: TestWorkloadApi;
  clock: ManualClock;
  client: WorkloadClient;
  serverClient: WorkloadClient;
  base: string;
  denied: string[];
}

const listen = async (handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; base: string }> => {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
};

/** The echo handler behind the middleware: who called, how, and the body it received. */
const echo = (req: IncomingMessage, res: ServerResponse) => {
  const w = (req as WimseIncomingMessage).wimse!;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ caller: w.caller, via: w.via, body: (req as WimseIncomingMessage).rawBody?.toString('utf8') ?? '' }));
};

async function setup(t: { teardown(fn: () => unknown): void }, opts: { serverSigns?: boolean; maxBodyBytes?: number } = {}): Promise<Env> {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
  const api = await startWorkloadApi({ clock });
  const mk = (id: string) => new WorkloadClient({ address: api.address, nodeToken: NODE_TOKEN, workloadId: id, clock, timers: new ManualTimers(clock) });
  const client = mk(CLIENT_ID);
  const serverClient = mk(SERVER_ID);
  await Promise.all([client.start(), serverClient.start()]);
  await Promise.all([client.waitForBundles(), serverClient.waitForBundles()]);
  const denied: string[] = [];
  let mw: ReturnType<typeof wimseMiddleware> | undefined;
  const { server, base } = await listen((req, res) => mw!(req, res, () => echo(req, res)));
  mw = wimseMiddleware({
    bundles: () => serverClient.bundles(),
    origins: [base],
    clock,
    ...(opts.serverSigns === false ? {} : { credential: () => serverClient.credential }),
    ...(opts.maxBodyBytes !== undefined ? { maxBodyBytes: opts.maxBodyBytes } : {}),
    onDenied: (e) => denied.push(e.code),
  });
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await client.close();
    await serverClient.close();
    await api.close();
  });
  return { api, clock, client, serverClient, base, denied };
}

const problem = async (res: Response) => {
  const type = res.headers.get('content-type');
  const body = (await res.json()) as { code: string; status: number };
  return { status: res.status, type, code: body.code, bodyStatus: body.status, challenge: res.headers.get('www-authenticate') };
};

test('sdk e2e - a WPT request authenticates the caller at the middleware', async (t) => {
  const e = await setup(t);
  const res = await e.client.fetch(`${e.base}/orders/7?expand=1`, {}, { mode: 'wpt' });
  t.is(res.status, 200);
  t.deepEqual(await res.json(), { caller: CLIENT_ID, via: 'wpt', body: '' });
});

test('sdk e2e - an HTTP-signed POST with a body authenticates the caller; the body reaches the handler', async (t) => {
  const e = await setup(t);
  const body = JSON.stringify({ item: 'book', qty: 2 });
  const res = await e.client.fetch(`${e.base}/orders`, { method: 'POST', body, headers: { 'content-type': 'application/json' } }, { mode: 'httpsig' });
  t.is(res.status, 200);
  t.deepEqual(await res.json(), { caller: CLIENT_ID, via: 'httpsig', body });
  t.deepEqual(res.wimse, {}, 'no signed response was asked for');
});

test('sdk e2e - a signed response is verified against the server WIT', async (t) => {
  const e = await setup(t);
  const res = await e.client.fetch(`${e.base}/orders?id=3`, { method: 'PUT', body: 'x=1' }, { mode: 'httpsig', signResponse: true, expectedServer: SERVER_ID });
  t.is(res.status, 200);
  t.is(res.wimse.server, SERVER_ID);
  t.truthy(res.wimse.signature?.nonce);
  t.true(res.wimse.signature!.covered.includes('"content-digest"'));
  t.deepEqual(await res.json(), { caller: CLIENT_ID, via: 'httpsig', body: 'x=1' });
  // The identity check is real: another expected server is refused.
  const err = (await t.throwsAsync(e.client.fetch(`${e.base}/orders`, {}, { mode: 'httpsig', signResponse: true, expectedServer: CLIENT_ID }))) as AuthnError;
  t.is(err.code, 'httpsig.unexpected_server');
});

test('sdk e2e - a tampered body is refused with 400 and a problem document', async (t) => {
  const e = await setup(t);
  const headers = new Headers({ 'content-type': 'text/plain' });
  e.client.signRequestHttpSig({ method: 'POST', url: `${e.base}/pay`, headers, body: 'amount=10' });
  const res = await fetch(`${e.base}/pay`, { method: 'POST', headers, body: 'amount=99' });
  const p = await problem(res);
  t.is(p.status, 400);
  t.is(p.type, 'application/problem+json');
  t.is(p.code, 'httpsig.digest_mismatch');
  t.is(p.bodyStatus, 400);
  t.deepEqual(e.denied, ['httpsig.digest_mismatch']);
});

test('sdk e2e - a replayed request is refused (signature nonce and WPT jti)', async (t) => {
  const e = await setup(t);
  const sigHeaders = new Headers();
  e.client.signRequestHttpSig({ url: `${e.base}/a`, headers: sigHeaders });
  t.is((await fetch(`${e.base}/a`, { headers: sigHeaders })).status, 200);
  const again = await problem(await fetch(`${e.base}/a`, { headers: sigHeaders }));
  t.is(again.status, 400);
  t.is(again.code, 'httpsig.nonce_replay');

  const wptHeaders = new Headers();
  e.client.signRequestWpt({ url: `${e.base}/b`, headers: wptHeaders });
  t.is((await fetch(`${e.base}/b`, { headers: wptHeaders })).status, 200);
  const replay = await problem(await fetch(`${e.base}/b`, { headers: wptHeaders }));
  t.is(replay.status, 401);
  t.is(replay.challenge, 'WPT');
  t.is(replay.code, 'wpt.replay');
});

test('sdk e2e - a wrong audience is refused: 401 + WPT challenge for a WPT, 400 for a signature', async (t) => {
  const e = await setup(t);
  const wpt = await problem(await e.client.fetch(`${e.base}/x`, {}, { mode: 'wpt', audience: 'https://other.example.org/x' }));
  t.is(wpt.status, 401);
  t.is(wpt.challenge, 'WPT');
  t.is(wpt.code, 'wpt.aud_mismatch');
  const sig = await problem(await e.client.fetch(`${e.base}/x`, {}, { mode: 'httpsig', audience: 'https://other.example.org/x' }));
  t.is(sig.status, 400);
  t.is(sig.code, 'httpsig.aud_mismatch');
  // A WPT for one path is not accepted on another path of the same origin.
  const headers = new Headers();
  e.client.signRequestWpt({ url: `${e.base}/one`, headers });
  t.is((await problem(await fetch(`${e.base}/two`, { headers }))).code, 'wpt.aud_mismatch');
});

test('sdk e2e - no credentials, or a WIT alone, get 401 with the WPT challenge', async (t) => {
  const e = await setup(t);
  const none = await problem(await fetch(`${e.base}/x`));
  t.is(none.status, 401);
  t.is(none.challenge, 'WPT');
  t.is(none.code, 'request.no_credentials');
  const bare = await problem(await fetch(`${e.base}/x`, { headers: { 'workload-identity-token': e.client.current().wit } }));
  t.is(bare.status, 401);
  t.is(bare.code, 'wit.no_proof');
});

test('sdk e2e - an unsigned response to a request that asked for signing is rejected by the client', async (t) => {
  const e = await setup(t);
  const { server, base } = await listen((_req, res) => res.end('plain'));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const err = (await t.throwsAsync(e.client.fetch(`${base}/x`, {}, { mode: 'httpsig', signResponse: true }))) as AuthnError;
  t.true(err instanceof AuthnError);
  t.is(err.code, 'httpsig.response_unsigned');
  t.regex(err.detail, /status 200/);
  // Without the ask, the same unsigned answer is acceptable (stripping cannot be detected).
  const ok = await e.client.fetch(`${base}/x`, {}, { mode: 'httpsig' });
  t.is(await ok.text(), 'plain');
});

test('sdk e2e - a replayed signed response is rejected (wimse-req-nonce)', async (t) => {
  const e = await setup(t);
  // Capture a genuine signed response...
  const headers = new Headers();
  const ctx = e.client.signRequestHttpSig({ url: `${e.base}/r`, headers }, { signResponse: true });
  t.true(ctx.signResponse);
  const genuine = await fetch(`${e.base}/r`, { headers });
  const genuineBody = Buffer.from(await genuine.arrayBuffer());
  const genuineHeaders = [...genuine.headers].filter(([k]) => !HOP.includes(k));
  // ...and play it back to a later request.
  const { server, base } = await listen((_req, res) => {
    for (const [k, v] of genuineHeaders) res.setHeader(k, v);
    res.end(genuineBody);
  });
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const replayed = (await t.throwsAsync(e.client.fetch(`${base}/r`, {}, { mode: 'httpsig', signResponse: true }))) as AuthnError;
  t.is(replayed.code, 'httpsig.req_nonce_mismatch');
});

const HOP = ['content-length', 'date', 'connection', 'keep-alive', 'transfer-encoding'];

test('sdk e2e - a signed response whose body was changed on the way is rejected', async (t) => {
  const e = await setup(t);
  // A proxy that forwards the signed request untouched and rewrites the answer's body.
  const { server, base } = await listen((req, res) => {
    const fwd = new Headers();
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) if (!HOP.includes(req.rawHeaders[i]!.toLowerCase()) && req.rawHeaders[i]!.toLowerCase() !== 'host') fwd.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
    fetch(`${e.base}${req.url}`, { headers: fwd }).then(async (up) => {
      for (const [k, v] of up.headers) if (!HOP.includes(k)) res.setHeader(k, v);
      res.statusCode = up.status;
      res.end((await up.text()).replace('httpsig', 'wpt'));
    });
  });
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  // The signature's audience is the real service, which the proxy forwards to.
  const err = (await t.throwsAsync(e.client.fetch(`${base}/r`, {}, { mode: 'httpsig', signResponse: true, audience: `${e.base}/r` }))) as AuthnError;
  t.is(err.code, 'httpsig.digest_mismatch');
});

test('sdk e2e - a server without its own WIT refuses to answer a request that asks for a signed response', async (t) => {
  const e = await setup(t, { serverSigns: false });
  const headers = new Headers();
  e.client.signRequestHttpSig({ url: `${e.base}/x`, headers }, { signResponse: true });
  const p = await problem(await fetch(`${e.base}/x`, { headers }));
  t.is(p.status, 400);
  t.is(p.code, 'httpsig.cannot_sign_response');
});

test('sdk e2e - a body over the cap gets 413 before authentication', async (t) => {
  const e = await setup(t, { maxBodyBytes: 1024 });
  const res = await e.client.fetch(`${e.base}/big`, { method: 'POST', body: 'x'.repeat(4096) }, { mode: 'httpsig' });
  const p = await problem(res);
  t.is(p.status, 413);
  t.is(p.code, 'request.body_too_large');
  t.deepEqual(e.denied, []);
});

test('sdk e2e - after renewal the new WIT and key authenticate; EdDSA callers too', async (t) => {
  const e = await setup(t);
  const first = e.client.current();
  await e.client.renewNow();
  t.not(e.client.current().key.publicJwk.x, first.key.publicJwk.x);
  const res = await e.client.fetch(`${e.base}/after`, {}, { mode: 'wpt' });
  t.is(((await res.json()) as { caller: string }).caller, CLIENT_ID);
  const ed = new WorkloadClient({ address: e.api.address, nodeToken: NODE_TOKEN, workloadId: CLIENT_ID, keyAlg: 'EdDSA', clock: e.clock, timers: new ManualTimers(e.clock), watchBundles: false });
  t.teardown(() => ed.close());
  await ed.start();
  for (const mode of ['wpt', 'httpsig'] as const) {
    const r = await ed.fetch(`${e.base}/ed`, { method: 'POST', body: 'hi' }, { mode });
    t.is(r.status, 200, mode);
  }
});
