import test from 'ava';
import { explain, policyTest, PolicyStore } from '../../src/policy/index.ts';
import { BILLING, compileYaml, EXAMPLE_YAML, PAYMENTS, req } from './helpers.ts';

const policy = compileYaml(EXAMPLE_YAML, 7);

test('policy explain - names the deciding rule and how each check passed', (t) => {
  const e = explain(req({ path: '/invoices/9/lines' }), policy);
  t.true(e.decision.allow);
  t.is(e.decidedBy, 'read-invoices');
  const r0 = e.rules[0]!;
  t.true(r0.matched);
  t.is(r0.path.why, '/invoices/9/lines matches {prefix: /invoices/}');
  t.is(r0.caller.why, `granted by ${BILLING}`);
  t.deepEqual(e.rules.map((r) => r.matched), [true, false, false]);
});

test('policy explain - says why every candidate did not match', (t) => {
  const e = explain(req({ caller: 'wimse://example.org/svc/checkout', method: 'POST', path: '/pay', via: 'wpt' }), policy);
  t.false(e.decision.allow);
  t.is(e.decision.reason, 'policy.authn_not_granted');
  t.is(e.decidedBy, undefined);
  const [read, pay, status] = e.rules;
  t.false(read!.path.ok);
  t.is(read!.path.why, '/pay matches none of {exact: /health}, {prefix: /invoices/}, {template: /invoices/{id}/lines}');
  t.is(read!.method.why, 'POST is not in [GET, HEAD]');
  t.false(read!.caller.ok);
  t.true(pay!.path.ok && pay!.method.ok && pay!.caller.ok);
  t.is(pay!.authn.why, 'wpt is not in [httpsig]');
  t.is(status!.caller.why, 'not granted by any of {trustDomain: example.org, scheme: spiffe}');
});

test('policy explain - policyTest prints the decision, the policy and every rule', (t) => {
  const out = policyTest(policy, { from: BILLING, to: PAYMENTS, method: 'DELETE', path: '/invoices/1' }, { newId: () => 'id-1' });
  t.false(out.decision.allow);
  const lines = out.text.split('\n');
  t.is(lines[0], 'decision: DENY (policy.route_not_granted): no rule grants this method and path');
  t.is(lines[1], 'decision id: id-1');
  t.is(lines[2], `policy: version 7, ${policy.digest}`);
  t.is(lines[3], `request: DELETE /invoices/1 from ${BILLING} to ${PAYMENTS} via mtls`);
  t.true(lines.includes('  rules[0] read-invoices: no match'));
  t.true(lines.includes('    method NO  DELETE is not in [GET, HEAD]'));
  const ok = policyTest(policy, { from: BILLING, to: PAYMENTS, method: 'GET', path: '/health', via: 'wpt' });
  t.regex(ok.text, /^decision: ALLOW \(policy\.allow\) by rule "read-invoices"/);
  t.true(ok.text.includes('  rules[0] read-invoices: MATCH (decides)'));
});

test('policy explain - refused input is explained without rules', (t) => {
  const out = policyTest(policy, { from: BILLING, to: PAYMENTS, method: 'GET', path: '/invoices/%2e%2e/admin' });
  t.is(out.decision.reason, 'request.path_not_canonical');
  t.deepEqual(out.rules, []);
  t.regex(out.text, /^decision: DENY \(request\.path_not_canonical\): the escape %2e is refused/);
});

test('policy explain - a refused policy is explained with its errors', (t) => {
  const store = new PolicyStore();
  store.load('version: 1\ndestinations:\n  - {workload: wimse://example.org/a, rules: [{name: r}]}\n');
  const out = policyTest(store.current(), { from: BILLING, to: PAYMENTS, method: 'GET', path: '/x' });
  t.is(out.decision.reason, 'policy.invalid');
  t.deepEqual(out.policyErrors, [
    'destinations[0].rules[0].paths: required (a non-empty list)',
    'destinations[0].rules[0].callers: required (a non-empty list)',
    'destinations[0].rules[0].authn: required ([mtls, wpt, httpsig] or a subset, or [any])',
  ]);
  t.true(out.text.includes('  policy error: destinations[0].rules[0].paths: required (a non-empty list)'));
});

test('policy explain - a destination without rules says so', (t) => {
  const out = policyTest(policy, { from: BILLING, to: 'spiffe://example.org/ns/default/sa/ledger', method: 'GET', path: '/x' });
  t.is(out.decision.reason, 'policy.route_not_granted');
  t.true(out.text.endsWith('destination has no rules'));
});

test('policy explain - long caller lists are cut short', (t) => {
  const callers = Array.from({ length: 40 }, (_, i) => `wimse://example.org/c/${i}`);
  const p = compileYaml(`version: 1\ndestinations:\n  - {workload: ${PAYMENTS}, rules: [{name: r, paths: [{prefix: /}], callers: [${callers.join(', ')}], authn: [any]}]}\n`);
  const e = explain(req({ caller: 'wimse://example.org/c/x' }), p);
  t.is(e.rules[0]!.caller.why, `not granted by any of ${callers.slice(0, 5).join(', ')} and 35 more`);
});
