/**
 * Typed authentication failures. Each has a stable machine-readable `code` (`<area>.<reason>`),
 * the HTTP status the drafts call for, and a short detail that is safe to return to a client.
 *
 * Status policy (spec/wimse.md §7 and §10.2, documented in docs/authn.md):
 * - WIT and HTTP-signature failures: 400;
 * - WPT failures, and any failure on a request that presented a WPT: 401 with
 *   `WWW-Authenticate: WPT`;
 * - mTLS failures: 401 (no challenge: there is nothing the client can add to this request);
 * - no credential at all: 401.
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
