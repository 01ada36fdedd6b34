/**
 * Explanations: which rule decided and why each other rule of the destination did not match.
 * This walks the rules one by one with the plain matching semantics below, independently of
 * the compiled index, so it doubles as a reference the tests hold the index to. It backs
 * `wimsectl policy test --from ID --to ID --method M --path P [--via V]`.
 */
import { parseWorkloadId, type WorkloadId } from '../identity/index.ts';
import type { CompiledPolicy } from './compile.ts';
import { decide, type DecideOptions } from './decide.ts';
import type { AuthnMethod, CallerPattern, Decision, DecisionInput, PathPattern, Rule } from './model.ts';
import { checkRawPath } from './request-path.ts';

export interface CheckOutcome {
  readonly ok: boolean;
  readonly why: string;
}

export interface RuleExplanation {
  readonly index: number;
  readonly rule: string;
  readonly matched: boolean;
  readonly path: CheckOutcome;
  readonly method: CheckOutcome;
  readonly caller: CheckOutcome;
  readonly authn: CheckOutcome;
}

export interface Explanation {
  readonly input: DecisionInput;
  readonly decision: Decision;
  /** Every rule of the destination in document order (empty if the input or policy was refused). */
  readonly rules: readonly RuleExplanation[];
  /** The rule that decided, when one allowed. */
  readonly decidedBy?: string;
  /** Why the policy was refused, when the snapshot is `invalid`. */
  readonly policyErrors?: readonly string[];
}

export const describePath = (p: PathPattern): string =>
  'exact' in p ? `{exact: ${p.exact}}` : 'prefix' in p ? `{prefix: ${p.prefix}}` : `{template: ${p.template}}`;

export const describeCaller = (c: CallerPattern): string =>
  'exact' in c ? c.exact : 'prefix' in c ? `{prefix: ${c.prefix}}` : `{trustDomain: ${c.trustDomain}${c.scheme ? `, scheme: ${c.scheme}` : ''}}`;

/** At most `max` items, then a count: explanations of big rules stay readable. */
const listOf = (items: readonly string[], max = 5): string =>
  items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`;

/** Plain semantics of one path pattern against a checked raw path. */
export function pathPatternMatches(p: PathPattern, path: string, segs: readonly string[]): boolean {
  if ('exact' in p) return p.exact === path;
  if ('prefix' in p) return path.startsWith(p.prefix);
  const t = p.template.slice(1).split('/');
  if (t.length !== segs.length) return false;
  return t.every((ts, i) => (ts.startsWith('{') ? segs[i] !== '' : ts === segs[i]));
}

/** Plain semantics of one caller pattern against a canonical identifier. */
export function callerPatternMatches(c: CallerPattern, id: WorkloadId): boolean {
  if ('exact' in c) return c.exact === id.uri;
  if ('prefix' in c) return id.uri.startsWith(c.prefix);
  return c.trustDomain === id.trustDomain && (c.scheme === undefined || c.scheme === id.scheme);
}

/** Decide, then account for every rule of the destination. */
export function explain(input: DecisionInput, policy: CompiledPolicy, opts: DecideOptions = {}): Explanation {
  const decision = decide(input, policy, opts);
  const dest = policy.policy?.destinations.find((d) => d.workload === input.destination);
  const caller = parseWorkloadId(input.caller);
  const path = checkRawPath(input.path);
  if (policy.status === 'invalid') return { input, decision, rules: [], policyErrors: policy.errors };
  if (policy.status !== 'ok' || !dest || !caller.ok || !path.ok || decision.reason.startsWith('request.'))
    return { input, decision, rules: [] };
  const rules = dest.rules.map((r, i) => explainRule(r, i, input, caller.value, path.segments));
  return { input, decision, rules, ...(decision.rule ? { decidedBy: decision.rule } : {}) };
}

function explainRule(r: Rule, index: number, input: DecisionInput, caller: WorkloadId, segs: string[]): RuleExplanation {
  const pathHit = r.paths.find((p) => pathPatternMatches(p, input.path, segs));
  const path: CheckOutcome = pathHit
    ? { ok: true, why: `${input.path} matches ${describePath(pathHit)}` }
    : { ok: false, why: `${input.path} matches none of ${listOf(r.paths.map(describePath))}` };
  const method: CheckOutcome = !r.methods
    ? { ok: true, why: 'any method' }
    : r.methods.includes(input.method)
      ? { ok: true, why: `${input.method} is listed` }
      : { ok: false, why: `${input.method} is not in [${listOf(r.methods, 10)}]` };
  const callerHit = r.callers.find((c) => callerPatternMatches(c, caller));
  const callerOut: CheckOutcome = callerHit
    ? { ok: true, why: `granted by ${describeCaller(callerHit)}` }
    : { ok: false, why: `not granted by any of ${listOf(r.callers.map(describeCaller))}` };
  const authn: CheckOutcome =
    r.authn[0] === 'any'
      ? { ok: true, why: 'any authentication method' }
      : (r.authn as readonly string[]).includes(input.via)
        ? { ok: true, why: `${input.via} is accepted` }
        : { ok: false, why: `${input.via} is not in [${r.authn.join(', ')}]` };
  const matched = path.ok && method.ok && callerOut.ok && authn.ok;
  return { index, rule: r.name, matched, path, method, caller: callerOut, authn };
}

/** Human-readable form of an explanation, as `wimsectl policy test` prints it. */
export function formatExplanation(e: Explanation): string {
  const d = e.decision;
  const lines = [
    `decision: ${d.allow ? 'ALLOW' : 'DENY'} (${d.reason})${d.rule ? ` by rule "${d.rule}"` : ''}${d.detail ? `: ${d.detail}` : ''}`,
    `decision id: ${d.decisionId}`,
    `policy: ${d.policy ? `version ${d.policy.version}, ${d.policy.digest}` : 'none'}`,
    `request: ${String(e.input.method)} ${String(e.input.path)} from ${String(e.input.caller)} to ${String(e.input.destination)} via ${String(e.input.via)}`,
  ];
  for (const err of e.policyErrors ?? []) lines.push(`  policy error: ${err}`);
  if (e.rules.length === 0 && !d.reason.startsWith('request.') && d.destination) lines.push('destination has no rules');
  for (const r of e.rules) {
    lines.push(`  rules[${r.index}] ${r.rule}: ${r.matched ? (r.rule === e.decidedBy ? 'MATCH (decides)' : 'match') : 'no match'}`);
    for (const [k, o] of [['path', r.path], ['method', r.method], ['caller', r.caller], ['authn', r.authn]] as const)
      lines.push(`    ${k.padEnd(6)} ${o.ok ? 'ok ' : 'NO '} ${o.why}`);
  }
  return lines.join('\n');
}

export interface PolicyTestArgs {
  readonly from: string;
  readonly to: string;
  readonly method: string;
  readonly path: string;
  /** Default `mtls`. */
  readonly via?: AuthnMethod;
}

/** The core of `wimsectl policy test`: the explanation and its text. */
export function policyTest(policy: CompiledPolicy, args: PolicyTestArgs, opts: DecideOptions = {}): Explanation & { text: string } {
  const e = explain(
    { caller: args.from, destination: args.to, method: args.method, path: args.path, via: args.via ?? 'mtls' },
    policy,
    opts,
  );
  return { ...e, text: formatExplanation(e) };
}
