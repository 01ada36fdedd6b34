/**
 * A caller may cover `@scheme`, `@authority` or `@target-uri` in its HTTP message signature (RFC
 * 9421 lets a signer cover more than http-signature-07 asks). The middleware supplies the scheme
 * (from its own TLS, or the `scheme` option behind a TLS-terminating proxy) and the core takes the
 * authority from the request's Host line, so such signatures verify over real HTTP.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { wimseMiddleware, type WimseIncomingMessage } from '../../src/sdk/index.ts';
import { AUD, NOW, bundleOf, bundleSet, env, mintWit, signCovering } from '../authn/helpers.ts';

async function serve(t: { teardown(fn: () => unknown): void }, scheme?: 'http' | 'https') {
  const e = env();
  const mw = wimseMiddleware({ bundles: bundleSet(bundleOf('example.org', [e.iss.witKey])), audiences: [AUD], clock: e.clock, ...(scheme ? { scheme } : {}) });
  const server = createServer((req: IncomingMessage, res: ServerResponse) =>
    mw(req, res, () => res.end(JSON.stringify({ caller: (req as WimseIncomingMessage).wimse!.caller }))),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const authority = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const wit = await mintWit(e.iss, { workload: e.workload });
  /** GET /api?x=1 signed as `signedScheme://authority`, covering `extra`. */
  const get = async (extra: string[], signedScheme: string) => {
    const headers = signCovering({
      scheme: signedScheme,
      authority,
      path: '/api',
      query: '?x=1',
      headers: [['Workload-Identity-Token', wit]],
      key: e.workload,
      audience: AUD,
      nowSec: NOW,
      extra,
    });
    const res = await fetch(`http://${authority}/api?x=1`, { headers });
    return { status: res.status, body: (await res.json()) as { caller?: string; code?: string } };
  };
  return { get };
}

test('sdk middleware scheme - on a plain HTTP server a signature covering @scheme, @authority and @target-uri verifies', async (t) => {
  const { get } = await serve(t);
  for (const extra of [['@scheme'], ['@authority'], ['@target-uri'], ['@scheme', '@authority', '@target-uri']]) {
    const r = await get(extra, 'http');
    t.is(r.status, 200, `${extra.join(' ')}: ${JSON.stringify(r.body)}`);
    t.is(r.body.caller, 'spiffe://example.org/ns/default/sa/client');
  }
});

test('sdk middleware scheme - a client that signed https reaching a plain HTTP server directly is refused', async (t) => {
  const { get } = await serve(t);
  for (const extra of [['@scheme'], ['@target-uri']]) {
    const r = await get(extra, 'https');
    t.is(r.status, 400, extra.join(' '));
    t.is(r.body.code, 'httpsig.bad_signature');
  }
});

test('sdk middleware scheme - behind a TLS-terminating proxy, scheme: https verifies what the client signed', async (t) => {
  const { get } = await serve(t, 'https');
  t.is((await get(['@target-uri'], 'https')).status, 200);
  t.is((await get(['@target-uri'], 'http')).status, 400, 'the configured scheme is used, not the hop the server saw');
});

test('sdk middleware scheme - only http or https is accepted as the option', (t) => {
  const e = env();
  t.throws(() => wimseMiddleware({ bundles: bundleSet(bundleOf('example.org', [e.iss.witKey])), audiences: [AUD], scheme: 'ftp' as 'http' }), { message: '"scheme" must be "http" or "https"' });
});

test('sdk middleware scheme - a server that terminates TLS itself takes https by default', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-mw-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-days', '1', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem')], { stdio: 'ignore' });
  const [cert, key] = [readFileSync(join(dir, 'c.pem')), readFileSync(join(dir, 'k.pem'))];
  const e = env();
  const mw = wimseMiddleware({ bundles: bundleSet(bundleOf('example.org', [e.iss.witKey])), audiences: [AUD], clock: e.clock });
  const server = createHttpsServer({ cert, key }, (req, res) => mw(req, res, () => res.end('ok')));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  const wit = await mintWit(e.iss, { workload: e.workload });
  const status = (signedScheme: string) => {
    const headers = signCovering({ scheme: signedScheme, authority: `localhost:${port}`, path: '/api', headers: [['Workload-Identity-Token', wit]], key: e.workload, audience: AUD, nowSec: NOW, extra: ['@target-uri'] });
    return new Promise<number>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', servername: 'localhost', port, path: '/api', ca: cert, agent: false, headers: [...headers, ['Host', `localhost:${port}`]].flat() }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.end();
    });
  };
  t.is(await status('https'), 200);
  t.is(await status('http'), 400);
});
