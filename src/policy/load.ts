/**
 * Reading a policy file: a size limit before parsing, strict YAML 1.2 (core schema, no merge
 * keys, duplicate keys rejected, few aliases), then checkPolicy. JSON is YAML, so `.json`
 * policies load the same way.
 */
import { parseDocument } from 'yaml';
import type { Checked } from '../identity/index.ts';
import type { Policy } from './model.ts';
import { checkPolicy } from './validate.ts';

export const MAX_POLICY_BYTES = 4 * 1024 * 1024;
const MAX_ALIASES = 100;
const MAX_YAML_ERRORS = 20;

export interface LoadOptions {
  /** Refuse larger documents before parsing them. Default 4 MiB. */
  readonly maxBytes?: number;
}

/** Parse YAML (or JSON) policy text, reporting YAML errors with line and column. */
export function parsePolicyText(text: string, opts: LoadOptions = {}): Checked<Policy> {
  const doc = parsePolicyYaml(text, opts);
  return doc.ok ? checkPolicy(doc.value) : doc;
}

/** The YAML stage alone: text to plain data. */
export function parsePolicyYaml(text: string, opts: LoadOptions = {}): Checked<unknown> {
  const max = opts.maxBytes ?? MAX_POLICY_BYTES;
  if (typeof text !== 'string') return { ok: false, errors: ['(root): policy text must be a string'] };
  const size = Buffer.byteLength(text, 'utf8');
  if (size > max) return { ok: false, errors: [`(root): policy is ${size} bytes, more than the limit of ${max}`] };
  const doc = parseDocument(text, {
    version: '1.2',
    schema: 'core',
    merge: false,
    uniqueKeys: true,
    strict: true,
    stringKeys: true,
    resolveKnownTags: false,
    prettyErrors: true,
  });
  // Warnings (unresolved tags and the like) are refused too: fail closed.
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0) {
    const errors = problems.slice(0, MAX_YAML_ERRORS).map((e) => `(yaml) ${e.code}: ${e.message.split('\n')[0]}`);
    if (problems.length > MAX_YAML_ERRORS) errors.push(`(yaml) and ${problems.length - MAX_YAML_ERRORS} more`);
    return { ok: false, errors };
  }
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: MAX_ALIASES }) };
  } catch (e) {
    return { ok: false, errors: [`(yaml) ${(e as Error).message}`] };
  }
}
