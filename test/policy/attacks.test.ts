import test from 'ava';
import { decide, parsePolicyText, PolicyStore, type DecisionReason } from '../../src/policy/index.ts';
import { compileYaml, req } from './helpers.ts';

const DEST = 'wimse://example.org/service/payment';
const OWNER = 'wimse://example.org/service/ledger';

const policy = compileYaml(`
version: 1
destinations:
  - workload: ${DEST}
    rules:
      - name: pay-area
        paths: [{prefix: /pay/}, {exact: /pay}, {template: "/pay/{id}/receipt"}]
        callers: [${OWNER}, {prefix: "wimse://example.org/service/pay/"}]
        authn: [any]
`);
const base = { destination: DEST, caller: OWNER };

const denied: Array<[string, Record<string, string>, DecisionReason]> = [
  // identifier-03 (whole-URI comparison): a non-canonical spelling of a granted identifier is refused.
  ['an escaped unreserved character in the destination', { destination: 'wimse://example.org/service/%70ayment' }, 'request.destination_invalid'],
  ['an escaped unreserved character in the caller', { caller: 'wimse://example.org/service/%6Cedger' }, 'request.caller_invalid'],
  ['an upper-case trust domain in the caller', { caller: 'wimse://EXAMPLE.org/service/ledger' }, 'request.caller_invalid'],
  ['a trailing slash on the caller', { caller: `${OWNER}/` }, 'request.caller_invalid'],
  ['a dot segment in the caller', { caller: 'wimse://example.org/service/x/../ledger' }, 'request.caller_invalid'],
  ['a port on the caller', { caller: 'wimse://example.org:443/service/ledger' }, 'request.caller_invalid'],
  // Caller prefix grants are segment-wise: .../pay/ never grants .../payroll-attacker.
  ['a caller that only shares characters with a prefix grant', { caller: 'wimse://example.org/service/payroll-attacker' }, 'policy.caller_not_granted'],
  ['the prefix grant itself without a segment below it', { caller: 'wimse://example.org/service/pay' }, 'policy.caller_not_granted'],
  // The same path under another authority or scheme is another workload.
  ['the granted caller path under another trust domain', { caller: 'wimse://example.net/service/ledger' }, 'policy.caller_not_granted'],
  ['the granted caller path under another scheme', { caller: 'spiffe://example.org/service/ledger' }, 'policy.caller_not_granted'],
  ['the destination path under another authority', { destination: 'wimse://evil.example/service/payment' }, 'policy.no_destination'],
  ['the destination path under another scheme', { destination: 'spiffe://example.org/service/payment' }, 'policy.no_destination'],
  // Request paths: the raw path must not escape the grant after an upstream decodes it.
  ['a .. segment escaping a prefix grant', { path: '/pay/../admin' }, 'request.path_not_canonical'],
  ['a . segment', { path: '/pay/./x' }, 'request.path_not_canonical'],
  ['an encoded .. escaping a prefix grant', { path: '/pay/%2e%2e/admin' }, 'request.path_not_canonical'],
  ['an upper-case encoded ..', { path: '/pay/%2E%2E/admin' }, 'request.path_not_canonical'],
  ['a half-encoded ..', { path: '/pay/.%2e/admin' }, 'request.path_not_canonical'],
  ['an encoded slash', { path: '/pay%2F..%2Fadmin' }, 'request.path_not_canonical'],
  ['a double-encoded ..', { path: '/pay/%252e%252e/admin' }, 'request.path_not_canonical'],
  ['a backslash', { path: '/pay/..\\admin' }, 'request.path_not_canonical'],
  ['an encoded backslash', { path: '/pay/..%5cadmin' }, 'request.path_not_canonical'],
  ['a .. segment with a path parameter', { path: '/pay/..;/admin' }, 'request.path_not_canonical'],
  ['an empty segment', { path: '/pay//x' }, 'request.path_not_canonical'],
  ['a NUL escape', { path: '/pay/%00' }, 'request.path_not_canonical'],
  ['an overlong UTF-8 ..', { path: '/pay/%c0%ae%c0%ae/admin' }, 'request.path_not_canonical'],
  ['an IIS-style %u escape', { path: '/pay/%u002e%u002e/admin' }, 'request.path_not_canonical'],
  ['a malformed escape', { path: '/pay/%zz' }, 'request.path_not_canonical'],
  ['non-ASCII', { path: '/pay/é' }, 'request.path_not_canonical'],
  ['a fragment', { path: '/pay/x#y' }, 'request.path_not_canonical'],
  ['a relative path', { path: 'pay/x' }, 'request.path_not_canonical'],
  ['an empty path', { path: '' }, 'request.path_not_canonical'],
  // Prefix grants are segment-wise on the path too, and escapes are compared as written.
  ['a path that only shares characters with a prefix', { path: '/payroll-attacker/x' }, 'policy.route_not_granted'],
  ['an escaped spelling of an exact grant', { path: '/%70ay' }, 'policy.route_not_granted'],
  ['a template variable hiding a slash', { path: '/pay/1%2F2/receipt' }, 'request.path_not_canonical'],
];

