/**
 * The WIMSE profile's adversarial cases (HTTP-Sig), each with its own
 * error code, for freshly generated ES256 and Ed25519 keys; plus the order of checks.
 */
import test from 'ava';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { AuthnError } from '../../src/authn/errors.ts';
import { ReplayCache } from '../../src/authn/replay.ts';
import { contentDigestValue } from '../../src/authn/content-digest.ts';
import type { PublicJwk } from '../../src/identity/jwk.ts';
import {
  component,
  hasWimseSignature,
  signMessage,
  verifyWimseRequestSignature,
  type BareItem,
  type ComponentId,
  type HttpRequestMessage,
  type HttpSigVerifyOptions,
  type Parameters,
  type Rfc9421Alg,
} from '../../src/authn/httpsig/index.ts';

interface Keys {
  alg: 'ES256' | 'EdDSA';
  rfcAlg: Rfc9421Alg;
  privateKey: KeyObject;
  jwk: PublicJwk;
}

function freshKeys(alg: 'ES256' | 'EdDSA'): Keys {
  const { privateKey, publicKey } = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  return { alg, rfcAlg: alg === 'ES256' ? 'ecdsa-p256-sha256' : 'ed25519', privateKey, jwk: { ...(publicKey.export({ format: 'jwk' }) as PublicJwk), alg } };
}
const KEYS = { ES256: freshKeys('ES256'), EdDSA: freshKeys('EdDSA') };
const OTHER = { ES256: freshKeys('ES256'), EdDSA: freshKeys('EdDSA') };

const NOW = 1_800_000_000;
const AUD = 'https://svcb.example.com/api';
const WIT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ3aW1zZTovL2V4YW1wbGUuY29tL2EifQ.c2ln';
const enc = new TextEncoder();

interface Craft {
  method?: string;
  path?: string;
  query?: string;
  headers?: [string, string][];
  body?: string;
  /** Do not add Content-Digest for the body. */
  noDigest?: boolean;
  /** Covered components; default: the profile's set for the message. */
  components?: ComponentId[];
  /** Parameter overrides (set, in order after the defaults); `undefined` drops one. */
  params?: Record<string, BareItem | undefined>;
  label?: string;
  signWith?: Keys;
  /** Extra Signature-Input / Signature members, appended as further field lines. */
  extra?: { input: string; signature: string };
}

const int = (value: number): BareItem => ({ type: 'integer', value });
const str = (value: string): BareItem => ({ type: 'string', value });
const PROFILE_FIELDS = ['workload-identity-token', 'content-type', 'content-digest', 'authorization', 'txn-token'];

/** A request signed by our own low-level signer, so that any profile rule can be broken. */
function craft(keys: Keys, c: Craft = {}): HttpRequestMessage {
  const headers = new Map<string, string[]>([['workload-identity-token', [WIT]]]);
  for (const [n, v] of c.headers ?? []) headers.set(n, [...(headers.get(n) ?? []), v]);
  const body = c.body === undefined ? undefined : enc.encode(c.body);
  if (body && body.length > 0 && !c.noDigest) headers.set('content-digest', [contentDigestValue(body)]);
  const msg: HttpRequestMessage = { method: c.method ?? 'POST', path: c.path ?? '/api', query: c.query ?? '?x=1', headers, ...(body ? { body } : {}) };
  const components = c.components ?? [component('@method'), component('@path'), component('@query'), ...PROFILE_FIELDS.filter((f) => headers.has(f)).map((f) => component(f))];
  const params: Parameters = new Map<string, BareItem>([
    ['created', int(NOW)],
    ['expires', int(NOW + 60)],
    ['nonce', str(randomBytes(12).toString('base64url'))],
    ['tag', str('wimse-workload-to-workload')],
    ['wimse-aud', str(AUD)],
  ]);
  for (const [k, v] of Object.entries(c.params ?? {})) {
    if (v === undefined) params.delete(k);
    else params.set(k, v);
  }
  const signer = c.signWith ?? keys;
  const sig = signMessage({ message: msg }, { label: c.label ?? 'wimse', components, params, key: { key: signer.privateKey, alg: signer.rfcAlg } });
  headers.set('signature-input', [sig.signatureInput, ...(c.extra ? [c.extra.input] : [])]);
  headers.set('signature', [sig.signature, ...(c.extra ? [c.extra.signature] : [])]);
  return msg;
}

