/**
 * The workload's own key pair. It is generated in this process and its private half never leaves
 * it: only the public JWK (with `alg`) travels, inside the proof of possession (workload-creds-02
 * §9.4: the key MUST be kept private and SHOULD be regenerated for each new WIT).
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { publicMembers, type PublicJwk } from '../identity/jwk.ts';

/** Algorithms the SDK generates keys for. ES256 MUST be supported (workload-creds-02 §3). */
export type WorkloadKeyAlg = 'ES256' | 'ES384' | 'EdDSA';
export const WORKLOAD_KEY_ALGS: readonly WorkloadKeyAlg[] = ['ES256', 'ES384', 'EdDSA'];

export interface WorkloadKeyPair {
  readonly alg: WorkloadKeyAlg;
  readonly privateKey: KeyObject;
  /** The public key with its `alg`: what the WIT's `cnf.jwk` will be. */
  readonly publicJwk: PublicJwk;
}

export function generateWorkloadKey(alg: WorkloadKeyAlg = 'ES256'): WorkloadKeyPair {
  const kp =
    alg === 'EdDSA'
      ? generateKeyPairSync('ed25519')
      : generateKeyPairSync('ec', { namedCurve: alg === 'ES256' ? 'P-256' : 'P-384' });
  const jwk = publicMembers(kp.publicKey.export({ format: 'jwk' }) as PublicJwk);
  return { alg, privateKey: kp.privateKey, publicJwk: { ...jwk, alg } };
}

/** Do two public JWKs name the same key? */
export function sameKey(a: PublicJwk, b: PublicJwk): boolean {
  const x = publicMembers(a);
  const y = publicMembers(b);
  return x.kty === y.kty && x.crv === y.crv && x.x === y.x && x.y === y.y;
}
