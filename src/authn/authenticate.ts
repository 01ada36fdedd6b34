/**
 * Who is calling? One normalized request in, the authenticated caller out, or an AuthnError.
 *
 * Credential selection (DESIGN.md flow 3-4; workload-creds-02, wpt-02, http-signature-07,
 * mutual-tls-02):
 * - a legacy `Workload-Proof-Token` field (wpt-01) is rejected (`wpt.legacy_header`);
 * - `Authorization: WPT ...` -> the WIT, then the WPT (wpt-02);
 * - otherwise a `wimse-workload-to-workload` signature -> the WIT, then the HTTP message
 *   signature (http-signature-07, verified with the WIT's `cnf.jwk`);
 * - otherwise a WIT alone is refused: a WIT is not a bearer token (workload-creds-02 §3);
 * - an mTLS peer is verified as well whenever present. With application-level credentials it is
 *   the transport peer, never the caller (arch-08 layered authentication); alone, it is the caller.
 * Anything unexpected becomes `internal.error` (500): this function fails closed and throws
 * nothing but AuthnError.
 */
import { AuthnError, isAuthnError } from './errors.ts';
import { hasField, singleField } from './fields.ts';
import { hasWimseSignature, verifyWimseRequestSignature, type VerifiedHttpSignature } from './httpsig/index.ts';
import type { PublicKeyCache } from './jws.ts';
import { verifyMtlsPeer } from './mtls.ts';
import type { MtlsChainCache } from './mtls-cache.ts';
import type { AuthnSettings } from './options.ts';
import type { ReplayGuard } from './replay.ts';
import type { AuthnRequest } from './request.ts';
import type { WitCache } from './wit-cache.ts';
import { verifyWit, type VerifiedWit } from './wit.ts';
import { WPT_CHALLENGE, verifyWpt, wptError, wptFromAuthorization, type VerifiedWpt } from './wpt.ts';
import type { TrustBundleSet } from '../identity/trust-bundle.ts';

export interface AuthnContext {
  readonly bundles: TrustBundleSet;
  /** Verification time, seconds since the epoch. */
  readonly nowSec: number;
  /** Accepted WPT `aud` / `wimse-aud` values for this destination (trusted configuration). */
  readonly audiences: readonly string[];
  readonly settings: AuthnSettings;
  /** WPT `jti` cache (keys scoped per sender). */
  readonly replay: ReplayGuard;
  /** HTTP-signature nonce cache (nonces are unique regardless of sender). */
  readonly nonceReplay: ReplayGuard;
  readonly cnfKeys: PublicKeyCache;
  readonly witCache?: WitCache | undefined;
  readonly mtlsCache?: MtlsChainCache | undefined;
}

export type AuthnVia = 'wpt' | 'httpsig' | 'mtls';

export interface AuthnResult {
  /** The authenticated caller's workload identifier. */
  readonly caller: string;
  readonly via: AuthnVia;
  /** The mTLS peer, when the caller authenticated at the application level over mTLS. */
  readonly transportPeer?: string;
  readonly wit?: { readonly sub: string; readonly jti?: string; readonly exp: number; readonly iss?: string };
  readonly wpt?: VerifiedWpt;
  readonly httpSignature?: VerifiedHttpSignature;
}

/** Authenticate one request. Throws AuthnError only. */
export function authenticate(req: AuthnRequest, ctx: AuthnContext): AuthnResult {
  try {
    return authenticateOrThrow(req, ctx);
  } catch (e) {
    if (isAuthnError(e)) throw e;
    throw new AuthnError('internal.error', 500, 'internal error while authenticating');
  }
}

