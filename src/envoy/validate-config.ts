/**
 * Strict validation of an Envoy config document (parsed YAML/JSON) against a proto message, by
 * reflection over the protobufjs types loaded in protos.ts.
 *
 * It follows the proto3 JSON mapping as Envoy's YAML loader applies it:
 * - field names: the proto name (`snake_case`) or its JSON name (`lowerCamel`); anything else is
 *   an unknown field, which Envoy rejects;
 * - 32-bit integers as JSON numbers or decimal strings, 64-bit as numbers or strings, bools as
 *   bools, bytes as base64, enums by value name (or a defined number);
 * - well-known types in their special forms: Duration `"0.5s"`, Timestamp RFC 3339, wrappers as
 *   the bare wrapped value (`UInt32Value` is a number), Struct/Value/ListValue free-form,
 *   FieldMask a string, Empty `{}`;
 * - `google.protobuf.Any` carries `@type`; the named type must be loaded and the rest of the
 *   object is validated as that type (a well-known type puts its JSON form under `value`);
 * - a oneof has at most one member set.
 * It also enforces the protoc-gen-validate rules that catch real mistakes cheaply:
 * `message.required`, `(validate.required)` oneofs, `string.min_len`, `repeated.min_items` and
 * `enum.defined_only`; and it rejects deprecated fields unless allowed.
 *
 * Every problem is reported with its field path, e.g.
 * `static_resources.clusters[0].connect_timeout: not a Duration string ("1 s")`.
 */
import type * as Protobuf from 'protobufjs';
import type { Checked } from '../identity/result.ts';
import { envoyProtos, typeNameOfUrl } from './protos.ts';

export interface ValidateOptions {
  /** Accept fields marked `deprecated` (Envoy only warns for most). Default false. */
  readonly allowDeprecated?: boolean;
}

/** Validate `doc` as the message `typeName` (fully qualified, no leading dot). */
export function validateMessage(typeName: string, doc: unknown, opts: ValidateOptions = {}): Checked<true> {
  const root = envoyProtos().root;
  let type: Protobuf.Type;
  try {
    type = root.lookupType(typeName);
  } catch {
    return { ok: false, errors: [`<root>: message type ${typeName} is not loaded`] };
  }
  const errors: string[] = [];
  new Walker(root, errors, opts).message(type, doc, '');
  return errors.length ? { ok: false, errors } : { ok: true, value: true };
}

/** Validate a whole bootstrap document (`envoy -c file.yaml`). */
export const validateBootstrap = (doc: unknown, opts: ValidateOptions = {}): Checked<true> =>
  validateMessage('envoy.config.bootstrap.v3.Bootstrap', doc, opts);

const INT32 = new Set(['int32', 'sint32', 'sfixed32']);
const UINT32 = new Set(['uint32', 'fixed32']);
const INT64 = new Set(['int64', 'sint64', 'sfixed64']);
const UINT64 = new Set(['uint64', 'fixed64']);
const WRAPPERS: Record<string, string> = {
  'google.protobuf.DoubleValue': 'double',
  'google.protobuf.FloatValue': 'float',
  'google.protobuf.Int64Value': 'int64',
  'google.protobuf.UInt64Value': 'uint64',
  'google.protobuf.Int32Value': 'int32',
  'google.protobuf.UInt32Value': 'uint32',
  'google.protobuf.BoolValue': 'bool',
  'google.protobuf.StringValue': 'string',
  'google.protobuf.BytesValue': 'bytes',
};
const DURATION = /^-?\d{1,12}(\.\d{1,9})?s$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const at = (path: string, key: string): string => (path ? `${path}.${key}` : key);
const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 40 ? `${s.slice(0, 40)}...` : s;
};

class Walker {
  constructor(
    private readonly root: Protobuf.Root,
    private readonly errors: string[],
    private readonly opts: ValidateOptions,
  ) {}

  private err(path: string, msg: string): void {
    this.errors.push(`${path || '<root>'}: ${msg}`);
  }

  /** A value whose declared type is message `type`. */
  message(type: Protobuf.Type, v: unknown, path: string): void {
    const name = type.fullName.replace(/^\./, '');
    if (this.wellKnown(name, v, path)) return;
    if (!isObject(v)) return this.err(path, `expected an object for ${name}, got ${show(v)}`);
    this.fields(type, v, path, new Set());
  }

