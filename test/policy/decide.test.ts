import test from 'ava';
import { compilePolicy, decide, denyAllPolicy, type DecisionInput, type DecisionReason } from '../../src/policy/index.ts';
import { BILLING, compileYaml, EXAMPLE_YAML, PAYMENTS, req } from './helpers.ts';

const policy = compileYaml(EXAMPLE_YAML);

const cases: Array<[string, Partial<DecisionInput>, boolean, DecisionReason, string?]> = [
  ['exact path', { path: '/health' }, true, 'policy.allow', 'read-invoices'],
  ['exact path is whole: /health/ is not /health', { path: '/health/' }, false, 'policy.route_not_granted'],
  ['exact path is whole: /healthz', { path: '/healthz' }, false, 'policy.route_not_granted'],
  ['prefix grants below it', { path: '/invoices/42' }, true, 'policy.allow', 'read-invoices'],
  ['prefix grants deeper paths', { path: '/invoices/2026/01/42' }, true, 'policy.allow', 'read-invoices'],
  ['prefix grants the trailing-slash path itself', { path: '/invoices/' }, true, 'policy.allow', 'read-invoices'],
  ['prefix /invoices/ does not grant /invoices', { path: '/invoices' }, false, 'policy.route_not_granted'],
  ['prefix /invoices/ does not grant /invoicesX', { path: '/invoicesX/1' }, false, 'policy.route_not_granted'],
  ['template one segment', { path: '/status/db', method: 'DELETE', caller: 'spiffe://example.org/ns/x/sa/y' }, true, 'policy.allow', 'status-any-method'],
  ['template needs its segment count', { path: '/status/db/x', caller: 'spiffe://example.org/ns/x/sa/y' }, false, 'policy.route_not_granted'],
  ['template variable is never empty', { path: '/status/', caller: 'spiffe://example.org/ns/x/sa/y' }, false, 'policy.route_not_granted'],
  ['methods listed: HEAD', { method: 'HEAD' }, true, 'policy.allow', 'read-invoices'],
  ['methods listed: DELETE is not', { method: 'DELETE' }, false, 'policy.route_not_granted'],
  ['method is case-sensitive', { method: 'get' }, false, 'request.method_invalid'],
  ['caller exact', { caller: BILLING }, true, 'policy.allow', 'read-invoices'],
  ['caller exact is whole-URI: other trust domain', { caller: 'wimse://other.org/svc/billing' }, false, 'policy.caller_not_granted'],
  ['caller exact is whole-URI: other scheme', { caller: 'spiffe://example.org/svc/billing' }, false, 'policy.caller_not_granted'],
  ['caller exact is whole-URI: longer path', { caller: `${BILLING}/x` }, false, 'policy.caller_not_granted'],
  ['caller prefix grants descendants', { caller: 'wimse://example.org/team-a/svc/x' }, true, 'policy.allow', 'read-invoices'],
  ['caller prefix does not grant its parent', { caller: 'wimse://example.org/team-a' }, false, 'policy.caller_not_granted'],
  ['caller prefix is segment-wise', { caller: 'wimse://example.org/team-ab/x' }, false, 'policy.caller_not_granted'],
  ['caller trust domain (any scheme)', { caller: 'spiffe://partner.example/a' }, true, 'policy.allow', 'read-invoices'],
  ['caller trust domain is exact, not a suffix', { caller: 'wimse://evil-partner.example/a' }, false, 'policy.caller_not_granted'],
  ['caller trust domain with scheme: wimse refused', { path: '/status/db', caller: 'wimse://example.org/x' }, false, 'policy.caller_not_granted'],
  ['authn: httpsig only refuses mtls', { method: 'POST', path: '/pay', caller: 'wimse://example.org/svc/checkout' }, false, 'policy.authn_not_granted'],
  ['authn: httpsig only accepts httpsig', { method: 'POST', path: '/pay', caller: 'wimse://example.org/svc/checkout', via: 'httpsig' }, true, 'policy.allow', 'pay'],
  ['authn: any accepts wpt', { path: '/status/x', caller: 'spiffe://example.org/a', via: 'wpt' }, true, 'policy.allow', 'status-any-method'],
  ['unknown via', { via: 'basic' as never }, false, 'request.via_invalid'],
  ['destination with no rules denies', { destination: 'spiffe://example.org/ns/default/sa/ledger' }, false, 'policy.route_not_granted'],
  ['unknown destination', { destination: 'wimse://example.org/svc/other' }, false, 'policy.no_destination'],
  ['non-canonical destination', { destination: 'wimse://Example.org/svc/payments' }, false, 'request.destination_invalid'],
  ['non-canonical caller', { caller: 'wimse://example.org/svc/%62illing' }, false, 'request.caller_invalid'],
  ['caller that is not an identifier', { caller: 'billing' }, false, 'request.caller_invalid'],
  ['path with a query', { path: '/invoices/1?x=1' }, false, 'request.path_not_canonical'],
];

