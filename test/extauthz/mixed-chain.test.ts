/**
 * A mixed chain over real sockets (DESIGN.md: "Mixed chains are normal"): A -> B over mTLS
 * (identity from the WIC), B -> C at the application level (WIT+WPT), C -> D with an HTTP
 * message signature over a body (Content-Digest). Each callee sits behind an Envoy-like PEP
 * (test/helpers/envoy-pep.ts) that calls the node's real gRPC Check; each application records
 * what the PEP told it. Then replays, swapped tokens, wrong audiences and policy violations along
 * the chain, each denied with its status and code.
 */
import test from 'ava';
import { X509Certificate, type KeyObject } from 'node:crypto';
import { createWpt } from '../../src/authn/wpt.ts';
import {
  component,
  parseSignatureInputs,
  signMessage,
  signWimseRequest,
  signWimseResponse,
  verifyWimseResponseSignature,
} from '../../src/authn/httpsig/index.ts';
import { verifyWit } from '../../src/authn/wit.ts';
import { isAuthnError } from '../../src/authn/errors.ts';
import { systemClock } from '../../src/identity/clock.ts';
import { rootsPem } from '../../src/identity/trust-bundle.ts';
import { keyPair, type KeyPair } from '../authn/helpers.ts';
import { startEnvoyPep, type Pep } from '../helpers/envoy-pep.ts';
import { startAdversarialNode, type Ctx } from './fixtures.ts';
import { app, send, type Pairs, type Seen } from './http-helpers.ts';

const A = 'spiffe://example.org/ns/shop/sa/frontend';
const B = 'spiffe://example.org/ns/shop/sa/orders';
const C = 'spiffe://example.org/ns/shop/sa/inventory';
const D = 'spiffe://example.org/ns/shop/sa/ledger';
const AUD_B = 'https://orders.shop.example.org';
const AUD_C = 'https://inventory.shop.example.org';
const AUD_D = 'https://ledger.shop.example.org';

const POLICY = `version: 1
destinations:
  - workload: ${B}
    audiences: [${AUD_B}]
    rules:
      - name: frontend-over-mtls
        paths: [{prefix: /orders/}]
        methods: [GET]
        callers: [${A}]
        authn: [mtls]
  - workload: ${C}
    audiences: [${AUD_C}]
    rules:
      - name: orders-reads-stock
        paths: [{template: "/stock/{sku}"}]
        methods: [GET]
        callers: [${B}]
        authn: [wpt]
  - workload: ${D}
    audiences: [${AUD_D}]
    rules:
      - name: inventory-writes-entries
        paths: [{exact: /entries}]
        methods: [POST]
        callers: [${C}]
        authn: [httpsig]
`;

interface Workload {
  wit: string;
  key: KeyPair;
}

interface Chain {
  ctx: Ctx;
  pepB: Pep;
  pepC: Pep;
  pepD: Pep;
  seenB: Seen[];
  seenC: Seen[];
  seenD: Seen[];
  /** A's mTLS credentials (WIC, key) and the trust roots. */
  aTls: { cert: string; key: string; ca: string; expect: string };
  a: Workload;
  b: Workload;
  c: Workload;
  d: Workload;
  /** D's application port (behind pepD). */
  dPort: number;
  /** What B's app sent to C, and C's app to D (header pairs and body), last call. */
  lastBtoC?: { headers: Pairs };
  lastCtoD?: { headers: Pairs; body: Buffer };
}

const nowSec = () => Math.floor(Date.now() / 1000);

async function workload(ctx: Ctx, sub: string): Promise<Workload> {
  const key = keyPair('ES256');
  return { wit: (await ctx.node.ca.mintWit({ sub, cnf: key.publicJwk as never })).token, key };
}

function wptHeaders(w: Workload, aud: string): Pairs {
  const wpt = createWpt({ wit: w.wit, privateKey: w.key.privateKey as KeyObject, alg: w.key.alg, aud, nowSec: nowSec() });
  return [['Workload-Identity-Token', w.wit], ['Authorization', `WPT ${wpt}`]];
}

function signedHeaders(w: Workload, method: string, path: string, body: Buffer | undefined, aud: string, extra: Pairs = []): Pairs {
  const signed = signWimseRequest({
    method,
    path,
    query: '',
    headers: [['workload-identity-token', w.wit], ...extra],
    ...(body ? { body } : {}),
    key: { privateKey: w.key.privateKey, alg: w.key.alg },
    audience: aud,
    clock: systemClock,
  });
  const out: Pairs = [];
  for (const [k, vs] of signed.headers) for (const v of vs) out.push([k, v]);
  return out;
}

