/**
 * Key material for our own signing keys: generation (node:crypto KeyObjects), the `kid`
 * (RFC 7638 JWK thumbprint), PKCS#8 PEM round trips.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { CaAlg, PublicKeyJwk } from './key-record.ts';

export interface KeyMaterial {
  readonly alg: CaAlg;
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly publicJwk: PublicKeyJwk;
}

/** ES256 = P-256 ECDSA (the default, mandatory to support per workload-creds); EdDSA = Ed25519. */
export function generateKeyMaterial(alg: CaAlg): KeyMaterial {
  const { privateKey, publicKey } =
    alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  return fromKeyPair(alg, privateKey, publicKey);
}

export function fromKeyPair(alg: CaAlg, privateKey: KeyObject, publicKey: KeyObject): KeyMaterial {
  const publicJwk = toPublicJwk(publicKey);
  return { alg, kid: jwkThumbprint(publicJwk), privateKey, publicKey, publicJwk };
}

/** Rebuild key material from a journal's PKCS#8 PEM; throws if it is not a key of `alg`. */
export function materialFromPem(alg: CaAlg, pem: string): KeyMaterial {
  const privateKey = createPrivateKey({ key: pem, format: 'pem' });
  if (algOfKey(privateKey) !== alg) throw new Error(`private key is not an ${alg} key`);
  return fromKeyPair(alg, privateKey, createPublicKey(privateKey));
}

export const toPkcs8Pem = (k: KeyObject): string => k.export({ format: 'pem', type: 'pkcs8' }).toString();

/** The algorithm our code uses for a key object, or undefined for any other key type. */
export function algOfKey(k: KeyObject): CaAlg | undefined {
  if (k.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (k.asymmetricKeyType === 'ec' && k.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  return undefined;
}

export function toPublicJwk(publicKey: KeyObject): PublicKeyJwk {
  const j = publicKey.export({ format: 'jwk' }) as Record<string, string>;
  if (j.kty === 'EC') return { kty: 'EC', crv: 'P-256', x: j.x!, y: j.y! };
  return { kty: 'OKP', crv: 'Ed25519', x: j.x! };
}

/** RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace. */
export function jwkThumbprint(jwk: PublicKeyJwk): string {
  const canonical =
    jwk.kty === 'EC'
      ? `{"crv":"${jwk.crv}","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`
      : `{"crv":"${jwk.crv}","kty":"OKP","x":"${jwk.x}"}`;
  return createHash('sha256').update(canonical).digest('base64url');
}
