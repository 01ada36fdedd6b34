/**
 * PLACEHOLDER, replaced by the HTTP Message Signatures work (src/authn/httpsig/). It exists so
 * that code calling the WIMSE profile verifier type-checks before that work lands; it rejects
 * every signature.
 */
import { AuthnError } from '../errors.ts';
import type { AuthnRequest } from '../request.ts';
import type { PublicJwk } from '../../identity/jwk.ts';
import type { ReplayGuard } from '../replay.ts';

export interface HttpSigVerifyOptions {
  /** Accepted `wimse-aud` values for this destination (trusted configuration). */
  audiences: readonly string[];
  /** Verification time, seconds since the epoch. */
  nowSec: number;
  /** Allowed clock skew in seconds. */
  maxSkewSec: number;
  /** Longest accepted `expires - created`, seconds. */
  maxWindowSec: number;
  /** Nonce replay cache; nonces are rejected on reuse regardless of sender. */
  replay?: ReplayGuard;
}

export interface VerifiedHttpSignature {
  label: string;
  nonce: string;
  created: number;
  expires: number;
  /** The request asked for a signed response (`wimse-sign-response`). */
  signResponse: boolean;
  /** Covered component identifiers, in order, e.g. `"@method"`. */
  covered: string[];
}

/** True if the request carries a signature tagged `wimse-workload-to-workload`. */
export function hasWimseSignature(req: AuthnRequest): boolean {
  return (req.headers.get('signature-input') ?? []).some((v) => v.includes('wimse-workload-to-workload'));
}

/**
 * Verify the request's WIMSE HTTP message signature (http-signature-07) with the caller's key
 * (the WIT's `cnf.jwk`, whose `alg` is the algorithm). Throws AuthnError (`httpsig.*`).
 */
export function verifyWimseRequestSignature(
  _req: AuthnRequest,
  _key: { jwk: PublicJwk; alg: string },
  _opts: HttpSigVerifyOptions,
): VerifiedHttpSignature {
  throw new AuthnError('httpsig.unsupported', 400, 'HTTP message signatures are not supported yet');
}