const opts = (o: Partial<HttpSigVerifyOptions> = {}): HttpSigVerifyOptions => ({ audiences: [AUD], nowSec: NOW, ...o });
const verify = (keys: Keys, req: HttpRequestMessage, o?: Partial<HttpSigVerifyOptions>) =>
  verifyWimseRequestSignature(req, { jwk: keys.jwk, alg: keys.alg }, opts(o));

function expectCode(t: import('ava').ExecutionContext, fn: () => unknown, code: string): void {
  const e = t.throws(fn, { instanceOf: AuthnError }) as AuthnError | undefined;
  t.is(e?.code, code);
  t.is(e?.status, 400);
}

for (const alg of ['ES256', 'EdDSA'] as const) {
  const k = KEYS[alg];
  const T = (title: string) => `httpsig wimse ${alg} - ${title}`;

  test(T('a well-formed request verifies (control case)'), (t) => {
    const v = verify(k, craft(k, { body: '{"a":1}', headers: [['content-type', 'application/json']] }));
    t.is(v.alg, alg);
    t.deepEqual(v.digestAlgorithms, ['sha-256']);
  });

  for (const p of ['created', 'expires', 'nonce', 'wimse-aud']) {
    test(T(`${p} missing -> httpsig.param_missing`), (t) => {
      expectCode(t, () => verify(k, craft(k, { params: { [p]: undefined } })), 'httpsig.param_missing');
    });
  }

  test(T('tag missing -> httpsig.missing (no WIMSE signature)'), (t) => {
    const req = craft(k, { params: { tag: undefined } });
    t.false(hasWimseSignature({ ...req }));
    expectCode(t, () => verify(k, req), 'httpsig.missing');
  });

  test(T('keyid present -> httpsig.param_forbidden'), (t) => {
    expectCode(t, () => verify(k, craft(k, { params: { keyid: str('svc-a-key') } })), 'httpsig.param_forbidden');
  });

  test(T('alg present -> httpsig.param_forbidden (alg comes from cnf.jwk)'), (t) => {
    expectCode(t, () => verify(k, craft(k, { params: { alg: str(k.rfcAlg) } })), 'httpsig.param_forbidden');
  });

  test(T('wrong (legacy) tag -> httpsig.missing'), (t) => {
    expectCode(t, () => verify(k, craft(k, { params: { tag: str('wimse-service-to-service') } })), 'httpsig.missing');
  });

  test(T('two WIMSE-tagged signatures -> httpsig.multiple, even when one is valid'), (t) => {
    const second = craft(k, { label: 'sig2' });
    const req = craft(k, { extra: { input: second.headers.get('signature-input')![0]!, signature: second.headers.get('signature')![0]! } });
    expectCode(t, () => verify(k, req), 'httpsig.multiple');
  });

  test(T('a non-WIMSE signature under label "wimse" is not selected -> httpsig.missing'), (t) => {
    expectCode(t, () => verify(k, craft(k, { label: 'wimse', params: { tag: str('other-app') } })), 'httpsig.missing');
  });

  test(T('selection is by tag, not label: a WIMSE signature under any label verifies'), (t) => {
    const wimse = craft(k, { label: 'anything' });
    const other = craft(k, { label: 'wimse', params: { tag: str('other-app') } });
    const headers = new Map(wimse.headers);
    headers.set('signature-input', [...other.headers.get('signature-input')!, ...wimse.headers.get('signature-input')!]);
    headers.set('signature', [...other.headers.get('signature')!, ...wimse.headers.get('signature')!]);
    t.is(verify(k, { ...wimse, headers }).label, 'anything');
  });

  for (const c of ['@method', '@path', '@query']) {
    test(T(`${c} not covered -> httpsig.component_missing`), (t) => {
      const components = ['@method', '@path', '@query'].filter((x) => x !== c).map((x) => component(x));
      expectCode(t, () => verify(k, craft(k, { components: [...components, component('workload-identity-token')] })), 'httpsig.component_missing');
    });
  }

  for (const [field, value] of [
    ['content-type', 'application/json'],
    ['authorization', 'Bearer abc'],
    ['txn-token', 'eyJ0eXAiOiJ0eG4ifQ.e30.c2ln'],
    ['workload-identity-token', WIT],
  ] as const) {
    test(T(`${field} present but not covered -> httpsig.component_missing`), (t) => {
      const headers: [string, string][] = field === 'workload-identity-token' ? [] : [[field, value]];
      const components = [component('@method'), component('@path'), component('@query'), ...PROFILE_FIELDS.filter((f) => f !== field && (f === 'workload-identity-token' || headers.some(([n]) => n === f))).map((f) => component(f))];
      expectCode(t, () => verify(k, craft(k, { headers, components })), 'httpsig.component_missing');
    });
  }

  test(T('content-digest present but not covered -> httpsig.component_missing'), (t) => {
    const components = [component('@method'), component('@path'), component('@query'), component('workload-identity-token')];
    expectCode(t, () => verify(k, craft(k, { body: 'hello', components })), 'httpsig.component_missing');
  });

  test(T('a covered field with extra parameters does not count as covered'), (t) => {
    const components = [component('@method'), component('@path'), component('@query'), component('workload-identity-token', { bs: true })];
    expectCode(t, () => verify(k, craft(k, { components })), 'httpsig.component_missing');
  });

  test(T('body present without Content-Digest -> httpsig.digest_missing'), (t) => {
    expectCode(t, () => verify(k, craft(k, { body: 'hello', noDigest: true })), 'httpsig.digest_missing');
  });

  test(T('body announced by Content-Length but not passed, without Content-Digest -> httpsig.digest_missing'), (t) => {
    expectCode(t, () => verify(k, craft(k, { headers: [['content-length', '5']] })), 'httpsig.digest_missing');
  });

  test(T('Content-Digest present but the body was not provided -> httpsig.body_unavailable'), (t) => {
    const req = craft(k, { body: 'hello' });
    const { body: _drop, ...noBody } = req;
    expectCode(t, () => verify(k, noBody), 'httpsig.body_unavailable');
  });

  test(T('tampered body with the digest header intact -> httpsig.digest_mismatch'), (t) => {
    const req = craft(k, { body: '{"amount":10}' });
    expectCode(t, () => verify(k, { ...req, body: enc.encode('{"amount":99}') }), 'httpsig.digest_mismatch');
  });

  test(T('rerouted @path -> httpsig.bad_signature'), (t) => {
    expectCode(t, () => verify(k, { ...craft(k), path: '/admin' }), 'httpsig.bad_signature');
  });

  test(T('rerouted @query -> httpsig.bad_signature'), (t) => {
    expectCode(t, () => verify(k, { ...craft(k), query: '?x=2' }), 'httpsig.bad_signature');
  });

  test(T('changed @method -> httpsig.bad_signature'), (t) => {
    expectCode(t, () => verify(k, { ...craft(k), method: 'DELETE' }), 'httpsig.bad_signature');
  });

  test(T('signed by another key -> httpsig.bad_signature'), (t) => {
    expectCode(t, () => verify(k, craft(k, { signWith: OTHER[alg] })), 'httpsig.bad_signature');
  });

  test(T('expires before created -> httpsig.bad_window'), (t) => {
    expectCode(t, () => verify(k, craft(k, { params: { expires: int(NOW - 1) } })), 'httpsig.bad_window');
  });

  test(T('created in the future beyond skew -> httpsig.created_in_future'), (t) => {
    t.notThrows(() => verify(k, craft(k, { params: { created: int(NOW + 60), expires: int(NOW + 120) } })));
    expectCode(t, () => verify(k, craft(k, { params: { created: int(NOW + 61), expires: int(NOW + 120) } })), 'httpsig.created_in_future');
  });

  test(T('window longer than the maximum -> httpsig.window_too_long'), (t) => {
    t.notThrows(() => verify(k, craft(k, { params: { expires: int(NOW + 300) } })));
    expectCode(t, () => verify(k, craft(k, { params: { expires: int(NOW + 301) } })), 'httpsig.window_too_long');
    expectCode(t, () => verify(k, craft(k, { params: { expires: int(NOW + 120) } }), { maxWindowSec: 60 }), 'httpsig.window_too_long');
  });

  test(T('expired beyond skew -> httpsig.expired'), (t) => {
    const req = craft(k, { params: { created: int(NOW - 200), expires: int(NOW - 100) } });
    expectCode(t, () => verify(k, req), 'httpsig.expired');
    t.notThrows(() => verify(k, req, { maxSkewSec: 100 }));
  });

  test(T('wimse-aud for another service -> httpsig.aud_mismatch'), (t) => {
    expectCode(t, () => verify(k, craft(k, { params: { 'wimse-aud': str('https://svcc.example.com/api') } })), 'httpsig.aud_mismatch');
  });

  test(T('wimse-aud matching only the Host field -> httpsig.aud_mismatch'), (t) => {
    const req = craft(k, { headers: [['host', 'evil.example.com']], params: { 'wimse-aud': str('https://evil.example.com/api') } });
    expectCode(t, () => verify(k, req), 'httpsig.aud_mismatch');
  });

  test(T('nonce replay -> httpsig.nonce_replay, regardless of sender'), (t) => {
    const replay = new ReplayCache();
    const nonce = str('n-1');
    t.notThrows(() => verify(k, craft(k, { params: { nonce } }), { replay }));
    const other = OTHER[alg];
    expectCode(t, () => verifyWimseRequestSignature(craft(other, { params: { nonce } }), { jwk: other.jwk, alg }, opts({ replay })), 'httpsig.nonce_replay');
  });

  test(T('a forged request does not burn its nonce (recorded only after the signature verifies)'), (t) => {
    const replay = new ReplayCache();
    const nonce = str('n-2');
    expectCode(t, () => verify(k, craft(k, { params: { nonce }, signWith: OTHER[alg] }), { replay }), 'httpsig.bad_signature');
    expectCode(t, () => verify(k, { ...craft(k, { params: { nonce }, body: 'x' }), body: enc.encode('y') }, { replay }), 'httpsig.digest_mismatch');
    t.notThrows(() => verify(k, craft(k, { params: { nonce } }), { replay }));
  });

  test(T('order: an expired request signed by the wrong key reports expiry (window before signature)'), (t) => {
    const req = craft(k, { params: { created: int(NOW - 500), expires: int(NOW - 400) }, signWith: OTHER[alg] });
    expectCode(t, () => verify(k, req), 'httpsig.expired');
  });

  test(T('order: a tampered body under a bad signature reports the signature (signature before digest)'), (t) => {
    const req = craft(k, { body: 'a', signWith: OTHER[alg] });
    expectCode(t, () => verify(k, { ...req, body: enc.encode('b') }), 'httpsig.bad_signature');
  });

  test(T('order: a missing parameter is reported before a missing component'), (t) => {
    expectCode(t, () => verify(k, craft(k, { params: { nonce: undefined }, components: [component('@method')] })), 'httpsig.param_missing');
  });

  test(T('the key alg must match cnf.jwk.alg; unsupported algs are refused'), (t) => {
    const req = craft(k);
    const otherAlg = alg === 'ES256' ? 'EdDSA' : 'ES256';
    expectCode(t, () => verifyWimseRequestSignature(req, { jwk: k.jwk, alg: otherAlg }, opts()), 'httpsig.alg_unsupported');
    expectCode(t, () => verifyWimseRequestSignature(req, { jwk: { ...k.jwk, alg: undefined }, alg: 'HS256' }, opts()), 'httpsig.alg_unsupported');
    expectCode(t, () => verifyWimseRequestSignature(req, { jwk: { ...k.jwk, alg: undefined }, alg: 'none' }, opts()), 'httpsig.alg_unsupported');
  });
}

