/**
 * Every adversarial case, end to end: a realistic Envoy CheckRequest
 * (test/helpers/envoy-pep.ts builds it as check_request_utils.cc does) over real gRPC to a real
 * node, which must deny with the status the drafts call for (400 / 401 + `WWW-Authenticate: WPT`
 * / 403), an RFC 9457 problem naming the code, and never an ok_response.
 *
 * Credentials come from the node's own Identity Server (mintWit, issueWic) or from a federated
 * trust domain whose keys the test holds, so each defect is presented under a *trusted* key and
 * the denial is for that defect, not for an unknown signer. Identifiers and policy, mTLS peers,
 * what reaches the application, fail-closed behaviour and hostile messages continue in
 * adversarial-peer-policy.test.ts.
 */
import test from 'ava';
import { keyPair, signRaw } from '../authn/helpers.ts';
import { tokenHash } from '../../src/authn/token-hash.ts';
import { component } from '../../src/authn/httpsig/components.ts';
import { signMessage } from '../../src/authn/httpsig/engine.ts';
import type { Parameters } from '../../src/authn/httpsig/sf-types.ts';
import { contentDigestValue } from '../../src/authn/content-digest.ts';
import { ManualClock } from '../../src/identity/clock.ts';
import {
  AUD,
  PARTNER,
  PAYER,
  WEB,
  envoyRequest,
  expectAllowed,
  expectDenied,
  nodeWit,
  nowSec,
  partnerWit,
  sigCall,
  startAdversarialNode,
  wptCall,
  wptFor,
  type Ctx,
  type WitSpec,
} from './fixtures.ts';

let ctx: Ctx;
test.before(async () => {
  ctx = await startAdversarialNode();
});
test.after.always(async () => {
  await ctx?.close();
});

// ---- controls: the same paths allow good credentials, so every denial below is the defect's --

test('extauthz adversarial - controls: good WIT+WPT (own and federated), HTTP signature and mTLS are allowed', async (t) => {
  const own = await nodeWit(ctx.node, WEB);
  expectAllowed(t, await ctx.check(wptCall(own.token, wptFor(own))), WEB, 'wpt');
  const partner = partnerWit(ctx.partner);
  expectAllowed(t, await ctx.check(wptCall(partner.token, wptFor(partner))), PARTNER, 'wpt');
  expectAllowed(t, await ctx.check(sigCall(partner)), PARTNER, 'httpsig');
  const payer = await nodeWit(ctx.node, PAYER);
  expectAllowed(t, await ctx.check(sigCall(payer, { method: 'POST', path: '/pay', body: Buffer.from('{"amount":1}'), headers: [['content-type', 'application/json']] })), PAYER, 'httpsig');
  const wic = await ctx.node.ca.issueWic({ id: WEB });
  expectAllowed(t, await ctx.check(envoyRequest({ path: '/admin/keys', source: { address: '10.0.0.9', port: 5000, principal: WEB, certificatePem: wic.certPem } })), WEB, 'mtls');
});

// ---- WIT (workload-creds-02) ---------------------------------------------------------------

