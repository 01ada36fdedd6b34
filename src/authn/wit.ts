/**
 * Workload Identity Token verification (draft-ietf-wimse-workload-creds-02 §3-§5), in the order
 * of draft-ietf-wimse-workload-creds-02 (§3, §5.1.3):
 *   1. size and compact-JWS syntax (jws.ts: segments, strict JSON, no crit/jku/x5u/jwk/x5c);
 *   2. header: `typ` wit+jwt, `alg` an asymmetric signature algorithm;
 *   3. `sub` a canonical workload identifier of a configured trust domain, under a scheme that
 *      domain's issuers may assert; `alg` allowed for that domain;
 *   4. key chosen by `kid` among THAT domain's WIT keys only, then the signature;
 *   5. time claims (`exp` with skew, optional `iat`, `nbf` if present), `iss` allow-list, no `aud`;
 *   6. `cnf.jwk`: a public key whose `alg` is allowed and consistent with `kty`/`crv`.
 * Nothing from the claims is used before the signature is checked, except `sub`'s trust domain
 * to choose which anchors to try (§3: anchors are bound to the trust domain of `sub`).
 */
import type { KeyObject } from 'node:crypto';
import { throwAuthnError, type FailureMode } from './errors.ts';
import { importPublicJwk, keyMatchesAlg, parseCompactJws, verifyJwsSignature, type PublicKeyCache } from './jws.ts';
import type { AuthnSettings } from './options.ts';
import { tokenHash } from './token-hash.ts';
import { checkPublicJwk, isSigningAlg, type PublicJwk, type SigningAlg } from '../identity/jwk.ts';
import { parseWorkloadId, type WorkloadId } from '../identity/workload-id.ts';
import type { TrustBundleSet, TrustDomainBundle, WitKey } from '../identity/trust-bundle.ts';

export interface VerifiedWit {
  /** The token exactly as received. */
  readonly token: string;
  /** b64url(SHA-256(token)): what a WPT's `wth` must equal (computed once, cached with the WIT). */
  readonly wth: string;
  readonly sub: WorkloadId;
  readonly exp: number;
  readonly iat?: number;
  readonly jti?: string;
  readonly iss?: string;
  /** The proof-of-possession key (RFC 7800 §3.2); its `alg` is the one every PoP must use. */
  readonly cnf: { readonly jwk: PublicJwk; readonly alg: SigningAlg; readonly key: KeyObject };
  /** The bundle whose key verified the token (caches compare it by identity). */
  readonly bundle: TrustDomainBundle;
}

export interface WitCheckContext {
  readonly bundles: TrustBundleSet;
  readonly nowSec: number;
  readonly settings: AuthnSettings;
  readonly cnfKeys: PublicKeyCache;
  /** 400 on its own (§5.2); 401 with the `WPT` challenge on a WPT request (docs/authn.md). */
  readonly status: 400 | 401;
  readonly challenge?: string | undefined;
}

const WIT_TYPES = new Set(['wit+jwt', 'application/wit+jwt']);

