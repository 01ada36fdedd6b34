/**
 * Workload identifiers (draft-ietf-wimse-identifier-03, SPIFFE-ID).
 *
 * An identifier is an absolute URI whose authority is the trust domain. We accept exactly one
 * spelling of each identifier and reject everything else rather than normalize it, so that two
 * strings name the same workload if and only if they are equal byte for byte. Comparison and
 * authorization are therefore whole-URI string equality.
 *
 * Rules (each rejection carries a stable reason):
 * - scheme `spiffe` or `wimse`, lower case, followed by `//` and a non-empty trust domain;
 * - trust domain: lower-case `[a-z0-9._-]`, at most 255 bytes, no userinfo, no port, not an IP
 *   address literal;
 * - no query, no fragment;
 * - a non-empty path of non-empty segments; no `.`/`..` segments, no trailing `/`;
 * - `spiffe`: segment characters `[A-Za-z0-9._-]` and no percent-encoding at all (SPIFFE-ID);
 * - `wimse`: RFC 3986 pchar; percent-escapes only for characters that need them, in upper-case
 *   hex; never an escaped unreserved character (`%70ayment`), never an escaped `/` or `.`;
 * - at most 2048 bytes in all.
 */

export const MAX_ID_LENGTH = 2048;
export const MAX_TRUST_DOMAIN_LENGTH = 255;

export type WorkloadIdScheme = 'spiffe' | 'wimse';

export interface WorkloadId {
  /** The canonical URI: the only spelling we accept, compared byte for byte. */
  readonly uri: string;
  readonly scheme: WorkloadIdScheme;
  readonly trustDomain: string;
  /** Starts with `/`. */
  readonly path: string;
}

export type IdRejection =
  | 'not_a_string'
  | 'empty'
  | 'too_long'
  | 'not_ascii'
  | 'scheme_missing'
  | 'scheme_not_canonical'
  | 'scheme_unsupported'
  | 'authority_missing'
  | 'trust_domain_empty'
  | 'trust_domain_too_long'
  | 'trust_domain_uppercase'
  | 'trust_domain_invalid_char'
  | 'trust_domain_ip'
  | 'userinfo'
  | 'port'
  | 'query'
  | 'fragment'
  | 'path_missing'
  | 'path_empty_segment'
  | 'path_dot_segment'
  | 'path_trailing_slash'
  | 'path_invalid_char'
  | 'percent_malformed'
  | 'percent_lowercase'
  | 'percent_unreserved'
  | 'percent_not_allowed';

export type IdResult<T> = { ok: true; value: T } | { ok: false; reason: IdRejection; message: string };

const reject = (reason: IdRejection, message: string): { ok: false; reason: IdRejection; message: string } => ({
  ok: false,
  reason,
  message,
});

