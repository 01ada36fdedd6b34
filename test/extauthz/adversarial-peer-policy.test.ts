/**
 * The adversarial cases, continued (see adversarial.test.ts for WIT, WPT and HTTP signatures):
 * identifiers and policy, mTLS peers, what reaches the application, fail-closed behaviour and
 * hostile CheckRequests, end to end through a real node's gRPC Check.
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { KU, leaf, rootCa, P384 } from '../authn/pki.ts';
import { keyPair } from '../authn/helpers.ts';
import { applyOkResponse, bearerInterceptor, principalOf } from '../helpers/envoy-pep.ts';
import {
  EXT,
  ORDERS,
  PAYER,
  WEB,
  envoyRequest,
  expectAllowed,
  expectDenied,
  headerMap,
  nodeWit,
  partnerWit,
  sigCall,
  startAdversarialNode,
  wptCall,
  wptFor,
  type Ctx,
} from './fixtures.ts';

let ctx: Ctx;
test.before(async () => {
  ctx = await startAdversarialNode();
});
test.after.always(async () => {
  await ctx?.close();
});


// ---- identifiers and policy (identifier-03) ----------------------------------------------

test('extauthz adversarial - path canonicalization: %70ay, ../, %2e%2e, prefix /orders vs /ordersX', async (t) => {
  const wit = await nodeWit(ctx.node, PAYER);
  const sig = (path: string) => sigCall(wit, { method: 'POST', path, body: Buffer.from('{}'), headers: [['content-type', 'application/json']] });
  expectAllowed(t, await ctx.check(sig('/pay')), PAYER, 'httpsig');
  expectDenied(t, await ctx.check(sig('/%70ay')), 403, 'policy.route_not_granted');
  const web = await nodeWit(ctx.node, WEB);
  for (const path of ['/orders/../admin/keys', '/orders/%2e%2e/admin/keys', '/orders/%2E%2E/admin/keys', '/orders/..;/admin', '/orders//x'])
    expectDenied(t, await ctx.check(wptCall(web.token, wptFor(web), { path })), 403, 'request.path_not_canonical');
  expectDenied(t, await ctx.check(wptCall(web.token, wptFor(web), { path: '/ordersX/1' })), 403, 'policy.route_not_granted');
});

test('extauthz adversarial - caller prefix …/pay/ does not grant …/payroll-attacker; another scheme or trust domain is another caller', async (t) => {
  const body = Buffer.from('{}');
  const post = (w: { token: string; workload: ReturnType<typeof keyPair> }) =>
    sigCall(w, { method: 'POST', path: '/pay', body, headers: [['content-type', 'application/json']] });
  const attacker = await nodeWit(ctx.node, 'spiffe://example.org/ns/payroll-attacker/sa/checkout');
  expectDenied(t, await ctx.check(post(attacker)), 403, 'policy.caller_not_granted');
  const wimseScheme = await nodeWit(ctx.node, 'wimse://example.org/ns/pay/sa/checkout');
  expectDenied(t, await ctx.check(post(wimseScheme)), 403, 'policy.caller_not_granted');
  const otherDomain = partnerWit(ctx.partner, { sub: 'spiffe://partner.example/ns/pay/sa/checkout' });
  expectDenied(t, await ctx.check(post(otherDomain)), 403, 'policy.caller_not_granted');
  // Granted only over mTLS: an application-level caller is refused on that route.
  const web = await nodeWit(ctx.node, WEB);
  expectDenied(t, await ctx.check(wptCall(web.token, wptFor(web), { path: '/admin/keys' })), 403, 'policy.authn_not_granted');
});

test('extauthz adversarial - the destination comes from context_extensions, never from Host / :authority', async (t) => {
  const web = await nodeWit(ctx.node, WEB);
  const req = wptCall(web.token, wptFor(web), { headers: [['X-Forwarded-Host', 'payments.shop.example.org']] }) as any;
  req.attributes.request.http.host = 'payments.shop.example.org';
  req.attributes.request.http.headers[':authority'] = 'payments.shop.example.org';
  const res = await ctx.check(req);
  expectAllowed(t, res, WEB, 'wpt');
  // A route that names another destination is decided for that destination (not granted here).
  const other = wptCall(web.token, wptFor(web), { contextExtensions: { ...EXT, destination_workload: 'spiffe://example.org/ns/shop/sa/payments' } });
  expectDenied(t, await ctx.check(other), 403, 'policy.no_destination');
});

test('extauthz adversarial - an empty policy, or one that tries a root grant, denies everything', async (t) => {
  for (const [policy, code] of [
    ['version: 1\ndestinations: []\n', 'policy.empty'],
    [`version: 1\ndestinations:\n  - workload: ${ORDERS}\n    rules:\n      - name: all\n        paths: [{prefix: /}]\n        callers: [{prefix: "spiffe://example.org/"}]\n        authn: [any]\n`, 'policy.invalid'],
    ['', 'policy.invalid'],
  ] as const) {
    const own = await startAdversarialNode({ policy });
    t.teardown(() => own.close());
    const web = await nodeWit(own.node, WEB);
    expectDenied(t, await own.check(wptCall(web.token, wptFor(web))), 403, code);
  }
});

// ---- mTLS (mutual-tls-02) -------------------------------------------------------------------

/** What Envoy puts in `source` for this peer chain. */
function mtlsCall(pem: string, path = '/admin/keys', principal?: string): Record<string, unknown> {
  let p = principal;
  if (p === undefined) {
    try {
      p = principalOf(new X509Certificate(pem));
    } catch {
      p = '';
    }
  }
  return envoyRequest({ path, source: { address: '10.1.2.3', port: 41000, principal: p, certificatePem: pem } });
}

