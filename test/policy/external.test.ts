import test from 'ava';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { authorize, createHttpPdp, type DecisionReason } from '../../src/policy/index.ts';
import { BILLING, compileYaml, EXAMPLE_YAML, req } from './helpers.ts';

const policy = compileYaml(EXAMPLE_YAML);

type Handler = (body: Record<string, unknown>, res: ServerResponse, req: IncomingMessage) => void;

/** A real PDP over loopback; the handler decides per test. */
async function pdpServer(handler: Handler): Promise<{ url: string; seen: Record<string, unknown>[]; close: () => Promise<void> }> {
  const seen: Record<string, unknown>[] = [];
  const server: Server = createServer((rq, res) => {
    const chunks: Buffer[] = [];
    rq.on('data', (c: Buffer) => chunks.push(c));
    rq.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      seen.push({ ...body, contentType: rq.headers['content-type'], httpMethod: rq.method });
      handler(body, res, rq);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/decide`,
    seen,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
};

// The PDP's timeout where the timeout is the point: long enough that a busy machine still
// delivers the request to the server before it fires, far shorter than the slow body's delay.
const TIMEOUT_MS = 2_000;
const SLOW_BODY_MS = 60_000;
// Everywhere else a safety net only: a slow answer on a busy machine must not become a timeout.
const GENEROUS_MS = 30_000;

const cases: Array<[string, Handler, boolean, DecisionReason, RegExp?]> = [
  ['allow', (_b, res) => json(res, 200, { allow: true }), true, 'pdp.allow'],
  ['deny, with its reason as detail', (_b, res) => json(res, 200, { allow: false, reason: 'outside business hours' }), false, 'pdp.deny', /^outside business hours$/],
  ['a truthy non-boolean allow is malformed', (_b, res) => json(res, 200, { allow: 'true' }), false, 'pdp.malformed'],
  ['a 500 is an error', (_b, res) => json(res, 500, { allow: true }), false, 'pdp.error', /status 500/],
  ['a redirect is an error', (_b, res) => { res.writeHead(302, { location: '/x' }); res.end(); }, false, 'pdp.error', /status 302/],
  ['a garbage body is malformed', (_b, res) => json(res, 200, 'allow: yes <html>'), false, 'pdp.malformed', /not JSON/],
  ['a JSON array is malformed', (_b, res) => json(res, 200, '[true]'), false, 'pdp.malformed'],
  ['an oversize body is malformed', (_b, res) => json(res, 200, JSON.stringify({ allow: true, pad: 'x'.repeat(100_000) })), false, 'pdp.malformed', /larger than/],
  ['an oversize chunked body is malformed', (_b, res) => { res.writeHead(200); for (let i = 0; i < 40; i++) res.write('x'.repeat(4096)); res.end(); }, false, 'pdp.malformed', /larger than/],
  ['no answer is a timeout', () => { /* never answers */ }, false, 'pdp.timeout'],
  ['a slow body is a timeout', (_b, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.write('{"allow":'); setTimeout(() => res.end('true}'), SLOW_BODY_MS).unref(); }, false, 'pdp.timeout'],
  ['a dropped connection is an error', (_b, res, rq) => { res.writeHead(200); res.write('{"al'); rq.socket.destroy(); }, false, 'pdp.error'],
];

for (const [title, handler, allow, reason, detail] of cases) {
  test(`external pdp - ${title}`, async (t) => {
    const srv = await pdpServer(handler);
    // Generous except where the timeout is the point, so a loaded machine does not flake.
    const timeoutMs = reason === 'pdp.timeout' ? TIMEOUT_MS : GENEROUS_MS;
    const pdp = createHttpPdp({ url: srv.url, timeoutMs });
    try {
      const started = Date.now();
      const d = await authorize(req({ path: '/invoices/1' }), policy, { mode: 'both', external: pdp, transportPeer: 'wimse://example.org/mesh/gw' });
      if (reason === 'pdp.timeout') {
        // The timeout bounds the wait: not before it (timers never fire early), and long before
        // the server would have finished (it never answers, or its body takes a minute).
        const waited = Date.now() - started;
        t.true(waited >= TIMEOUT_MS - 1 && waited < SLOW_BODY_MS / 2, `waited ${waited} ms`);
      }
      t.is(d.allow, allow, JSON.stringify(d));
      t.is(d.reason, reason);
      if (detail) t.regex(d.detail ?? '', detail);
      t.is(d.rule, 'read-invoices');
      t.is(srv.seen.length, 1);
      t.like(srv.seen[0], {
        caller: BILLING,
        via: 'mtls',
        destination: 'wimse://example.org/svc/payments',
        method: 'GET',
        path: '/invoices/1',
        transportPeer: 'wimse://example.org/mesh/gw',
        decisionId: d.decisionId,
        contentType: 'application/json',
        httpMethod: 'POST',
      });
    } finally {
      pdp.close();
      await srv.close();
    }
  });
}

test('external pdp - a refused connection is an error', async (t) => {
  const srv = await pdpServer(() => undefined);
  const url = srv.url;
  await srv.close();
  const pdp = createHttpPdp({ url, timeoutMs: GENEROUS_MS });
  const d = await authorize(req(), policy, { mode: 'external', external: pdp });
  t.false(d.allow);
  t.is(d.reason, 'pdp.error');
  t.regex(d.detail ?? '', /ECONNREFUSED/);
  pdp.close();
});

test('external pdp - in both mode it is only asked when route policy allows', async (t) => {
  const srv = await pdpServer((_b, res) => json(res, 200, { allow: true }));
  const pdp = createHttpPdp({ url: srv.url, timeoutMs: GENEROUS_MS });
  try {
    const d = await authorize(req({ path: '/admin' }), policy, { mode: 'both', external: pdp });
    t.false(d.allow);
    t.is(d.reason, 'policy.route_not_granted');
    t.is(srv.seen.length, 0);
    // external mode: route policy is not consulted, but input checks still apply.
    const e = await authorize(req({ path: '/admin' }), policy, { mode: 'external', external: pdp });
    t.true(e.allow);
    t.is(e.reason, 'pdp.allow');
    t.is(e.rule, undefined);
    const bad = await authorize(req({ path: '/admin/%2e%2e/x' }), policy, { mode: 'external', external: pdp });
    t.is(bad.reason, 'request.path_not_canonical');
    t.is(srv.seen.length, 1);
    // local mode never calls it.
    t.true((await authorize(req(), policy, { external: pdp })).allow);
    t.is(srv.seen.length, 1);
  } finally {
    pdp.close();
    await srv.close();
  }
});

test('external pdp - a throwing or lying port still fails closed', async (t) => {
  const d1 = await authorize(req(), policy, { mode: 'both', external: { check: () => Promise.reject(new Error('boom')) } });
  t.like(d1, { allow: false, reason: 'pdp.error' });
  const d2 = await authorize(req(), policy, { mode: 'both', external: { check: async () => ({ allow: true, reason: 'pdp.timeout' }) } });
  t.false(d2.allow);
});

test('external pdp - misuse is a TypeError at construction', async (t) => {
  t.throws(() => createHttpPdp({ url: 'not a url' }), { instanceOf: TypeError });
  t.throws(() => createHttpPdp({ url: 'ftp://x/' }), { instanceOf: TypeError });
  t.throws(() => createHttpPdp({ url: 'http://x/', timeoutMs: 0 }), { instanceOf: TypeError });
  // a mode that needs an external PDP without one
  await t.throwsAsync(() => authorize(req(), policy, { mode: 'both' }), { instanceOf: TypeError });
});
