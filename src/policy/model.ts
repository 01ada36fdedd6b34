/**
 * Route policy: the document mesh operators write (docs/policy.md) and the decision the PDP
 * returns for one request. Types only; validation lives in validate.ts, matching in compile.ts.
 *
 * Default deny: a request is allowed only when one rule of its destination grants the path, the
 * method, the caller and the authentication method together. There are no deny rules, so a
 * pattern that matches too little can only deny, never allow by accident.
 */

/** How the caller was authenticated (http-signature-07, wpt-02, mutual-tls-02). */
export type AuthnMethod = 'mtls' | 'wpt' | 'httpsig';
export const AUTHN_METHODS: readonly AuthnMethod[] = ['mtls', 'wpt', 'httpsig'];

/** One path grant; compared with the raw request path, never decoded (request-path.ts). */
export type PathPattern =
  | { readonly exact: string }
  /** Must end with `/`: grants every path below it, segment-wise (`/a/` never matches `/aX`). */
  | { readonly prefix: string }
  /** `{name}` matches exactly one non-empty segment; the rest are literal segments. */
  | { readonly template: string };

/** One caller grant; callers are canonical workload identifiers compared as whole URIs. */
export type CallerPattern =
  | { readonly exact: string }
  /** A canonical identifier prefix ending with `/`: grants its descendants, segment-wise. */
  | { readonly prefix: string }
  /** Every workload of a trust domain, optionally under one scheme only. */
  | { readonly trustDomain: string; readonly scheme?: 'spiffe' | 'wimse' };

export interface Rule {
  readonly name: string;
  readonly description?: string;
  readonly paths: readonly PathPattern[];
  /** Upper-case methods; `undefined` means any method. */
  readonly methods?: readonly string[];
  readonly callers: readonly CallerPattern[];
  /** `['any']` or a non-empty set of methods (the document form, unchanged). */
  readonly authn: readonly ['any'] | readonly AuthnMethod[];
}

export interface Destination {
  /** The callee: one canonical workload identifier. */
  readonly workload: string;
  /** Accepted WPT `aud` / HTTP-sig `wimse-aud` values for this callee. */
  readonly audiences: readonly string[];
  readonly rules: readonly Rule[];
}

export interface Policy {
  readonly version: 1;
  readonly destinations: readonly Destination[];
}

/** What the PEP adapter knows about one request after authentication. */
export interface DecisionInput {
  /** The authenticated caller identifier (from a verified credential only). */
  readonly caller: string;
  readonly via: AuthnMethod;
  /** The callee's workload identifier, from trusted configuration, never from Host. */
  readonly destination: string;
  readonly method: string;
  /** The raw path as received, without the query. */
  readonly path: string;
}

/**
 * Stable reason codes. `policy.*` come from route policy, `request.*` from an input the PDP
 * refuses to match (fail closed), `pdp.*` from the external PDP (external.ts).
 */
export type DecisionReason =
  | 'policy.allow'
  | 'policy.empty'
  | 'policy.invalid'
  | 'policy.no_destination'
  | 'policy.route_not_granted'
  | 'policy.caller_not_granted'
  | 'policy.authn_not_granted'
  | 'request.caller_invalid'
  | 'request.destination_invalid'
  | 'request.method_invalid'
  | 'request.via_invalid'
  | 'request.path_not_canonical'
  | 'pdp.allow'
  | 'pdp.deny'
  | 'pdp.timeout'
  | 'pdp.error'
  | 'pdp.malformed';

export interface Decision {
  readonly allow: boolean;
  readonly reason: DecisionReason;
  /** The granting rule when allowed. */
  readonly rule?: string;
  /** The destination workload the decision was made for, when it is in the policy. */
  readonly destination?: string;
  /** Unique per decision: logged by the PEP and returned to Envoy (OPA-Envoy's decision_id). */
  readonly decisionId: string;
  /** Short, safe detail (never a token). */
  readonly detail?: string;
  /** Which policy decided: store version and content digest. */
  readonly policy?: { readonly version: number; readonly digest: string };
}