const PARTNER_MTLS = 'spiffe://partner.example/ns/ext/sa/client';
const MTLS_CASES: Array<[string, (c: Ctx) => Promise<string>, string]> = [
  ['from a CA no bundle holds', async () => leaf(await rootCa('rogue', Date.now()), Date.now(), { uris: [WEB] }), 'mtls.untrusted'],
  ['expired', async (c) => leaf(c.partner.root, Date.now(), { uris: [PARTNER_MTLS], notBefore: Date.now() - 7_200_000, notAfter: Date.now() - 3_600_000 }), 'mtls.expired'],
  ['not yet valid', async (c) => leaf(c.partner.root, Date.now(), { uris: [PARTNER_MTLS], notBefore: Date.now() + 3_600_000, notAfter: Date.now() + 7_200_000 }), 'mtls.not_yet_valid'],
  ['without a URI SAN', async (c) => leaf(c.partner.root, Date.now(), { uris: [] }), 'mtls.no_uri_san'],
  ['with two URI SANs', async (c) => leaf(c.partner.root, Date.now(), { uris: [PARTNER_MTLS, 'spiffe://partner.example/ns/ext/sa/admin'] }), 'mtls.multiple_uri_sans'],
  ['whose leaf is a CA', async (c) => leaf(c.partner.root, Date.now(), { uris: [PARTNER_MTLS], ca: true, keyUsage: KU.digitalSignature | KU.keyCertSign }), 'mtls.leaf_is_ca'],
  ['signed by a CA of the other algorithm under the same name', async () => leaf(await rootCa('partner root', Date.now(), P384), Date.now(), { uris: [PARTNER_MTLS] }), 'mtls.untrusted'],
  ["from trust domain A's CA for an identifier of trust domain B", async (c) => leaf(c.partner.root, Date.now(), { uris: [WEB] }), 'mtls.wrong_trust_domain'],
  ['that is not a certificate', async () => '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n', 'mtls.malformed'],
];

for (const [name, make, code] of MTLS_CASES) {
  test(`extauthz adversarial - mTLS peer certificate ${name}: 401, ${code}`, async (t) => {
    expectDenied(t, await ctx.check(mtlsCall(await make(ctx))), 401, code);
  });
}

test('extauthz adversarial - mTLS principal that disagrees with the certificate, or in an unknown trust domain', async (t) => {
  const wic = await ctx.node.ca.issueWic({ id: WEB });
  expectDenied(t, await ctx.check(mtlsCall(wic.certPem, '/admin/keys', 'spiffe://example.org/ns/shop/sa/admin')), 401, 'mtls.principal_mismatch');
  const onlyPrincipal = envoyRequest({ path: '/admin/keys', source: { address: '10.1.2.3', port: 1, principal: 'spiffe://elsewhere.example/ns/a/sa/b' } });
  expectDenied(t, await ctx.check(onlyPrincipal), 401, 'mtls.unknown_trust_domain');
});

