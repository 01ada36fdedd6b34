/**
 * WIT verification through `authenticate` (the path real requests take): every adversarial WIT
 * case, each expecting its own code.
 */
import test, { type ExecutionContext } from 'ava';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { Authenticator, AuthnError, type AuthnRequest } from '../../src/authn/index.ts';
import { ManualClock } from '../../src/identity/clock.ts';
import {
  AUD, NOW, bundleOf, bundleSet, env, issuer, keyPair, mintWit, mintWitRaw, request, signRaw, witParts, wptRequest, type Env,
} from './helpers.ts';

function rejects(t: ExecutionContext, e: Env, req: AuthnRequest, code: string, status: 400 | 401 | 500 = 401): AuthnError {
  const err = t.throws(() => e.auth.authenticate(req), { instanceOf: AuthnError })!;
  t.is(err.code, code);
  t.is(err.status, status);
  return err;
}

/** A WIT plus a valid WPT for it: the WIT alone decides the outcome. */
const witReq = (e: Env, wit: string): AuthnRequest => wptRequest(wit, e.workload);

test('wit - a good WIT with a good WPT authenticates the sub', async (t) => {
  const e = env();
  const wit = await mintWit(e.iss, { workload: e.workload });
  const r = e.auth.authenticate(witReq(e, wit));
  t.is(r.caller, 'spiffe://example.org/ns/default/sa/client');
  t.deepEqual(r.wit, { sub: r.caller, exp: NOW + 3600, jti: 'wit-jti-1' });
});

test('wit - alg none is rejected', (t) => {
  const e = env();
  const { header, claims } = witParts(e.iss, { workload: e.workload });
  const wit = `${Buffer.from(JSON.stringify({ ...header, alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.AAAA`;
  rejects(t, e, witReq(e, wit), 'wit.alg');
});