  private fields(type: Protobuf.Type, obj: Record<string, unknown>, path: string, skip: Set<string>): void {
    const seen = new Map<string, Protobuf.Field>();
    for (const [key, value] of Object.entries(obj)) {
      if (skip.has(key)) continue;
      const field = type.fields[key] ?? type.fieldsArray.find((f) => jsonName(f) === key);
      if (!field) {
        this.err(at(path, key), `unknown field in ${type.fullName.replace(/^\./, '')}`);
        continue;
      }
      if (seen.has(field.name)) {
        this.err(at(path, key), `field ${field.name} given twice (proto and JSON names)`);
        continue;
      }
      seen.set(field.name, field);
      const opts = field.options ?? {};
      if (opts.deprecated === true && !this.opts.allowDeprecated)
        this.err(at(path, key), 'deprecated field');
      this.field(field, value, at(path, key));
    }
    this.pgvRequired(type, seen, path);
    for (const oneof of type.oneofsArray) {
      const set = oneof.fieldsArray.filter((f) => seen.has(f.name) && obj[keyOf(obj, f)] !== null);
      if (set.length > 1)
        this.err(path, `oneof ${oneof.name}: at most one of ${set.map((f) => f.name).join(', ')} may be set`);
      if (set.length === 0 && oneof.options?.['(validate.required)'] === true)
        this.err(path, `oneof ${oneof.name}: one of ${oneof.fieldsArray.map((f) => f.name).join(', ')} is required`);
    }
  }

  private pgvRequired(type: Protobuf.Type, seen: Map<string, Protobuf.Field>, path: string): void {
    for (const f of type.fieldsArray) {
      const o = f.options ?? {};
      if (o['(validate.rules).message.required'] === true && !seen.has(f.name) && !f.partOf)
        this.err(at(path, f.name), 'required field missing');
      const minLen = o['(validate.rules).string.min_len'];
      if (typeof minLen === 'number' && minLen > 0 && !seen.has(f.name) && !f.partOf)
        this.err(at(path, f.name), `required (min_len ${minLen})`);
      const minItems = o['(validate.rules).repeated.min_items'];
      if (typeof minItems === 'number' && minItems > 0 && !seen.has(f.name))
        this.err(at(path, f.name), `required (min_items ${minItems})`);
    }
  }

  private field(field: Protobuf.Field, v: unknown, path: string): void {
    if (v === null) return; // JSON null = default value
    if (field.map) {
      if (!isObject(v)) return this.err(path, `expected a map object, got ${show(v)}`);
      const mf = field as unknown as Protobuf.MapField;
      for (const [k, item] of Object.entries(v)) {
        if (mf.keyType !== 'string' && !/^-?\d+$/.test(k) && !(mf.keyType === 'bool' && /^(true|false)$/.test(k)))
          this.err(`${path}["${k}"]`, `map key must be ${mf.keyType}`);
        this.single(field, item, `${path}["${k}"]`);
      }
      return;
    }
    if (field.repeated) {
      if (!Array.isArray(v)) return this.err(path, `expected a list, got ${show(v)}`);
      const minItems = field.options?.['(validate.rules).repeated.min_items'];
      if (typeof minItems === 'number' && v.length < minItems) this.err(path, `needs at least ${minItems} item(s)`);
      v.forEach((item, i) => this.single(field, item, `${path}[${i}]`));
      return;
    }
    this.single(field, v, path);
  }

  private single(field: Protobuf.Field, v: unknown, path: string): void {
    const rt = field.resolvedType;
    if (rt && 'fieldsArray' in rt) return this.message(rt as Protobuf.Type, v, path);
    if (rt) return this.enumValue(rt as Protobuf.Enum, v, path);
    this.scalar(field.type, v, path);
    const minLen = field.options?.['(validate.rules).string.min_len'];
    if (field.type === 'string' && typeof minLen === 'number' && typeof v === 'string' && v.length < minLen)
      this.err(path, `must be at least ${minLen} character(s)`);
  }

  private enumValue(e: Protobuf.Enum, v: unknown, path: string): void {
    if (typeof v === 'string') {
      if (!(v in e.values)) this.err(path, `invalid enum value ${show(v)} for ${e.fullName.replace(/^\./, '')}`);
    } else if (typeof v === 'number') {
      if (!Object.values(e.values).includes(v)) this.err(path, `undefined enum number ${v} for ${e.name}`);
    } else this.err(path, `expected an enum name, got ${show(v)}`);
  }