const now = nowSec();
const withoutAlg = (jwk: Record<string, unknown>) => Object.fromEntries(Object.entries(jwk).filter(([k]) => k !== 'alg'));
const WIT_CASES: Array<[string, (c: Ctx) => WitSpec, string]> = [
  ['alg none (empty signature)', () => ({ header: { alg: 'none' }, signWith: { key: Buffer.alloc(0), alg: 'none' } }), 'wit.malformed'],
  ['alg none', (c) => ({ header: { alg: 'none' }, signWith: { key: c.partner.wit.privateKey, alg: 'ES256' } }), 'wit.alg'],
  ['HS256 keyed with the issuer public key', (c) => ({ header: { alg: 'HS256' }, signWith: { key: Buffer.from(JSON.stringify(c.partner.wit.publicJwk)), alg: 'HS256' } }), 'wit.alg'],
  ['typ absent', () => ({ omitHeader: ['typ'] }), 'wit.typ'],
  ['typ jwt', () => ({ header: { typ: 'jwt' } }), 'wit.typ'],
  ['typ wpt+jwt (a WPT presented as a WIT)', () => ({ header: { typ: 'wpt+jwt' } }), 'wit.typ'],
  ['typ wimse-id+jwt (legacy PoC form)', () => ({ header: { typ: 'wimse-id+jwt' } }), 'wit.typ'],
  ['crit not understood', () => ({ header: { crit: ['x-policy'], 'x-policy': 1 } }), 'wit.crit'],
  ['jku header parameter', () => ({ header: { jku: 'https://attacker.example/jwks' } }), 'wit.header_param'],
  ['x5u header parameter', () => ({ header: { x5u: 'https://attacker.example/cert.pem' } }), 'wit.header_param'],
  ['jwk header parameter', () => ({ header: { jwk: keyPair().publicJwk } }), 'wit.header_param'],
  ['unknown kid', () => ({ header: { kid: 'no-such-key' } }), 'wit.unknown_kid'],
  ["kid of another trust domain's anchor (partner key, example.org sub)", () => ({ sub: WEB }), 'wit.unknown_kid'],
  ['expired', () => ({ claims: { iat: now - 7200, exp: now - 3600 } }), 'wit.expired'],
  ['iat in the future', () => ({ claims: { iat: now + 3600, exp: now + 7200 } }), 'wit.iat_future'],
  ['cnf missing', () => ({ omit: ['cnf'] }), 'wit.cnf_missing'],
  ['cnf.jwk.alg missing', () => ({ claims: { cnf: { jwk: withoutAlg(keyPair().publicJwk as never) } } }), 'wit.cnf_alg_missing'],
  ['cnf.jwk.alg none', () => ({ claims: { cnf: { jwk: { ...keyPair().publicJwk, alg: 'none' } } } }), 'wit.cnf_alg_not_allowed'],
  ['cnf.jwk.alg HS256', () => ({ claims: { cnf: { jwk: { ...keyPair().publicJwk, alg: 'HS256' } } } }), 'wit.cnf_alg_not_allowed'],
  ['cnf.jwk.alg RSA-OAEP', () => ({ claims: { cnf: { jwk: { ...keyPair().publicJwk, alg: 'RSA-OAEP' } } } }), 'wit.cnf_alg_not_allowed'],
  ['cnf.jwk with a private d', () => {
    const k = keyPair();
    return { claims: { cnf: { jwk: { ...(k.privateKey.export({ format: 'jwk' }) as object), alg: 'ES256' } } } };
  }, 'wit.cnf_private_key'],
  ['cnf.jwk kty/crv inconsistent with alg (P-256 key, ES384)', () => ({ claims: { cnf: { jwk: { ...keyPair().publicJwk, alg: 'ES384' } } } }), 'wit.cnf_key_mismatch'],
  ['cnf.jwk kty/crv inconsistent with alg (Ed25519 key, ES256)', () => ({ claims: { cnf: { jwk: { ...keyPair('EdDSA').publicJwk, alg: 'ES256' } } } }), 'wit.cnf_key_mismatch'],
  ['sub relative', () => ({ sub: 'ns/ext/sa/client' }), 'wit.bad_sub'],
  ['sub with a query', () => ({ sub: `${PARTNER}?admin=1` }), 'wit.bad_sub'],
  ['sub with a fragment', () => ({ sub: `${PARTNER}#x` }), 'wit.bad_sub'],
  ['sub with userinfo', () => ({ sub: 'spiffe://user@partner.example/ns/ext/sa/client' }), 'wit.bad_sub'],
  ['sub with a port', () => ({ sub: 'spiffe://partner.example:8443/ns/ext/sa/client' }), 'wit.bad_sub'],
  ['sub percent-encoded (…/%70ayment vs …/payment)', () => ({ sub: 'spiffe://partner.example/service/%70ayment' }), 'wit.bad_sub'],
  ['sub: same authority under another scheme (https)', () => ({ sub: 'https://partner.example/ns/ext/sa/client' }), 'wit.bad_sub'],
  ['sub in an unconfigured trust domain', () => ({ sub: 'spiffe://elsewhere.example/ns/x/sa/y' }), 'wit.unknown_trust_domain'],
  ['an aud claim (legacy PoC form)', () => ({ claims: { aud: AUD } }), 'wit.aud_present'],
  ['oversize token', () => ({ claims: { pad: 'x'.repeat(9000) } }), 'wit.too_large'],
];