test('extauthz adversarial - a failing mTLS peer fails the request even with a good WIT+WPT; a good one is only the transport peer', async (t) => {
  const web = await nodeWit(ctx.node, WEB);
  const bad = await leaf(await rootCa('rogue', Date.now()), Date.now(), { uris: [WEB] });
  const req = wptCall(web.token, wptFor(web), { source: { address: '10.1.2.3', port: 1, principal: WEB, certificatePem: bad } });
  expectDenied(t, await ctx.check(req), 401, 'mtls.untrusted');
  const partnerCert = await leaf(ctx.partner.root, Date.now(), { uris: [PARTNER_MTLS] });
  const layered = await ctx.check(wptCall(web.token, wptFor(web), { source: { address: '10.1.2.3', port: 1, principal: PARTNER_MTLS, certificatePem: partnerCert } }));
  expectAllowed(t, layered, WEB, 'wpt');
  t.is(headerMap(layered.ok_response.headers)['x-wimse-transport-peer'], PARTNER_MTLS);
});

// ---- what reaches the application; failures; hostile messages -------------------------------

test('extauthz adversarial - client-sent x-wimse-* headers never reach the app as sent', async (t) => {
  const web = await nodeWit(ctx.node, WEB);
  const spoofed: Array<[string, string]> = [
    ['X-Wimse-Caller', PAYER],
    ['x-wimse-auth', 'mtls'],
    ['X-Wimse-Transport-Peer', PAYER],
    ['x-wimse-decision-id', 'forged'],
    ['X-Wimse-Role', 'admin'],
  ];
  const req = wptCall(web.token, wptFor(web), { headers: spoofed }) as any;
  const res = await ctx.check(req);
  expectAllowed(t, res, WEB, 'wpt');
  const sent = Object.entries(req.attributes.request.http.headers as Record<string, string>).filter(([k]) => !k.startsWith(':'));
  const upstream = applyOkResponse(sent, res.ok_response);
  t.deepEqual(upstream.get('x-wimse-caller'), [WEB]);
  t.deepEqual(upstream.get('x-wimse-auth'), ['wpt']);
  t.is(upstream.get('x-wimse-transport-peer'), undefined);
  t.is(upstream.get('x-wimse-role'), undefined);
  t.not(upstream.get('x-wimse-decision-id')?.[0], 'forged');
  for (const [k, v] of spoofed) t.notDeepEqual(upstream.get(k.toLowerCase()), [v], k);
});

test('extauthz adversarial - an external PDP that hangs or is down fails closed with a denial', async (t) => {
  const { createServer } = await import('node:http');
  const hanging = createServer(() => {
    /* never answers */
  });
  await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    hanging.closeAllConnections();
    hanging.close();
  });
  const port = (hanging.address() as { port: number }).port;
  const own = await startAdversarialNode({ yaml: `  external:\n    mode: both\n    url: http://127.0.0.1:${port}/decide\n    timeout: 150ms\n` });
  t.teardown(() => own.close());
  const web = await nodeWit(own.node, WEB);
  const started = process.hrtime.bigint();
  // The PDP's timeout, not a hang: a node waiting for the PDP would not answer at all (the
  // Check's deadline would end the call instead), and the denial names the timeout.
  expectDenied(t, await own.check(wptCall(web.token, wptFor(web))), 403, 'pdp.timeout');
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.true(ms >= 150, `denied after the PDP's 150 ms timeout (${ms.toFixed(0)} ms)`);

  // A refused connection, with the longest timeout there is: a busy machine must not let the
  // timer win over the refusal.
  const down = await startAdversarialNode({ yaml: `  external:\n    mode: both\n    url: http://127.0.0.1:1/decide\n    timeout: 10s\n` });
  t.teardown(() => down.close());
  const w2 = await nodeWit(down.node, WEB);
  expectDenied(t, await down.check(wptCall(w2.token, wptFor(w2))), 403, 'pdp.error');
});

