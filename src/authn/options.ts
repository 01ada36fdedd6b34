/**
 * Authentication settings: what an operator configures, its defaults (the drafts give no numbers),
 * and the one-time validation that turns misuse into a TypeError at construction (never per
 * request).
 */
import { SIGNING_ALGS, isSigningAlg, type SigningAlg } from '../identity/jwk.ts';
import { parseTrustDomain, type WorkloadIdScheme } from '../identity/workload-id.ts';

export const DEFAULT_MAX_SKEW_SEC = 60;
export const DEFAULT_MAX_WPT_LIFETIME_SEC = 300;
export const DEFAULT_MAX_HTTPSIG_WINDOW_SEC = 300;
export const DEFAULT_WIT_MAX_BYTES = 8 * 1024;
export const DEFAULT_WPT_MAX_BYTES = 4 * 1024;
export const DEFAULT_WIT_ALGS: readonly SigningAlg[] = SIGNING_ALGS;

/** Per trust domain rules, bound out of band to that domain (workload-creds-02 §3, §9.1). */
export interface TrustDomainPolicy {
  /** JWS algorithms accepted on this domain's WITs. Default: ES256, ES384, EdDSA, Ed25519. */
  readonly witAlgs?: readonly string[];
  /**
   * Accepted WIT `iss` values. When set, a WIT of this domain must carry one of them
   * (optional in workload-creds-02); when unset, `iss` is not required and not checked.
   */
  readonly issuers?: readonly string[];
  /**
   * Identifier schemes this domain's issuers may assert (issuer-to-origin binding:
   * `wimse://example.com` and `spiffe://example.com` are different origins, identifier-03 §4).
   * Default: both.
   */
  readonly schemes?: readonly WorkloadIdScheme[];
}

export interface ResolvedPolicy {
  readonly witAlgs: readonly string[];
  readonly issuers?: readonly string[];
  readonly schemes: readonly WorkloadIdScheme[];
}

export interface AuthnSettings {
  /** Allowed clock skew, seconds, for every time check. */
  readonly maxSkewSec: number;
  /** Longest accepted `exp - now` of a WPT, seconds. */
  readonly maxWptLifetimeSec: number;
  /** Longest accepted `expires - created` of an HTTP message signature, seconds. */
  readonly maxHttpSigWindowSec: number;
  /** Reject a WIT whose `iat` is later than now + skew. */
  readonly checkWitIat: boolean;
  readonly witMaxBytes: number;
  readonly wptMaxBytes: number;
  /**
   * Header names (lower case) a WPT `oth` entry may bind. Undefined: any header present in the
   * request; an empty list: no `oth` at all.
   */
  readonly othHeaders?: readonly string[];
  /** Policy for a trust domain (defaults when the domain has no entry). */
  readonly policyFor: (trustDomain: string) => ResolvedPolicy;
}

export interface SettingsInput {
  maxSkewSec?: number;
  maxWptLifetimeSec?: number;
  maxHttpSigWindowSec?: number;
  checkWitIat?: boolean;
  witMaxBytes?: number;
  wptMaxBytes?: number;
  othHeaders?: readonly string[];
  trustDomains?: Readonly<Record<string, TrustDomainPolicy>>;
}

const int = (name: string, v: unknown, dflt: number, min: number, max: number): number => {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new TypeError(`"${name}" must be an integer between ${min} and ${max}`);
  return v;
};

const strings = (name: string, v: unknown): readonly string[] => {
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || s.length === 0))
    throw new TypeError(`"${name}" must be an array of non-empty strings`);
  return Object.freeze([...(v as string[])]);
};