for (const [name, spec, code] of WIT_CASES) {
  test(`extauthz adversarial - WIT ${name}: 401 + WPT challenge with a WPT, ${code}`, async (t) => {
    const wit = partnerWit(ctx.partner, spec(ctx));
    expectDenied(t, await ctx.check(wptCall(wit.token, wptFor(wit))), 401, code, 'WPT');
  });
}

for (const [name, spec, code] of WIT_CASES.filter(([n]) => ['alg none', 'expired', 'unknown kid', 'cnf missing', 'sub in an unconfigured trust domain'].includes(n))) {
  test(`extauthz adversarial - WIT ${name} under an HTTP signature: 400, ${code}`, async (t) => {
    const wit = partnerWit(ctx.partner, spec(ctx));
    expectDenied(t, await ctx.check(sigCall(wit)), 400, code);
  });
}

test('extauthz adversarial - WIT with duplicate JSON member names (second sub) is denied', async (t) => {
  const w = keyPair();
  const payload = `{"sub":"${PARTNER}","iat":${now - 10},"exp":${now + 3600},"jti":"d1","cnf":{"jwk":${JSON.stringify(w.publicJwk)}},"sub":"spiffe://partner.example/ns/ext/sa/admin"}`;
  const token = signRaw({ alg: 'ES256', typ: 'wit+jwt', kid: ctx.partner.wit.kid }, payload, ctx.partner.wit.privateKey, 'ES256');
  expectDenied(t, await ctx.check(wptCall(token, wptFor({ token, workload: w }))), 401, 'wit.duplicate_member', 'WPT');
});

test('extauthz adversarial - two Workload-Identity-Token fields (joined with "," by Envoy) are denied', async (t) => {
  const a = await nodeWit(ctx.node, WEB);
  const b = partnerWit(ctx.partner);
  const req = wptCall(a.token, wptFor(a), { headers: [['Workload-Identity-Token', b.token]] });
  t.true((req as any).attributes.request.http.headers['workload-identity-token'].includes(','));
  expectDenied(t, await ctx.check(req), 401, 'wit.duplicate', 'WPT');
});

test('extauthz adversarial - a WIT alone is not a bearer token', async (t) => {
  const a = await nodeWit(ctx.node, WEB);
  expectDenied(t, await ctx.check(envoyRequest({ headers: [['Workload-Identity-Token', a.token]] })), 401, 'wit.no_proof', 'WPT');
});

test('extauthz adversarial - an identifier reassigned after its WIT key was revoked: the old WIT is denied, a new one allowed', async (t) => {
  const own = await startAdversarialNode();
  t.teardown(() => own.close());
  const old = await nodeWit(own.node, WEB);
  expectAllowed(t, await own.check(wptCall(old.token, wptFor(old))), WEB, 'wpt');
  const kid = own.node.ca.slot('wit').current!.kid;
  await own.node.ca.taint('wit', kid);
  await own.node.ca.revoke('wit', kid);
  expectDenied(t, await own.check(wptCall(old.token, wptFor(old))), 401, 'wit.unknown_kid', 'WPT');
  const fresh = await nodeWit(own.node, WEB);
  expectAllowed(t, await own.check(wptCall(fresh.token, wptFor(fresh))), WEB, 'wpt');
});

// ---- WPT (wpt-02) --------------------------------------------------------------------------

/** A WPT over exactly these claims (defaults: a good one for `wit`), signed with its key. */
function rawWpt(wit: { token: string; workload: ReturnType<typeof keyPair> }, claims: Record<string, unknown>, header: Record<string, unknown> = {}, omit: string[] = []): string {
  const c: Record<string, unknown> = { aud: AUD, exp: nowSec() + 60, jti: `j-${Math.random()}`, wth: tokenHash(wit.token), ...claims };
  for (const k of omit) delete c[k];
  return signRaw({ alg: wit.workload.alg, typ: 'wpt+jwt', ...header }, c, wit.workload.privateKey, wit.workload.alg);
}

