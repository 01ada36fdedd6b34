/**
 * Proof of possession for a WIT request (proto/wimse/workload/v1/workload.proto): a compact JWS,
 * `typ: wit-request+jwt`, signed by the workload's key, carrying that public key in its `jwk`
 * header, with claims `{sub, aud: "wimse:workload-api", iat, jti}`. The key is checked as a
 * WIT `cnf.jwk` would be (public, `alg` present and consistent), the signature with that very
 * key, and `iat` must be recent; `jti` is remembered so a captured proof cannot be replayed.
 */
import { compactVerify, importJWK, decodeProtectedHeader, type JWK } from 'jose';
import { checkPublicJwk, publicMembers, type PublicJwk } from '../identity/jwk.ts';
import type { ReplayGuard } from '../authn/replay.ts';

export const PROOF_TYP = 'wit-request+jwt';
export const PROOF_AUDIENCE = 'wimse:workload-api';
export const MAX_PROOF_BYTES = 4096;
export const PROOF_MAX_AGE_SEC = 60;

export class ProofError extends Error {
  override readonly name = 'ProofError';
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export interface VerifiedProof {
  /** The workload's public key, with `alg`: what the WIT's `cnf.jwk` will be. */
  jwk: PublicJwk;
  sub: string;
}

export async function verifyProof(proof: string, opts: { nowSec: number; replay: ReplayGuard; maxSkewSec?: number }): Promise<VerifiedProof> {
  if (typeof proof !== 'string' || proof.length === 0) throw new ProofError('proof.missing', 'a proof of possession is required');
  if (proof.length > MAX_PROOF_BYTES) throw new ProofError('proof.too_large', 'the proof is too large');
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    throw new ProofError('proof.malformed', 'the proof is not a compact JWS');
  }
  if (header.typ !== PROOF_TYP) throw new ProofError('proof.typ', `the proof must have typ ${PROOF_TYP}`);
  if (header.crit !== undefined) throw new ProofError('proof.malformed', 'crit is not supported');
  const jwkIn = header.jwk as Record<string, unknown> | undefined;
  if (!jwkIn) throw new ProofError('proof.no_key', 'the proof header must carry the public key (jwk)');
  const problem = checkPublicJwk(jwkIn, { requireAlg: true });
  if (problem) throw new ProofError('proof.bad_key', `the public key is not usable (${problem})`);
  if (header.alg !== jwkIn.alg) throw new ProofError('proof.alg_mismatch', 'the proof alg must equal the key alg');
  const jwk = jwkIn as PublicJwk;
  // jose knows Ed25519 keys under "EdDSA"; both names mean the same curve here.
  const joseAlg = jwk.alg === 'Ed25519' ? 'EdDSA' : jwk.alg!;
  let payload: Uint8Array;
  try {
    const key = await importJWK({ ...publicMembers(jwk), alg: joseAlg } as JWK, joseAlg);
    ({ payload } = await compactVerify(proof, key, { algorithms: [header.alg as string] }));
  } catch {
    throw new ProofError('proof.bad_signature', 'the proof signature does not verify with its key');
  }
  let claims: Record<string, unknown>;
  try {
    claims = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new ProofError('proof.malformed', 'the proof claims are not JSON');
  }
  if (typeof claims !== 'object' || claims === null) throw new ProofError('proof.malformed', 'the proof claims are not an object');
  if (claims.aud !== PROOF_AUDIENCE) throw new ProofError('proof.aud', `the proof audience must be ${PROOF_AUDIENCE}`);
  if (typeof claims.sub !== 'string') throw new ProofError('proof.sub', 'the proof must name the workload (sub)');
  const skew = opts.maxSkewSec ?? 60;
  if (typeof claims.iat !== 'number' || !Number.isFinite(claims.iat)) throw new ProofError('proof.iat', 'the proof needs iat');
  if (claims.iat > opts.nowSec + skew || claims.iat < opts.nowSec - PROOF_MAX_AGE_SEC - skew)
    throw new ProofError('proof.stale', 'the proof is too old or from the future');
  if (typeof claims.jti !== 'string' || claims.jti.length < 16 || claims.jti.length > 128)
    throw new ProofError('proof.jti', 'the proof needs a random jti of 16 to 128 characters');
  const thumb = `${jwk.kty}:${jwk.crv}:${jwk.x}`;
  const seen = opts.replay.checkAndStore(`proof:${thumb}:${claims.jti}`, claims.iat + PROOF_MAX_AGE_SEC + skew, opts.nowSec);
  if (seen === 'replayed') throw new ProofError('proof.replay', 'the proof was already used');
  // A full cache refuses rather than forget a proof that could still be replayed.
  if (seen !== 'fresh') throw new ProofError('proof.replay_cache_full', 'the replay cache is full; retry shortly');
  const { kid: _kid, use: _use, ...pub } = jwk;
  return { jwk: pub as PublicJwk, sub: claims.sub };
}
