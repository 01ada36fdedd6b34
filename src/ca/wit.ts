/**
 * Workload Identity Tokens (workload-creds-02 §3–§5), minted with jose.
 *
 * Header: `alg` (ES256 or EdDSA), `typ: wit+jwt` (explicit typing, RFC 8725 §3.11), `kid`.
 * Claims: `sub` (the one workload identifier), `iat`, `exp` (default 1 h; capped by the signing
 * key's notAfter so no WIT outlives its key in the bundle), `jti` (128 random bits, base64url),
 * optional `iss`, and `cnf.jwk` (RFC 7800 §3.2): the workload's public key with its REQUIRED
 * `alg`, reduced to its public members plus `alg` so nothing else rides along.
 */
import { SignJWT } from 'jose';
import { randomBytes, type KeyObject } from 'node:crypto';
import { checkPublicJwk, publicMembers, type PublicJwk } from '../identity/index.ts';
import { CaRequestError } from './errors.ts';
import type { CaAlg } from './key-record.ts';

export const WIT_TYP = 'wit+jwt';

export interface WitSigner {
  readonly kid: string;
  readonly alg: CaAlg;
  readonly privateKey: KeyObject;
  /** ms; the WIT's exp never passes it. */
  readonly notAfter: number;
}

export interface MintedWit {
  readonly token: string;
  readonly sub: string;
  readonly jti: string;
  /** NumericDate (seconds). */
  readonly iat: number;
  readonly exp: number;
  readonly kid: string;
  readonly alg: CaAlg;
}

/** Check the confirmation key (creds §3: cnf.jwk.alg REQUIRED; public, asymmetric, consistent). */
export function checkCnfJwk(jwk: unknown): PublicJwk {
  const problem = checkPublicJwk(jwk, { requireAlg: true });
  if (problem) throw new CaRequestError('ca.invalid_public_key', `cnf.jwk refused (${problem})`);
  const j = jwk as PublicJwk;
  return { ...publicMembers(j), alg: j.alg };
}

export async function signWit(p: {
  signer: WitSigner;
  sub: string;
  cnf: PublicJwk;
  nowMs: number;
  ttlSec: number;
  iss?: string;
}): Promise<MintedWit> {
  const iat = Math.floor(p.nowMs / 1000);
  const exp = Math.min(iat + p.ttlSec, Math.floor(p.signer.notAfter / 1000));
  const jti = randomBytes(16).toString('base64url');
  const claims: Record<string, unknown> = { sub: p.sub, iat, exp, jti, cnf: { jwk: p.cnf } };
  if (p.iss !== undefined) claims.iss = p.iss;
  const token = await new SignJWT(claims)
    .setProtectedHeader({ alg: p.signer.alg, typ: WIT_TYP, kid: p.signer.kid })
    .sign(p.signer.privateKey);
  return { token, sub: p.sub, jti, iat, exp, kid: p.signer.kid, alg: p.signer.alg };
}