function authenticateOrThrow(req: AuthnRequest, ctx: AuthnContext): AuthnResult {
  // wpt-01's separate field; DESIGN.md pins wpt-02 and rejects older forms.
  if (hasField(req, 'workload-proof-token'))
    throw wptError('legacy_header', 'the Workload-Proof-Token field (wpt-01) is not accepted; use Authorization: WPT');

  const app = applicationLevel(req, ctx);
  const peer = req.peer && (req.peer.certificateChainPem !== undefined || req.peer.verifiedPrincipal !== undefined)
    ? verifyMtlsPeer(req.peer, ctx.bundles, ctx.nowSec, ctx.mtlsCache).uri
    : undefined;
  if (app) return peer === undefined ? app : { ...app, transportPeer: peer };
  if (peer !== undefined) return { caller: peer, via: 'mtls' };
  throw new AuthnError('request.no_credentials', 401, 'no workload credentials', WPT_CHALLENGE);
}

function applicationLevel(req: AuthnRequest, ctx: AuthnContext): AuthnResult | undefined {
  const wpt = wptInAuthorization(req);
  if (wpt !== undefined) {
    const wit = witOf(req, ctx, 401, WPT_CHALLENGE);
    const proof = verifyWpt(req, wpt, wit, { nowSec: ctx.nowSec, settings: ctx.settings, audiences: ctx.audiences, replay: ctx.replay });
    return { caller: wit.sub.uri, via: 'wpt', wit: witSummary(wit), wpt: proof };
  }
  if (hasWimseSignature(req)) {
    // http-signature-07: the WIT is validated before the signature.
    const wit = witOf(req, ctx, 400);
    const sig = verifyWimseRequestSignature(req, { jwk: wit.cnf.jwk, alg: wit.cnf.alg }, {
      audiences: ctx.audiences,
      nowSec: ctx.nowSec,
      maxSkewSec: ctx.settings.maxSkewSec,
      maxWindowSec: ctx.settings.maxHttpSigWindowSec,
      replay: ctx.nonceReplay,
    });
    return { caller: wit.sub.uri, via: 'httpsig', wit: witSummary(wit), httpSignature: sig };
  }
  if (hasField(req, 'workload-identity-token'))
    throw new AuthnError('wit.no_proof', 401, 'a WIT needs a proof of possession (WPT or HTTP signature)', WPT_CHALLENGE);
  return undefined;
}

/**
 * The WPT of the request's single `Authorization` field, or undefined when no field uses the
 * WPT scheme. A WPT next to another Authorization field is refused (wpt-02 §3.1: at most one).
 */
function wptInAuthorization(req: AuthnRequest): string | undefined {
  const lines = req.headers.get('authorization');
  if (!lines || lines.length === 0) return undefined;
  if (lines.length === 1 && !lines[0]!.includes(',')) return wptFromAuthorization(lines[0]!);
  const pieces = lines.flatMap((l) => l.split(','));
  if (pieces.some((p) => wptFromAuthorization(p) !== undefined))
    throw wptError('duplicate_authorization', 'more than one Authorization field');
  return undefined;
}

function witOf(req: AuthnRequest, ctx: AuthnContext, status: 400 | 401, challenge?: string): VerifiedWit {
  const field = singleField(req, 'workload-identity-token');
  if (field.kind === 'absent') throw new AuthnError('wit.missing', status, 'the Workload-Identity-Token field is required', challenge);
  if (field.kind === 'many') throw new AuthnError('wit.duplicate', status, 'more than one Workload-Identity-Token field', challenge);
  const cached = ctx.witCache?.get(field.value, ctx.bundles, ctx.nowSec);
  if (cached) return cached;
  const wit = verifyWit(field.value, {
    bundles: ctx.bundles,
    nowSec: ctx.nowSec,
    settings: ctx.settings,
    cnfKeys: ctx.cnfKeys,
    status,
    challenge,
  });
  ctx.witCache?.set(wit);
  return wit;
}

const witSummary = (w: VerifiedWit): NonNullable<AuthnResult['wit']> => ({
  sub: w.sub.uri,
  exp: w.exp,
  ...(w.jti !== undefined ? { jti: w.jti } : {}),
  ...(w.iss !== undefined ? { iss: w.iss } : {}),
});
