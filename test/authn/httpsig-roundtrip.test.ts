/** signWimseRequest / signWimseResponse -> verify, for ES256 and EdDSA, with and without a body. */
import test from 'ava';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { ManualClock } from '../../src/identity/clock.ts';
import { AuthnError } from '../../src/authn/errors.ts';
import { ReplayCache } from '../../src/authn/replay.ts';
import type { PublicJwk } from '../../src/identity/jwk.ts';
import {
  parseSignatureInputs,
  signWimseRequest,
  signWimseResponse,
  verifyWimseRequestSignature,
  verifyWimseResponseSignature,
  type HttpRequestMessage,
} from '../../src/authn/httpsig/index.ts';

const AUD = 'https://svcb.example.com/orders';
const enc = new TextEncoder();
const clock = new ManualClock(Date.UTC(2026, 10, 26, 12, 0, 0));
const nowSec = () => Math.floor(clock.now() / 1000);

function keys(alg: 'ES256' | 'EdDSA'): { alg: string; privateKey: KeyObject; jwk: PublicJwk } {
  const { privateKey, publicKey } = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  return { alg, privateKey, jwk: { ...(publicKey.export({ format: 'jwk' }) as PublicJwk), alg } };
}

const code = (t: import('ava').ExecutionContext, fn: () => unknown): string | undefined => (t.throws(fn, { instanceOf: AuthnError }) as AuthnError | undefined)?.code;

for (const alg of ['ES256', 'EdDSA'] as const) {
  const caller = keys(alg);
  const callee = keys(alg);
  for (const withBody of [false, true]) {
    const T = (s: string) => `httpsig roundtrip ${alg} ${withBody ? 'with' : 'without'} body - ${s}`;
    const body = withBody ? enc.encode('{"item":"vanilla","n":2}') : undefined;

    test(T('a signed request verifies and a signed response verifies against it'), (t) => {
      const headers: [string, string][] = [['Workload-Identity-Token', 'eyJ.wit.caller'], ['Authorization', 'Bearer ctx'], ...(body ? ([['Content-Type', 'application/json']] as [string, string][]) : [])];
      const signed = signWimseRequest({ method: 'POST', path: '/orders', query: '?pretty', headers, ...(body ? { body } : {}), key: { privateKey: caller.privateKey, alg }, audience: AUD, signResponse: true, clock });
      t.is(signed.label, 'wimse');
      t.is(signed.expires - signed.created, 60);
      t.is(signed.headers.has('content-digest'), withBody);
      const input = [...parseSignatureInputs(signed.headers)!.values()][0]!;
      t.deepEqual(input.components.map((c) => c.id), ['"@method"', '"@path"', '"@query"', '"workload-identity-token"', ...(body ? ['"content-type"', '"content-digest"'] : []), '"authorization"']);
      t.false(input.params.has('keyid') || input.params.has('alg'));
      const req: HttpRequestMessage = { method: 'POST', path: '/orders', query: '?pretty', headers: signed.headers, ...(body ? { body } : {}) };
      const v = verifyWimseRequestSignature(req, { jwk: caller.jwk, alg }, { audiences: [AUD], nowSec: nowSec(), replay: new ReplayCache() });
      t.is(v.nonce, signed.nonce);
      t.true(v.signResponse);
      t.deepEqual(v.digestAlgorithms, body ? ['sha-256'] : []);

      const resBody = withBody ? enc.encode('{"ok":true}') : undefined;
      const res = signWimseResponse({
        status: 201,
        headers: [['Workload-Identity-Token', 'eyJ.wit.callee'], ...(resBody ? ([['Content-Type', 'application/json']] as [string, string][]) : [])],
        ...(resBody ? { body: resBody } : {}),
        request: req,
        requestNonce: v.nonce,
        key: { privateKey: callee.privateKey, alg },
        clock,
      });
      const rInput = [...parseSignatureInputs(res.headers)!.values()][0]!;
      t.deepEqual(rInput.components.map((c) => c.id), ['"@status"', '"workload-identity-token"', ...(resBody ? ['"content-type"', '"content-digest"'] : []), '"@method";req', '"@path";req', '"@query";req']);
      t.deepEqual(rInput.params.get('wimse-req-nonce'), { type: 'string', value: signed.nonce });
      const rv = verifyWimseResponseSignature({ status: 201, headers: res.headers, ...(resBody ? { body: resBody } : {}) }, { jwk: callee.jwk, alg }, { request: req, nonce: signed.nonce, signResponse: true }, { nowSec: nowSec() });
      t.is(rv?.nonce, res.nonce);
      // A different status breaks the response signature.
      t.is(code(t, () => verifyWimseResponseSignature({ status: 200, headers: res.headers, ...(resBody ? { body: resBody } : {}) }, { jwk: callee.jwk, alg }, { request: req, nonce: signed.nonce, signResponse: true }, { nowSec: nowSec() })), 'httpsig.bad_signature');
    });
  }

  test(`httpsig roundtrip ${alg} - private keys given as JWK sign too`, (t) => {
    const jwk = caller.privateKey.export({ format: 'jwk' });
    const s = signWimseRequest({ method: 'GET', path: '/', query: '', headers: [['workload-identity-token', 'w']], key: { privateKey: jwk, alg }, audience: AUD, clock });
    t.notThrows(() => verifyWimseRequestSignature({ method: 'GET', path: '/', query: '', headers: s.headers }, { jwk: caller.jwk, alg }, { audiences: [AUD], nowSec: nowSec() }));
  });
}

