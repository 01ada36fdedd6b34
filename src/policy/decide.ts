/**
 * The decision: one request against one compiled policy snapshot. Default deny, fail closed:
 * a missing or malformed policy, an unknown destination, a non-canonical caller or path, and
 * anything unexpected all deny, each with its own reason code.
 */
import { randomUUID } from 'node:crypto';
import { parseWorkloadId } from '../identity/index.ts';
import { authnMatches, callerMatches, pathCandidates, type CompiledPolicy, type CompiledRule } from './compile.ts';
import { AUTHN_METHODS, type AuthnMethod, type Decision, type DecisionInput, type DecisionReason } from './model.ts';
import { checkRawPath } from './request-path.ts';

export interface DecideOptions {
  /** Decision id source; default a random UUID per decision. */
  readonly newId?: () => string;
}

export const METHOD_TOKEN = /^[A-Z][A-Z0-9_-]{0,31}$/;

/** Decide one request. Never throws for hostile input. */
export function decide(input: DecisionInput, policy: CompiledPolicy, opts: DecideOptions = {}): Decision {
  const id = (opts.newId ?? randomUUID)();
  const meta = policy.digest ? { version: policy.version, digest: policy.digest } : undefined;
  if (policy.status === 'invalid') return deny(id, meta, 'policy.invalid', undefined, `policy rejected: ${policy.errors.length} error(s)`);
  if (policy.status === 'empty') return deny(id, meta, 'policy.empty', undefined, 'no route policy: every request is denied');
  if (typeof input !== 'object' || input === null) return deny(id, meta, 'request.destination_invalid', undefined, 'no input');

  const dest = policy.destinations.get(input.destination);
  if (!dest) {
    const parsed = parseWorkloadId(input.destination);
    return parsed.ok
      ? deny(id, meta, 'policy.no_destination', undefined, 'no policy for this destination')
      : deny(id, meta, 'request.destination_invalid', undefined, `destination is not a workload identifier (${parsed.reason})`);
  }
  const d = dest.workload;
  if (!AUTHN_METHODS.includes(input.via)) return deny(id, meta, 'request.via_invalid', d, 'unknown authentication method');
  // draft-ietf-wimse-identifier-03: compare the complete URI; a non-canonical spelling is refused,
  // not fixed.
  const caller = parseWorkloadId(input.caller);
  if (!caller.ok) return deny(id, meta, 'request.caller_invalid', d, `caller is not a workload identifier (${caller.reason})`);
  if (typeof input.method !== 'string' || !METHOD_TOKEN.test(input.method))
    return deny(id, meta, 'request.method_invalid', d, 'method must be an upper-case token');
  const path = checkRawPath(input.path);
  if (!path.ok) return deny(id, meta, 'request.path_not_canonical', d, path.problem);

  const candidates: CompiledRule[] = [];
  const byMethod = dest.byMethod.get(input.method);
  if (byMethod) pathCandidates(byMethod, input.path, path.segments, candidates);
  pathCandidates(dest.anyMethod, input.path, path.segments, candidates);
  if (candidates.length === 0) return deny(id, meta, 'policy.route_not_granted', d, 'no rule grants this method and path');

  let best: CompiledRule | undefined;
  let callerSeen = false;
  const { uri, scheme, trustDomain } = caller.value;
  for (const cr of candidates) {
    if (best && cr.ordinal >= best.ordinal) continue;
    if (!callerMatches(cr, uri, scheme, trustDomain)) continue;
    callerSeen = true;
    if (authnMatches(cr, input.via as AuthnMethod)) best = cr;
  }
  if (!best)
    return callerSeen
      ? deny(id, meta, 'policy.authn_not_granted', d, `no rule for this caller and route accepts ${input.via}`)
      : deny(id, meta, 'policy.caller_not_granted', d, 'no rule for this route grants this caller');
  return { allow: true, reason: 'policy.allow', rule: best.rule.name, destination: d, decisionId: id, detail: undefined, policy: meta };
}

type Meta = Decision['policy'];

/** One object shape for every decision (absent fields are undefined). */
const deny = (decisionId: string, policy: Meta, reason: DecisionReason, destination: string | undefined, detail: string): Decision => ({
  allow: false,
  reason,
  rule: undefined,
  destination,
  decisionId,
  detail,
  policy,
});