test('wit - alg none with an empty signature segment is malformed', (t) => {
  const e = env();
  const { header, claims } = witParts(e.iss, { workload: e.workload });
  const wit = `${Buffer.from(JSON.stringify({ ...header, alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
  rejects(t, e, witReq(e, wit), 'wit.malformed');
});

test('wit - HS256 signed with the issuer public key as the secret is rejected', (t) => {
  const e = env();
  const { header, claims } = witParts(e.iss, { workload: e.workload, header: { alg: 'HS256' } });
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const secret = JSON.stringify(e.iss.witKey);
  const wit = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
  rejects(t, e, witReq(e, wit), 'wit.alg');
});

for (const [label, typ] of [['absent', undefined], ['jwt', 'jwt'], ['wpt+jwt (a WPT as a WIT)', 'wpt+jwt'], ['legacy wimse-id+jwt', 'wimse-id+jwt']] as const) {
  test(`wit - typ ${label} is rejected`, (t) => {
    const e = env();
    const wit = typ === undefined ? mintWitRaw(e.iss, { workload: e.workload, omitHeader: ['typ'] }) : mintWitRaw(e.iss, { workload: e.workload, header: { typ } });
    rejects(t, e, witReq(e, wit), 'wit.typ');
  });
}

test('wit - typ application/wit+jwt in any case is accepted', (t) => {
  const e = env();
  const wit = mintWitRaw(e.iss, { workload: e.workload, header: { typ: 'Application/WIT+JWT' } });
  t.is(e.auth.authenticate(witReq(e, wit)).via, 'wpt');
});

test('wit - crit is rejected', (t) => {
  const e = env();
  rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, header: { crit: ['exp'] } })), 'wit.crit');
});

for (const param of ['jku', 'x5u', 'jwk', 'x5c']) {
  test(`wit - header parameter ${param} is rejected`, (t) => {
    const e = env();
    const value = param === 'jwk' ? e.iss.witKey : param === 'x5c' ? ['MIIB'] : 'https://attacker.example/keys';
    rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, header: { [param]: value } })), 'wit.header_param');
  });
}

test('wit - an unknown kid is rejected', (t) => {
  const e = env();
  rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, header: { kid: 'nope' } })), 'wit.unknown_kid');
});

function twoDomains(): { e: Env; other: ReturnType<typeof issuer> } {
  const e = env();
  const other = issuer('other.example');
  const auth = new Authenticator({
    bundles: bundleSet(bundleOf('example.org', [e.iss.witKey]), bundleOf('other.example', [other.witKey])),
    clock: e.clock,
    audiences: [AUD],
  });
  return { e: { ...e, auth }, other };
}

test("wit - a kid of another trust domain's anchor is rejected", (t) => {
  const { e, other } = twoDomains();
  // Signed by other.example's key, naming its kid, but sub is in example.org.
  const wit = mintWitRaw(other, { workload: e.workload, sub: 'spiffe://example.org/ns/default/sa/client' });
  rejects(t, e, witReq(e, wit), 'wit.unknown_kid');
});

test('wit - an issuer not authorized for the sub trust domain fails even without kid', (t) => {
  const { e, other } = twoDomains();
  const wit = mintWitRaw(other, { workload: e.workload, sub: 'spiffe://example.org/ns/default/sa/client', omitHeader: ['kid'] });
  rejects(t, e, witReq(e, wit), 'wit.bad_signature');
});

test('wit - without kid, a trust domain with several keys is ambiguous', (t) => {
  const e = env();
  const second = issuer('example.org', 'ES256', 'k2');
  const auth = new Authenticator({ bundles: bundleSet(bundleOf('example.org', [e.iss.witKey, second.witKey])), clock: e.clock, audiences: [AUD] });
  const wit = mintWitRaw(e.iss, { workload: e.workload, omitHeader: ['kid'] });
  rejects(t, { ...e, auth }, witReq(e, wit), 'wit.kid_required');
});

test('wit - without kid, the single key of the trust domain is used', (t) => {
  const e = env();
  t.is(e.auth.authenticate(witReq(e, mintWitRaw(e.iss, { workload: e.workload, omitHeader: ['kid'] }))).via, 'wpt');
});

test('wit - expired is rejected, within skew is accepted', (t) => {
  const e = env();
  rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, claims: { exp: NOW - 61 } })), 'wit.expired');
  t.is(e.auth.authenticate(witReq(e, mintWitRaw(e.iss, { workload: e.workload, claims: { exp: NOW - 59 } }))).via, 'wpt');
});

test('wit - exp missing is rejected', (t) => {
  const e = env();
  rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, omit: ['exp'] })), 'wit.exp_missing');
});

test('wit - iat in the future beyond skew is rejected', (t) => {
  const e = env();
  rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, claims: { iat: NOW + 120 } })), 'wit.iat_future');
});

test('wit - signature is checked before claims: wrong key and expired reports bad signature', (t) => {
  const e = env();
  const wrong = keyPair('ES256');
  const wit = mintWitRaw(e.iss, { workload: e.workload, claims: { exp: NOW - 3600 } }, wrong.privateKey);
  rejects(t, e, witReq(e, wit), 'wit.bad_signature');
});

test('wit - cnf missing is rejected', (t) => {
  const e = env();
  rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, omit: ['cnf'] })), 'wit.cnf_missing');
});

test('wit - cnf.jwk.alg missing is rejected', (t) => {
  const e = env();
  const { alg: _a, ...jwk } = e.workload.publicJwk;
  rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, claims: { cnf: { jwk } } })), 'wit.cnf_alg_missing');
});

for (const alg of ['none', 'HS256', 'RSA-OAEP']) {
  test(`wit - cnf.jwk.alg ${alg} is rejected`, (t) => {
    const e = env();
    const jwk = { ...e.workload.publicJwk, alg };
    rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, claims: { cnf: { jwk } } })), 'wit.cnf_alg_not_allowed');
  });
}

test('wit - a cnf JWK with a private d is rejected', (t) => {
  const e = env();
  const jwk = { ...(e.workload.privateKey.export({ format: 'jwk' }) as object), alg: 'ES256' };
  rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, claims: { cnf: { jwk } } })), 'wit.cnf_private_key');
});

test('wit - cnf kty/crv inconsistent with alg is rejected', (t) => {
  const e = env();
  const ed = keyPair('EdDSA');
  rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, claims: { cnf: { jwk: { ...ed.publicJwk, alg: 'ES256' } } } })), 'wit.cnf_key_mismatch');
  const p384 = keyPair('ES384');
  rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, claims: { cnf: { jwk: { ...p384.publicJwk, alg: 'ES256' } } } })), 'wit.cnf_key_mismatch');
});

test('wit - a cnf EC point that is not on the curve is rejected', (t) => {
  const e = env();
  const jwk = { ...e.workload.publicJwk, y: e.workload.publicJwk.x };
  rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, claims: { cnf: { jwk } } })), 'wit.cnf_invalid');
});

for (const [label, sub] of [
  ['relative', '/ns/default/sa/client'],
  ['with a query', 'spiffe://example.org/ns/default?x=1'],
  ['with a fragment', 'spiffe://example.org/ns/default#f'],
  ['with userinfo', 'spiffe://user@example.org/ns/default'],
  ['with a port', 'spiffe://example.org:8443/ns/default'],
  ['not canonical (%70ayment)', 'wimse://example.org/service/%70ayment'],
  ['with a dot segment', 'wimse://example.org/pay/../admin'],
] as const) {
  test(`wit - sub ${label} is rejected`, (t) => {
    const e = env();
    rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, sub })), 'wit.bad_sub');
  });
}

test('wit - sub in an unconfigured trust domain is rejected', (t) => {
  const e = env();
  rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, sub: 'spiffe://elsewhere.example/x' })), 'wit.unknown_trust_domain');
});

test('wit - sub under a scheme the trust domain does not issue (same authority) is rejected', (t) => {
  const e = env({ trustDomains: { 'example.org': { schemes: ['spiffe'] } } });
  rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, sub: 'wimse://example.org/ns/default/sa/client' })), 'wit.sub_scheme');
  t.is(e.auth.authenticate(witReq(e, mintWitRaw(e.iss, { workload: e.workload }))).via, 'wpt');
});

test('wit - iss outside the trust domain allow-list is rejected', (t) => {
  const e = env({ trustDomains: { 'example.org': { issuers: ['https://issuer.example.org'] } } });
  rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, claims: { iss: 'https://evil.example' } })), 'wit.iss_not_allowed');
  rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload })), 'wit.iss_not_allowed');
  const ok = e.auth.authenticate(witReq(e, mintWitRaw(e.iss, { workload: e.workload, claims: { iss: 'https://issuer.example.org' } })));
  t.is(ok.wit?.iss, 'https://issuer.example.org');
});

test('wit - alg outside the trust domain allow-list is rejected', (t) => {
  const e = env({ trustDomains: { 'example.org': { witAlgs: ['ES384'] } } });
  rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload })), 'wit.alg');
});

test('wit - a WIT carrying aud (legacy JWT-SVID style) is rejected', (t) => {
  const e = env();
  rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, claims: { aud: 'spiffe://example.org/x' } })), 'wit.aud_present');
});

test('wit - duplicate JSON member names in the claims are rejected', (t) => {
  const e = env();
  const { header, claims } = witParts(e.iss, { workload: e.workload });
  const json = JSON.stringify(claims).replace(/^\{/, '{"sub":"spiffe://example.org/admin",');
  rejects(t, e, witReq(e, signRaw(header, json, e.iss.privateKey, 'ES256')), 'wit.duplicate_member');
});

test('wit - duplicate member names spelled with an escape are rejected', (t) => {
  const e = env();
  const { header, claims } = witParts(e.iss, { workload: e.workload });
  const json = JSON.stringify(claims).replace(/^\{/, '{"\\u0073ub":"spiffe://example.org/admin",');
  rejects(t, e, witReq(e, signRaw(header, json, e.iss.privateKey, 'ES256')), 'wit.duplicate_member');
});

test('wit - duplicate JSON member names in the header are rejected', (t) => {
  const e = env();
  const { header, claims } = witParts(e.iss, { workload: e.workload });
  const json = JSON.stringify(header).replace(/^\{/, '{"alg":"none",');
  rejects(t, e, witReq(e, signRaw(json, claims, e.iss.privateKey, 'ES256')), 'wit.duplicate_member');
});

test('wit - an oversize token is rejected before parsing', (t) => {
  const e = env();
  const wit = mintWitRaw(e.iss, { workload: e.workload, claims: { pad: 'x'.repeat(9000) } });
  rejects(t, e, witReq(e, wit), 'wit.too_large');
});

test('wit - padded or whitespace segments are malformed', (t) => {
  const e = env();
  const wit = mintWitRaw(e.iss, { workload: e.workload });
  rejects(t, e, witReq(e, wit.replace('.', '=.')), 'wit.malformed');
  const [h, p, s] = wit.split('.');
  rejects(t, e, witReq(e, `${h}.${p} .${s}`), 'wit.malformed');
  rejects(t, e, witReq(e, `${h}.${p}`), 'wit.malformed');
  rejects(t, e, witReq(e, `${h}.${p}.${s}.${s}`), 'wit.malformed');
});

test('wit - two Workload-Identity-Token fields are rejected', (t) => {
  const e = env();
  const wit = mintWitRaw(e.iss, { workload: e.workload });
  const base = witReq(e, wit);
  const headers = new Map(base.headers);
  headers.set('workload-identity-token', [wit, wit]);
  rejects(t, e, { ...base, headers }, 'wit.duplicate');
  headers.set('workload-identity-token', [`${wit}, ${wit}`]);
  rejects(t, e, { ...base, headers }, 'wit.duplicate');
});

test('wit - a WIT alone (no proof of possession) is refused: it is not a bearer token', (t) => {
  const e = env();
  const wit = mintWitRaw(e.iss, { workload: e.workload });
  const err = rejects(t, e, request({ headers: [['Workload-Identity-Token', wit]] }), 'wit.no_proof');
  t.is(err.challenge, 'WPT');
});

test('wit - a Bearer token alongside a WIT is not used to authenticate the caller', (t) => {
  const e = env();
  const wit = mintWitRaw(e.iss, { workload: e.workload });
  rejects(t, e, request({ headers: [['Workload-Identity-Token', wit], ['Authorization', 'Bearer abc.def.ghi']] }), 'wit.no_proof');
});

test('wit - failures on a WPT request are 401 with the WPT challenge', (t) => {
  const e = env();
  const err = rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, claims: { exp: NOW - 3600 } })), 'wit.expired');
  t.is(err.challenge, 'WPT');
});

test('wit - failures on an HTTP-signature request are 400 without a challenge', (t) => {
  const e = env();
  const wit = mintWitRaw(e.iss, { workload: e.workload, claims: { exp: NOW - 3600 } });
  const req = request({
    headers: [
      ['Workload-Identity-Token', wit],
      ['Signature-Input', 'sig1=("@method" "@path" "@query" "workload-identity-token");created=1;expires=2;nonce="n";tag="wimse-workload-to-workload";wimse-aud="x"'],
      ['Signature', 'sig1=:AAAA:'],
    ],
  });
  const err = rejects(t, e, req, 'wit.expired', 400);
  t.is(err.challenge, undefined);
});

test('wit - EdDSA issuer keys and Ed25519 workload keys work end to end', (t) => {
  const e = env({}, 'EdDSA', 'Ed25519');
  const wit = mintWitRaw(e.iss, { workload: e.workload });
  t.is(e.auth.authenticate(witReq(e, wit)).via, 'wpt');
});

test('wit - an ES384 issuer key with an ES384 workload key works end to end', async (t) => {
  const e = env({}, 'ES384', 'ES384');
  const wit = await mintWit(e.iss, { workload: e.workload });
  t.is(e.auth.authenticate(witReq(e, wit)).via, 'wpt');
});

test('wit - an RSA issuer key cannot be configured or used', (t) => {
  const e = env();
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const wit = mintWitRaw(e.iss, { workload: e.workload, header: { alg: 'RS256' } }, rsa.privateKey, 'RS256-unused');
  rejects(t, e, witReq(e, wit), 'wit.alg');
  t.throws(() => new Authenticator({ bundles: new Map(), clock: new ManualClock(), trustDomains: { 'example.org': { witAlgs: ['RS256'] } } }), {
    instanceOf: TypeError,
  });
});

test('wit - nbf in the future beyond skew is rejected', (t) => {
  const e = env();
  rejects(t, e, witReq(e, mintWitRaw(e.iss, { workload: e.workload, claims: { nbf: NOW + 120 } })), 'wit.not_yet_valid');
  t.is(e.auth.authenticate(witReq(e, mintWitRaw(e.iss, { workload: e.workload, claims: { nbf: NOW + 30 } }))).via, 'wpt');
});

test('wit - a valid WIT with a WIMSE-tagged signature is handed to the HTTP-signature verifier', (t) => {
  const e = env();
  const wit = mintWitRaw(e.iss, { workload: e.workload });
  const req = request({
    headers: [
      ['Workload-Identity-Token', wit],
      ['Signature-Input', 'sig1=("@method" "@path" "@query" "workload-identity-token");created=1;expires=2;nonce="n";tag="wimse-workload-to-workload";wimse-aud="x"'],
      ['Signature', 'sig1=:AAAA:'],
    ],
  });
  // The WIT passed (no wit.* error); the signature (garbage here) is judged by src/authn/httpsig.
  const err = t.throws(() => e.auth.authenticate(req), { instanceOf: AuthnError });
  t.is(err?.area, 'httpsig');
  t.is(err?.status, 400);
});