for (const alg of ['ES256', 'EdDSA'] as const) {
  const k = keys(alg);
  const key = { jwk: k.jwk, alg };
  const req: HttpRequestMessage = { method: 'GET', path: '/a', query: '?v=1', headers: new Map() };
  const signed = () => signWimseResponse({ status: 200, headers: [['workload-identity-token', 'w']], request: req, requestNonce: 'req-1', key: { privateKey: k.privateKey, alg }, clock });
  const ctx = { request: req, nonce: 'req-1', signResponse: true };
  const T = (s: string) => `httpsig response ${alg} - ${s}`;

  test(T('unsigned response after wimse-sign-response -> httpsig.response_unsigned'), (t) => {
    const res = { status: 200, headers: new Map([['content-type', ['text/plain']]]) };
    t.is(code(t, () => verifyWimseResponseSignature(res, key, ctx, { nowSec: nowSec() })), 'httpsig.response_unsigned');
  });

  test(T('unsigned response when the client requires signing -> httpsig.response_unsigned'), (t) => {
    const res = { status: 200, headers: new Map() };
    t.is(code(t, () => verifyWimseResponseSignature(res, key, { ...ctx, signResponse: false }, { nowSec: nowSec(), requireSigned: true })), 'httpsig.response_unsigned');
  });

  test(T('unsigned response when signing was not asked for is accepted as unsigned'), (t) => {
    t.is(verifyWimseResponseSignature({ status: 200, headers: new Map() }, key, { ...ctx, signResponse: false }, { nowSec: nowSec() }), undefined);
  });

  test(T('response without wimse-req-nonce -> httpsig.param_missing'), (t) => {
    const res = signed();
    const headers = new Map(res.headers);
    headers.set('signature-input', [res.signatureInput.replace(';wimse-req-nonce="req-1"', '')]);
    t.is(code(t, () => verifyWimseResponseSignature({ status: 200, headers }, key, ctx, { nowSec: nowSec() })), 'httpsig.param_missing');
  });

  test(T('response with the wrong wimse-req-nonce -> httpsig.req_nonce_mismatch'), (t) => {
    const res = signed();
    t.is(code(t, () => verifyWimseResponseSignature({ status: 200, headers: res.headers }, key, { ...ctx, nonce: 'req-2' }, { nowSec: nowSec() })), 'httpsig.req_nonce_mismatch');
  });

  test(T('response lifted onto another request with the same nonce -> httpsig.bad_signature'), (t) => {
    const res = signed();
    for (const other of [{ ...req, path: '/b' }, { ...req, query: '?v=2' }, { ...req, method: 'POST' }]) {
      t.is(code(t, () => verifyWimseResponseSignature({ status: 200, headers: res.headers }, key, { ...ctx, request: other }, { nowSec: nowSec() })), 'httpsig.bad_signature');
    }
  });

  test(T('response keyid/alg parameters -> httpsig.param_forbidden'), (t) => {
    const res = signed();
    const headers = new Map(res.headers);
    headers.set('signature-input', [`${res.signatureInput};keyid="k"`]);
    t.is(code(t, () => verifyWimseResponseSignature({ status: 200, headers }, key, ctx, { nowSec: nowSec() })), 'httpsig.param_forbidden');
  });

  test(T('expired response -> httpsig.expired'), (t) => {
    const res = signed();
    t.is(code(t, () => verifyWimseResponseSignature({ status: 200, headers: res.headers }, key, ctx, { nowSec: res.expires + 61 })), 'httpsig.expired');
  });

  test(T('response body without Content-Digest -> httpsig.digest_missing'), (t) => {
    const res = signed();
    t.is(code(t, () => verifyWimseResponseSignature({ status: 200, headers: res.headers, body: enc.encode('late body') }, key, ctx, { nowSec: nowSec() })), 'httpsig.digest_missing');
  });
}

for (const alg of ['Ed25519', 'ES384'] as const) {
  test(`httpsig roundtrip ${alg} - the other accepted JWS algorithms sign and verify`, (t) => {
    const { privateKey, publicKey } = alg === 'ES384' ? generateKeyPairSync('ec', { namedCurve: 'P-384' }) : generateKeyPairSync('ed25519');
    const jwk = { ...(publicKey.export({ format: 'jwk' }) as PublicJwk), alg };
    const s = signWimseRequest({ method: 'DELETE', path: '/x', query: '', headers: [['workload-identity-token', 'w']], key: { privateKey, alg }, audience: AUD, clock });
    const v = verifyWimseRequestSignature({ method: 'DELETE', path: '/x', query: '', headers: s.headers }, { jwk, alg }, { audiences: [AUD], nowSec: nowSec() });
    t.is(v.alg, alg);
    t.is(code(t, () => verifyWimseRequestSignature({ method: 'DELETE', path: '/y', query: '', headers: s.headers }, { jwk, alg }, { audiences: [AUD], nowSec: nowSec() })), 'httpsig.bad_signature');
  });
}

test('httpsig roundtrip - signer misuse is a TypeError: no WIT field, key of another type', (t) => {
  const k = keys('EdDSA');
  t.throws(() => signWimseRequest({ method: 'GET', path: '/', query: '', headers: [], key: { privateKey: k.privateKey, alg: 'EdDSA' }, audience: AUD, clock }), { instanceOf: TypeError });
  t.throws(() => signWimseRequest({ method: 'GET', path: '/', query: '', headers: [['workload-identity-token', 'w']], key: { privateKey: k.privateKey, alg: 'ES256' }, audience: AUD, clock }), { instanceOf: TypeError });
  t.throws(() => signWimseRequest({ method: 'GET', path: '/', query: '', headers: [['workload-identity-token', 'w']], key: { privateKey: k.privateKey, alg: 'HS256' }, audience: AUD, clock }), { instanceOf: TypeError });
});