test('extauthz adversarial - encode_raw_headers (header_map): repeated lines are seen as such', async (t) => {
  const web = await nodeWit(ctx.node, WEB);
  const raw = (pairs: Array<[string, string]>) => {
    const r = envoyRequest({}) as any;
    const http = r.attributes.request.http;
    const lines: Array<[string, string]> = [...Object.entries(http.headers as Record<string, string>), ...pairs];
    delete http.headers;
    http.header_map = { headers: lines.map(([key, v]) => ({ key, raw_value: Buffer.from(v, 'latin1') })) };
    return r;
  };
  expectAllowed(t, await ctx.check(raw([['workload-identity-token', web.token], ['authorization', `WPT ${wptFor(web)}`]])), WEB, 'wpt');
  const twice = raw([['workload-identity-token', web.token], ['authorization', `WPT ${wptFor(web)}`], ['authorization', `WPT ${wptFor(web)}`]]);
  expectDenied(t, await ctx.check(twice), 401, 'wpt.duplicate_authorization', 'WPT');
  const twoWits = raw([['workload-identity-token', web.token], ['workload-identity-token', web.token], ['authorization', `WPT ${wptFor(web)}`]]);
  expectDenied(t, await ctx.check(twoWits), 401, 'wit.duplicate', 'WPT');
});

test('extauthz adversarial - a partial body (x-envoy-auth-partial-body: true) cannot satisfy a Content-Digest', async (t) => {
  const wit = partnerWit(ctx.partner);
  const body = Buffer.from('{"amount":1}');
  const req = sigCall(wit, { method: 'POST', path: '/orders/1', body, headers: [['content-type', 'application/json']] }) as any;
  req.attributes.request.http.headers['x-envoy-auth-partial-body'] = 'true';
  req.attributes.request.http.raw_body = body.subarray(0, 4);
  expectDenied(t, await ctx.check(req), 400, 'httpsig.body_unavailable');
});

test('extauthz adversarial - malformed or absurd CheckRequests are denied and the node keeps answering', async (t) => {
  const web = await nodeWit(ctx.node, WEB);
  const good = () => wptCall(web.token, wptFor(web));
  // No attributes at all: no destination to decide for.
  expectDenied(t, await ctx.check({}), 503, 'config.no_destination');
  // No HTTP attributes (e.g. the network filter's CheckRequest).
  expectDenied(t, await ctx.check({ attributes: { context_extensions: EXT, source: { principal: WEB } } }), 400, 'request.malformed');
  const mutate = (f: (http: any) => void) => {
    const r = good() as any;
    f(r.attributes.request.http);
    return r;
  };
  expectDenied(t, await ctx.check(mutate((h) => (h.method = 'get'))), 400, 'request.malformed');
  expectDenied(t, await ctx.check(mutate((h) => (h.method = 'G'.repeat(1000)))), 400, 'request.malformed');
  expectDenied(t, await ctx.check(mutate((h) => (h.path = ''))), 400, 'request.malformed');
  expectDenied(t, await ctx.check(mutate((h) => (h.path = '/' + 'a'.repeat(20_000)))), 400, 'request.malformed');
  expectDenied(t, await ctx.check(mutate((h) => { for (let i = 0; i < 5000; i++) h.headers[`x-h-${i}`] = 'v'; })), 400, 'request.malformed');
  expectDenied(t, await ctx.check(mutate((h) => (h.headers['x-big'] = 'v'.repeat(200_000)))), 400, 'request.malformed');
  expectDenied(t, await ctx.check(mutate((h) => (h.headers = {}))), 401, 'request.no_credentials', 'WPT');
  const badCert = envoyRequest({ source: { address: '1.2.3.4', port: 1, principal: WEB } }) as any;
  badCert.attributes.source.certificate = '%E0%A4%A';
  expectDenied(t, await ctx.check(badCert), 400, 'request.malformed');
  // Over the gRPC message limit: refused by the transport (Envoy's status_on_error applies), never OK.
  const huge = mutate((h) => (h.raw_body = Buffer.alloc(5 * 1024 * 1024, 0x61)));
  const err = await t.throwsAsync(ctx.check(huge));
  t.is((err as any).code, 8, 'RESOURCE_EXHAUSTED');
  // Bytes that are not a CheckRequest at all.
  const grpc = await import('@grpc/grpc-js');
  const raw = new grpc.Client(ctx.node.grpcAddress, grpc.credentials.createInsecure(), { interceptors: [bearerInterceptor(ctx.proxyToken)] });
  t.teardown(() => raw.close());
  const garbage = await new Promise<any>((resolve) =>
    raw.makeUnaryRequest(
      '/envoy.service.auth.v3.Authorization/Check',
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]),
      (e, v) => resolve(e ?? v),
    ),
  );
  t.true(garbage instanceof Error, 'an undecodable message is an error, never a decision');
  // Still serving.
  expectAllowed(t, await ctx.check(good()), WEB, 'wpt');
});
