/**
 * The public key a WIC is issued over. Three sources:
 * - a PKCS#10 CSR: its self-signature is verified (proof of possession); only its public key is
 *   used, never its requested names or extensions;
 * - a public JWK: checked with checkPublicJwk (no private members, kty/crv consistent with alg);
 * - a fresh key pair made here for a caller that cannot make one (an Envoy over SDS); its private
 *   key is returned once as PKCS#8 PEM and never kept or logged.
 * Accepted leaf keys: P-256, P-384, Ed25519 (the asymmetric algorithms of SIGNING_ALGS).
 */

import { createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { checkPublicJwk, type PublicJwk } from '../identity/index.ts';
import { CaRequestError } from './errors.ts';
import type { CaAlg } from './key-record.ts';
import { toPkcs8Pem } from './keys.ts';
import { pkiCrypto, x509 } from './pki.ts';

export type LeafKeySource =
  | { readonly csr: string | Uint8Array }
  | { readonly jwk: PublicJwk }
  | { readonly generate: CaAlg };

export interface LeafKey {
  readonly publicKey: KeyObject;
  /** Only when the key pair was generated here. */
  readonly privateKeyPem?: string;
}

const MAX_CSR_BYTES = 16 * 1024;

export async function resolveLeafKey(src: LeafKeySource): Promise<LeafKey> {
  if ('generate' in src) {
    const kp = src.generate === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return { publicKey: kp.publicKey, privateKeyPem: toPkcs8Pem(kp.privateKey) };
  }
  if ('jwk' in src) return { publicKey: fromJwk(src.jwk) };
  if ('csr' in src) return { publicKey: await fromCsr(src.csr) };
  throw new TypeError('key source must have csr, jwk or generate');
}

function fromJwk(jwk: PublicJwk): KeyObject {
  const problem = checkPublicJwk(jwk, { requireAlg: false });
  if (problem) throw new CaRequestError('ca.invalid_public_key', `public JWK refused (${problem})`);
  try {
    return acceptable(createPublicKey({ key: jwk as unknown as JsonWebKey, format: 'jwk' }));
  } catch (e) {
    if (e instanceof CaRequestError) throw e;
    throw new CaRequestError('ca.invalid_public_key', 'public JWK is not a valid key');
  }
}

async function fromCsr(csr: string | Uint8Array): Promise<KeyObject> {
  const size = typeof csr === 'string' ? csr.length : csr.byteLength;
  if (size === 0 || size > MAX_CSR_BYTES) throw new CaRequestError('ca.invalid_csr', 'CSR is empty or too large');
  let req: x509.Pkcs10CertificateRequest;
  try {
    req = new x509.Pkcs10CertificateRequest(typeof csr === 'string' ? csr : Buffer.from(csr));
  } catch {
    throw new CaRequestError('ca.invalid_csr', 'not a PKCS#10 certification request');
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(req.publicKey.rawData), format: 'der', type: 'spki' });
  } catch {
    throw new CaRequestError('ca.invalid_csr', 'CSR public key is not readable');
  }
  acceptable(key, 'ca.invalid_csr');
  let ok = false;
  try {
    ok = await req.verify(pkiCrypto);
  } catch {
    ok = false;
  }
  // RFC 2986 §3: the signature proves possession of the private key.
  if (!ok) throw new CaRequestError('ca.invalid_csr', 'CSR signature does not verify');
  return key;
}

function acceptable(k: KeyObject, code: 'ca.invalid_public_key' | 'ca.invalid_csr' = 'ca.invalid_public_key'): KeyObject {
  if (k.type !== 'public') throw new CaRequestError(code, 'not a public key');
  const t = k.asymmetricKeyType;
  const curve = k.asymmetricKeyDetails?.namedCurve;
  if (t === 'ed25519' || (t === 'ec' && (curve === 'prime256v1' || curve === 'secp384r1'))) return k;
  throw new CaRequestError(code, `key type ${t ?? 'unknown'}${curve ? `/${curve}` : ''} is not accepted`);
}