let chain: Chain;
const closers: Array<() => Promise<void> | void> = [];

test.before(async () => {
  const ctx = await startAdversarialNode({ policy: POLICY });
  closers.push(() => ctx.close());
  const ca = rootsPem(ctx.node.ca.bundle());
  const [a, b, c, d] = await Promise.all([workload(ctx, A), workload(ctx, B), workload(ctx, C), workload(ctx, D)]);
  const partial: Partial<Chain> = { ctx, seenB: [], seenC: [], seenD: [], a, b, c, d };

  // D: records the signed entry; signs its response when the request asks for it
  // (wimse-sign-response: ext_authz sees requests only, so the application signs, §4.6).
  const dApp = await app(partial.seenD!, async (s) => {
    const body = Buffer.from(JSON.stringify({ recorded: s.body.length }));
    const headers = new Map(Object.entries(s.headers).map(([k, v]) => [k, Array.isArray(v) ? v : [String(v)]]));
    const wimse = [...(parseSignatureInputs(headers)?.values() ?? [])].find((i) => i.params.get('tag')?.value === 'wimse-workload-to-workload');
    if (wimse?.params.get('wimse-sign-response')?.value !== true) return { status: 201, headers: {}, body: body.toString() };
    const q = s.url.indexOf('?');
    const signed = signWimseResponse({
      status: 201,
      headers: [['workload-identity-token', d.wit], ['content-type', 'application/json']],
      body,
      request: { method: s.method, path: q < 0 ? s.url : s.url.slice(0, q), query: q < 0 ? '' : s.url.slice(q), headers },
      requestNonce: String(wimse.params.get('nonce')!.value),
      key: { privateKey: d.key.privateKey, alg: d.key.alg },
      clock: systemClock,
    });
    return { status: 201, headers: Object.fromEntries([...signed.headers].map(([k, v]) => [k, v.join(', ')])), body: body.toString() };
  });
  const pepD = await startEnvoyPep({ authzAddress: ctx.node.grpcAddress, nodeToken: ctx.proxyToken, upstream: { host: '127.0.0.1', port: dApp.port }, contextExtensions: { destination_workload: D, audience: AUD_D } });

  // C: answers a stock read, after writing a ledger entry to D with an HTTP signature.
  const cApp = await app(partial.seenC!, async (s) => {
    const body = Buffer.from(JSON.stringify({ sku: s.url.split('/').pop(), reserved: 1 }));
    const headers = signedHeaders(c, 'POST', '/entries', body, AUD_D, [['content-type', 'application/json']]);
    partial.lastCtoD = { headers, body };
    const r = await send(`${pepD.url}/entries`, { method: 'POST', headers, body });
    return { status: r.status === 201 ? 200 : 502, headers: {}, body: JSON.stringify({ stock: 7, ledger: r.status }) };
  });
  const pepC = await startEnvoyPep({ authzAddress: ctx.node.grpcAddress, nodeToken: ctx.proxyToken, upstream: { host: '127.0.0.1', port: cApp.port }, contextExtensions: { destination_workload: C, audience: AUD_C } });

  // B: answers an order, after reading stock from C with WIT+WPT.
  const bApp = await app(partial.seenB!, async () => {
    const headers = wptHeaders(b, AUD_C);
    partial.lastBtoC = { headers };
    const r = await send(`${pepC.url}/stock/sku-42`, { headers });
    return { status: r.status, headers: {}, body: JSON.stringify({ order: 1, inventory: r.status === 200 ? JSON.parse(r.body) : r.status }) };
  });
  const bWic = await ctx.node.ca.issueWic({ id: B });
  const pepB = await startEnvoyPep({
    authzAddress: ctx.node.grpcAddress,
    nodeToken: ctx.proxyToken,
    upstream: { host: '127.0.0.1', port: bApp.port },
    contextExtensions: { destination_workload: B, audience: AUD_B },
    tls: { certPem: bWic.chainPem, keyPem: bWic.privateKeyPem!, caPem: ca },
  });
  const aWic = await ctx.node.ca.issueWic({ id: A });
  for (const s of [dApp.server, cApp.server, bApp.server]) closers.push(() => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); }));
  for (const p of [pepB, pepC, pepD]) closers.push(() => p.close());
  chain = Object.assign(partial, { dPort: dApp.port, pepB, pepC, pepD, aTls: { cert: aWic.certPem, key: aWic.privateKeyPem!, ca, expect: B } }) as Chain;
});

