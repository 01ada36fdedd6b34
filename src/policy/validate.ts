/**
 * Policy validation: turns an untrusted document (parsed YAML or JSON, or an object built in
 * code) into a `Policy`, reporting every problem with its field path, e.g.
 * `destinations[2].rules[0].callers[1]: not a workload identifier (percent_unreserved)`.
 * Unknown fields are errors (a typo such as `caller:` must not silently widen or narrow a rule).
 * docs/policy.md describes each field.
 */
import { parseTrustDomain, parseWorkloadId, type Checked } from '../identity/index.ts';
import { checkRawPath } from './request-path.ts';
import { AUTHN_METHODS, type AuthnMethod, type CallerPattern, type Destination, type PathPattern, type Policy, type Rule } from './model.ts';

export const MAX_AUDIENCE_LENGTH = 2048;
const RULE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const METHOD = /^[A-Z][A-Z0-9_-]{0,31}$/;
const TEMPLATE_VAR = /^\{[A-Za-z_][A-Za-z0-9_]*\}$/;

type Errors = string[];
type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const at = (path: string, key: string | number): string =>
  typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key;

function onlyKeys(o: Obj, allowed: readonly string[], path: string, errors: Errors): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) errors.push(`${at(path, k)}: unknown field`);
}

/** Validate a whole policy document. */
export function checkPolicy(doc: unknown): Checked<Policy> {
  const errors: Errors = [];
  if (doc === null || doc === undefined) return { ok: false, errors: ['(root): policy document is empty'] };
  if (!isObj(doc)) return { ok: false, errors: ['(root): policy must be a mapping'] };
  onlyKeys(doc, ['version', 'destinations'], '', errors);
  if (doc.version === undefined) errors.push('version: required (write `version: 1`)');
  else if (doc.version !== 1) errors.push('version: unsupported policy version (only 1)');
  const destinations: Destination[] = [];
  if (doc.destinations === undefined) errors.push('destinations: required (a list, possibly empty)');
  else if (!Array.isArray(doc.destinations)) errors.push('destinations: must be a list');
  else {
    const seen = new Map<string, number>();
    doc.destinations.forEach((d, i) => {
      const dest = checkDestination(d, at('destinations', i), errors);
      if (!dest) return;
      const prior = seen.get(dest.workload);
      if (prior !== undefined) errors.push(`${at(at('destinations', i), 'workload')}: duplicate destination (also destinations[${prior}])`);
      else seen.set(dest.workload, i);
      destinations.push(dest);
    });
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, value: { version: 1, destinations } };
}

function checkDestination(d: unknown, path: string, errors: Errors): Destination | undefined {
  if (!isObj(d)) {
    errors.push(`${path}: must be a mapping`);
    return undefined;
  }
  const before = errors.length;
  onlyKeys(d, ['workload', 'audiences', 'rules'], path, errors);
  let workload = '';
  if (d.workload === undefined) errors.push(`${at(path, 'workload')}: required`);
  else {
    const id = parseWorkloadId(d.workload);
    if (id.ok) workload = id.value.uri;
    else errors.push(`${at(path, 'workload')}: not a workload identifier (${id.reason})`);
  }
  const audiences = checkAudiences(d.audiences, at(path, 'audiences'), errors);
  const rules: Rule[] = [];
  if (d.rules === undefined) errors.push(`${at(path, 'rules')}: required (a list, possibly empty)`);
  else if (!Array.isArray(d.rules)) errors.push(`${at(path, 'rules')}: must be a list`);
  else {
    const names = new Map<string, number>();
    d.rules.forEach((r, i) => {
      const rp = at(at(path, 'rules'), i);
      const rule = checkRule(r, rp, errors);
      if (!rule) return;
      const prior = names.get(rule.name);
      if (prior !== undefined) errors.push(`${at(rp, 'name')}: duplicate rule name (also rules[${prior}])`);
      else names.set(rule.name, i);
      rules.push(rule);
    });
  }
  return errors.length === before ? { workload, audiences, rules } : undefined;
}