test('extauthz adversarial - WPT alg differs from cnf.jwk.alg (EdDSA WIT, Ed25519 WPT)', async (t) => {
  const wit = await nodeWit(ctx.node, WEB, 'EdDSA');
  const wpt = wptFor(wit, { alg: 'Ed25519' });
  expectDenied(t, await ctx.check(wptCall(wit.token, wpt)), 401, 'wpt.alg_mismatch', 'WPT');
});

for (const typ of ['jwt', 'wit+jwt', 'JWT']) {
  test(`extauthz adversarial - WPT typ ${typ}`, async (t) => {
    const wit = await nodeWit(ctx.node, WEB);
    expectDenied(t, await ctx.check(wptCall(wit.token, rawWpt(wit, {}, { typ }))), 401, 'wpt.typ', 'WPT');
  });
}

test('extauthz adversarial - WPT aud for another service', async (t) => {
  const wit = await nodeWit(ctx.node, WEB);
  expectDenied(t, await ctx.check(wptCall(wit.token, wptFor(wit, { aud: 'https://payments.shop.example.org' }))), 401, 'wpt.aud_mismatch', 'WPT');
});

test('extauthz adversarial - WPT aud matching only Host / X-Forwarded-Host is not accepted', async (t) => {
  const wit = await nodeWit(ctx.node, WEB);
  const req = envoyRequest({
    headers: [['Workload-Identity-Token', wit.token], ['Authorization', `WPT ${wptFor(wit, { aud: 'https://attacker.example' })}`], ['X-Forwarded-Host', 'attacker.example']],
  }) as any;
  req.attributes.request.http.host = 'attacker.example';
  req.attributes.request.http.headers[':authority'] = 'attacker.example';
  expectDenied(t, await ctx.check(req), 401, 'wpt.aud_mismatch', 'WPT');
});

test('extauthz adversarial - WPT exp missing, past, or far in the future', async (t) => {
  const wit = await nodeWit(ctx.node, WEB);
  expectDenied(t, await ctx.check(wptCall(wit.token, rawWpt(wit, {}, {}, ['exp']))), 401, 'wpt.exp_missing', 'WPT');
  expectDenied(t, await ctx.check(wptCall(wit.token, wptFor(wit, { nowSec: nowSec() - 600 }))), 401, 'wpt.expired', 'WPT');
  expectDenied(t, await ctx.check(wptCall(wit.token, wptFor(wit, { lifetimeSec: 3600 }))), 401, 'wpt.exp_too_far', 'WPT');
});

test('extauthz adversarial - WPT jti replay is denied; the first use was allowed', async (t) => {
  const wit = await nodeWit(ctx.node, WEB);
  const req = wptCall(wit.token, wptFor(wit));
  expectAllowed(t, await ctx.check(req), WEB, 'wpt');
  expectDenied(t, await ctx.check(req), 401, 'wpt.replay', 'WPT');
  expectDenied(t, await ctx.check(wptCall(wit.token, rawWpt(wit, {}, {}, ['jti']))), 401, 'wpt.jti_missing', 'WPT');
});

test('extauthz adversarial - WPT tth missing with a Txn-Token, tth without a Txn-Token', async (t) => {
  const wit = await nodeWit(ctx.node, WEB);
  expectDenied(t, await ctx.check(wptCall(wit.token, wptFor(wit), { headers: [['Txn-Token', 'eyJ0eG4iOiIxIn0']] })), 401, 'wpt.tth_missing', 'WPT');
  expectDenied(t, await ctx.check(wptCall(wit.token, wptFor(wit, { txnToken: 'eyJ0eG4iOiIxIn0' }))), 401, 'wpt.tth_unexpected', 'WPT');
});