test('httpsig wimse - no Signature-Input at all -> httpsig.missing', (t) => {
  const req: HttpRequestMessage = { method: 'GET', path: '/', query: '', headers: new Map([['workload-identity-token', [WIT]]]) };
  t.false(hasWimseSignature(req));
  expectCode(t, () => verify(KEYS.EdDSA, req), 'httpsig.missing');
});

test('httpsig wimse - unparseable Signature-Input mentioning the tag -> hasWimseSignature true, verify httpsig.malformed', (t) => {
  const req = craft(KEYS.EdDSA);
  const headers = new Map(req.headers);
  headers.set('signature-input', [`${req.headers.get('signature-input')![0]!},,`]);
  t.true(hasWimseSignature({ ...req, headers }));
  expectCode(t, () => verify(KEYS.EdDSA, { ...req, headers }), 'httpsig.malformed');
});

test('httpsig wimse - Signature member absent or not a byte sequence -> httpsig.malformed', (t) => {
  const req = craft(KEYS.EdDSA);
  for (const sig of ['other=:AAAA:', 'wimse="AAAA"', 'wimse=(:AAAA:)']) {
    const headers = new Map(req.headers);
    headers.set('signature', [sig]);
    expectCode(t, () => verify(KEYS.EdDSA, { ...req, headers }), 'httpsig.malformed');
  }
});

