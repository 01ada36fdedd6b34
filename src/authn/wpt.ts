/**
 * Workload Proof Token, draft-ietf-wimse-wpt-02: verification (recipient rules,
 * §3) and creation for clients. The WPT travels as `Authorization: WPT <jwt>` (§3.1; the scheme
 * is case-insensitive, the token is not). Every failure is 401 with `WWW-Authenticate: WPT`.
 *
 * Order: syntax, `typ`, `alg` string-equal to the WIT's `cnf.jwk.alg`, signature with `cnf.jwk`,
 * then claims (`aud`, `exp`, `wth`, `tth`, `oth`, `jti`), and the replay cache last so that a
 * rejected token never consumes its `jti`.
 */
import { randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { AuthnError, throwAuthnError, type FailureMode } from './errors.ts';
import { singleField } from './fields.ts';
import { tokenHash } from './token-hash.ts';
import { parseCompactJws, verifyJwsSignature } from './jws.ts';
import type { AuthnSettings } from './options.ts';
import type { ReplayGuard } from './replay.ts';
import type { AuthnRequest } from './request.ts';
import type { VerifiedWit } from './wit.ts';
import { isSigningAlg, type SigningAlg } from '../identity/jwk.ts';

export const WPT_CHALLENGE = 'WPT';
export const MAX_JTI_LENGTH = 256;
const WPT_TYPES = new Set(['wpt+jwt', 'application/wpt+jwt']);
/** Fields that are the credentials themselves; binding them through `oth` is meaningless. */
const NOT_OTH = new Set(['authorization', 'workload-identity-token', 'txn-token']);

export interface VerifiedWpt {
  readonly jti: string;
  readonly exp: number;
  readonly aud: string;
  /** Context-token fields bound by this WPT (`txn-token` via `tth`, others via `oth`). Only
   * these may inform authorization (wpt-02 §3: tokens not covered MUST NOT be used). */
  readonly boundFields: readonly string[];
}

export interface WptCheckContext {
  readonly nowSec: number;
  readonly settings: AuthnSettings;
  /** Accepted audiences for this destination, from trusted configuration only (§3.1). */
  readonly audiences: readonly string[];
  readonly replay: ReplayGuard;
}

const WPT_FAILURE: FailureMode = { area: 'wpt', status: 401, challenge: WPT_CHALLENGE };

export function wptError(reason: string, detail: string): AuthnError {
  return new AuthnError(`wpt.${reason}`, 401, detail, WPT_CHALLENGE);
}


/**
 * The token of an `Authorization` value using the `WPT` scheme (`"WPT" 1*SP token68`), or
 * undefined when the value uses another scheme.
 */
export function wptFromAuthorization(value: string): string | undefined {
  const v = value.trim();
  if (v.length === 3 && v.toLowerCase() === 'wpt') return ''; // the scheme with no token: malformed
  if (v.length < 4 || v.slice(0, 3).toLowerCase() !== 'wpt' || v[3] !== ' ') return undefined;
  let i = 4;
  while (v[i] === ' ') i++;
  return v.slice(i);
}

/** Verify the WPT `token` against the already verified `wit`. Throws AuthnError `wpt.*`. */
export function verifyWpt(req: AuthnRequest, token: string, wit: VerifiedWit, ctx: WptCheckContext): VerifiedWpt {
  const jws = parseCompactJws(token, ctx.settings.wptMaxBytes, WPT_FAILURE);
  const { header, payload } = jws;
  if (typeof header.typ !== 'string' || !WPT_TYPES.has(header.typ.toLowerCase())) throwAuthnError(WPT_FAILURE, 'typ', 'typ must be wpt+jwt');
  // wpt-02 §3: the alg MUST string-equal cnf.jwk.alg (so EdDSA and Ed25519 differ here).
  if (header.alg !== wit.cnf.alg) throwAuthnError(WPT_FAILURE, 'alg_mismatch', 'alg differs from the WIT cnf.jwk alg');
  if (!verifyJwsSignature(wit.cnf.alg, wit.cnf.key, jws.signingInput, jws.signature))
    throwAuthnError(WPT_FAILURE, 'bad_signature', 'signature does not verify with the WIT cnf.jwk');

  const aud = matchAudience(payload.aud, ctx.audiences);

  const now = ctx.nowSec;
  const skew = ctx.settings.maxSkewSec;
  const exp = payload.exp;
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throwAuthnError(WPT_FAILURE, 'exp_missing', 'exp is required');
  if (now > (exp as number) + skew) throwAuthnError(WPT_FAILURE, 'expired', 'the WPT has expired');
  if ((exp as number) > now + ctx.settings.maxWptLifetimeSec + skew) throwAuthnError(WPT_FAILURE, 'exp_too_far', 'exp is too far in the future');

  if (payload.wth === undefined) throwAuthnError(WPT_FAILURE, 'wth_missing', 'wth is required');
  if (payload.wth !== wit.wth) throwAuthnError(WPT_FAILURE, 'wth_mismatch', 'wth does not match the Workload-Identity-Token');

  const boundFields = checkContextTokens(req, payload, ctx.settings);

  const jti = payload.jti;
  if (typeof jti !== 'string' || jti.length === 0) throwAuthnError(WPT_FAILURE, 'jti_missing', 'jti is required');
  // The replay cache holds jti values: keep each entry small (128 random bits are 22 characters).
  if ((jti as string).length > MAX_JTI_LENGTH) throwAuthnError(WPT_FAILURE, 'malformed', `jti exceeds ${MAX_JTI_LENGTH} characters`);
  // Replay is scoped per sender; kept until exp + skew.
  if (!ctx.replay.checkAndStore(`wpt:${wit.sub.uri}:${jti as string}`, (exp as number) + skew, now))
    throwAuthnError(WPT_FAILURE, 'replay', 'this WPT was already used');
  return { jti: jti as string, exp: exp as number, aud, boundFields };
}

function matchAudience(aud: unknown, accepted: readonly string[]): string {
  if (aud === undefined) return throwAuthnError(WPT_FAILURE, 'aud_missing', 'aud is required');
  // RFC 7519 §4.1.3: a string or an array of strings; one of them must name this destination.
  const list = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : undefined;
  if (!list || list.length === 0 || list.some((a) => typeof a !== 'string')) return throwAuthnError(WPT_FAILURE, 'malformed', 'aud must be a string');
  for (const a of list as string[]) if (accepted.includes(a)) return a;
  return throwAuthnError(WPT_FAILURE, 'aud_mismatch', 'aud does not name this destination');
}

/** `tth` iff a Txn-Token is present; every `oth` entry names a present field and matches it. */
function checkContextTokens(
  req: AuthnRequest,
  payload: Record<string, unknown>,
  settings: AuthnSettings,
): string[] {
  const bound: string[] = [];
  const txn = singleField(req, 'txn-token');
  if (txn.kind === 'many') throwAuthnError(WPT_FAILURE, 'duplicate_header', 'more than one Txn-Token field');
  if (txn.kind === 'one') {
    if (payload.tth === undefined) throwAuthnError(WPT_FAILURE, 'tth_missing', 'tth is required with a Txn-Token');
    if (payload.tth !== tokenHash(txn.value)) throwAuthnError(WPT_FAILURE, 'tth_mismatch', 'tth does not match the Txn-Token');
    bound.push('txn-token');
  } else if (payload.tth !== undefined) throwAuthnError(WPT_FAILURE, 'tth_unexpected', 'tth without a Txn-Token');

  const oth = payload.oth;
  if (oth === undefined) return bound;
  if (typeof oth !== 'object' || oth === null || Array.isArray(oth)) return throwAuthnError(WPT_FAILURE, 'oth_unknown', 'oth must be an object');
  for (const [name, hash] of Object.entries(oth)) {
    // Any entry not understood causes rejection (wpt-02 §3).
    if (name !== name.toLowerCase() || NOT_OTH.has(name) || typeof hash !== 'string')
      throwAuthnError(WPT_FAILURE, 'oth_unknown', 'an oth entry is not understood');
    if (settings.othHeaders && !settings.othHeaders.includes(name)) throwAuthnError(WPT_FAILURE, 'oth_unknown', 'an oth entry names an unsupported field');
    const lines = req.headers.get(name);
    if (!lines || lines.length === 0) throwAuthnError(WPT_FAILURE, 'oth_unknown', 'an oth entry names a field absent from the request');
    // Repeated fields are unsupported by default (wpt-02 §2).
    if (lines!.length > 1) throwAuthnError(WPT_FAILURE, 'duplicate_header', 'an oth field is repeated');
    if (hash !== tokenHash(lines![0]!.trim())) throwAuthnError(WPT_FAILURE, 'oth_mismatch', 'an oth hash does not match its field');
    bound.push(name);
  }
  return bound;
}

export interface CreateWptInput {
  /** The caller's WIT exactly as it will be sent. */
  wit: string;
  /** The private key matching the WIT's `cnf.jwk`. */
  privateKey: KeyObject;
  /** Must equal the WIT's `cnf.jwk.alg`. */
  alg: SigningAlg;
  /** The target URI without query or fragment, or the deployment's audience for it. */
  aud: string;
  nowSec: number;
  /** Seconds until `exp`; default 60. */
  lifetimeSec?: number;
  /** Default: 128 random bits, base64url. */
  jti?: string;
  txnToken?: string;
  /** Other context tokens to bind: field name -> field value. */
  oth?: Readonly<Record<string, string>>;
}

/** Create a wpt-02 WPT (for `Authorization: WPT <jwt>`). */
export function createWpt(input: CreateWptInput): string {
  if (!isSigningAlg(input.alg)) throw new TypeError('"alg" must be ES256, ES384, EdDSA or Ed25519');
  const lifetime = input.lifetimeSec ?? 60;
  if (!Number.isInteger(lifetime) || lifetime < 1) throw new TypeError('"lifetimeSec" must be a positive integer');
  const claims: Record<string, unknown> = {
    aud: input.aud,
    exp: input.nowSec + lifetime,
    jti: input.jti ?? randomBytes(16).toString('base64url'),
    wth: tokenHash(input.wit),
  };
  if (input.txnToken !== undefined) claims.tth = tokenHash(input.txnToken);
  if (input.oth) {
    const oth: Record<string, string> = {};
    for (const [name, value] of Object.entries(input.oth)) oth[name.toLowerCase()] = tokenHash(value.trim());
    claims.oth = oth;
  }
  const signingInput = `${b64json({ alg: input.alg, typ: 'wpt+jwt' })}.${b64json(claims)}`;
  const ec = input.alg === 'ES256' ? 'sha256' : input.alg === 'ES384' ? 'sha384' : null;
  const sig = ec
    ? cryptoSign(ec, Buffer.from(signingInput), { key: input.privateKey, dsaEncoding: 'ieee-p1363' })
    : cryptoSign(null, Buffer.from(signingInput), input.privateKey);
  return `${signingInput}.${sig.toString('base64url')}`;
}

function b64json(o: unknown): string {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}
