/**
 * The WIMSE signing key: the WIT's `cnf.jwk` and its `alg` (http-signature-07). The algorithm is
 * never taken from the message (`alg`/`keyid` parameters are forbidden).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { checkPublicJwk, isSigningAlg, publicMembers, type PublicJwk } from '../../identity/jwk.ts';
import { rfcAlgForJws, type Rfc9421Alg } from './algorithms.ts';
import { httpsigError } from './message.ts';

export interface ImportedKey {
  key: KeyObject;
  alg: Rfc9421Alg;
  jwsAlg: string;
}

// Imported keys by their public members: a WIT's cnf.jwk is parsed afresh on every request, so
// an identity-keyed cache would never hit. Bounded; the oldest entry leaves first.
const CACHE_MAX = 1024;
const cache = new Map<string, ImportedKey>();

/**
 * Import `jwk` for HTTP-signature verification with `alg`. Throws AuthnError
 * `httpsig.alg_unsupported` (unknown algorithm, or the JWK names another) or
 * `httpsig.key_invalid` (not a usable public key for that algorithm).
 */
export function importWimseKey(jwk: PublicJwk, alg: string): ImportedKey {
  if (typeof alg !== 'string' || !isSigningAlg(alg)) throw httpsigError('httpsig.alg_unsupported', `algorithm ${String(alg)} is not supported`);
  const rfcAlg = rfcAlgForJws(alg);
  if (!rfcAlg) throw httpsigError('httpsig.alg_unsupported', `algorithm ${alg} is not supported`);
  if (typeof jwk !== 'object' || jwk === null) throw httpsigError('httpsig.key_invalid', 'the key is not a JWK');
  // The JWK's own alg, when present, must be the same string (no EdDSA/Ed25519 aliasing here).
  if (jwk.alg !== undefined && jwk.alg !== alg) throw httpsigError('httpsig.alg_unsupported', 'the key is bound to another algorithm');
  const problem = checkPublicJwk({ ...jwk, alg });
  if (problem) throw httpsigError(problem.startsWith('alg') ? 'httpsig.alg_unsupported' : 'httpsig.key_invalid', `the key is not usable: ${problem}`);
  const pub = publicMembers(jwk);
  const cacheKey = `${alg}|${pub.kty}|${pub.crv}|${pub.x}|${pub.y ?? ''}`;
  const hit = cache.get(cacheKey);
  if (hit) return hit;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pub as import('node:crypto').JsonWebKey, format: 'jwk' });
  } catch {
    throw httpsigError('httpsig.key_invalid', 'the key cannot be imported');
  }
  const imported = { key, alg: rfcAlg, jwsAlg: alg };
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string);
  cache.set(cacheKey, imported);
  return imported;
}