test('httpsig wimse - parameters of the wrong type -> httpsig.malformed', (t) => {
  const k = KEYS.EdDSA;
  expectCode(t, () => verify(k, craft(k, { params: { created: str(String(NOW)) } })), 'httpsig.malformed');
  expectCode(t, () => verify(k, craft(k, { params: { expires: { type: 'decimal', value: NOW + 1.5 } } })), 'httpsig.malformed');
  expectCode(t, () => verify(k, craft(k, { params: { nonce: int(5) } })), 'httpsig.malformed');
  expectCode(t, () => verify(k, craft(k, { params: { 'wimse-aud': { type: 'token', value: 'aud' } } })), 'httpsig.malformed');
  expectCode(t, () => verify(k, craft(k, { params: { 'wimse-sign-response': str('yes') } })), 'httpsig.malformed');
  expectCode(t, () => verify(k, craft(k, { params: { nonce: str('') } })), 'httpsig.malformed');
});

test('httpsig wimse - header values carrying CR/LF (signature base line injection) -> httpsig.malformed', (t) => {
  const k = KEYS.EdDSA;
  const req = craft(k);
  const headers = new Map(req.headers);
  headers.set('workload-identity-token', [`${WIT}\n"@path": /admin`]);
  expectCode(t, () => verify(k, { ...req, headers }), 'httpsig.malformed');
});

