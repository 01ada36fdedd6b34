/**
 * Strict JWS Compact Serialization (RFC 7515 §7.1) for WITs and WPTs, and the signature
 * primitive over node:crypto (synchronous: a per-request check must not queue behind a thread
 * pool, and jose's asynchronous WebCrypto path costs more than the signature itself).
 *
 * Parsing is deliberately narrow (RFC 8725 §2, §3.1, §3.11; workload-creds-02 §3):
 * - the size cap is checked before anything else is looked at;
 * - exactly three segments of unpadded base64url (`[A-Za-z0-9_-]+`), no whitespace;
 * - the header and the payload are JSON objects without duplicate member names;
 * - `crit` is rejected (we understand no extension), and so are `jku`, `x5u`, `jwk` and `x5c`:
 *   keys come only from configuration, never from the token (workload-creds-02 §3);
 * - `b64: false` (RFC 7797) is covered by the `crit` rule, since it requires `crit`.
 * Errors are coded under the caller's area (`wit.` or `wpt.`).
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { throwAuthnError, type FailureMode } from './errors.ts';
import { parseStrictJsonObject } from './strict-json.ts';
import { isSigningAlg, type PublicJwk, type SigningAlg } from '../identity/jwk.ts';

export interface ParsedJws {
  readonly header: Record<string, unknown>;
  readonly payload: Record<string, unknown>;
  /** ASCII bytes of `BASE64URL(header) "." BASE64URL(payload)`: what the signature covers. */
  readonly signingInput: Buffer;
  readonly signature: Buffer;
}

const B64URL_SEGMENT = /^[A-Za-z0-9_-]+$/;
/** Header parameters that point at keys carried by, or fetched because of, the token. */
const FORBIDDEN_HEADER_PARAMS = ['jku', 'x5u', 'jwk', 'x5c'] as const;

/**
 * Parse a compact JWS of at most `maxBytes`. Throws AuthnError `<area>.too_large`,
 * `<area>.malformed`, `<area>.duplicate_member`, `<area>.crit` or `<area>.header_param`.
 */
export function parseCompactJws(token: string, maxBytes: number, mode: FailureMode): ParsedJws {
  // The token is ASCII when well-formed, so length in UTF-16 units bounds the bytes we accept.
  if (token.length > maxBytes) throwAuthnError(mode, 'too_large', `token exceeds ${maxBytes} bytes`);
  const first = token.indexOf('.');
  const second = first < 0 ? -1 : token.indexOf('.', first + 1);
  if (second < 0 || token.indexOf('.', second + 1) >= 0) throwAuthnError(mode, 'malformed', 'not a compact JWS (three segments)');
  const h = token.slice(0, first);
  const p = token.slice(first + 1, second);
  const s = token.slice(second + 1);
  if (!B64URL_SEGMENT.test(h) || !B64URL_SEGMENT.test(p) || !B64URL_SEGMENT.test(s))
    throwAuthnError(mode, 'malformed', 'segments must be unpadded base64url');
  const header = decodeJsonSegment(h, 'header', mode);
  const payload = decodeJsonSegment(p, 'payload', mode);
  if ('crit' in header) throwAuthnError(mode, 'crit', 'the "crit" header parameter is not supported');
  for (const param of FORBIDDEN_HEADER_PARAMS)
    if (param in header) throwAuthnError(mode, 'header_param', `the "${param}" header parameter is not accepted`);
  return {
    header,
    payload,
    signingInput: Buffer.from(token.slice(0, second), 'ascii'),
    signature: Buffer.from(s, 'base64url'),
  };
}

function decodeJsonSegment(seg: string, what: string, mode: FailureMode): Record<string, unknown> {
  // A base64url segment whose length is 1 mod 4 cannot be produced by any encoder.
  if (seg.length % 4 === 1) throwAuthnError(mode, 'malformed', `${what} is not valid base64url`);
  const text = Buffer.from(seg, 'base64url').toString('utf8');
  const r = parseStrictJsonObject(text);
  if (r.ok) return r.value;
  if (r.reason === 'duplicate_member') throwAuthnError(mode, 'duplicate_member', `${what} has duplicate member names`);
  return throwAuthnError(mode, 'malformed', `${what} is not a JSON object`);
}

/** node:crypto parameters per JWS algorithm (RFC 7518 §3.4: ECDSA signatures are raw r||s). */
const VERIFY_PARAMS: Record<SigningAlg, { hash: string | null; dsaEncoding?: 'ieee-p1363'; sigBytes: number }> = {
  ES256: { hash: 'sha256', dsaEncoding: 'ieee-p1363', sigBytes: 64 },
  ES384: { hash: 'sha384', dsaEncoding: 'ieee-p1363', sigBytes: 96 },
  EdDSA: { hash: null, sigBytes: 64 },
  Ed25519: { hash: null, sigBytes: 64 },
};

/** Expected key type per algorithm, to refuse a key of the wrong kind before verifying. */
const KEY_TYPE: Record<SigningAlg, { type: string; curve?: string }> = {
  ES256: { type: 'ec', curve: 'prime256v1' },
  ES384: { type: 'ec', curve: 'secp384r1' },
  EdDSA: { type: 'ed25519' },
  Ed25519: { type: 'ed25519' },
};

/** True iff `key` suits `alg` (curve included). */
export function keyMatchesAlg(key: KeyObject, alg: SigningAlg): boolean {
  const want = KEY_TYPE[alg];
  if (key.asymmetricKeyType !== want.type) return false;
  return want.curve === undefined || key.asymmetricKeyDetails?.namedCurve === want.curve;
}

/** Verify a JWS signature. False on any mismatch, wrong length, or unsupported algorithm. */
export function verifyJwsSignature(alg: string, key: KeyObject, signingInput: Buffer, signature: Buffer): boolean {
  if (!isSigningAlg(alg)) return false;
  const p = VERIFY_PARAMS[alg];
  if (signature.length !== p.sigBytes || !keyMatchesAlg(key, alg)) return false;
  try {
    return p.dsaEncoding
      ? cryptoVerify(p.hash, signingInput, { key, dsaEncoding: p.dsaEncoding }, signature)
      : cryptoVerify(p.hash, signingInput, key, signature);
  } catch {
    return false;
  }
}

/**
 * Import a public JWK that `checkPublicJwk` already accepted. Only the public members are passed
 * on. Throws on a point that is not on the curve (callers map that to their own error).
 */
export function importPublicJwk(jwk: PublicJwk): KeyObject {
  const key =
    jwk.kty === 'EC' ? { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y } : { kty: 'OKP', crv: jwk.crv, x: jwk.x };
  return createPublicKey({ key: key as import('node:crypto').JsonWebKey, format: 'jwk' });
}

/**
 * A bounded map from a public key's members to its imported KeyObject. Importing an EC key
 * validates the point, which costs about as much as one signature verification; a workload
 * presents the same `cnf.jwk` on every request, so this keeps that cost off the hot path.
 */
export class PublicKeyCache {
  readonly #map = new Map<string, KeyObject>();
  constructor(readonly maxEntries = 10_000) {}

  get(jwk: PublicJwk): KeyObject {
    const id = `${jwk.kty}|${jwk.crv}|${jwk.x}|${jwk.y ?? ''}`;
    const hit = this.#map.get(id);
    if (hit) return hit;
    const key = importPublicJwk(jwk);
    if (this.#map.size >= this.maxEntries) this.#map.delete(this.#map.keys().next().value as string);
    this.#map.set(id, key);
    return key;
  }
}
