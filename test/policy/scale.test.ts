import test from 'ava';
import { checkPolicy, compilePolicy, decide, explain, parsePolicyText } from '../../src/policy/index.ts';
import { stringify } from 'yaml';
import { generate } from '../../bench/_policy-generate.ts';

for (const [rules, destinations, vocab, seed] of [
  [5000, 5, 12, 1],
  [3000, 1, 6, 2],
  [10000, 20, 200, 3],
] as const) {
  test(`policy scale - the index decides exactly like a rule-by-rule scan (${rules} rules, ${destinations} destinations, vocab ${vocab})`, async (t) => {
    // Seconds of CPU each, run without a break: on a busy machine a case can take minutes, and
    // ava's idle timeout (no test finished for 120 s) must not count it as hung. Yielding first
    // lets each case report before the next one starts.
    t.timeout(10 * 60_000);
    await new Promise((r) => setImmediate(r));
    const g = generate({ rules, destinations, requests: 1500, seed, vocab });
    // The generated policy is itself valid, and survives a YAML round trip unchanged.
    const checked = checkPolicy(g.policy);
    t.true(checked.ok, checked.ok ? '' : checked.errors.slice(0, 5).join('\n'));
    const viaYaml = parsePolicyText(stringify(g.policy));
    t.true(viaYaml.ok);
    const p = compilePolicy(viaYaml.ok ? viaYaml.value : g.policy);
    t.is(p.digest, compilePolicy(g.policy).digest);

    let allowed = 0;
    const reasons = new Set<string>();
    for (const input of g.requests) {
      const d = decide(input, p);
      const e = explain(input, p);
      const firstMatch = e.rules.find((r) => r.matched);
      reasons.add(d.reason);
      if (d.allow) allowed++;
      if (d.allow !== Boolean(firstMatch) || d.rule !== firstMatch?.rule) {
        t.fail(`${JSON.stringify(input)}: index says ${d.reason}/${d.rule}, scan says ${firstMatch?.rule}`);
        return;
      }
      if (!d.allow && d.reason.startsWith('policy.') && d.reason !== 'policy.no_destination') {
        const routed = e.rules.filter((r) => r.path.ok && r.method.ok);
        const expected =
          routed.length === 0
            ? 'policy.route_not_granted'
            : routed.some((r) => r.caller.ok)
              ? 'policy.authn_not_granted'
              : 'policy.caller_not_granted';
        t.is(d.reason, expected, JSON.stringify(input));
      }
    }
    // The mix exercises both outcomes and every kind of denial (with a tiny vocabulary, some
    // trust-domain grant covers every caller, so caller denials need a larger one).
    t.true(allowed > g.requests.length / 10, `allowed ${allowed}`);
    t.true(allowed < g.requests.length, `allowed ${allowed}`);
    const expected = ['policy.allow', 'policy.route_not_granted', 'policy.no_destination'];
    if (vocab > 10) expected.push('policy.caller_not_granted', 'policy.authn_not_granted');
    for (const r of expected)
      t.true(reasons.has(r), `missing ${r} in ${[...reasons].join(',')}`);
  });
}