test('httpsig wimse - duplicate covered components -> httpsig.malformed', (t) => {
  const k = KEYS.EdDSA;
  const req = craft(k);
  const headers = new Map(req.headers);
  const si = req.headers.get('signature-input')![0]!.replace('("@method"', '("@method" "@method"');
  headers.set('signature-input', [si]);
  expectCode(t, () => verify(k, { ...req, headers }), 'httpsig.malformed');
});

test('httpsig wimse - an unrelated signature with an unknown component does not prevent verifying the WIMSE one', (t) => {
  const k = KEYS.EdDSA;
  const req = craft(k, { extra: { input: 'other=("@unknown-component");created=1', signature: 'other=:AAAA:' } });
  t.is(verify(k, req).label, 'wimse');
});

test('httpsig wimse - cnf.jwk problems: private member, wrong curve, EdDSA vs Ed25519 mismatch', (t) => {
  const k = KEYS.EdDSA;
  const req = craft(k);
  expectCode(t, () => verifyWimseRequestSignature(req, { jwk: { ...k.jwk, d: 'AAAA' }, alg: 'EdDSA' }, opts()), 'httpsig.key_invalid');
  expectCode(t, () => verifyWimseRequestSignature(req, { jwk: { ...k.jwk, crv: 'X25519' }, alg: 'EdDSA' }, opts()), 'httpsig.key_invalid');
  expectCode(t, () => verifyWimseRequestSignature(req, { jwk: { ...k.jwk, x: 'AAAA' }, alg: 'EdDSA' }, opts()), 'httpsig.key_invalid');
  // cnf.jwk.alg is the algorithm: a different name for it is not silently accepted.
  expectCode(t, () => verifyWimseRequestSignature(req, { jwk: k.jwk, alg: 'Ed25519' }, opts()), 'httpsig.alg_unsupported');
  t.notThrows(() => verifyWimseRequestSignature(req, { jwk: { ...k.jwk, alg: 'Ed25519' }, alg: 'Ed25519' }, opts()));
});

test('httpsig wimse - the options are checked (misuse is a TypeError, not an AuthnError)', (t) => {
  const k = KEYS.EdDSA;
  const req = craft(k);
  t.throws(() => verify(k, req, { audiences: [] }), { instanceOf: TypeError });
  t.throws(() => verify(k, req, { nowSec: Number.NaN }), { instanceOf: TypeError });
  t.throws(() => verify(k, req, { maxSkewSec: -1 }), { instanceOf: TypeError });
});