function resolvePolicy(td: string, p: TrustDomainPolicy): ResolvedPolicy {
  if (typeof p !== 'object' || p === null) throw new TypeError(`"trustDomains.${td}" must be an object`);
  let witAlgs: readonly string[] = DEFAULT_WIT_ALGS;
  if (p.witAlgs !== undefined) {
    witAlgs = strings(`trustDomains.${td}.witAlgs`, p.witAlgs);
    // Never none, never HS*, only asymmetric signature algorithms we implement.
    const bad = witAlgs.find((a) => !isSigningAlg(a));
    if (bad !== undefined || witAlgs.length === 0)
      throw new TypeError(`"trustDomains.${td}.witAlgs" may list only ${SIGNING_ALGS.join(', ')}`);
  }
  let schemes: readonly WorkloadIdScheme[] = ['spiffe', 'wimse'];
  if (p.schemes !== undefined) {
    schemes = strings(`trustDomains.${td}.schemes`, p.schemes) as WorkloadIdScheme[];
    if (schemes.some((s) => s !== 'spiffe' && s !== 'wimse'))
      throw new TypeError(`"trustDomains.${td}.schemes" may list only spiffe and wimse`);
  }
  const issuers = p.issuers === undefined ? undefined : strings(`trustDomains.${td}.issuers`, p.issuers);
  return Object.freeze({ witAlgs, schemes, ...(issuers ? { issuers } : {}) });
}

/** Validate settings once. Throws TypeError naming the offending option. */
export function resolveSettings(input: SettingsInput = {}): AuthnSettings {
  if (typeof input !== 'object' || input === null) throw new TypeError('options must be an object');
  const maxSkewSec = int('maxSkewSec', input.maxSkewSec, DEFAULT_MAX_SKEW_SEC, 0, 3600);
  const maxWptLifetimeSec = int('maxWptLifetimeSec', input.maxWptLifetimeSec, DEFAULT_MAX_WPT_LIFETIME_SEC, 1, 86_400);
  const maxHttpSigWindowSec = int('maxHttpSigWindowSec', input.maxHttpSigWindowSec, DEFAULT_MAX_HTTPSIG_WINDOW_SEC, 1, 86_400);
  const witMaxBytes = int('witMaxBytes', input.witMaxBytes, DEFAULT_WIT_MAX_BYTES, 256, 64 * 1024);
  const wptMaxBytes = int('wptMaxBytes', input.wptMaxBytes, DEFAULT_WPT_MAX_BYTES, 256, 64 * 1024);
  if (input.checkWitIat !== undefined && typeof input.checkWitIat !== 'boolean')
    throw new TypeError('"checkWitIat" must be a boolean');
  let othHeaders: readonly string[] | undefined;
  if (input.othHeaders !== undefined) {
    if (!Array.isArray(input.othHeaders)) throw new TypeError('"othHeaders" must be an array of lower-case header names');
    othHeaders = input.othHeaders.length === 0 ? Object.freeze([]) : strings('othHeaders', input.othHeaders);
    if (othHeaders.some((h) => h !== h.toLowerCase())) throw new TypeError('"othHeaders" must be lower case');
  }
  const policies = new Map<string, ResolvedPolicy>();
  if (input.trustDomains !== undefined) {
    if (typeof input.trustDomains !== 'object' || input.trustDomains === null)
      throw new TypeError('"trustDomains" must be an object of trust domain -> policy');
    for (const [td, p] of Object.entries(input.trustDomains)) {
      if (!parseTrustDomain(td).ok) throw new TypeError(`"trustDomains": invalid trust domain "${td}"`);
      policies.set(td, resolvePolicy(td, p));
    }
  }
  const dflt = resolvePolicy('*', {});
  return Object.freeze({
    maxSkewSec,
    maxWptLifetimeSec,
    maxHttpSigWindowSec,
    checkWitIat: input.checkWitIat ?? true,
    witMaxBytes,
    wptMaxBytes,
    ...(othHeaders ? { othHeaders } : {}),
    policyFor: (td: string) => policies.get(td) ?? dflt,
  });
}

/** Validate a list of accepted audiences (trusted configuration, never Host). */
export function checkAudiences(name: string, v: unknown): readonly string[] {
  return strings(name, v);
}