for (const [title, over, allow, reason, rule] of cases) {
  test(`decide - ${title}`, (t) => {
    const d = decide(req(over), policy);
    t.is(d.allow, allow, JSON.stringify(d));
    t.is(d.reason, reason);
    t.is(d.rule, rule);
    if (allow) t.is(d.destination, over.destination ?? PAYMENTS);
  });
}

test('decide - every decision has its own id and names the policy', (t) => {
  const a = decide(req(), policy);
  const b = decide(req(), policy);
  t.regex(a.decisionId, /^[0-9a-f-]{36}$/);
  t.not(a.decisionId, b.decisionId);
  t.deepEqual(a.policy, { version: 1, digest: policy.digest });
  t.regex(policy.digest, /^sha256:[0-9a-f]{64}$/);
  t.is(decide(req(), policy, { newId: () => 'fixed' }).decisionId, 'fixed');
});

test('decide - the first matching rule in document order decides', (t) => {
  const p = compileYaml(`
version: 1
destinations:
  - workload: ${PAYMENTS}
    rules:
      - {name: narrow, paths: [{exact: /a/b}], callers: [${BILLING}], authn: [wpt]}
      - {name: wide, paths: [{prefix: /}], callers: [${BILLING}], authn: [any]}
      - {name: exact-too, paths: [{exact: /a/b}], callers: [${BILLING}], authn: [any]}
`);
  t.is(decide(req({ path: '/a/b', via: 'wpt' }), p).rule, 'narrow');
  t.is(decide(req({ path: '/a/b', via: 'mtls' }), p).rule, 'wide');
  t.is(decide(req({ path: '/', via: 'mtls' }), p).rule, 'wide');
});

test('decide - default deny: a valid policy without destinations denies as policy.empty', (t) => {
  const d = decide(req(), compileYaml('version: 1\ndestinations: []\n'));
  t.false(d.allow);
  t.is(d.reason, 'policy.empty');
});

test('decide - no policy at all denies as policy.empty, a refused one as policy.invalid', (t) => {
  t.is(decide(req(), denyAllPolicy('empty')).reason, 'policy.empty');
  const d = decide(req(), denyAllPolicy('invalid', ['version: required']));
  t.false(d.allow);
  t.is(d.reason, 'policy.invalid');
  t.regex(d.detail ?? '', /1 error/);
});

test('decide - hostile input shapes deny instead of throwing', (t) => {
  for (const bad of [
    { ...req(), path: 42 },
    { ...req(), caller: undefined },
    { ...req(), method: null },
    { ...req(), destination: {} },
  ]) {
    const d = decide(bad as unknown as DecisionInput, policy);
    t.false(d.allow);
    t.regex(d.reason, /^(request|policy)\./);
  }
});

test('decide - compiled from an object equals compiled from YAML', (t) => {
  const p = compilePolicy({
    version: 1,
    destinations: [{ workload: PAYMENTS, audiences: [], rules: [{ name: 'r', paths: [{ prefix: '/x/' }], callers: [{ exact: BILLING }], authn: ['any'] }] }],
  });
  t.true(decide(req({ path: '/x/1' }), p).allow);
  t.false(decide(req({ path: '/y/1' }), p).allow);
});

test('decide - compiling an unchecked invalid policy is misuse (TypeError)', (t) => {
  const bad = { version: 1, destinations: [{ workload: PAYMENTS, audiences: [], rules: [{ name: 'r', paths: [{ prefix: '/x' }], callers: [{ exact: BILLING }], authn: ['any'] }] }] };
  t.throws(() => compilePolicy(bad as never), { instanceOf: TypeError, message: /paths\[0\]\.prefix: a prefix must end with/ });
});
