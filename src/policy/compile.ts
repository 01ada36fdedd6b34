/**
 * A validated policy compiled into an index, so a decision costs a few map lookups and a walk
 * of the request's path segments, not a scan of every rule:
 *
 *   destination -> method (or any) -> { exact path map, segment trie of prefixes and templates }
 *   rule -> { exact caller set, caller prefixes, trust domains }, authn method set
 *
 * A compiled policy is immutable; PolicyStore swaps whole snapshots.
 */
import { createHash } from 'node:crypto';
import { checkRawPath } from './request-path.ts';
import { checkPolicy } from './validate.ts';
import type { AuthnMethod, Policy, Rule } from './model.ts';

export interface CompiledRule {
  /** Position in document order across the destination: the lowest matching one decides. */
  readonly ordinal: number;
  readonly rule: Rule;
  readonly callerExact: ReadonlySet<string>;
  /** Canonical identifier prefixes ending with `/`. */
  readonly callerPrefixes: readonly string[];
  /** Trust domain -> schemes granted (`'*'` for any scheme). */
  readonly callerTrustDomains: ReadonlyMap<string, 'spiffe' | 'wimse' | '*'>;
  readonly authnAny: boolean;
  readonly authn: ReadonlySet<AuthnMethod>;
}

export interface TrieNode {
  literal?: Map<string, TrieNode>;
  /** A template variable: one non-empty segment. */
  param?: TrieNode;
  /** Prefix grants ending here: match when at least one more segment follows (maybe empty). */
  prefixRules?: CompiledRule[];
  /** Templates ending here: match when the request path ends here too. */
  endRules?: CompiledRule[];
}

export interface PathIndex {
  readonly exact: Map<string, CompiledRule[]>;
  readonly trie: TrieNode;
}

export interface CompiledDestination {
  readonly workload: string;
  readonly audiences: readonly string[];
  readonly rules: readonly CompiledRule[];
  readonly byMethod: ReadonlyMap<string, PathIndex>;
  /** Rules without `methods`. */
  readonly anyMethod: PathIndex;
}

export type PolicyStatus = 'ok' | 'empty' | 'invalid';

export interface CompiledPolicy {
  /** `empty`: no policy loaded or no destinations. `invalid`: the only policy seen was malformed. */
  readonly status: PolicyStatus;
  readonly errors: readonly string[];
  readonly policy?: Policy;
  readonly destinations: ReadonlyMap<string, CompiledDestination>;
  /** Set by PolicyStore on each accepted load; 0 outside a store. */
  readonly version: number;
  /** `sha256:<hex>` of the validated policy's canonical JSON; `''` when there is none. */
  readonly digest: string;
}

/** The snapshot that denies everything, saying why. */
export function denyAllPolicy(status: 'empty' | 'invalid', errors: readonly string[] = [], version = 0): CompiledPolicy {
  return Object.freeze({ status, errors: Object.freeze([...errors]), destinations: new Map(), version, digest: '' });
}

export const policyDigest = (policy: Policy): string =>
  'sha256:' + createHash('sha256').update(JSON.stringify(policy)).digest('hex');

/**
 * Build the index of a policy. The policy is validated first; an invalid one is misuse here
 * (documents go through PolicyStore.load or checkPolicy, which report errors as data).
 */
export function compilePolicy(policy: Policy, version = 0): CompiledPolicy {
  const checked = checkPolicy(policy);
  if (!checked.ok) throw new TypeError(`compilePolicy: invalid policy: ${checked.errors.slice(0, 3).join('; ')}`);
  return compileChecked(checked.value, version);
}

/** Build the index of a policy that checkPolicy accepted. */
export function compileChecked(policy: Policy, version: number): CompiledPolicy {
  const destinations = new Map<string, CompiledDestination>();
  for (const d of policy.destinations) {
    const rules = d.rules.map(compileRule);
    const byMethod = new Map<string, PathIndex>();
    const anyMethod = newIndex();
    for (const cr of rules) {
      const targets = cr.rule.methods
        ? cr.rule.methods.map((m) => byMethod.get(m) ?? byMethod.set(m, newIndex()).get(m)!)
        : [anyMethod];
      for (const idx of targets) for (const p of cr.rule.paths) insertPath(idx, p, cr);
    }
    destinations.set(d.workload, { workload: d.workload, audiences: d.audiences, rules, byMethod, anyMethod });
  }
  const status = policy.destinations.length === 0 ? 'empty' : 'ok';
  return Object.freeze({ status, errors: [], policy, destinations, version, digest: policyDigest(policy) });
}

