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

/** Decide one request. Never throws for hostile input; throws TypeError only on misuse. */
export function decide(input: DecisionInput, policy: CompiledPolicy, opts: DecideOptions = {}): Decision {
  const decisionId = (opts.newId ?? randomUUID)();
  const meta = policy.digest ? { version: policy.version, digest: policy.digest } : undefined;
  const deny = (reason: DecisionReason, detail?: string, destination?: string): Decision => ({
    allow: false,
    reason,
    decisionId,
    ...(destination ? { destination } : {}),
    ...(detail ? { detail } : {}),
    ...(meta ? { policy: meta } : {}),
  });

  if (policy.status === 'invalid') return deny('policy.invalid', `policy rejected: ${policy.errors.length} error(s)`);
  if (policy.status === 'empty') return deny('policy.empty', 'no route policy: every request is denied');
  if (typeof input !== 'object' || input === null) return deny('request.destination_invalid', 'no input');

  const dest = policy.destinations.get(input.destination);
  if (!dest) {
    const id = parseWorkloadId(input.destination);
    return id.ok
      ? deny('policy.no_destination', 'no policy for this destination')
      : deny('request.destination_invalid', `destination is not a workload identifier (${id.reason})`);
  }
  const d = dest.workload;
  if (!AUTHN_METHODS.includes(input.via)) return deny('request.via_invalid', 'unknown authentication method', d);
  // spec/wimse.md §6: compare the complete URI; a non-canonical spelling is refused, not fixed.
  const caller = parseWorkloadId(input.caller);
  if (!caller.ok) return deny('request.caller_invalid', `caller is not a workload identifier (${caller.reason})`, d);
  if (typeof input.method !== 'string' || !METHOD_TOKEN.test(input.method))
    return deny('request.method_invalid', 'method must be an upper-case token', d);
  const path = checkRawPath(input.path);
  if (!path.ok) return deny('request.path_not_canonical', path.problem, d);

  const candidates: CompiledRule[] = [];
  const byMethod = dest.byMethod.get(input.method);
  if (byMethod) pathCandidates(byMethod, input.path, path.segments, candidates);
  pathCandidates(dest.anyMethod, input.path, path.segments, candidates);
  if (candidates.length === 0) return deny('policy.route_not_granted', 'no rule grants this method and path', d);

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
      ? deny('policy.authn_not_granted', `no rule for this caller and route accepts ${input.via}`, d)
      : deny('policy.caller_not_granted', 'no rule for this route grants this caller', d);
  return { allow: true, reason: 'policy.allow', rule: best.rule.name, destination: d, decisionId, ...(meta ? { policy: meta } : {}) };
}