test.after.always(async () => {
  for (const c of closers.reverse()) await c();
});

test.serial('extauthz chain - A -mTLS-> B -WIT+WPT-> C -HTTP-sig-> D: each app sees its caller and how it authenticated', async (t) => {
  const [b0, c0, d0] = [chain.seenB.length, chain.seenC.length, chain.seenD.length];
  const res = await send(`${chain.pepB.url}/orders/1`, { tls: chain.aTls, headers: [['X-Wimse-Caller', 'spiffe://example.org/ns/shop/sa/admin'], ['X-Wimse-Role', 'admin']] });
  t.is(res.status, 200, res.body);
  t.deepEqual(JSON.parse(res.body), { order: 1, inventory: { stock: 7, ledger: 201 } });

  const atB = chain.seenB[b0]!;
  t.is(atB.headers['x-wimse-caller'], A, 'B sees A, from the certificate (not the header A sent)');
  t.is(atB.headers['x-wimse-auth'], 'mtls');
  t.is(atB.headers['x-wimse-role'], undefined);
  t.truthy(atB.headers['x-wimse-decision-id']);

  const atC = chain.seenC[c0]!;
  t.is(atC.headers['x-wimse-caller'], B);
  t.is(atC.headers['x-wimse-auth'], 'wpt');
  t.is(atC.headers['x-wimse-transport-peer'], undefined, 'plain HTTP: no transport peer');

  const atD = chain.seenD[d0]!;
  t.is(atD.headers['x-wimse-caller'], C);
  t.is(atD.headers['x-wimse-auth'], 'httpsig');
  t.is(atD.method, 'POST');
  t.deepEqual(JSON.parse(atD.body), { sku: 'sku-42', reserved: 1 });
  t.regex(String(atD.headers['content-digest']), /^sha-256=:/);

  // Each PEP's own Check said so too (dynamic metadata for access logs).
  const meta = (p: Pep) => p.responses.at(-1).dynamic_metadata.fields;
  t.is(meta(chain.pepB).caller.stringValue, A);
  t.is(meta(chain.pepC).via.stringValue, 'wpt');
  t.is(meta(chain.pepD).via.stringValue, 'httpsig');
});

test.serial('extauthz chain - replaying what B sent to C, or what C sent to D, is denied', async (t) => {
  const ok = await send(`${chain.pepB.url}/orders/2`, { tls: chain.aTls });
  t.is(ok.status, 200, ok.body);
  const replayC = await send(`${chain.pepC.url}/stock/sku-42`, { headers: chain.lastBtoC!.headers });
  t.is(replayC.status, 401);
  t.is(replayC.headers['www-authenticate'], 'WPT');
  t.is(replayC.headers['content-type'], 'application/problem+json');
  t.is(JSON.parse(replayC.body).code, 'wpt.replay');

  const replayD = await send(`${chain.pepD.url}/entries`, { method: 'POST', headers: chain.lastCtoD!.headers, body: chain.lastCtoD!.body });
  t.is(replayD.status, 400);
  t.is(replayD.headers['www-authenticate'], undefined);
  t.is(JSON.parse(replayD.body).code, 'httpsig.nonce_replay');
});

test('extauthz chain - swapped tokens: B\'s WIT with A\'s WPT is denied at C', async (t) => {
  const seen = chain.seenC.length;
  const aProof = wptHeaders(chain.a, AUD_C)[1]!;
  const res = await send(`${chain.pepC.url}/stock/sku-1`, { headers: [['Workload-Identity-Token', chain.b.wit], aProof] });
  t.is(res.status, 401);
  t.is(res.headers['www-authenticate'], 'WPT');
  t.is(JSON.parse(res.body).code, 'wpt.bad_signature');
  t.is(chain.seenC.length, seen, 'nothing reached C');
});