function checkAudiences(v: unknown, path: string, errors: Errors): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    errors.push(`${path}: must be a list of strings`);
    return [];
  }
  const out: string[] = [];
  v.forEach((a, i) => {
    const p = at(path, i);
    if (typeof a !== 'string' || a.length === 0) errors.push(`${p}: must be a non-empty string`);
    else if (a.length > MAX_AUDIENCE_LENGTH) errors.push(`${p}: longer than ${MAX_AUDIENCE_LENGTH} bytes`);
    else if (!/^[\x21-\x7e]+$/.test(a)) errors.push(`${p}: must be printable ASCII without spaces`);
    else if (out.includes(a)) errors.push(`${p}: duplicate audience`);
    else out.push(a);
  });
  return out;
}

function checkRule(r: unknown, path: string, errors: Errors): Rule | undefined {
  if (!isObj(r)) {
    errors.push(`${path}: must be a mapping`);
    return undefined;
  }
  const before = errors.length;
  onlyKeys(r, ['name', 'description', 'paths', 'methods', 'callers', 'authn'], path, errors);
  const name = typeof r.name === 'string' ? r.name : '';
  if (r.name === undefined) errors.push(`${at(path, 'name')}: required`);
  else if (!RULE_NAME.test(name)) errors.push(`${at(path, 'name')}: must match ${RULE_NAME.source}`);
  if (r.description !== undefined && (typeof r.description !== 'string' || r.description.length > 1024))
    errors.push(`${at(path, 'description')}: must be a string of at most 1024 characters`);
  const paths = nonEmptyList(r.paths, at(path, 'paths'), errors, checkPathPattern);
  const methods = r.methods === undefined ? undefined : checkMethods(r.methods, at(path, 'methods'), errors);
  const callers = nonEmptyList(r.callers, at(path, 'callers'), errors, checkCaller);
  const authn = checkAuthn(r.authn, at(path, 'authn'), errors);
  if (errors.length !== before || !authn) return undefined;
  const rule: Rule = {
    name,
    paths,
    callers,
    authn,
    ...(methods ? { methods } : {}),
    ...(typeof r.description === 'string' ? { description: r.description } : {}),
  };
  return rule;
}

function nonEmptyList<T>(v: unknown, path: string, errors: Errors, each: (x: unknown, p: string, e: Errors) => T | undefined): T[] {
  if (v === undefined) {
    errors.push(`${path}: required (a non-empty list)`);
    return [];
  }
  if (!Array.isArray(v) || v.length === 0) {
    errors.push(`${path}: must be a non-empty list`);
    return [];
  }
  const out: T[] = [];
  v.forEach((x, i) => {
    const item = each(x, at(path, i), errors);
    if (item !== undefined) out.push(item);
  });
  return out;
}

/** Exactly one key of a one-key mapping, or an error. */
function singleKey(v: unknown, kinds: readonly string[], path: string, errors: Errors): [string, Obj] | undefined {
  if (!isObj(v)) {
    errors.push(`${path}: must be a mapping with one of ${kinds.join(', ')}`);
    return undefined;
  }
  const present = kinds.filter((k) => v[k] !== undefined);
  if (present.length !== 1) {
    errors.push(`${path}: must have exactly one of ${kinds.join(', ')}`);
    return undefined;
  }
  return [present[0]!, v];
}

function checkPathPattern(v: unknown, path: string, errors: Errors): PathPattern | undefined {
  if (typeof v === 'string') {
    errors.push(`${path}: write {exact: ...}, {prefix: ...} or {template: ...}`);
    return undefined;
  }
  const k = singleKey(v, ['exact', 'prefix', 'template'], path, errors);
  if (!k) return undefined;
  const [kind, o] = k;
  onlyKeys(o, [kind], path, errors);
  const p = at(path, kind);
  const value = o[kind];
  if (typeof value !== 'string') {
    errors.push(`${p}: must be a string`);
    return undefined;
  }
  const raw = checkRawPath(value);
  if (!raw.ok) {
    errors.push(`${p}: ${raw.problem}`);
    return undefined;
  }
  if (kind === 'exact') return { exact: value };
  if (kind === 'prefix') {
    if (!value.endsWith('/')) {
      errors.push(`${p}: a prefix must end with / (it grants whole segments)`);
      return undefined;
    }
    if (value.includes('{') || value.includes('}')) {
      errors.push(`${p}: a prefix must not contain template variables`);
      return undefined;
    }
    return { prefix: value };
  }
  for (const seg of raw.segments) {
    if ((seg.includes('{') || seg.includes('}')) && !TEMPLATE_VAR.test(seg)) {
      errors.push(`${p}: a template variable must be a whole segment such as {id}`);
      return undefined;
    }
  }
  return { template: value };
}

