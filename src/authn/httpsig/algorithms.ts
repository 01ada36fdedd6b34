/**
 * Signature algorithms for HTTP message signatures.
 *
 * - RFC 9421 §3.3 registry names, for the generic engine and the RFC's own test vectors.
 * - JWS names (RFC 9421 §3.3.7), for the WIMSE profile, where the algorithm is the `alg` of the
 *   WIT's `cnf.jwk` (http-signature-07): ES256 is the same computation as
 *   ecdsa-p256-sha256 (raw 64-byte r||s), EdDSA/Ed25519 the same as ed25519.
 *
 * `verifyBytes` never throws: a key of the wrong type, a signature of the wrong length or an
 * error inside the crypto library all give `false`.
 */
import { createHmac, sign, timingSafeEqual, verify, constants, type KeyObject } from 'node:crypto';

export const RFC9421_ALGS = [
  'rsa-pss-sha512',
  'rsa-v1_5-sha256',
  'hmac-sha256',
  'ecdsa-p256-sha256',
  'ecdsa-p384-sha384',
  'ed25519',
] as const;
export type Rfc9421Alg = (typeof RFC9421_ALGS)[number];

export const isRfc9421Alg = (alg: unknown): alg is Rfc9421Alg =>
  typeof alg === 'string' && (RFC9421_ALGS as readonly string[]).includes(alg);

/** The RFC 9421 computation behind a JWS `alg` (RFC 9421 §3.3.7), for the algorithms we accept. */
const JWS_TO_RFC: Record<string, Rfc9421Alg> = {
  ES256: 'ecdsa-p256-sha256',
  ES384: 'ecdsa-p384-sha384',
  EdDSA: 'ed25519',
  Ed25519: 'ed25519',
};

export function rfcAlgForJws(jwsAlg: string): Rfc9421Alg | undefined {
  return Object.hasOwn(JWS_TO_RFC, jwsAlg) ? JWS_TO_RFC[jwsAlg] : undefined;
}

interface AlgSpec {
  /** What the key must be: `asymmetricKeyType` (+ curve), or `secret`. */
  keyType: 'rsa' | 'rsa-pss' | 'ec' | 'ed25519' | 'secret';
  curve?: string;
  /** Exact signature length, where the algorithm fixes it. */
  sigLength?: number;
}

const SPECS: Record<Rfc9421Alg, AlgSpec> = {
  'rsa-pss-sha512': { keyType: 'rsa-pss' },
  'rsa-v1_5-sha256': { keyType: 'rsa' },
  'hmac-sha256': { keyType: 'secret', sigLength: 32 },
  'ecdsa-p256-sha256': { keyType: 'ec', curve: 'prime256v1', sigLength: 64 },
  'ecdsa-p384-sha384': { keyType: 'ec', curve: 'secp384r1', sigLength: 96 },
  ed25519: { keyType: 'ed25519', sigLength: 64 },
};

/** True if `key` is the kind of key `alg` uses (an RSA key serves both RSA algorithms). */
export function keyFitsAlg(alg: Rfc9421Alg, key: KeyObject): boolean {
  const spec = SPECS[alg];
  if (spec.keyType === 'secret') return key.type === 'secret';
  if (key.type === 'secret') return false;
  const kt = key.asymmetricKeyType;
  if (spec.keyType === 'rsa' || spec.keyType === 'rsa-pss') return kt === 'rsa' || kt === 'rsa-pss';
  if (kt !== spec.keyType) return false;
  return spec.curve === undefined || key.asymmetricKeyDetails?.namedCurve === spec.curve;
}

export function verifyBytes(alg: Rfc9421Alg, key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  const spec = SPECS[alg];
  if (spec.sigLength !== undefined && signature.length !== spec.sigLength) return false;
  if (!keyFitsAlg(alg, key)) return false;
  try {
    switch (alg) {
      case 'rsa-pss-sha512':
        return verify('sha512', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 }, signature);
      case 'rsa-v1_5-sha256':
        return verify('sha256', data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
      case 'hmac-sha256': {
        const mac = createHmac('sha256', key).update(data).digest();
        return timingSafeEqual(mac, signature);
      }
      case 'ecdsa-p256-sha256':
        return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
      case 'ecdsa-p384-sha384':
        return verify('sha384', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
      case 'ed25519':
        return verify(null, data, key, signature);
    }
  } catch {
    return false;
  }
}

/** Sign with a private (or, for HMAC, secret) key. Misuse (wrong key kind) throws TypeError. */
export function signBytes(alg: Rfc9421Alg, key: KeyObject, data: Uint8Array): Buffer {
  if (!keyFitsAlg(alg, key) || (key.type !== 'private' && key.type !== 'secret')) {
    throw new TypeError(`the key cannot sign with ${alg}`);
  }
  switch (alg) {
    case 'rsa-pss-sha512':
      return sign('sha512', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 });
    case 'rsa-v1_5-sha256':
      return sign('sha256', data, { key, padding: constants.RSA_PKCS1_PADDING });
    case 'hmac-sha256':
      return createHmac('sha256', key).update(data).digest();
    case 'ecdsa-p256-sha256':
      return sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
    case 'ecdsa-p384-sha384':
      return sign('sha384', data, { key, dsaEncoding: 'ieee-p1363' });
    case 'ed25519':
      return sign(null, data, key);
  }
}
