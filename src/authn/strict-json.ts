/**
 * Strict JSON for JOSE headers and JWT claim sets.
 *
 * `JSON.parse` silently keeps the last of two members with the same name, so `{"sub":"a","sub":"b"}`
 * means different things to different parsers. RFC 7515 §5.2 and RFC 7519 §4 let a parser
 * reject duplicate member names, and RFC 8725 §3 asks verifiers to be strict: we reject them.
 *
 * `findDuplicateMember` is a single linear scan that tracks object nesting and member names
 * (names are compared after unescaping, so `"sub"` and `"\u0073ub"` collide). It only looks for
 * duplicates and nesting depth; `JSON.parse` then checks the grammar and builds the value.
 */

/** Deepest nesting of objects/arrays accepted in a JOSE header or claim set. */
export const MAX_JSON_DEPTH = 16;

export type StrictJsonResult =
  | { ok: true; value: Record<string, unknown> }
  | { ok: false; reason: 'not_json' | 'not_an_object' | 'duplicate_member' | 'too_deep' };

/** Parse `text` as a JSON object, rejecting duplicate member names and deep nesting. */
export function parseStrictJsonObject(text: string): StrictJsonResult {
  const scan = scanMembers(text);
  if (scan !== undefined) return { ok: false, reason: scan };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not_json' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'not_an_object' };
  return { ok: true, value: value as Record<string, unknown> };
}

/**
 * Scan for duplicate member names and excessive depth. Malformed input never makes it throw or
 * loop: it returns undefined and leaves the grammar to `JSON.parse`.
 */
function scanMembers(text: string): 'duplicate_member' | 'too_deep' | undefined {
  // One entry per open container: a Set of names for objects, null for arrays.
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Jump to the closing quote: the first `"` preceded by an even number of backslashes.
      const start = i;
      let end = -1;
      for (let from = i + 1; end < 0; ) {
        const q = text.indexOf('"', from);
        if (q < 0) return undefined; // unterminated string: JSON.parse rejects it
        let backslashes = 0;
        while (text.charCodeAt(q - 1 - backslashes) === 0x5c /* \ */) backslashes++;
        if (backslashes % 2 === 0) end = q;
        else from = q + 1;
      }
      i = end;
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        let name = text.slice(start + 1, end);
        if (name.includes('\\')) {
          try {
            name = JSON.parse(text.slice(start, end + 1)) as string;
          } catch {
            return undefined;
          }
        }
        if (top.has(name)) return 'duplicate_member';
        top.add(name);
      }
      expectKey = false;
    } else if (c === 0x7b /* { */) {
      if (stack.length >= MAX_JSON_DEPTH) return 'too_deep';
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      if (stack.length >= MAX_JSON_DEPTH) return 'too_deep';
      stack.push(null);
      expectKey = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] != null;
    }
  }
  return undefined;
}