function checkMethods(v: unknown, path: string, errors: Errors): string[] | undefined {
  if (!Array.isArray(v) || v.length === 0) {
    errors.push(`${path}: must be a non-empty list (omit it to allow any method)`);
    return undefined;
  }
  const out: string[] = [];
  v.forEach((m, i) => {
    const p = at(path, i);
    if (typeof m !== 'string' || !METHOD.test(m)) errors.push(`${p}: not an upper-case HTTP method`);
    else if (out.includes(m)) errors.push(`${p}: duplicate method`);
    else out.push(m);
  });
  return out;
}

function checkCaller(v: unknown, path: string, errors: Errors): CallerPattern | undefined {
  if (typeof v === 'string') return exactCaller(v, path, errors);
  const k = singleKey(v, ['exact', 'prefix', 'trustDomain'], path, errors);
  if (!k) return undefined;
  const [kind, o] = k;
  onlyKeys(o, kind === 'trustDomain' ? ['trustDomain', 'scheme'] : [kind], path, errors);
  const p = at(path, kind);
  const value = o[kind];
  if (kind === 'exact') return exactCaller(value, p, errors);
  if (kind === 'prefix') {
    if (typeof value !== 'string' || !value.endsWith('/')) {
      errors.push(`${p}: a caller prefix must be an identifier prefix ending with /`);
      return undefined;
    }
    // The prefix without its final `/` must itself be a canonical identifier: it then matches only
    // whole segments below it (draft-ietf-wimse-identifier-03: prefix grants only when explicit).
    const id = parseWorkloadId(value.slice(0, -1));
    if (!id.ok) {
      errors.push(
        id.reason === 'path_missing'
          ? `${p}: a prefix must name at least one path segment (use {trustDomain: ...} for a whole trust domain)`
          : `${p}: not a workload identifier prefix (${id.reason})`,
      );
      return undefined;
    }
    return { prefix: value };
  }
  const td = parseTrustDomain(value);
  if (!td.ok) {
    errors.push(`${p}: not a trust domain (${td.reason})`);
    return undefined;
  }
  if (o.scheme !== undefined && o.scheme !== 'spiffe' && o.scheme !== 'wimse') {
    errors.push(`${at(path, 'scheme')}: must be spiffe or wimse`);
    return undefined;
  }
  return o.scheme === undefined ? { trustDomain: td.value } : { trustDomain: td.value, scheme: o.scheme as 'spiffe' | 'wimse' };
}

function exactCaller(v: unknown, path: string, errors: Errors): CallerPattern | undefined {
  const id = parseWorkloadId(v);
  if (!id.ok) {
    errors.push(`${path}: not a workload identifier (${id.reason})`);
    return undefined;
  }
  return { exact: id.value.uri };
}

function checkAuthn(v: unknown, path: string, errors: Errors): ['any'] | AuthnMethod[] | undefined {
  if (v === undefined) {
    errors.push(`${path}: required ([mtls, wpt, httpsig] or a subset, or [any])`);
    return undefined;
  }
  if (!Array.isArray(v) || v.length === 0) {
    errors.push(`${path}: must be a non-empty list`);
    return undefined;
  }
  if (v.includes('any')) {
    if (v.length !== 1) errors.push(`${path}: any must stand alone`);
    return v.length === 1 ? ['any'] : undefined;
  }
  const out: AuthnMethod[] = [];
  const before = errors.length;
  v.forEach((m, i) => {
    if (!AUTHN_METHODS.includes(m as AuthnMethod)) errors.push(`${at(path, i)}: must be one of mtls, wpt, httpsig, any`);
    else if (out.includes(m as AuthnMethod)) errors.push(`${at(path, i)}: duplicate method`);
    else out.push(m as AuthnMethod);
  });
  return errors.length === before ? out : undefined;
}
