/**
 * Raw request paths, checked before any matching. We never decode or normalize a path; we
 * refuse the spellings that an upstream might resolve to a different resource than the one the
 * policy granted (the signed `@path`, whole-segment matching), so a grant can never be escaped:
 *
 * - dot segments `.` and `..`, also with path parameters (`..;x`, as some servers resolve them);
 * - percent-encoded `.` `/` `\` (`%2e`, `%2F`, `%5c`, either case), `%25` (double encoding) and
 *   `%00`, `%C0`/`%C1` (overlong UTF-8 forms of `.` and `/`); a raw `\`; malformed escapes
 *   (also IIS-style `%u002e`);
 * - empty segments (`//`) except a single trailing `/`;
 * - anything but printable ASCII, and `?` / `#` (the adapter passes the path without the query).
 *
 * Other escapes (`%20`, `%70`) are legal and are compared as written: a grant for `/payment`
 * does not match `/%70ayment`, which therefore fails closed.
 */

export const MAX_REQUEST_PATH_LENGTH = 8192;

export type PathCheck = { ok: true; segments: string[] } | { ok: false; problem: string };

// `%C0` and `%C1` start overlong UTF-8 forms (`%C0%AE` is a `.` to a lax decoder); never valid.
const FORBIDDEN_ESCAPES = new Set(['2E', '2F', '5C', '25', '00', 'C0', 'C1']);

/** Split and check a raw path; `segments` excludes the leading empty one (`/a/` -> `['a', '']`). */
export function checkRawPath(path: unknown): PathCheck {
  if (typeof path !== 'string') return { ok: false, problem: 'path must be a string' };
  if (path.length === 0 || path[0] !== '/') return { ok: false, problem: 'path must start with /' };
  if (path.length > MAX_REQUEST_PATH_LENGTH)
    return { ok: false, problem: `path exceeds ${MAX_REQUEST_PATH_LENGTH} bytes` };
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return { ok: false, problem: 'path must be printable ASCII' };
    if (c === 0x3f || c === 0x23) return { ok: false, problem: 'path must not carry a query or fragment' };
    if (c === 0x5c) return { ok: false, problem: 'path must not contain \\' };
    if (c === 0x25) {
      const hex = path.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return { ok: false, problem: 'malformed percent-escape' };
      if (FORBIDDEN_ESCAPES.has(hex.toUpperCase()))
        return { ok: false, problem: `the escape %${hex} is refused` };
      i += 2;
    }
  }
  const segments = path.slice(1).split('/');
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg.length === 0 && i < segments.length - 1) return { ok: false, problem: 'path must not contain empty segments (//)' };
    const semi = seg.indexOf(';');
    const bare = semi < 0 ? seg : seg.slice(0, semi);
    if (bare === '.' || bare === '..') return { ok: false, problem: 'path must not contain . or .. segments' };
  }
  return { ok: true, segments };
}
