/**
 * Generated route policies and requests for the policy scale test and bench/policy-decide.ts.
 * Deterministic (seeded) so a failure can be replayed.
 */
import type { AuthnMethod, CallerPattern, DecisionInput, PathPattern, Policy, Rule } from '../src/policy/index.ts';

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'];
const VIA: AuthnMethod[] = ['mtls', 'wpt', 'httpsig'];
const TDS = ['example.org', 'partner.example', 'other.example'];

export interface Generated {
  readonly policy: Policy;
  readonly requests: DecisionInput[];
}

/**
 * `rules` rules over `destinations` destinations. `vocab` bounds the path words: small values
 * make patterns overlap (correctness), large ones make them distinct (realistic scale).
 */
export function generate(opts: { rules: number; destinations: number; requests: number; seed: number; vocab: number }): Generated {
  const r = rng(opts.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const int = (n: number): number => Math.floor(r() * n);
  const word = (): string => `w${int(opts.vocab)}`;
  const caller = (): string => `${pick(['wimse', 'spiffe'])}://${pick(TDS)}/team-${int(8)}/svc-${int(opts.vocab)}`;
  const dests = Array.from({ length: opts.destinations }, (_, i) => `wimse://example.org/dest/d${i}`);
  const rulesOf: Rule[][] = dests.map(() => []);

  for (let i = 0; i < opts.rules; i++) {
    const paths: PathPattern[] = Array.from({ length: 1 + int(2) }, () => {
      const k = int(3);
      if (k === 0) return { exact: `/${word()}/${word()}` };
      if (k === 1) return { prefix: `/${word()}/` };
      return { template: `/${word()}/{id}/${word()}` };
    });
    const callers: CallerPattern[] = Array.from({ length: 1 + int(3) }, () => {
      const k = int(10);
      if (k < 7) return { exact: caller() };
      if (k < 9) return { prefix: `wimse://${pick(TDS)}/team-${int(8)}/` };
      return r() < 0.5 ? { trustDomain: pick(TDS) } : { trustDomain: pick(TDS), scheme: pick(['spiffe', 'wimse'] as const) };
    });
    const methods = r() < 0.3 ? undefined : [...new Set(Array.from({ length: 1 + int(2) }, () => pick(METHODS)))];
    const authn = r() < 0.3 ? (['any'] as ['any']) : [...new Set(Array.from({ length: 1 + int(2) }, () => pick(VIA)))];
    rulesOf[i % dests.length]!.push({ name: `rule-${i}`, paths, callers, authn, ...(methods ? { methods } : {}) });
  }
  const policy: Policy = { version: 1, destinations: dests.map((workload, i) => ({ workload, audiences: [], rules: rulesOf[i]! })) };

  // Half the requests are aimed at a rule (likely allowed), half are random (mostly denied).
  const requests: DecisionInput[] = [];
  for (let i = 0; i < opts.requests; i++) {
    const d = int(dests.length);
    const rules = rulesOf[d]!;
    const rule = rules.length > 0 && r() < 0.5 ? pick(rules) : undefined;
    let path = `/${word()}/${word()}`;
    let who = caller();
    if (rule) {
      const p = pick(rule.paths);
      path = 'exact' in p ? p.exact : 'prefix' in p ? `${p.prefix}${word()}` : p.template.replace('{id}', String(int(1000)));
      const c = pick(rule.callers);
      if ('exact' in c) who = c.exact;
      else if ('prefix' in c) who = `${c.prefix}svc-${int(opts.vocab)}`;
      else who = `${c.scheme ?? pick(['wimse', 'spiffe'])}://${c.trustDomain}/x/${word()}`;
    }
    requests.push({
      caller: who,
      destination: r() < 0.02 ? 'wimse://example.org/dest/unknown' : dests[d]!,
      method: rule?.methods && r() < 0.8 ? pick(rule.methods) : pick(METHODS),
      path: r() < 0.05 ? `/unmapped/${word()}` : r() < 0.1 ? `${path}/x` : path,
      via: pick(VIA),
    });
  }
  return { policy, requests };
}
