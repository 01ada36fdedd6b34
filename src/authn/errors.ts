/**
 * Typed authentication failures. Each has a stable machine-readable `code` (`<area>.<reason>`),
 * the HTTP status the drafts call for, and a short detail that is safe to return to a client.
 *
 * Status policy (400 for WIT and HTTP-signature failures, 401 + `WWW-Authenticate: WPT` for
 * WPT-02; documented with every code in docs/authn.md):
 * - WIT and HTTP-signature failures: 400 (workload-creds-02 §5.2, http-signature-07: 401 is NOT
 *   RECOMMENDED), when the request carries an HTTP message signature;
 * - WPT failures, and any failure on a request that presented a WPT (including its WIT): 401 with
 *   `WWW-Authenticate: WPT` (wpt-02: the credential set failed, and the client can retry with a
 *   new one);
 * - no credential at all (`request.no_credentials`) and a WIT without a proof (`wit.no_proof`):
 *   401 with `WWW-Authenticate: WPT`, naming what the client can add;
 * - mTLS failures: 401 (no challenge: there is nothing the client can add to this request);
 * - `internal.error`: 500, an unexpected fault; the request is denied (fail closed).
 * Policy (authorization) denials are 403 and live in src/policy, not here.
 */
export type AuthnArea = 'request' | 'wit' | 'wpt' | 'httpsig' | 'mtls' | 'internal';

export class AuthnError extends Error {
  override readonly name = 'AuthnError';
  constructor(
    /** e.g. `wit.expired`, `wpt.aud_mismatch`, `httpsig.digest_mismatch`. */
    readonly code: string,
    readonly status: 400 | 401 | 500,
    /** Safe to show to the caller: never token contents or key material. */
    readonly detail: string,
    /** The `WWW-Authenticate` challenge to return, if any. */
    readonly challenge?: string,
  ) {
    super(`${code}: ${detail}`);
  }

  get area(): AuthnArea {
    return this.code.slice(0, this.code.indexOf('.')) as AuthnArea;
  }
}

export const isAuthnError = (e: unknown): e is AuthnError => e instanceof AuthnError;

/** How failures of one check are reported: the code's area and this request's status/challenge. */
export interface FailureMode {
  readonly area: AuthnArea;
  readonly status: 400 | 401;
  readonly challenge?: string;
}

/** Throw the AuthnError `<area>.<reason>` for `mode`. */
export function throwAuthnError(mode: FailureMode, reason: string, detail: string): never {
  throw new AuthnError(`${mode.area}.${reason}`, mode.status, detail, mode.challenge);
}