const newIndex = (): PathIndex => ({ exact: new Map(), trie: {} });

function compileRule(rule: Rule, ordinal: number): CompiledRule {
  const callerExact = new Set<string>();
  const callerPrefixes: string[] = [];
  const callerTrustDomains = new Map<string, 'spiffe' | 'wimse' | '*'>();
  for (const c of rule.callers) {
    if ('exact' in c) callerExact.add(c.exact);
    else if ('prefix' in c) callerPrefixes.push(c.prefix);
    else {
      const prior = callerTrustDomains.get(c.trustDomain);
      const scheme = c.scheme ?? '*';
      callerTrustDomains.set(c.trustDomain, prior === undefined || prior === scheme ? scheme : '*');
    }
  }
  const authnAny = rule.authn[0] === 'any';
  return {
    ordinal,
    rule,
    callerExact,
    callerPrefixes,
    callerTrustDomains,
    authnAny,
    authn: new Set(authnAny ? [] : (rule.authn as AuthnMethod[])),
  };
}

function insertPath(idx: PathIndex, p: Rule['paths'][number], cr: CompiledRule): void {
  if ('exact' in p) {
    const list = idx.exact.get(p.exact);
    if (list) list.push(cr);
    else idx.exact.set(p.exact, [cr]);
    return;
  }
  const checked = checkRawPath('prefix' in p ? p.prefix : p.template);
  if (!checked.ok) throw new TypeError(`compilePolicy: unvalidated path pattern: ${checked.problem}`);
  // A prefix `/a/b/` splits to ['a', 'b', '']: its node is the one after the literal segments.
  const segs = 'prefix' in p ? checked.segments.slice(0, -1) : checked.segments;
  let node = idx.trie;
  for (const seg of segs) {
    if (seg.startsWith('{') && 'template' in p) node = node.param ??= {};
    else {
      node.literal ??= new Map();
      node = node.literal.get(seg) ?? node.literal.set(seg, {}).get(seg)!;
    }
  }
  if ('prefix' in p) (node.prefixRules ??= []).push(cr);
  else (node.endRules ??= []).push(cr);
}

/** Push every rule of `idx` whose path patterns match the (checked) request path. */
export function pathCandidates(idx: PathIndex, path: string, segs: readonly string[], out: CompiledRule[]): void {
  const exact = idx.exact.get(path);
  if (exact) for (const r of exact) out.push(r);
  walk(idx.trie, segs, 0, out);
}

function walk(node: TrieNode, segs: readonly string[], i: number, out: CompiledRule[]): void {
  if (i === segs.length) {
    if (node.endRules) for (const r of node.endRules) out.push(r);
    return;
  }
  if (node.prefixRules) for (const r of node.prefixRules) out.push(r);
  const seg = segs[i]!;
  const next = node.literal?.get(seg);
  if (next) walk(next, segs, i + 1, out);
  if (node.param && seg !== '') walk(node.param, segs, i + 1, out);
}

/** Whole-URI caller matching on a canonical identifier (draft-ietf-wimse-identifier-03). */
export function callerMatches(cr: CompiledRule, uri: string, scheme: string, trustDomain: string): boolean {
  if (cr.callerExact.has(uri)) return true;
  for (const p of cr.callerPrefixes) if (uri.startsWith(p)) return true;
  const td = cr.callerTrustDomains.get(trustDomain);
  return td !== undefined && (td === '*' || td === scheme);
}

export const authnMatches = (cr: CompiledRule, via: AuthnMethod): boolean => cr.authnAny || cr.authn.has(via);

/** The accepted audiences for a callee; undefined when it has no policy. */
export const audiencesFor = (p: CompiledPolicy, workload: string): readonly string[] | undefined =>
  p.destinations.get(workload)?.audiences;
