/**
 * Local route policy combined with an optional external PDP. The consumer owns the port
 * (`ExternalPdp`); external.ts implements it over HTTP.
 *
 * Modes:
 * - `local` (default): route policy alone;
 * - `both`: route policy first; the external PDP is asked only when the route policy allows,
 *   and must allow too (it can narrow, never widen);
 * - `external`: the external PDP alone (after the same input checks as local decisions).
 * Any external failure denies (fail closed): pdp.timeout, pdp.error, pdp.malformed.
 */
import { randomUUID } from 'node:crypto';
import { parseWorkloadId } from '../identity/index.ts';
import type { CompiledPolicy } from './compile.ts';
import { decide, METHOD_TOKEN, type DecideOptions } from './decide.ts';
import { AUTHN_METHODS, type Decision, type DecisionInput, type DecisionReason } from './model.ts';
import { checkRawPath } from './request-path.ts';

export type PdpMode = 'local' | 'external' | 'both';

export interface ExternalRequest extends DecisionInput {
  readonly decisionId: string;
  /** The mTLS peer identity when it differs from the caller (layered authentication). */
  readonly transportPeer?: string;
}

export type ExternalReason = 'pdp.allow' | 'pdp.deny' | 'pdp.timeout' | 'pdp.error' | 'pdp.malformed';

export interface ExternalVerdict {
  readonly allow: boolean;
  readonly reason: ExternalReason;
  readonly detail?: string;
}

export interface ExternalPdp {
  /** Must resolve (never reject): every failure is a denying verdict. */
  check(req: ExternalRequest): Promise<ExternalVerdict>;
}

export interface AuthorizeOptions extends DecideOptions {
  readonly mode?: PdpMode;
  readonly external?: ExternalPdp;
  readonly transportPeer?: string;
}

/** Decide with the snapshot given (capture it once per request) and, per mode, the external PDP. */
export async function authorize(input: DecisionInput, policy: CompiledPolicy, opts: AuthorizeOptions = {}): Promise<Decision> {
  const mode = opts.mode ?? 'local';
  if (mode !== 'local' && !opts.external) throw new TypeError(`authorize: mode "${mode}" needs an external PDP`);
  const newId = opts.newId ?? randomUUID;
  const decisionId = newId();
  const fixedId = { newId: () => decisionId };

  let local: Decision | undefined;
  if (mode !== 'external') {
    local = decide(input, policy, fixedId);
    if (mode === 'local' || !local.allow) return local;
  } else {
    const bad = inputProblem(input);
    if (bad) return { allow: false, reason: bad[0], detail: bad[1], decisionId };
  }
  const verdict = await askExternal(opts.external!, {
    ...pick(input),
    decisionId,
    ...(opts.transportPeer ? { transportPeer: opts.transportPeer } : {}),
  });
  return {
    allow: verdict.allow,
    reason: verdict.reason,
    decisionId,
    destination: input.destination,
    ...(local?.rule ? { rule: local.rule } : {}),
    ...(verdict.detail ? { detail: verdict.detail } : {}),
    ...(local?.policy ? { policy: local.policy } : {}),
  };
}

const pick = (i: DecisionInput): DecisionInput => ({
  caller: i.caller,
  via: i.via,
  destination: i.destination,
  method: i.method,
  path: i.path,
});

async function askExternal(pdp: ExternalPdp, req: ExternalRequest): Promise<ExternalVerdict> {
  try {
    const v = await pdp.check(req);
    return v.allow === true && v.reason === 'pdp.allow' ? v : { ...v, allow: false };
  } catch (e) {
    return { allow: false, reason: 'pdp.error', detail: `external PDP failed: ${(e as Error).message}` };
  }
}

/** The input checks of a local decision, for `external` mode. */
function inputProblem(input: DecisionInput): [DecisionReason, string] | undefined {
  const dest = parseWorkloadId(input.destination);
  if (!dest.ok) return ['request.destination_invalid', `destination is not a workload identifier (${dest.reason})`];
  if (!AUTHN_METHODS.includes(input.via)) return ['request.via_invalid', 'unknown authentication method'];
  const caller = parseWorkloadId(input.caller);
  if (!caller.ok) return ['request.caller_invalid', `caller is not a workload identifier (${caller.reason})`];
  if (typeof input.method !== 'string' || !METHOD_TOKEN.test(input.method))
    return ['request.method_invalid', 'method must be an upper-case token'];
  const path = checkRawPath(input.path);
  if (!path.ok) return ['request.path_not_canonical', path.problem];
  return undefined;
}
