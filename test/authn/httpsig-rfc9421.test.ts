import test from 'ava';
import { readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, createSecretKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { headersFrom } from '../../src/authn/request.ts';
import { AuthnError } from '../../src/authn/errors.ts';
import {
  buildSignatureBase,
  parseSignatureInputs,
  signMessage,
  verifyMessageSignature,
  type HttpRequestMessage,
  type HttpResponseMessage,
  type Rfc9421Alg,
  type SignatureContext,
} from '../../src/authn/httpsig/index.ts';

const rfc = JSON.parse(readFileSync(new URL('../../../shared/vectors/rfc9421-b2.json', import.meta.url), 'utf8'));
const K = rfc.keys;

const enc = new TextEncoder();
const request: HttpRequestMessage = {
  method: rfc.messages.request.method,
  scheme: 'https',
  path: rfc.messages.request.path,
  query: `?${rfc.messages.request.query}`,
  headers: headersFrom(rfc.messages.request.headers),
  body: enc.encode(rfc.messages.request.body),
};
const response: HttpResponseMessage = {
  status: rfc.messages.response.status,
  headers: headersFrom(rfc.messages.response.headers),
  body: enc.encode(rfc.messages.response.body),
};

const publicKeyFor = (alg: Rfc9421Alg): KeyObject => {
  switch (alg) {
    case 'rsa-pss-sha512':
      return createPublicKey(K['test-key-rsa-pss'].public_pem);
    case 'ecdsa-p256-sha256':
      return createPublicKey(K['test-key-ecc-p256'].public_pem);
    case 'ed25519':
      return createPublicKey(K['test-key-ed25519'].public_pem);
    case 'hmac-sha256':
      return createSecretKey(Buffer.from(K['test-shared-secret'].secret_base64, 'base64'));
    default:
      throw new Error(`no key for ${alg}`);
  }
};

/** The test message with the case's Signature-Input and Signature fields added, as received. */
function signedContext(c: { message: string; signature_input: string; signature: string }): SignatureContext {
  const base = c.message === 'request' ? request : response;
  const headers = new Map(base.headers);
  headers.set('signature-input', [c.signature_input]);
  headers.set('signature', [c.signature]);
  const message = { ...base, headers };
  return c.message === 'request' ? { message } : { message, request };
}

for (const c of rfc.cases) {
  test(`httpsig rfc9421 - ${c.id} signature base is rebuilt byte-exact from the test ${c.message}`, (t) => {
    const ctx = signedContext(c);
    const input = parseSignatureInputs(ctx.message.headers)?.get(c.label);
    t.truthy(input);
    t.is(buildSignatureBase(ctx, input!.components, input!.raw), c.signature_base);
  });

  test(`httpsig rfc9421 - ${c.id} ${c.alg} signature verifies`, (t) => {
    const ctx = signedContext(c);
    const v = verifyMessageSignature(ctx, c.label, { key: publicKeyFor(c.alg), alg: c.alg });
    t.is(v.base, c.signature_base);
    t.is(v.input.params.get('keyid')?.value, c.keyid);
  });

  test(`httpsig rfc9421 - ${c.id} a changed message fails with bad_signature`, (t) => {
    const ctx = signedContext(c);
    const headers = new Map(ctx.message.headers);
    // The "@signature-params" line is always signed: change one of its parameters.
    const sigInput = c.signature_input.replace('created=1618884473', 'created=1618884474');
    headers.set('signature-input', [sigInput]);
    const e = t.throws(() => verifyMessageSignature({ ...ctx, message: { ...ctx.message, headers } }, c.label, { key: publicKeyFor(c.alg), alg: c.alg }), { instanceOf: AuthnError });
    t.is(e?.code, 'httpsig.bad_signature');
  });
}

test('httpsig rfc9421 - B.2.5 hmac-sha256 re-signs byte-exact', (t) => {
  const c = rfc.cases.find((x: { id: string }) => x.id === 'B.2.5');
  const input = parseSignatureInputs(signedContext(c).message.headers)!.get(c.label)!;
  const sig = signMessage({ message: request }, { label: c.label, components: input.components, params: input.params, key: { key: publicKeyFor('hmac-sha256'), alg: 'hmac-sha256' } });
  t.is(sig.signatureInput, c.signature_input);
  t.is(sig.signature, c.signature);
  t.is(sig.base, c.signature_base);
});

test('httpsig rfc9421 - B.2.6 ed25519 re-signs byte-exact', (t) => {
  const c = rfc.cases.find((x: { id: string }) => x.id === 'B.2.6');
  const input = parseSignatureInputs(signedContext(c).message.headers)!.get(c.label)!;
  const key = createPrivateKey(K['test-key-ed25519'].private_pem);
  const sig = signMessage({ message: request }, { label: c.label, components: input.components, params: input.params, key: { key, alg: 'ed25519' } });
  t.is(sig.signatureInput, c.signature_input);
  t.is(sig.signature, c.signature);
});

test('httpsig rfc9421 - B.2.4 ecdsa-p256-sha256 re-signed with the B.1.3 key verifies (randomized, raw r||s)', (t) => {
  const c = rfc.cases.find((x: { id: string }) => x.id === 'B.2.4');
  const input = parseSignatureInputs(signedContext(c).message.headers)!.get(c.label)!;
  const key = createPrivateKey({ key: K['test-key-ecc-p256'].private_jwk, format: 'jwk' });
  const sig = signMessage({ message: response, request }, { label: c.label, components: input.components, params: input.params, key: { key, alg: 'ecdsa-p256-sha256' } });
  t.is(sig.base, c.signature_base);
  t.regex(sig.signature, /^sig-b24=:[A-Za-z0-9+/]{86}==:$/); // 64 bytes
  const headers = new Map(response.headers);
  headers.set('signature-input', [sig.signatureInput]);
  headers.set('signature', [sig.signature]);
  t.notThrows(() => verifyMessageSignature({ message: { ...response, headers }, request }, c.label, { key: publicKeyFor('ecdsa-p256-sha256'), alg: 'ecdsa-p256-sha256' }));
});

test('httpsig rfc9421 - a key of another type fails with bad_signature, not a crypto exception', (t) => {
  const c = rfc.cases.find((x: { id: string }) => x.id === 'B.2.6');
  const e = t.throws(() => verifyMessageSignature(signedContext(c), c.label, { key: publicKeyFor('ecdsa-p256-sha256'), alg: 'ed25519' }), { instanceOf: AuthnError });
  t.is(e?.code, 'httpsig.bad_signature');
});

test('httpsig rfc9421 - an alg parameter that disagrees with the key is refused', (t) => {
  const c = rfc.cases.find((x: { id: string }) => x.id === 'B.2.6');
  const ctx = signedContext(c);
  const headers = new Map(ctx.message.headers);
  headers.set('signature-input', [c.signature_input + ';alg="hmac-sha256"']);
  const e = t.throws(() => verifyMessageSignature({ message: { ...ctx.message, headers } }, c.label, { key: publicKeyFor('ed25519'), alg: 'ed25519' }), { instanceOf: AuthnError });
  t.is(e?.code, 'httpsig.alg_unsupported');
});

test('httpsig rfc9421 - rsa-v1_5-sha256 and rsa-pss-sha512 sign and verify with a generated RSA key', (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const input = parseSignatureInputs(signedContext(rfc.cases[2]).message.headers)!.get('sig-b23')!;
  for (const alg of ['rsa-v1_5-sha256', 'rsa-pss-sha512'] as const) {
    const sig = signMessage({ message: request }, { label: 'sig1', components: input.components, params: input.params, key: { key: privateKey, alg } });
    const headers = new Map(request.headers);
    headers.set('signature-input', [sig.signatureInput]);
    headers.set('signature', [sig.signature]);
    t.notThrows(() => verifyMessageSignature({ message: { ...request, headers } }, 'sig1', { key: publicKey, alg }));
    const other = alg === 'rsa-pss-sha512' ? 'rsa-v1_5-sha256' : 'rsa-pss-sha512';
    const e = t.throws(() => verifyMessageSignature({ message: { ...request, headers } }, 'sig1', { key: publicKey, alg: other }), { instanceOf: AuthnError });
    t.is(e?.code, 'httpsig.bad_signature');
  }
});