test('extauthz chain - wrong audiences: B\'s proof for B, C\'s signature for C', async (t) => {
  const seenC = chain.seenC.length;
  const seenD = chain.seenD.length;
  const wrongAud = await send(`${chain.pepC.url}/stock/sku-1`, { headers: wptHeaders(chain.b, AUD_B) });
  t.is(wrongAud.status, 401);
  t.is(JSON.parse(wrongAud.body).code, 'wpt.aud_mismatch');
  const body = Buffer.from('{"sku":"x"}');
  const wrongSigAud = await send(`${chain.pepD.url}/entries`, {
    method: 'POST',
    headers: signedHeaders(chain.c, 'POST', '/entries', body, AUD_C, [['content-type', 'application/json']]),
    body,
  });
  t.is(wrongSigAud.status, 400);
  t.is(JSON.parse(wrongSigAud.body).code, 'httpsig.aud_mismatch');
  t.is(chain.seenC.length, seenC);
  t.is(chain.seenD.length, seenD);
});

test('extauthz chain - policy violations along the chain are 403', async (t) => {
  const seenD = chain.seenD.length;
  // A skips B and calls C directly with good application-level credentials.
  const aAtC = await send(`${chain.pepC.url}/stock/sku-1`, { headers: wptHeaders(chain.a, AUD_C) });
  t.is(aAtC.status, 403);
  t.is(JSON.parse(aAtC.body).code, 'policy.caller_not_granted');
  // C calls D with a WPT instead of a signature: right caller, wrong method.
  const cWpt = await send(`${chain.pepD.url}/entries`, { method: 'POST', headers: wptHeaders(chain.c, AUD_D), body: Buffer.from('{}') });
  t.is(cWpt.status, 403);
  t.is(JSON.parse(cWpt.body).code, 'policy.authn_not_granted');
  // B signs a request to D: authenticated, not granted.
  const body = Buffer.from('{}');
  const bAtD = await send(`${chain.pepD.url}/entries`, { method: 'POST', headers: signedHeaders(chain.b, 'POST', '/entries', body, AUD_D), body });
  t.is(bAtD.status, 403);
  t.is(JSON.parse(bAtD.body).code, 'policy.caller_not_granted');
  // A over mTLS on a route B does not grant.
  const aAdmin = await send(`${chain.pepB.url}/admin`, { tls: chain.aTls });
  t.is(aAdmin.status, 403);
  t.is(JSON.parse(aAdmin.body).code, 'policy.route_not_granted');
  t.is(chain.seenD.length, seenD);
});

test('extauthz chain - the PEP refuses a tampered body under C\'s signature and an oversize body before any check', async (t) => {
  const seen = chain.seenD.length;
  const body = Buffer.from('{"sku":"x","reserved":1}');
  const headers = signedHeaders(chain.c, 'POST', '/entries', body, AUD_D, [['content-type', 'application/json']]);
  const tampered = await send(`${chain.pepD.url}/entries`, { method: 'POST', headers, body: Buffer.from('{"sku":"x","reserved":9}') });
  t.is(tampered.status, 400);
  t.is(JSON.parse(tampered.body).code, 'httpsig.digest_mismatch');
  // A front of its own, so that no other test's checks are counted.
  const pep = await startEnvoyPep({ authzAddress: chain.ctx.node.grpcAddress, nodeToken: chain.ctx.proxyToken, upstream: { host: '127.0.0.1', port: chain.dPort }, contextExtensions: { destination_workload: D, audience: AUD_D } });
  t.teardown(() => pep.close());
  const big = Buffer.alloc(2 * 1024 * 1024, 0x20);
  const tooBig = await send(`${pep.url}/entries`, { method: 'POST', headers: signedHeaders(chain.c, 'POST', '/entries', big, AUD_D), body: big });
  t.is(tooBig.status, 413);
  t.is(pep.responses.length, 0, 'no Check was made');
  t.is(chain.seenD.length, seen);
});

test('extauthz chain - B\'s listener refuses callers without a WIC or with one from another CA (TLS handshake)', async (t) => {
  const seen = chain.seenB.length;
  await t.throwsAsync(send(`${chain.pepB.url}/orders/1`, { tls: { ca: chain.aTls.ca, expect: B } }));
  // Same trust domain name, another node's CA: not in B's trust bundle.
  const other = await startAdversarialNode({ policy: POLICY });
  t.teardown(() => other.close());
  const foreign = await other.node.ca.issueWic({ id: A });
  t.is(new X509Certificate(foreign.certPem).subjectAltName, `URI:${A}`);
  await t.throwsAsync(send(`${chain.pepB.url}/orders/1`, { tls: { cert: foreign.certPem, key: foreign.privateKeyPem!, ca: chain.aTls.ca, expect: B } }));
  t.is(chain.seenB.length, seen, 'nothing reached B');
});

