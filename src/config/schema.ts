/**
 * A small declarative schema for the node's YAML configuration. One table drives three things:
 * validation (every problem reported with its field path), defaults, and the field-by-field
 * reference in docs/config.md (generated from this file and checked by a test, so it cannot
 * drift).
 */
import type { Checked } from '../identity/result.ts';

export type Field =
  | { kind: 'string'; doc: string; default?: string; pattern?: RegExp; patternHelp?: string; check?: (v: string) => string | undefined }
  | { kind: 'int'; doc: string; default?: number; min?: number; max?: number }
  | { kind: 'number'; doc: string; default?: number; min?: number; max?: number; exclusiveMin?: boolean }
  | { kind: 'bool'; doc: string; default?: boolean }
  | { kind: 'duration'; doc: string; default?: string; minMs?: number; maxMs: number; wholeSeconds?: boolean }
  | { kind: 'enum'; doc: string; values: readonly string[]; default?: string }
  | { kind: 'list'; doc: string; of: Field; default?: unknown[]; minItems?: number }
  | { kind: 'object'; doc: string; fields: Record<string, Field>; optional?: boolean; requires?: string[] }
  | { kind: 'map'; doc: string; of: Field; keyCheck?: (k: string) => string | undefined; default?: Record<string, unknown> };

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * The longest delay a Node timer honours: setTimeout and setInterval hold at most 2^31 - 1 ms
 * (about 24.8 days) and fire a longer delay after 1 ms instead. Every duration that ends up in
 * a timer is capped here.
 */
export const MAX_TIMER_MS = 24 * 86_400_000;

/** Parse `500ms`, `10s`, `1h30m`, `24h`, `7d` into milliseconds; undefined if malformed. */
export function parseDuration(v: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(v); m; m = re.exec(v)) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    matched = re.lastIndex;
  }
  if (matched === 0 || matched !== v.length) return undefined;
  return Math.round(total);
}

/** Milliseconds as a duration `parseDuration` reads back: `4h`, `3h59m50s`, `1500ms`. */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms <= 0) return `${ms}ms`;
  let rest = ms;
  let out = '';
  for (const [u, n] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    if (rest >= n) out += `${Math.floor(rest / n)}${u}`;
    rest %= n;
  }
  return out;
}

/** Validate `value` against `field`, applying defaults; durations come out as milliseconds. */
export function validate(field: Field, value: unknown, path: string, errors: string[]): unknown {
  const at = path || '(root)';
  if (value === undefined || value === null) {
    if (field.kind === 'object') {
      if (field.optional && value === undefined) return undefined;
      if (field.optional && value === null) return undefined;
      return validate(field, {}, path, errors);
    }
    if ('default' in field && field.default !== undefined) return validate(field, field.default, path, errors);
    if (field.kind === 'map') return {};
    if (field.kind === 'list') return [];
    return undefined;
  }
  switch (field.kind) {
    case 'string': {
      if (typeof value !== 'string') return void errors.push(`${at}: must be a string`);
      if (field.pattern && !field.pattern.test(value))
        return void errors.push(`${at}: ${field.patternHelp ?? `must match ${field.pattern}`}`);
      const problem = field.check?.(value);
      if (problem) return void errors.push(`${at}: ${problem}`);
      return value;
    }
    case 'int':
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return void errors.push(`${at}: must be a number`);
      if (field.kind === 'int' && !Number.isInteger(value)) return void errors.push(`${at}: must be an integer`);
      if (field.min !== undefined && (value < field.min || ('exclusiveMin' in field && field.exclusiveMin && value === field.min)))
        return void errors.push(`${at}: must be ${'exclusiveMin' in field && field.exclusiveMin ? 'greater than' : 'at least'} ${field.min}`);
      if (field.max !== undefined && value > field.max) return void errors.push(`${at}: must be at most ${field.max}`);
      return value;
    }
    case 'bool':
      if (typeof value !== 'boolean') return void errors.push(`${at}: must be true or false`);
      return value;
    case 'duration': {
      const ms = typeof value === 'string' ? parseDuration(value) : undefined;
      if (ms === undefined) return void errors.push(`${at}: must be a duration such as 500ms, 10s, 5m, 24h`);
      if (field.minMs !== undefined && ms < field.minMs) return void errors.push(`${at}: must be at least ${formatDuration(field.minMs)}`);
      // Not a safe integer (digits enough to overflow) is "too long" as well.
      if (!(ms <= field.maxMs)) return void errors.push(`${at}: must be at most ${formatDuration(field.maxMs)}`);
      if (field.wholeSeconds && ms % 1000 !== 0) return void errors.push(`${at}: must be a whole number of seconds`);
      return ms;
    }
    case 'enum':
      if (typeof value !== 'string' || !field.values.includes(value))
        return void errors.push(`${at}: must be one of ${field.values.join(', ')}`);
      return value;
    case 'list': {
      if (!Array.isArray(value)) return void errors.push(`${at}: must be a list`);
      if (field.minItems !== undefined && value.length < field.minItems)
        errors.push(`${at}: must have at least ${field.minItems} item(s)`);
      return value.map((v, i) => validate(field.of, v, `${path}[${i}]`, errors));
    }
    case 'map': {
      if (typeof value !== 'object' || Array.isArray(value)) return void errors.push(`${at}: must be a mapping`);
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        const problem = field.keyCheck?.(k);
        if (problem) errors.push(`${path}["${k}"]: ${problem}`);
        out[k] = validate(field.of, v, `${path}["${k}"]`, errors);
      }
      return out;
    }
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) return void errors.push(`${at}: must be a mapping`);
      const v = value as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v))
        if (!(k in field.fields)) errors.push(`${path ? `${path}.` : ''}${k}: unknown field`);
      for (const r of field.requires ?? [])
        if (v[r] === undefined || v[r] === null) errors.push(`${path ? `${path}.` : ''}${r}: required`);
      for (const [k, f] of Object.entries(field.fields)) {
        const r = validate(f, v[k], path ? `${path}.${k}` : k, errors);
        if (r !== undefined) out[k] = r;
      }
      return out;
    }
  }
}