test('extauthz adversarial - WPT oth naming an absent or unknown field is rejected', async (t) => {
  const wit = await nodeWit(ctx.node, WEB);
  expectDenied(t, await ctx.check(wptCall(wit.token, wptFor(wit, { oth: { 'x-actor-token': 'abc' } }))), 401, 'wpt.oth_unknown', 'WPT');
  expectDenied(t, await ctx.check(wptCall(wit.token, rawWpt(wit, { oth: { 'X-Actor-Token': tokenHash('abc') } }), { headers: [['X-Actor-Token', 'abc']] })), 401, 'wpt.oth_unknown', 'WPT');
  expectDenied(t, await ctx.check(wptCall(wit.token, wptFor(wit, { oth: { 'x-actor-token': 'abc' } }), { headers: [['X-Actor-Token', 'abd']] })), 401, 'wpt.oth_mismatch', 'WPT');
});

test('extauthz adversarial - a token not bound by the WPT never informs the decision', async (t) => {
  // An unbound field naming a privileged workload: the caller is still the WIT's subject, and
  // this caller has no grant for /pay.
  const wit = await nodeWit(ctx.node, WEB);
  const res = await ctx.check(wptCall(wit.token, wptFor(wit), { method: 'POST', path: '/pay', headers: [['X-Actor-Token', PAYER], ['X-Wimse-Caller', PAYER]] }));
  expectDenied(t, res, 403, 'policy.caller_not_granted');
  t.is(JSON.parse(res.denied_response.body).code, 'policy.caller_not_granted');
  t.is(res.dynamic_metadata.fields.caller.stringValue, WEB);
});

test('extauthz adversarial - two Authorization fields, or Bearer alongside the WPT, are denied', async (t) => {
  const wit = await nodeWit(ctx.node, WEB);
  expectDenied(t, await ctx.check(wptCall(wit.token, wptFor(wit), { headers: [['Authorization', `WPT ${wptFor(wit)}`]] })), 401, 'wpt.duplicate_authorization', 'WPT');
  expectDenied(t, await ctx.check(wptCall(wit.token, wptFor(wit), { headers: [['Authorization', 'Bearer eyJhbGciOiJub25lIn0.e30.']] })), 401, 'wpt.duplicate_authorization', 'WPT');
  // Bearer next to a WIT never authenticates the caller.
  expectDenied(t, await ctx.check(envoyRequest({ headers: [['Workload-Identity-Token', wit.token], ['Authorization', 'Bearer abc']] })), 401, 'wit.no_proof', 'WPT');
  expectDenied(t, await ctx.check(envoyRequest({ headers: [['Authorization', 'Bearer abc']] })), 401, 'request.no_credentials', 'WPT');
});

test('extauthz adversarial - the wpt scheme in lower case is accepted', async (t) => {
  const wit = await nodeWit(ctx.node, WEB);
  const res = await ctx.check(envoyRequest({ headers: [['Workload-Identity-Token', wit.token], ['Authorization', `wpt ${wptFor(wit)}`]] }));
  expectAllowed(t, res, WEB, 'wpt');
});

test('extauthz adversarial - the legacy Workload-Proof-Token field (wpt-01) is refused', async (t) => {
  const wit = await nodeWit(ctx.node, WEB);
  expectDenied(t, await ctx.check(envoyRequest({ headers: [['Workload-Identity-Token', wit.token], ['Workload-Proof-Token', wptFor(wit)]] })), 401, 'wpt.legacy_header', 'WPT');
});

test('extauthz adversarial - swapped tokens: a WPT signed by another workload, or bound to another WIT', async (t) => {
  const web = await nodeWit(ctx.node, WEB);
  const other = partnerWit(ctx.partner);
  // B's WIT with A's WPT (signed by A's key, over A's WIT).
  expectDenied(t, await ctx.check(wptCall(web.token, wptFor(other))), 401, 'wpt.bad_signature', 'WPT');
  // The same workload key in two WITs: a WPT made for one does not go with the other.
  const second = { token: (await ctx.node.ca.mintWit({ sub: WEB, cnf: web.workload.publicJwk as never })).token, workload: web.workload };
  expectDenied(t, await ctx.check(wptCall(second.token, wptFor(web))), 401, 'wpt.wth_mismatch', 'WPT');
});

// ---- HTTP message signatures (http-signature-07) --------------------------------------------

