/**
 * Decisions per second of the compiled policy index against a naive rule-by-rule scan measured
 * in the same run, at 10, 1,000 and 10,000 rules in one destination (the worst case for a scan).
 *
 *   node --import=tsx bench/policy-decide.ts
 *
 * Both sides do the same input checks (canonical caller, raw path) and return the first
 * matching rule in document order; decision ids are fixed strings on both sides so the
 * numbers compare matching only. Results go to docs/performance.md.
 */
import { parseWorkloadId } from '../src/identity/index.ts';
import { checkRawPath, compilePolicy, decide, type Decision, type DecisionInput, type Policy } from '../src/policy/index.ts';
import { callerPatternMatches, pathPatternMatches } from '../src/policy/index.ts';
import { generate } from './_policy-generate.ts';

/** The baseline: every rule of the policy, one after the other; same decision shape. */
function naiveDecide(input: DecisionInput, policy: Policy): Decision {
  const name = naiveRule(input, policy);
  return name
    ? { allow: true, reason: 'policy.allow', rule: name, destination: input.destination, decisionId: 'bench' }
    : { allow: false, reason: 'policy.route_not_granted', decisionId: 'bench' };
}

function naiveRule(input: DecisionInput, policy: Policy): string | undefined {
  const caller = parseWorkloadId(input.caller);
  const path = checkRawPath(input.path);
  if (!caller.ok || !path.ok) return undefined;
  for (const d of policy.destinations) {
    if (d.workload !== input.destination) continue;
    for (const r of d.rules) {
      if (r.methods && !r.methods.includes(input.method)) continue;
      if (!r.paths.some((p) => pathPatternMatches(p, input.path, path.segments))) continue;
      if (!r.callers.some((c) => callerPatternMatches(c, caller.value))) continue;
      if (r.authn[0] !== 'any' && !(r.authn as readonly string[]).includes(input.via)) continue;
      return r.name;
    }
  }
  return undefined;
}

/**
 * The machine is shared: measure in short alternating rounds and keep each side's best round,
 * the one least disturbed by other processes.
 */
function compare(a: (i: number) => unknown, b: (i: number) => unknown, msA: number, msB: number, rounds = 7): [number, number] {
  let bestA = 0;
  let bestB = 0;
  for (let r = 0; r < rounds; r++) {
    bestA = Math.max(bestA, rate(a, msA));
    bestB = Math.max(bestB, rate(b, msB));
  }
  return [bestA, bestB];
}

function rate(fn: (i: number) => unknown, ms: number): number {
  for (let i = 0; i < 100; i++) fn(i); // warm-up
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < end) {
    for (let k = 0; k < 50; k++) fn(n++);
    now = process.hrtime.bigint();
  }
  return (n * 1e9) / Number(now - start);
}

const fmt = (x: number): string => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1));

console.log(`node ${process.version}, ${process.arch}`);
console.log('| rules | index decisions/s | naive scan decisions/s | ratio | allowed |');
console.log('|---:|---:|---:|---:|---:|');
for (const rules of [10, 1000, 10000]) {
  const g = generate({ rules, destinations: 1, requests: 4096, seed: 7, vocab: Math.max(20, rules) });
  const compiled = compilePolicy(g.policy);
  const reqs = g.requests;
  const fixed = { newId: () => 'bench' };
  // Same answers first: the bench would be meaningless otherwise.
  let allowed = 0;
  for (const r of reqs) {
    const a = decide(r, compiled, fixed).rule;
    if (a !== naiveDecide(r, g.policy).rule) throw new Error(`disagreement on ${JSON.stringify(r)}`);
    if (a) allowed++;
  }
  const mask = reqs.length - 1;
  const [idx, naive] = compare(
    (i) => decide(reqs[i & mask]!, compiled, fixed),
    (i) => naiveDecide(reqs[i & mask]!, g.policy),
    200,
    rules >= 10000 ? 600 : 200,
  );
  console.log(`| ${rules.toLocaleString('en-US')} | ${fmt(idx)} | ${fmt(naive)} | ${(idx / naive).toFixed(1)}x | ${((100 * allowed) / reqs.length).toFixed(0)}% |`);
}
{
  const g = generate({ rules: 1000, destinations: 1, requests: 4096, seed: 7, vocab: 1000 });
  const compiled = compilePolicy(g.policy);
  const [withIds] = compare((i) => decide(g.requests[i & 4095]!, compiled), () => 0, 300, 1);
  console.log(`\nwith a random UUID decision id per decision (1,000 rules): ${fmt(withIds)} decisions/s`);
}