export function check<T>(schema: Field, value: unknown): Checked<T> {
  const errors: string[] = [];
  const out = validate(schema, value, '', errors);
  return errors.length ? { ok: false, errors } : { ok: true, value: out as T };
}

/** The allowed range of a field, as the reference states it (empty when any value goes). */
function range(f: Field): string {
  if (f.kind === 'duration')
    return ` Range: ${f.minMs ? formatDuration(f.minMs) : '0'} to ${formatDuration(f.maxMs)}${f.wholeSeconds ? ', whole seconds' : ''}.`;
  if ((f.kind === 'int' || f.kind === 'number') && (f.min !== undefined || f.max !== undefined)) {
    const lo = f.min === undefined ? '' : `${'exclusiveMin' in f && f.exclusiveMin ? 'more than' : 'at least'} ${f.min}`;
    const hi = f.max === undefined ? '' : `at most ${f.max}`;
    return ` Range: ${[lo, hi].filter(Boolean).join(', ')}.`;
  }
  return '';
}

/** Render the schema as Markdown rows: `| field | type | default | description |`. */
export function renderReference(field: Field, path = ''): string[] {
  const rows: string[] = [];
  const type = (f: Field): string => {
    switch (f.kind) {
      case 'enum':
        return f.values.map((v) => `\`${v}\``).join(' \\| ');
      case 'list':
        return `list of ${type(f.of)}`;
      case 'map':
        return `map of ${type(f.of)}`;
      case 'object':
        return 'mapping';
      default:
        return f.kind;
    }
  };
  const dflt = (f: Field): string => {
    if (f.kind === 'object') return f.optional ? '(absent)' : '';
    if (!('default' in f) || f.default === undefined) return '';
    return `\`${typeof f.default === 'string' ? f.default : JSON.stringify(f.default)}\``;
  };
  if (path) rows.push(`| \`${path}\` | ${type(field)} | ${dflt(field)} | ${(field.doc + range(field)).replace(/\|/g, '\\|')} |`);
  if (field.kind === 'object')
    for (const [k, f] of Object.entries(field.fields)) rows.push(...renderReference(f, path ? `${path}.${k}` : k));
  if (field.kind === 'list' && field.of.kind === 'object')
    for (const [k, f] of Object.entries(field.of.fields)) rows.push(...renderReference(f, `${path}[].${k}`));
  if (field.kind === 'map' && field.of.kind === 'object')
    for (const [k, f] of Object.entries(field.of.fields)) rows.push(...renderReference(f, `${path}.<key>.${k}`));
  return rows;
}
