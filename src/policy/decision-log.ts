/**
 * One flat record per decision, for the PEP's decision log (OPA-Envoy writes one for every check,
 * open-policy-agent/opa-envoy-plugin). Only identifiers, the route and the outcome: never
 * credentials. Overlong or odd input is cut and escaped so a hostile request cannot flood or forge
 * log lines.
 */
import type { Decision, DecisionInput } from './model.ts';

export interface DecisionRecord {
  readonly decision_id: string;
  readonly allow: boolean;
  readonly reason: string;
  readonly rule?: string;
  readonly detail?: string;
  readonly destination: string;
  readonly caller: string;
  readonly via: string;
  readonly method: string;
  readonly path: string;
  readonly policy_version?: number;
  readonly policy_digest?: string;
}

const MAX_FIELD = 512;

/** Printable ASCII only, at most 512 characters (`…` marks a cut). */
export function logSafe(v: unknown): string {
  const s = typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v) ?? '';
  const clean = s.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return clean.length > MAX_FIELD ? `${clean.slice(0, MAX_FIELD)}…` : clean;
}

export function decisionRecord(input: DecisionInput, d: Decision): DecisionRecord {
  return {
    decision_id: d.decisionId,
    allow: d.allow,
    reason: d.reason,
    ...(d.rule ? { rule: d.rule } : {}),
    ...(d.detail ? { detail: logSafe(d.detail) } : {}),
    destination: logSafe(input.destination),
    caller: logSafe(input.caller),
    via: logSafe(input.via),
    method: logSafe(input.method),
    path: logSafe(input.path),
    ...(d.policy ? { policy_version: d.policy.version, policy_digest: d.policy.digest } : {}),
  };
}
