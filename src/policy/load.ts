/**
 * Reading a policy file: a size limit before parsing, strict YAML 1.2 (core schema, no merge
 * keys, duplicate keys rejected, few aliases), then checkPolicy. JSON is YAML, so `.json`
 * policies load the same way.
 */
import { isNode, LineCounter, parseDocument, type Document } from 'yaml';
import type { Checked } from '../identity/index.ts';
import type { Policy } from './model.ts';
import { checkPolicy } from './validate.ts';

export const MAX_POLICY_BYTES = 4 * 1024 * 1024;
const MAX_ALIASES = 100;
const MAX_YAML_ERRORS = 20;

export interface LoadOptions {
  /** Refuse larger documents before parsing them. Default 4 MiB. */
  readonly maxBytes?: number;
  /** Append `(line L, column C)` to validation errors (for people editing the file). */
  readonly lines?: boolean;
}

/** Parse YAML (or JSON) policy text, reporting YAML errors with line and column. */
export function parsePolicyText(text: string, opts: LoadOptions = {}): Checked<Policy> {
  const parsed = parseYaml(text, opts);
  if (!parsed.ok) return parsed;
  const checked = checkPolicy(parsed.value.data);
  if (checked.ok || !opts.lines) return checked;
  const { doc, lines } = parsed.value;
  return { ok: false, errors: checked.errors.map((e) => withLine(e, doc, lines)) };
}

/** The YAML stage alone: text to plain data. */
export function parsePolicyYaml(text: string, opts: LoadOptions = {}): Checked<unknown> {
  const parsed = parseYaml(text, opts);
  return parsed.ok ? { ok: true, value: parsed.value.data } : parsed;
}

type Parsed = { data: unknown; doc: Document.Parsed; lines: LineCounter };

function parseYaml(text: string, opts: LoadOptions): Checked<Parsed> {
  const max = opts.maxBytes ?? MAX_POLICY_BYTES;
  if (typeof text !== 'string') return { ok: false, errors: ['(root): policy text must be a string'] };
  const size = Buffer.byteLength(text, 'utf8');
  if (size > max) return { ok: false, errors: [`(root): policy is ${size} bytes, more than the limit of ${max}`] };
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    version: '1.2',
    schema: 'core',
    merge: false,
    uniqueKeys: true,
    strict: true,
    stringKeys: true,
    resolveKnownTags: false,
    prettyErrors: true,
    lineCounter: lines,
  });
  // Warnings (unresolved tags and the like) are refused too: fail closed.
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0) {
    const errors = problems.slice(0, MAX_YAML_ERRORS).map((e) => `(yaml) ${e.code}: ${e.message.split('\n')[0]}`);
    if (problems.length > MAX_YAML_ERRORS) errors.push(`(yaml) and ${problems.length - MAX_YAML_ERRORS} more`);
    return { ok: false, errors };
  }
  try {
    return { ok: true, value: { data: doc.toJS({ maxAliasCount: MAX_ALIASES }), doc, lines } };
  } catch (e) {
    return { ok: false, errors: [`(yaml) ${(e as Error).message}`] };
  }
}

/**
 * `a.b[2].c: msg` -> `a.b[2].c: msg (line L, column C)`, pointing at the field, or at the
 * nearest enclosing node when the field is missing.
 */
function withLine(error: string, doc: Document.Parsed, lines: LineCounter): string {
  const colon = error.indexOf(': ');
  const path = colon > 0 ? error.slice(0, colon) : '';
  if (!/^[A-Za-z_]/.test(path)) return error;
  const keys: Array<string | number> = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) keys.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  for (let n = keys.length; n > 0; n--) {
    const node = doc.getIn(keys.slice(0, n), true);
    const offset = isNode(node) ? node.range?.[0] : undefined;
    if (offset !== undefined) {
      const pos = lines.linePos(offset);
      return `${error} (line ${pos.line}, column ${pos.col})`;
    }
  }
  return error;
}