for (const [title, over, reason] of denied) {
  test(`policy attacks - denies ${title}`, (t) => {
    const d = decide(req({ ...base, path: '/pay/1', ...over }), policy);
    t.false(d.allow);
    t.is(d.reason, reason, d.detail);
  });
}

test('policy attacks - the legitimate spellings are allowed (the denials above are not blanket)', (t) => {
  for (const [path, caller] of [
    ['/pay/1', OWNER],
    ['/pay', OWNER],
    ['/pay/1/receipt', OWNER],
    ['/pay/%20x', OWNER],
    ['/pay/..x', OWNER],
    ['/pay/...', OWNER],
    ['/pay/1', 'wimse://example.org/service/pay/batch'],
  ] as const) {
    const d = decide(req({ ...base, path, caller }), policy);
    t.true(d.allow, `${caller} ${path}: ${d.reason} ${d.detail ?? ''}`);
  }
});

test('policy attacks - an empty or root-only policy never acts as grant-all', (t) => {
  const any = req({ ...base, path: '/pay/1' });
  for (const text of ['', '{}', 'version: 1', 'version: 1\ndestinations: []\n', `version: 1\ndestinations:\n  - {workload: ${DEST}, rules: []}\n`]) {
    const store = new PolicyStore();
    store.load(text);
    const d = store.decide(any);
    t.false(d.allow, JSON.stringify(text));
    t.regex(d.reason, /^policy\.(empty|invalid|route_not_granted)$/);
  }
  // Grant-all has to be spelled out, and then it still names its callers.
  t.false(parsePolicyText(`version: 1\ndestinations:\n  - {workload: ${DEST}, rules: [{name: all, paths: [{prefix: /}], authn: [any]}]}\n`).ok);
  t.false(parsePolicyText(`version: 1\ndestinations:\n  - {workload: ${DEST}, rules: [{name: all, paths: [{prefix: ""}], callers: [${OWNER}], authn: [any]}]}\n`).ok);
  t.false(parsePolicyText(`version: 1\ndestinations:\n  - {workload: ${DEST}, rules: [{name: all, paths: [{prefix: /}], callers: [{prefix: "wimse://"}], authn: [any]}]}\n`).ok);
});

test('policy attacks - a policy with any error is refused whole, not applied in part', (t) => {
  const store = new PolicyStore();
  const r = store.load(`version: 1
destinations:
  - workload: ${DEST}
    rules:
      - {name: good, paths: [{prefix: /pay/}], callers: [${OWNER}], authn: [any]}
      - {name: bad, paths: [{prefix: /admin}], callers: [${OWNER}], authn: [any]}
`);
  t.false(r.ok);
  const d = store.decide(req({ ...base, path: '/pay/1' }));
  t.false(d.allow);
  t.is(d.reason, 'policy.invalid');
});