/** A request signed with hand-picked parameters and components (shapes the signer never makes). */
function customSig(
  wit: { token: string; workload: ReturnType<typeof keyPair> },
  o: { params?: (p: Parameters) => void; components?: string[]; label?: string; headers?: Array<[string, string]>; extra?: Array<[string, string]> } = {},
): Record<string, unknown> {
  const headers: Array<[string, string]> = [['workload-identity-token', wit.token], ...(o.headers ?? [])];
  const map = new Map<string, string[]>();
  for (const [k, v] of headers) map.set(k, [...(map.get(k) ?? []), v]);
  const params: Parameters = new Map();
  const created = nowSec();
  params.set('created', { type: 'integer', value: created });
  params.set('expires', { type: 'integer', value: created + 60 });
  params.set('nonce', { type: 'string', value: `n-${Math.random()}` });
  params.set('tag', { type: 'string', value: 'wimse-workload-to-workload' });
  params.set('wimse-aud', { type: 'string', value: AUD });
  o.params?.(params);
  const names = o.components ?? ['@method', '@path', '@query', 'workload-identity-token'];
  const sig = signMessage(
    { message: { method: 'GET', path: '/orders/1', query: '', headers: map } },
    { label: o.label ?? 'wimse', components: names.map((n) => component(n)), params, key: { key: wit.workload.privateKey, alg: 'ecdsa-p256-sha256' } },
  );
  return envoyRequest({ headers: [...headers, ['Signature-Input', sig.signatureInput], ['Signature', sig.signature], ...(o.extra ?? [])] });
}

for (const p of ['created', 'expires', 'nonce', 'wimse-aud']) {
  test(`extauthz adversarial - HTTP signature without ${p}`, async (t) => {
    const wit = partnerWit(ctx.partner);
    expectDenied(t, await ctx.check(customSig(wit, { params: (m) => m.delete(p) })), 400, 'httpsig.param_missing');
  });
}

test('extauthz adversarial - HTTP signature without tag, with the wrong tag, or a non-WIMSE one under label wimse: no proof', async (t) => {
  const wit = partnerWit(ctx.partner);
  expectDenied(t, await ctx.check(customSig(wit, { params: (m) => m.delete('tag') })), 401, 'wit.no_proof', 'WPT');
  expectDenied(t, await ctx.check(customSig(wit, { params: (m) => m.set('tag', { type: 'string', value: 'wimse-service-to-service' }) })), 401, 'wit.no_proof', 'WPT');
  expectDenied(t, await ctx.check(customSig(wit, { params: (m) => m.set('tag', { type: 'string', value: 'other-profile' }), label: 'wimse' })), 401, 'wit.no_proof', 'WPT');
});

test('extauthz adversarial - HTTP signature with keyid or alg parameters', async (t) => {
  const wit = partnerWit(ctx.partner);
  expectDenied(t, await ctx.check(customSig(wit, { params: (m) => m.set('keyid', { type: 'string', value: 'k1' }) })), 400, 'httpsig.param_forbidden');
  expectDenied(t, await ctx.check(customSig(wit, { params: (m) => m.set('alg', { type: 'string', value: 'ecdsa-p256-sha256' }) })), 400, 'httpsig.param_forbidden');
});

test('extauthz adversarial - two WIMSE-tagged signatures', async (t) => {
  const wit = partnerWit(ctx.partner);
  const one = customSig(wit, { label: 'a' }) as any;
  const two = customSig(wit, { label: 'b' }) as any;
  const h1 = one.attributes.request.http.headers;
  const h2 = two.attributes.request.http.headers;
  h1['signature-input'] = `${h1['signature-input']},${h2['signature-input']}`;
  h1['signature'] = `${h1['signature']},${h2['signature']}`;
  expectDenied(t, await ctx.check(one), 400, 'httpsig.multiple');
});

for (const [field, value] of [['content-type', 'application/json'], ['authorization', 'Bearer abc'], ['txn-token', 'eyJ0eG4iOiIxIn0']] as const) {
  test(`extauthz adversarial - ${field} present but not covered`, async (t) => {
    const wit = partnerWit(ctx.partner);
    expectDenied(t, await ctx.check(customSig(wit, { extra: [[field, value]] })), 400, 'httpsig.component_missing');
  });
}