  private scalar(kind: string, v: unknown, path: string): void {
    const bad = (what: string): void => this.err(path, `expected ${what} (${kind}), got ${show(v)}`);
    if (kind === 'string') {
      if (typeof v !== 'string') bad('a string');
    } else if (kind === 'bool') {
      if (typeof v !== 'boolean') bad('a boolean');
    } else if (kind === 'bytes') {
      if (typeof v !== 'string' || !BASE64.test(v)) bad('base64 text');
    } else if (kind === 'double' || kind === 'float') {
      if (!(typeof v === 'number' || (typeof v === 'string' && /^(NaN|-?Infinity|-?\d+(\.\d+)?([eE][-+]?\d+)?)$/.test(v))))
        bad('a number');
    } else if (INT32.has(kind) || UINT32.has(kind)) {
      const n = integerOf(v);
      if (n === undefined) return bad('an integer');
      const [lo, hi] = INT32.has(kind) ? [-(2 ** 31), 2 ** 31 - 1] : [0, 2 ** 32 - 1];
      if (n < BigInt(lo) || n > BigInt(hi)) this.err(path, `${kind} out of range: ${show(v)}`);
    } else if (INT64.has(kind) || UINT64.has(kind)) {
      const n = integerOf(v);
      if (n === undefined) return bad('an integer');
      if (UINT64.has(kind) ? n < 0n || n > 2n ** 64n - 1n : n < -(2n ** 63n) || n > 2n ** 63n - 1n)
        this.err(path, `${kind} out of range: ${show(v)}`);
    } else this.err(path, `unsupported scalar type ${kind}`);
  }

  /** Special JSON forms of google.protobuf types; true when `name` is one (and was handled). */
  private wellKnown(name: string, v: unknown, path: string): boolean {
    const wrapped = WRAPPERS[name];
    if (wrapped) {
      this.scalar(wrapped, v, path);
      return true;
    }
    switch (name) {
      case 'google.protobuf.Duration':
        if (typeof v !== 'string' || !DURATION.test(v)) this.err(path, `not a Duration string like "0.5s": ${show(v)}`);
        return true;
      case 'google.protobuf.Timestamp':
        if (typeof v !== 'string' || !TIMESTAMP.test(v)) this.err(path, `not an RFC 3339 Timestamp: ${show(v)}`);
        return true;
      case 'google.protobuf.FieldMask':
        if (typeof v !== 'string') this.err(path, `not a FieldMask string: ${show(v)}`);
        return true;
      case 'google.protobuf.Struct':
        if (!isObject(v)) this.err(path, `expected an object (Struct), got ${show(v)}`);
        return true;
      case 'google.protobuf.ListValue':
        if (!Array.isArray(v)) this.err(path, `expected a list (ListValue), got ${show(v)}`);
        return true;
      case 'google.protobuf.Value':
        return true;
      case 'google.protobuf.Empty':
        if (!isObject(v) || Object.keys(v).length) this.err(path, `expected {} (Empty), got ${show(v)}`);
        return true;
      case 'google.protobuf.Any':
        this.any(v, path);
        return true;
      default:
        return false;
    }
  }

  private any(v: unknown, path: string): void {
    if (!isObject(v)) return this.err(path, `expected an object with @type (Any), got ${show(v)}`);
    const url = v['@type'];
    if (typeof url !== 'string') return this.err(at(path, '@type'), 'an Any needs a string @type');
    const typeName = typeNameOfUrl(url);
    let inner: Protobuf.Type | undefined;
    if (typeName) {
      try {
        inner = this.root.lookupType(typeName);
      } catch {
        inner = undefined;
      }
    }
    if (!inner) return this.err(at(path, '@type'), `type ${show(url)} does not resolve to a loaded message`);
    const innerName = inner.fullName.replace(/^\./, '');
    if (isSpecialJson(innerName)) {
      for (const k of Object.keys(v)) if (k !== '@type' && k !== 'value') this.err(at(path, k), 'unknown field in Any of a well-known type');
      if ('value' in v) this.message(inner, v.value, at(path, 'value'));
      return;
    }
    this.fields(inner, v, path, new Set(['@type']));
  }
}

function isSpecialJson(name: string): boolean {
  return (
    name in WRAPPERS ||
    ['Duration', 'Timestamp', 'FieldMask', 'Struct', 'ListValue', 'Value', 'Any'].some((n) => name === `google.protobuf.${n}`)
  );
}

function jsonName(f: Protobuf.Field): string {
  return f.name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function keyOf(obj: Record<string, unknown>, f: Protobuf.Field): string {
  return f.name in obj ? f.name : jsonName(f);
}

function integerOf(v: unknown): bigint | undefined {
  if (typeof v === 'number') return Number.isInteger(v) ? BigInt(v) : undefined;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  return undefined;
}
