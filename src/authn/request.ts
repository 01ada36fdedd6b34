/**
 * The normalized request that every authenticator works on: one HTTP request as it reached the
 * callee. Adapters (Envoy ext_authz, the Node middleware, `wimsectl authn check`) build it; the
 * core never sees a proxy's message types.
 */
export interface AuthnRequest {
  /** Upper-case method, e.g. `GET`. */
  readonly method: string;
  /**
   * Lower-case scheme (`https`), when the adapter knows it: needed only to verify a signature
   * covering `@scheme` or `@target-uri` (RFC 9421 §2.2).
   */
  readonly scheme?: string;
  /**
   * The request's authority (host and optional port) as received, when the adapter knows it:
   * for `@authority` and `@target-uri`. Without it the single `Host` field is used. Never used to
   * decide who the recipient is (audiences come from trusted configuration).
   */
  readonly authority?: string;
  /** The absolute path exactly as received, not decoded; `/` when empty. */
  readonly path: string;
  /** The query exactly as received, with its leading `?`; `''` when there is none. */
  readonly query: string;
  /**
   * Header fields by lower-case name. Each array element is one field line as received (a proxy
   * that already joined repeated lines with `,` passes a single element).
   */
  readonly headers: ReadonlyMap<string, readonly string[]>;
  /** The body as received, when the adapter has it. */
  readonly body?: Uint8Array;
  /** The mTLS peer, when the transport was mutual TLS. */
  readonly peer?: TransportPeer;
}

export interface TransportPeer {
  /** The peer's leaf (first) and any intermediates, PEM. */
  readonly certificateChainPem?: string;
  /**
   * The identity the TLS terminator already verified (Envoy's `source.principal`), used only
   * when no chain is available to re-validate.
   */
  readonly verifiedPrincipal?: string;
}

/** RFC 3986 §3.1: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`, at most 32 characters. */
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]{0,31}$/;
/**
 * The request authority as HTTP carries it (RFC 9110 §7.2, RFC 3986 §3.2): a reg-name or an IP
 * literal, an optional port, no userinfo; at most 1024 characters.
 */
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]{2,63}\]|[A-Za-z0-9\-._~%!$&'()*+,;=]{1,1017})(?::[0-9]{0,5})?$/;

export const isScheme = (v: string): boolean => SCHEME.test(v);
export const isAuthority = (v: string): boolean => v.length <= 1024 && AUTHORITY.test(v);

/** Build the header map from `[name, value]` pairs (names are lower-cased; order kept). */
export function headersFrom(pairs: Iterable<readonly [string, string]>): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const [name, value] of pairs) {
    const k = name.toLowerCase();
    const list = m.get(k);
    if (list) list.push(value);
    else m.set(k, [value]);
  }
  return m;
}