test('extauthz adversarial - the WIT or Content-Digest present but not covered', async (t) => {
  const wit = partnerWit(ctx.partner);
  expectDenied(t, await ctx.check(customSig(wit, { components: ['@method', '@path', '@query'] })), 400, 'httpsig.component_missing');
  expectDenied(t, await ctx.check(customSig(wit, { extra: [['content-digest', contentDigestValue(Buffer.from(''), ['sha-256'])]] })), 400, 'httpsig.component_missing');
});

test('extauthz adversarial - a body without Content-Digest, and a tampered body under an intact digest', async (t) => {
  const wit = partnerWit(ctx.partner);
  const noDigest = customSig(wit) as any;
  noDigest.attributes.request.http.raw_body = Buffer.from('{"amount":1000000}');
  noDigest.attributes.request.http.headers['x-envoy-auth-partial-body'] = 'false';
  expectDenied(t, await ctx.check(noDigest), 400, 'httpsig.digest_missing');
  const body = Buffer.from('{"amount":1}');
  const tampered = sigCall(wit, { method: 'POST', path: '/orders/1', body, headers: [['content-type', 'application/json']] }, (r) => {
    r.body = Buffer.from('{"amount":9}');
  });
  expectDenied(t, await ctx.check(tampered), 400, 'httpsig.digest_mismatch');
});

test('extauthz adversarial - rerouted @path or @query', async (t) => {
  const wit = partnerWit(ctx.partner);
  const path = sigCall(wit, { path: '/orders/1?view=short' }, (r) => {
    r.path = '/orders/2?view=short';
  });
  expectDenied(t, await ctx.check(path), 400, 'httpsig.bad_signature');
  const query = sigCall(wit, { path: '/orders/1?view=short' }, (r) => {
    r.path = '/orders/1?view=full';
  });
  expectDenied(t, await ctx.check(query), 400, 'httpsig.bad_signature');
});

test('extauthz adversarial - HTTP signature time window: expires < created, created in the future, too long, expired', async (t) => {
  const wit = partnerWit(ctx.partner);
  expectDenied(t, await ctx.check(customSig(wit, { params: (m) => m.set('expires', { type: 'integer', value: nowSec() - 10 }) })), 400, 'httpsig.bad_window');
  const future = new ManualClock(Date.now() + 600_000);
  expectDenied(t, await ctx.check(sigCall(wit, { clock: future })), 400, 'httpsig.created_in_future');
  expectDenied(t, await ctx.check(sigCall(wit, { ttlSec: 3600 })), 400, 'httpsig.window_too_long');
  const past = new ManualClock(Date.now() - 3_600_000);
  expectDenied(t, await ctx.check(sigCall(wit, { clock: past })), 400, 'httpsig.expired');
});

test('extauthz adversarial - HTTP signature nonce replay (any sender) and a wrong wimse-aud', async (t) => {
  const a = partnerWit(ctx.partner);
  const nonce = `replayed-${Math.random()}`;
  expectAllowed(t, await ctx.check(sigCall(a, { nonce })), PARTNER, 'httpsig');
  expectDenied(t, await ctx.check(sigCall(a, { nonce })), 400, 'httpsig.nonce_replay');
  const b = await nodeWit(ctx.node, WEB);
  expectDenied(t, await ctx.check(sigCall(b, { nonce })), 400, 'httpsig.nonce_replay');
  expectDenied(t, await ctx.check(sigCall(b, { audience: 'https://payments.shop.example.org' })), 400, 'httpsig.aud_mismatch');
});

test('extauthz adversarial - legacy PoC HTTP signature (tag wimse-service-to-service, keyid, ecdsa alg) is refused', async (t) => {
  const wit = partnerWit(ctx.partner);
  const res = await ctx.check(
    customSig(wit, {
      params: (m) => {
        m.set('tag', { type: 'string', value: 'wimse-service-to-service' });
        m.set('keyid', { type: 'string', value: 'k' });
        m.set('alg', { type: 'string', value: 'ecdsa-p256-sha256' });
      },
    }),
  );
  expectDenied(t, res, 401, 'wit.no_proof', 'WPT');
});
