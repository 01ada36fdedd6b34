import test from 'ava';
import { readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { ManualClock } from '../../src/identity/clock.ts';
import type { PublicJwk } from '../../src/identity/jwk.ts';
import { headersFrom } from '../../src/authn/request.ts';
import { AuthnError } from '../../src/authn/errors.ts';
import { ReplayCache } from '../../src/authn/replay.ts';
import {
  buildSignatureBase,
  parseSignatureInputs,
  signMessage,
  verifyMessageSignature,
  verifyWimseRequestSignature,
  verifyWimseResponseSignature,
  hasWimseSignature,
  signWimseRequest,
  signWimseResponse,
  type HttpRequestMessage,
  type HttpResponseMessage,
} from '../../src/authn/httpsig/index.ts';

const wg = JSON.parse(readFileSync(new URL('../../../shared/vectors/wimse-wg-examples.json', import.meta.url), 'utf8'));
const enc = new TextEncoder();

interface Vec {
  request: { method: string; path: string; query: string; headers: [string, string][]; body: string; signature_base: string; signature_input: string };
  response: { status: number; headers: [string, string][]; body: string; signature_base: string; signature_input: string };
  caller_public_jwk: PublicJwk;
  callee_public_jwk: PublicJwk;
  private_keys: { caller: JsonWebKey; callee: JsonWebKey } | null;
}

function messages(v: Vec): { req: HttpRequestMessage; res: HttpResponseMessage } {
  const req: HttpRequestMessage = {
    method: v.request.method,
    path: v.request.path,
    query: v.request.query === '' ? '' : `?${v.request.query}`,
    headers: headersFrom(v.request.headers),
    ...(v.request.body === '' ? {} : { body: enc.encode(v.request.body) }),
  };
  const res: HttpResponseMessage = { status: v.response.status, headers: headersFrom(v.response.headers), body: enc.encode(v.response.body) };
  return { req, res };
}

const v07: Vec = wg.http_sig_07;
const v06: Vec = wg.http_sig_06;
const paramOf = (sigInput: string, name: string): number => Number(new RegExp(`;${name}=(\\d+)`).exec(sigInput)![1]);
const AUD = 'https://svcb.example.com/gimme-ice-cream';
// The -07 example response has expires - created = 302 s: beyond the 300 s cap, inside the cap
// plus the 60 s skew allowance (http-signature-07 §4.3 asks only for "minutes"; the rule is in
// src/authn/httpsig/wimse-profile.ts, checkWindow).
const RES_WINDOW = 302;

test('httpsig wimse-07 - request signature base is rebuilt byte-exact', (t) => {
  const { req } = messages(v07);
  const input = [...parseSignatureInputs(req.headers)!.values()][0]!;
  t.is(input.label, 'sig1');
  t.is(buildSignatureBase({ message: req }, input.components, input.raw), v07.request.signature_base);
});

test('httpsig wimse-07 - response signature base is rebuilt byte-exact (components from the request with ;req)', (t) => {
  const { req, res } = messages(v07);
  const input = [...parseSignatureInputs(res.headers)!.values()][0]!;
  t.is(buildSignatureBase({ message: res, request: req }, input.components, input.raw), v07.response.signature_base);
});

test('httpsig wimse-07 - request verifies under the profile with the WIT cnf.jwk at the vector time', (t) => {
  const { req } = messages(v07);
  t.true(hasWimseSignature({ ...req, headers: req.headers }));
  const created = paramOf(v07.request.signature_input, 'created');
  const replay = new ReplayCache();
  const v = verifyWimseRequestSignature(req, { jwk: v07.caller_public_jwk, alg: 'EdDSA' }, { audiences: [AUD], nowSec: created + 10, replay });
  t.is(v.label, 'sig1');
  t.is(v.nonce, 'abcd1111');
  t.is(v.created, created);
  t.is(v.expires, paramOf(v07.request.signature_input, 'expires'));
  t.true(v.signResponse);
  t.is(v.audience, AUD);
  t.deepEqual(v.covered, ['"@method"', '"@path"', '"@query"', '"workload-identity-token"']);
  t.deepEqual(v.digestAlgorithms, []);
  // The same nonce again is a replay.
  const e = t.throws(() => verifyWimseRequestSignature(req, { jwk: v07.caller_public_jwk, alg: 'EdDSA' }, { audiences: [AUD], nowSec: created + 11, replay }), { instanceOf: AuthnError });
  t.is(e?.code, 'httpsig.nonce_replay');
});

test('httpsig wimse-07 - request wimse-aud is checked against configured audiences only', (t) => {
  const { req } = messages(v07);
  const created = paramOf(v07.request.signature_input, 'created');
  // The Host field names svcb.example.com; that must not make its URI an accepted audience.
  const e = t.throws(() => verifyWimseRequestSignature(req, { jwk: v07.caller_public_jwk, alg: 'EdDSA' }, { audiences: ['https://svcb.example.com/other'], nowSec: created }), { instanceOf: AuthnError });
  t.is(e?.code, 'httpsig.aud_mismatch');
  t.is(e?.status, 400);
});

test('httpsig wimse-07 - request is expired after expires + skew', (t) => {
  const { req } = messages(v07);
  const expires = paramOf(v07.request.signature_input, 'expires');
  t.notThrows(() => verifyWimseRequestSignature(req, { jwk: v07.caller_public_jwk, alg: 'EdDSA' }, { audiences: [AUD], nowSec: expires + 60 }));
  const e = t.throws(() => verifyWimseRequestSignature(req, { jwk: v07.caller_public_jwk, alg: 'EdDSA' }, { audiences: [AUD], nowSec: expires + 61 }), { instanceOf: AuthnError });
  t.is(e?.code, 'httpsig.expired');
});

test('httpsig wimse-07 - request rerouted to another path fails with bad_signature', (t) => {
  const { req } = messages(v07);
  const created = paramOf(v07.request.signature_input, 'created');
  const e = t.throws(() => verifyWimseRequestSignature({ ...req, path: '/gimme-ice-cream-other' }, { jwk: v07.caller_public_jwk, alg: 'EdDSA' }, { audiences: [AUD], nowSec: created }), { instanceOf: AuthnError });
  t.is(e?.code, 'httpsig.bad_signature');
});

test('httpsig wimse-07 - response verifies with the server WIT cnf.jwk and wimse-req-nonce == request nonce', (t) => {
  const { req, res } = messages(v07);
  const created = paramOf(v07.response.signature_input, 'created');
  // Default options: the 302 s window is inside the 300 s cap plus the skew allowance.
  const v = verifyWimseResponseSignature(res, { jwk: v07.callee_public_jwk, alg: 'EdDSA' }, { request: req, nonce: 'abcd1111', signResponse: true }, { nowSec: created + 10 });
  t.truthy(v);
  t.is(v!.nonce, 'abcd2222');
  t.deepEqual(v!.digestAlgorithms, ['sha-256']); // over "No ice cream today.\n\n"
});

test('httpsig wimse-07 - both example windows (300 s and 302 s) verify with the default cap and skew, at any time inside them', (t) => {
  const { req, res } = messages(v07);
  t.is(paramOf(v07.request.signature_input, 'expires') - paramOf(v07.request.signature_input, 'created'), 300);
  const created = paramOf(v07.response.signature_input, 'created');
  const expires = paramOf(v07.response.signature_input, 'expires');
  t.is(expires - created, RES_WINDOW);
  for (const nowSec of [created, created + 151, expires]) {
    t.notThrows(() => verifyWimseRequestSignature(req, { jwk: v07.caller_public_jwk, alg: 'EdDSA' }, { audiences: [AUD], nowSec }));
    t.notThrows(() => verifyWimseResponseSignature(res, { jwk: v07.callee_public_jwk, alg: 'EdDSA' }, { request: req, nonce: 'abcd1111', signResponse: true }, { nowSec }));
  }
  // Without the skew allowance the 302 s window is beyond a 300 s cap.
  const e = t.throws(() => verifyWimseResponseSignature(res, { jwk: v07.callee_public_jwk, alg: 'EdDSA' }, { request: req, nonce: 'abcd1111', signResponse: true }, { nowSec: created, maxSkewSec: 0 }), { instanceOf: AuthnError });
  t.is(e?.code, 'httpsig.window_too_long');
});

test('httpsig wimse-07 - a window beyond the cap plus the skew allowance is still refused', (t) => {
  const { req, res } = messages(v07);
  const created = paramOf(v07.response.signature_input, 'created');
  // 302 s > 240 s + 60 s: refused, before the signature is looked at.
  const e = t.throws(() => verifyWimseResponseSignature(res, { jwk: v07.callee_public_jwk, alg: 'EdDSA' }, { request: req, nonce: 'abcd1111', signResponse: true }, { nowSec: created, maxWindowSec: 240 }), { instanceOf: AuthnError });
  t.is(e?.code, 'httpsig.window_too_long');
  const r = t.throws(() => verifyWimseRequestSignature(req, { jwk: v07.caller_public_jwk, alg: 'EdDSA' }, { audiences: [AUD], nowSec: created, maxWindowSec: 239 }), { instanceOf: AuthnError });
  t.is(r?.code, 'httpsig.window_too_long');
});

test('httpsig wimse-07 - response with a different request nonce is refused', (t) => {
  const { req, res } = messages(v07);
  const created = paramOf(v07.response.signature_input, 'created');
  const e = t.throws(() => verifyWimseResponseSignature(res, { jwk: v07.callee_public_jwk, alg: 'EdDSA' }, { request: req, nonce: 'abcd9999', signResponse: true }, { nowSec: created, maxWindowSec: RES_WINDOW }), { instanceOf: AuthnError });
  t.is(e?.code, 'httpsig.req_nonce_mismatch');
});

test('httpsig wimse-07 - response lifted onto a request for another path fails with bad_signature', (t) => {
  const { req, res } = messages(v07);
  const created = paramOf(v07.response.signature_input, 'created');
  const e = t.throws(() => verifyWimseResponseSignature(res, { jwk: v07.callee_public_jwk, alg: 'EdDSA' }, { request: { ...req, path: '/other' }, nonce: 'abcd1111', signResponse: true }, { nowSec: created, maxWindowSec: RES_WINDOW }), { instanceOf: AuthnError });
  t.is(e?.code, 'httpsig.bad_signature');
});

test('httpsig wimse-07 - response body changed with the digest left intact fails with digest_mismatch', (t) => {
  const { req, res } = messages(v07);
  const created = paramOf(v07.response.signature_input, 'created');
  const e = t.throws(() => verifyWimseResponseSignature({ ...res, body: enc.encode('No ice cream today.\n') }, { jwk: v07.callee_public_jwk, alg: 'EdDSA' }, { request: req, nonce: 'abcd1111', signResponse: true }, { nowSec: created, maxWindowSec: RES_WINDOW }), { instanceOf: AuthnError });
  t.is(e?.code, 'httpsig.digest_mismatch');
});

// -06: the generic RFC 9421 engine verifies and re-signs it; the -07 profile refuses it.

test('httpsig wimse-06 - request and response verify through the generic engine', (t) => {
  const { req, res } = messages(v06);
  const rq = verifyMessageSignature({ message: req }, 'wimse', { key: createPublicKey({ key: v06.caller_public_jwk as JsonWebKey, format: 'jwk' }), alg: 'ed25519' });
  t.is(rq.base, v06.request.signature_base);
  const rs = verifyMessageSignature({ message: res, request: req }, 'wimse', { key: createPublicKey({ key: v06.callee_public_jwk as JsonWebKey, format: 'jwk' }), alg: 'ed25519' });
  t.is(rs.base, v06.response.signature_base);
});

test('httpsig wimse-06 - re-signing with the published keys is byte-exact', (t) => {
  const { req, res } = messages(v06);
  for (const [ctx, who, expected] of [
    [{ message: req }, 'caller', v06.request],
    [{ message: res, request: req }, 'callee', v06.response],
  ] as const) {
    const input = parseSignatureInputs(ctx.message.headers)!.get('wimse')!;
    const key = createPrivateKey({ key: v06.private_keys![who], format: 'jwk' });
    const sig = signMessage(ctx, { label: 'wimse', components: input.components, params: input.params, key: { key, alg: 'ed25519' } });
    t.is(sig.signatureInput, `${expected.signature_input}`);
    t.is(sig.base, expected.signature_base);
    t.is(sig.signature, ctx.message.headers.get('signature')![0]!);
  }
});

test('httpsig wimse-06 - the -07 profile refuses the -06 request: @path/@query not covered', (t) => {
  const { req } = messages(v06);
  const created = paramOf(v06.request.signature_input, 'created');
  const e = t.throws(() => verifyWimseRequestSignature(req, { jwk: v06.caller_public_jwk, alg: 'EdDSA' }, { audiences: [AUD], nowSec: created }), { instanceOf: AuthnError });
  t.is(e?.code, 'httpsig.component_missing');
  t.regex(e!.detail, /"@path"/);
});

test('httpsig wimse-06 - the -07 profile refuses the -06 response: "@path";req not covered', (t) => {
  const { req, res } = messages(v06);
  const created = paramOf(v06.response.signature_input, 'created');
  const e = t.throws(() => verifyWimseResponseSignature(res, { jwk: v06.callee_public_jwk, alg: 'EdDSA' }, { request: req, nonce: 'abcd1111', signResponse: true }, { nowSec: created, maxWindowSec: RES_WINDOW }), { instanceOf: AuthnError });
  t.is(e?.code, 'httpsig.component_missing');
  t.regex(e!.detail, /"@path";req/);
});

// Our signer, given the example's inputs, writes the example's Signature-Input and signature base
// byte for byte (the -07 private keys are not published, so the signature bytes themselves differ).

test('httpsig wimse-07 - signWimseRequest reproduces the example Signature-Input and signature base', (t) => {
  const { req } = messages(v07);
  const created = paramOf(v07.request.signature_input, 'created');
  const clock = new ManualClock(created * 1000);
  const { privateKey } = generateKeyPairSync('ed25519');
  const headers = v07.request.headers.filter(([n]) => !/^signature/i.test(n));
  const s = signWimseRequest({ method: req.method, path: req.path, query: req.query, headers, key: { privateKey, alg: 'EdDSA' }, audience: AUD, signResponse: true, clock, ttlSec: 300, nonce: 'abcd1111', label: 'sig1' });
  t.is(s.signatureInput, v07.request.signature_input);
  t.is(s.base, v07.request.signature_base);
});

test('httpsig wimse-07 - signWimseResponse reproduces the example Signature-Input, Content-Digest and signature base', (t) => {
  const { req, res } = messages(v07);
  const created = paramOf(v07.response.signature_input, 'created');
  const clock = new ManualClock(created * 1000);
  const { privateKey } = generateKeyPairSync('ed25519');
  const headers = v07.response.headers.filter(([n]) => !/^(signature|content-digest)/i.test(n));
  const s = signWimseResponse({ status: res.status, headers, body: res.body!, request: req, requestNonce: 'abcd1111', key: { privateKey, alg: 'EdDSA' }, clock, ttlSec: 302, nonce: 'abcd2222', label: 'sig1' });
  t.is(s.contentDigest, res.headers.get('content-digest')![0]);
  t.is(s.signatureInput, v07.response.signature_input);
  t.is(s.base, v07.response.signature_base);
});