/** Verify one WIT. Throws AuthnError `wit.*`. */
export function verifyWit(token: string, ctx: WitCheckContext): VerifiedWit {
  const mode: FailureMode = { area: 'wit', status: ctx.status, challenge: ctx.challenge };
  // 1. Syntax.
  const jws = parseCompactJws(token, ctx.settings.witMaxBytes, mode);
  const { header, payload } = jws;

  // 2. Explicit typing (RFC 8725 §3.11; media type compared case-insensitively, RFC 7515 §4.1.9).
  if (typeof header.typ !== 'string' || !WIT_TYPES.has(header.typ.toLowerCase()))
    throwAuthnError(mode, 'typ', 'typ must be wit+jwt');
  // An asymmetric signature algorithm we implement: never `none`, never HS* (RFC 8725 §3.1).
  const alg = header.alg;
  if (!isSigningAlg(alg)) throwAuthnError(mode, 'alg', 'alg is not an accepted signature algorithm');
  // 3. Trust domain from sub: it selects the anchors (workload-creds-02 §3).
  const sub = parseWorkloadId(payload.sub);
  if (!sub.ok) throwAuthnError(mode, 'bad_sub', `sub is not a workload identifier (${sub.reason})`);
  const id = (sub as { value: WorkloadId }).value;
  const bundle = ctx.bundles.get(id.trustDomain);
  if (!bundle) throwAuthnError(mode, 'unknown_trust_domain', 'sub is in a trust domain that is not configured');
  const policy = ctx.settings.policyFor(id.trustDomain);
  if (!policy.schemes.includes(id.scheme)) throwAuthnError(mode, 'sub_scheme', `the trust domain does not issue ${id.scheme} identifiers`);
  if (!policy.witAlgs.includes(alg as string)) throwAuthnError(mode, 'alg', 'alg is not allowed for this trust domain');

  // 4. Key from that trust domain only, then the signature.
  const issuerKey = selectKey(bundle!, header.kid, mode);
  if (!sameFamily(issuerKey.alg, alg as string)) throwAuthnError(mode, 'alg', 'alg does not match the key');
  const key = issuerKeyObject(issuerKey);
  if (!key || !keyMatchesAlg(key, alg as SigningAlg)) throwAuthnError(mode, 'unknown_kid', 'the configured key is unusable');
  if (!verifyJwsSignature(alg as string, key!, jws.signingInput, jws.signature)) throwAuthnError(mode, 'bad_signature', 'signature does not verify');

  // 5. Time and issuer claims.
  const now = ctx.nowSec;
  const skew = ctx.settings.maxSkewSec;
  const exp = payload.exp;
  if (exp === undefined) throwAuthnError(mode, 'exp_missing', 'exp is required');
  if (!isNumericDate(exp)) throwAuthnError(mode, 'malformed', 'exp must be a NumericDate');
  if (now > (exp as number) + skew) throwAuthnError(mode, 'expired', 'the WIT has expired');
  const iat = payload.iat;
  if (iat !== undefined) {
    if (!isNumericDate(iat)) throwAuthnError(mode, 'malformed', 'iat must be a NumericDate');
    if (ctx.settings.checkWitIat && (iat as number) > now + skew) throwAuthnError(mode, 'iat_future', 'iat is in the future');
  }
  const nbf = payload.nbf;
  if (nbf !== undefined) {
    if (!isNumericDate(nbf)) throwAuthnError(mode, 'malformed', 'nbf must be a NumericDate');
    if ((nbf as number) > now + skew) throwAuthnError(mode, 'not_yet_valid', 'the WIT is not valid yet');
  }
  // RFC 7519 §4.1.3: a recipient that does not identify itself with `aud` must reject; a WIT is
  // not audience-restricted, so an `aud` marks some other kind of token.
  if ('aud' in payload) throwAuthnError(mode, 'aud_present', 'a WIT does not carry aud');
  const iss = payload.iss;
  if (iss !== undefined && typeof iss !== 'string') throwAuthnError(mode, 'malformed', 'iss must be a string');
  if (policy.issuers && (iss === undefined || !policy.issuers.includes(iss as string)))
    throwAuthnError(mode, 'iss_not_allowed', 'iss is not an issuer of this trust domain');
  const jti = payload.jti;
  if (jti !== undefined && typeof jti !== 'string') throwAuthnError(mode, 'malformed', 'jti must be a string');

  // 6. The confirmation key (RFC 7800 §3.2; workload-creds-02 §3: cnf.jwk.alg is required).
  const cnf = payload.cnf;
  if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf) || !('jwk' in cnf)) throwAuthnError(mode, 'cnf_missing', 'cnf.jwk is required');
  const jwk = (cnf as { jwk: unknown }).jwk;
  const problem = checkPublicJwk(jwk, { requireAlg: true });
  if (problem) throwAuthnError(mode, CNF_PROBLEM[problem], `cnf.jwk is not acceptable (${problem})`);
  const pub = jwk as PublicJwk;
  let cnfKey: KeyObject | undefined;
  try {
    cnfKey = ctx.cnfKeys.get(pub);
  } catch {
    throwAuthnError(mode, 'cnf_invalid', 'cnf.jwk is not a valid public key');
  }

  return {
    token,
    wth: tokenHash(token),
    sub: id,
    exp: exp as number,
    ...(iat !== undefined ? { iat: iat as number } : {}),
    ...(jti !== undefined ? { jti: jti as string } : {}),
    ...(iss !== undefined ? { iss: iss as string } : {}),
    cnf: { jwk: pub, alg: pub.alg as SigningAlg, key: cnfKey! },
    bundle: bundle!,
  };
}

const CNF_PROBLEM = {
  not_an_object: 'cnf_invalid',
  malformed: 'cnf_invalid',
  private_key: 'cnf_private_key',
  alg_missing: 'cnf_alg_missing',
  alg_not_allowed: 'cnf_alg_not_allowed',
  kty_mismatch: 'cnf_key_mismatch',
  crv_mismatch: 'cnf_key_mismatch',
} as const;

const isNumericDate = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** `EdDSA` and `Ed25519` (RFC 9864) name the same issuer key algorithm; others must be equal. */
const sameFamily = (keyAlg: string, alg: string): boolean =>
  keyAlg === alg || ((keyAlg === 'EdDSA' || keyAlg === 'Ed25519') && (alg === 'EdDSA' || alg === 'Ed25519'));

/** By `kid` within the one trust domain; without `kid`, only when the domain has a single key. */
function selectKey(bundle: TrustDomainBundle, kid: unknown, mode: FailureMode): WitKey {
  if (kid === undefined) {
    if (bundle.witKeys.length === 1) return bundle.witKeys[0]!;
    return throwAuthnError(mode, 'kid_required', 'kid is required: the trust domain has several WIT keys');
  }
  if (typeof kid !== 'string') return throwAuthnError(mode, 'malformed', 'kid must be a string');
  for (const k of bundle.witKeys) if (k.kid === kid) return k;
  return throwAuthnError(mode, 'unknown_kid', 'no WIT key of the trust domain has this kid');
}

// Bundle keys are immutable objects; a new bundle brings new objects, so this never goes stale.
const issuerKeys = new WeakMap<WitKey, KeyObject | null>();

function issuerKeyObject(k: WitKey): KeyObject | undefined {
  let key = issuerKeys.get(k);
  if (key === undefined) {
    try {
      key = importPublicJwk(k);
    } catch {
      key = null;
    }
    issuerKeys.set(k, key);
  }
  return key ?? undefined;
}