const TD_CHARS = /^[a-z0-9._-]+$/;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const SPIFFE_SEGMENT = /^[A-Za-z0-9._-]+$/;
// RFC 3986 pchar without pct-encoded (handled separately): unreserved / sub-delims / ":" / "@"
const PCHAR = /^[A-Za-z0-9\-._~!$&'()*+,;=:@]$/;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/** Validate a bare trust domain name (no scheme), e.g. `example.org`. */
export function parseTrustDomain(name: unknown): IdResult<string> {
  if (typeof name !== 'string') return reject('not_a_string', 'trust domain must be a string');
  if (name.length === 0) return reject('trust_domain_empty', 'trust domain is empty');
  if (name.length > MAX_TRUST_DOMAIN_LENGTH)
    return reject('trust_domain_too_long', `trust domain exceeds ${MAX_TRUST_DOMAIN_LENGTH} bytes`);
  if (name.includes('@')) return reject('userinfo', 'trust domain must not carry userinfo');
  if (name.includes(':')) return reject('port', 'trust domain must not carry a port');
  if (/[A-Z]/.test(name)) return reject('trust_domain_uppercase', 'trust domain must be lower case');
  if (name.startsWith('[') || IPV4.test(name)) return reject('trust_domain_ip', 'trust domain must not be an IP address');
  if (!TD_CHARS.test(name)) return reject('trust_domain_invalid_char', 'trust domain may contain only [a-z0-9._-]');
  return { ok: true, value: name };
}

/** Parse a workload identifier, accepting only its canonical spelling. */
export function parseWorkloadId(input: unknown): IdResult<WorkloadId> {
  if (typeof input !== 'string') return reject('not_a_string', 'identifier must be a string');
  if (input.length === 0) return reject('empty', 'identifier is empty');
  if (input.length > MAX_ID_LENGTH) return reject('too_long', `identifier exceeds ${MAX_ID_LENGTH} bytes`);
  // eslint-disable-next-line no-control-regex
  if (!/^[\x21-\x7e]+$/.test(input)) return reject('not_ascii', 'identifier must be printable ASCII without spaces');

  const colon = input.indexOf(':');
  if (colon <= 0) return reject('scheme_missing', 'identifier must be an absolute URI');
  const scheme = input.slice(0, colon);
  if (scheme !== 'spiffe' && scheme !== 'wimse') {
    const lower = scheme.toLowerCase();
    if (lower === 'spiffe' || lower === 'wimse')
      return reject('scheme_not_canonical', 'scheme must be lower case');
    return reject('scheme_unsupported', 'scheme must be spiffe or wimse');
  }
  const rest = input.slice(colon + 1);
  if (!rest.startsWith('//')) return reject('authority_missing', 'identifier must have an authority (trust domain)');
  const afterSlashes = rest.slice(2);

  const hash = afterSlashes.indexOf('#');
  const question = afterSlashes.indexOf('?');
  if (question >= 0 && (hash < 0 || question < hash)) return reject('query', 'identifier must not have a query');
  if (hash >= 0) return reject('fragment', 'identifier must not have a fragment');

  const slash = afterSlashes.indexOf('/');
  const authority = slash < 0 ? afterSlashes : afterSlashes.slice(0, slash);
  const td = parseTrustDomain(authority);
  if (!td.ok) return td;
  if (slash < 0) return reject('path_missing', 'identifier must have a path naming the workload');
  const path = afterSlashes.slice(slash);
  const pathCheck = checkPath(path, scheme);
  if (!pathCheck.ok) return pathCheck;
  return { ok: true, value: Object.freeze({ uri: input, scheme, trustDomain: td.value, path }) };
}

function checkPath(path: string, scheme: WorkloadIdScheme): IdResult<true> {
  if (path === '/') return reject('path_missing', 'identifier must have a path naming the workload');
  if (path.endsWith('/')) return reject('path_trailing_slash', 'path must not end with /');
  const segments = path.slice(1).split('/');
  for (const seg of segments) {
    if (seg.length === 0) return reject('path_empty_segment', 'path must not contain empty segments (//)');
    if (seg === '.' || seg === '..') return reject('path_dot_segment', 'path must not contain . or .. segments');
    const s = scheme === 'spiffe' ? checkSpiffeSegment(seg) : checkWimseSegment(seg);
    if (!s.ok) return s;
  }
  return { ok: true, value: true };
}

function checkSpiffeSegment(seg: string): IdResult<true> {
  if (seg.includes('%')) return reject('percent_not_allowed', 'spiffe identifiers must not use percent-encoding');
  if (!SPIFFE_SEGMENT.test(seg)) return reject('path_invalid_char', 'spiffe path segments may contain only [A-Za-z0-9._-]');
  return { ok: true, value: true };
}

function checkWimseSegment(seg: string): IdResult<true> {
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === '%') {
      const hex = seg.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return reject('percent_malformed', 'malformed percent-escape');
      if (/[a-f]/.test(hex)) return reject('percent_lowercase', 'percent-escapes must use upper-case hex');
      const ch = String.fromCharCode(parseInt(hex, 16));
      if (UNRESERVED.test(ch))
        return reject('percent_unreserved', 'unreserved characters must not be percent-encoded');
      if (ch === '/') return reject('percent_not_allowed', 'an escaped / is not allowed in a path segment');
      i += 2;
      continue;
    }
    if (!PCHAR.test(c)) return reject('path_invalid_char', `character not allowed in a path: ${JSON.stringify(c)}`);
  }
  return { ok: true, value: true };
}

/** True if `s` is a canonical workload identifier. */
export const isWorkloadId = (s: unknown): s is string => parseWorkloadId(s).ok;

/** The trust domain of a canonical identifier, or undefined if it is not one. */
export function trustDomainOf(s: string): string | undefined {
  const r = parseWorkloadId(s);
  return r.ok ? r.value.trustDomain : undefined;
}

/** Whole-URI equality; both sides must be canonical identifiers. */
export function sameWorkload(a: string, b: string): boolean {
  return isWorkloadId(a) && a === b;
}