test.serial('extauthz chain - C asks D for a signed response: it verifies; stripped, lifted or unbound responses are rejected', async (t) => {
  const auth = chain.ctx.node.authenticator.context();
  /** C signs a POST to D asking for a signed response; returns what C needs to check the answer. */
  const call = async (query: string) => {
    const body = Buffer.from('{"sku":"sku-7","reserved":2}');
    const signed = signWimseRequest({
      method: 'POST',
      path: '/entries',
      query,
      headers: [['workload-identity-token', chain.c.wit], ['content-type', 'application/json']],
      body,
      key: { privateKey: chain.c.key.privateKey, alg: chain.c.key.alg },
      audience: AUD_D,
      signResponse: true,
      clock: systemClock,
    });
    const pairs: Pairs = [];
    for (const [k, vs] of signed.headers) for (const v of vs) pairs.push([k, v]);
    const res = await send(`${chain.pepD.url}/entries${query}`, { method: 'POST', headers: pairs, body });
    const headers = new Map(Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v : [String(v)]]));
    return {
      res,
      message: { status: res.status, headers, body: Buffer.from(res.body) },
      ctx: { request: { method: 'POST', path: '/entries', query, headers: signed.headers }, nonce: signed.nonce, signResponse: true },
    };
  };
  const serverKey = (m: { headers: Map<string, string[]> }) => {
    const wit = verifyWit(m.headers.get('workload-identity-token')![0]!, { bundles: auth.bundles, nowSec: nowSec(), settings: auth.settings, cnfKeys: auth.cnfKeys, status: 400 });
    t.is(wit.sub.uri, D, 'the response is signed by D');
    return { jwk: wit.cnf.jwk, alg: wit.cnf.alg };
  };
  const code = (f: () => unknown): string | undefined => {
    try {
      f();
      return undefined;
    } catch (e) {
      return isAuthnError(e) ? e.code : String(e);
    }
  };

  const one = await call('');
  t.is(one.res.status, 201, one.res.body);
  const key = serverKey(one.message);
  const ok = verifyWimseResponseSignature(one.message, key, one.ctx, { nowSec: nowSec() });
  t.truthy(ok);

  // Stripped of its signature after wimse-sign-response.
  const stripped = { ...one.message, headers: new Map([...one.message.headers].filter(([k]) => k !== 'signature' && k !== 'signature-input')) };
  t.is(code(() => verifyWimseResponseSignature(stripped, key, one.ctx, { nowSec: nowSec() })), 'httpsig.response_unsigned');

  // Lifted onto another request: that request's nonce, or its method/path/query.
  const two = await call('?batch=2');
  t.is(two.res.status, 201);
  t.is(code(() => verifyWimseResponseSignature(one.message, key, two.ctx, { nowSec: nowSec() })), 'httpsig.req_nonce_mismatch');
  t.is(code(() => verifyWimseResponseSignature(one.message, key, { ...two.ctx, nonce: one.ctx.nonce }, { nowSec: nowSec() })), 'httpsig.bad_signature');

  // A response signature without wimse-req-nonce (signed by D's key, so only that is wrong).
  const params = new Map<string, any>([
    ['created', { type: 'integer', value: nowSec() }],
    ['expires', { type: 'integer', value: nowSec() + 60 }],
    ['nonce', { type: 'string', value: 'resp-no-req-nonce' }],
    ['tag', { type: 'string', value: 'wimse-workload-to-workload' }],
  ]);
  const base = new Map([...one.message.headers].filter(([k]) => k !== 'signature' && k !== 'signature-input'));
  const sig = signMessage(
    { message: { status: 201, headers: base, body: one.message.body }, request: one.ctx.request },
    {
      label: 'wimse',
      components: [component('@status'), component('workload-identity-token'), component('content-type'), component('content-digest'), component('@method', { req: true }), component('@path', { req: true }), component('@query', { req: true })],
      params,
      key: { key: chain.d.key.privateKey, alg: 'ecdsa-p256-sha256' },
    },
  );
  const noReqNonce = { ...one.message, headers: new Map([...base, ['signature-input', [sig.signatureInput]], ['signature', [sig.signature]]]) };
  t.is(code(() => verifyWimseResponseSignature(noReqNonce, key, one.ctx, { nowSec: nowSec() })), 'httpsig.param_missing');
});
