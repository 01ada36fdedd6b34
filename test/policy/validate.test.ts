import test from 'ava';
import { checkPolicy, parsePolicyText } from '../../src/policy/index.ts';
import { BILLING, EXAMPLE_YAML, PAYMENTS } from './helpers.ts';

const errorsOf = (text: string, maxBytes?: number): string[] => {
  const r = parsePolicyText(text, maxBytes ? { maxBytes } : {});
  return r.ok ? [] : r.errors;
};

/** A one-rule policy with `rule` spliced in as the rule's YAML body. */
const withRule = (rule: string): string => `version: 1
destinations:
  - workload: ${PAYMENTS}
    rules:
      - ${rule}
`;

test('policy validation - the documented example is valid', (t) => {
  const r = parsePolicyText(EXAMPLE_YAML);
  t.true(r.ok, r.ok ? '' : r.errors.join('\n'));
  if (!r.ok) return;
  t.is(r.value.destinations.length, 2);
  t.deepEqual(r.value.destinations[0]!.rules[0]!.callers, [
    { exact: BILLING },
    { prefix: 'wimse://example.org/team-a/' },
    { trustDomain: 'partner.example' },
  ]);
  t.deepEqual(r.value.destinations[0]!.rules[2]!.authn, ['any']);
  t.is(r.value.destinations[0]!.rules[2]!.methods, undefined);
});

const bad: Array<[string, string, string]> = [
  [
    'a non-canonical caller, with its field path and reason',
    withRule(`{name: r, paths: [{exact: /a}], callers: [${BILLING}, "wimse://example.org/%70ayment"], authn: [any]}`),
    'destinations[0].rules[0].callers[1]: not a workload identifier (percent_unreserved)',
  ],
  ['an unknown top-level field', `version: 1\ndestinations: []\nextra: 1\n`, 'extra: unknown field'],
  ['an unknown rule field (typo)', withRule(`{name: r, paths: [{exact: /a}], caller: [${BILLING}], callers: [${BILLING}], authn: [any]}`), 'destinations[0].rules[0].caller: unknown field'],
  ['a missing version', 'destinations: []\n', 'version: required (write `version: 1`)'],
  ['another version', 'version: 2\ndestinations: []\n', 'version: unsupported policy version (only 1)'],
  ['missing destinations', 'version: 1\n', 'destinations: required (a list, possibly empty)'],
  ['a non-mapping root', '- 1\n', '(root): policy must be a mapping'],
  ['an empty document', '', '(root): policy document is empty'],
  ['a bad destination workload', 'version: 1\ndestinations:\n  - {workload: "wimse://example.org/a/", rules: []}\n', 'destinations[0].workload: not a workload identifier (path_trailing_slash)'],
  [
    'a duplicate destination',
    `version: 1\ndestinations:\n  - {workload: ${PAYMENTS}, rules: []}\n  - {workload: ${PAYMENTS}, rules: []}\n`,
    'destinations[1].workload: duplicate destination (also destinations[0])',
  ],
  ['a duplicate rule name', `version: 1\ndestinations:\n  - workload: ${PAYMENTS}\n    rules:\n      - {name: r, paths: [{exact: /a}], callers: [${BILLING}], authn: [any]}\n      - {name: r, paths: [{exact: /b}], callers: [${BILLING}], authn: [any]}\n`, 'destinations[0].rules[1].name: duplicate rule name (also rules[0])'],
  ['a missing rule name', withRule(`{paths: [{exact: /a}], callers: [${BILLING}], authn: [any]}`), 'destinations[0].rules[0].name: required'],
  ['missing paths (no implicit grant-all)', withRule(`{name: r, callers: [${BILLING}], authn: [any]}`), 'destinations[0].rules[0].paths: required (a non-empty list)'],
  ['empty paths (no implicit grant-all)', withRule(`{name: r, paths: [], callers: [${BILLING}], authn: [any]}`), 'destinations[0].rules[0].paths: must be a non-empty list'],
  ['missing callers (no implicit grant-all)', withRule(`{name: r, paths: [{exact: /a}], authn: [any]}`), 'destinations[0].rules[0].callers: required (a non-empty list)'],
  ['empty callers', withRule(`{name: r, paths: [{exact: /a}], callers: [], authn: [any]}`), 'destinations[0].rules[0].callers: must be a non-empty list'],
  ['missing authn', withRule(`{name: r, paths: [{exact: /a}], callers: [${BILLING}]}`), 'destinations[0].rules[0].authn: required ([mtls, wpt, httpsig] or a subset, or [any])'],
  ['an unknown authn method', withRule(`{name: r, paths: [{exact: /a}], callers: [${BILLING}], authn: [mtls, basic]}`), 'destinations[0].rules[0].authn[1]: must be one of mtls, wpt, httpsig, any'],
  ['any mixed with methods', withRule(`{name: r, paths: [{exact: /a}], callers: [${BILLING}], authn: [any, wpt]}`), 'destinations[0].rules[0].authn: any must stand alone'],
  ['a bare string path', withRule(`{name: r, paths: [/a], callers: [${BILLING}], authn: [any]}`), 'destinations[0].rules[0].paths[0]: write {exact: ...}, {prefix: ...} or {template: ...}'],
  ['two kinds in one path', withRule(`{name: r, paths: [{exact: /a, prefix: /b/}], callers: [${BILLING}], authn: [any]}`), 'destinations[0].rules[0].paths[0]: must have exactly one of exact, prefix, template'],
  ['a prefix without trailing slash', withRule(`{name: r, paths: [{prefix: /pay}], callers: [${BILLING}], authn: [any]}`), 'destinations[0].rules[0].paths[0].prefix: a prefix must end with / (it grants whole segments)'],
  ['a dot segment in a pattern', withRule(`{name: r, paths: [{prefix: /a/../b/}], callers: [${BILLING}], authn: [any]}`), 'destinations[0].rules[0].paths[0].prefix: path must not contain . or .. segments'],
  ['an encoded slash in a pattern', withRule(`{name: r, paths: [{exact: /a%2Fb}], callers: [${BILLING}], authn: [any]}`), 'destinations[0].rules[0].paths[0].exact: the escape %2F is refused'],
  ['a relative pattern', withRule(`{name: r, paths: [{exact: a}], callers: [${BILLING}], authn: [any]}`), 'destinations[0].rules[0].paths[0].exact: path must start with /'],
  ['a partial template variable', withRule(`{name: r, paths: [{template: "/a/x{id}"}], callers: [${BILLING}], authn: [any]}`), 'destinations[0].rules[0].paths[0].template: a template variable must be a whole segment such as {id}'],
  ['a lower-case method', withRule(`{name: r, paths: [{exact: /a}], methods: [get], callers: [${BILLING}], authn: [any]}`), 'destinations[0].rules[0].methods[0]: not an upper-case HTTP method'],
  ['an empty methods list', withRule(`{name: r, paths: [{exact: /a}], methods: [], callers: [${BILLING}], authn: [any]}`), 'destinations[0].rules[0].methods: must be a non-empty list (omit it to allow any method)'],
  ['a caller prefix without trailing slash', withRule(`{name: r, paths: [{exact: /a}], callers: [{prefix: "wimse://example.org/pay"}], authn: [any]}`), 'destinations[0].rules[0].callers[0].prefix: a caller prefix must be an identifier prefix ending with /'],
  ['a caller prefix over a whole trust domain', withRule(`{name: r, paths: [{exact: /a}], callers: [{prefix: "wimse://example.org/"}], authn: [any]}`), 'destinations[0].rules[0].callers[0].prefix: a prefix must name at least one path segment (use {trustDomain: ...} for a whole trust domain)'],
  ['a non-canonical caller prefix', withRule(`{name: r, paths: [{exact: /a}], callers: [{prefix: "wimse://example.org/a/../"}], authn: [any]}`), 'destinations[0].rules[0].callers[0].prefix: not a workload identifier prefix (path_dot_segment)'],
  ['a bad trust domain', withRule(`{name: r, paths: [{exact: /a}], callers: [{trustDomain: Partner.Example}], authn: [any]}`), 'destinations[0].rules[0].callers[0].trustDomain: not a trust domain (trust_domain_uppercase)'],
  ['a bad scheme on a trust-domain grant', withRule(`{name: r, paths: [{exact: /a}], callers: [{trustDomain: partner.example, scheme: https}], authn: [any]}`), 'destinations[0].rules[0].callers[0].scheme: must be spiffe or wimse'],
  ['an unknown field in a caller grant', withRule(`{name: r, paths: [{exact: /a}], callers: [{trustDomain: partner.example, wildcard: true}], authn: [any]}`), 'destinations[0].rules[0].callers[0].wildcard: unknown field'],
  ['an audience that is not a string', `version: 1\ndestinations:\n  - {workload: ${PAYMENTS}, audiences: [1], rules: []}\n`, 'destinations[0].audiences[0]: must be a non-empty string'],
  ['a duplicate YAML key', `version: 1\nversion: 1\ndestinations: []\n`, '(yaml) DUPLICATE_KEY: Map keys must be unique at line 2, column 1:'],
  ['a custom YAML tag', `version: !!binary AAAA\ndestinations: []\n`, '(yaml) TAG_RESOLVE_FAILED'],
  ['several YAML documents', `version: 1\ndestinations: []\n---\nversion: 1\n`, '(yaml) MULTIPLE_DOCS'],
  ['a __proto__ key', `version: 1\ndestinations: []\n__proto__: {polluted: true}\n`, '__proto__: unknown field'],
];

for (const [title, text, expected] of bad) {
  test(`policy validation - rejects ${title}`, (t) => {
    const errors = errorsOf(text);
    t.true(errors.some((e) => e === expected || e.startsWith(expected)), `expected ${JSON.stringify(expected)} in\n${errors.join('\n')}`);
  });
}

test('policy validation - reports every problem, not only the first', (t) => {
  const errors = errorsOf(`version: 3
destinations:
  - workload: wimse://example.org/a
    rules:
      - {name: "bad name!", paths: [{prefix: /x}], methods: [get], callers: [wimse://example.org/%61], authn: [none]}
  - {workload: 7, rules: {}}
`);
  t.deepEqual(errors, [
    'version: unsupported policy version (only 1)',
    'destinations[0].rules[0].name: must match ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$',
    'destinations[0].rules[0].paths[0].prefix: a prefix must end with / (it grants whole segments)',
    'destinations[0].rules[0].methods[0]: not an upper-case HTTP method',
    'destinations[0].rules[0].callers[0]: not a workload identifier (percent_unreserved)',
    'destinations[0].rules[0].authn[0]: must be one of mtls, wpt, httpsig, any',
    'destinations[1].workload: not a workload identifier (not_a_string)',
    'destinations[1].rules: must be a list',
  ]);
});

test('policy validation - the size limit applies before parsing', (t) => {
  const big = `version: 1\ndestinations: []\n# ${'x'.repeat(2000)}\n`;
  t.deepEqual(errorsOf(big, 1024), [`(root): policy is ${Buffer.byteLength(big)} bytes, more than the limit of 1024`]);
  t.deepEqual(errorsOf(big), []);
  // Far over the default 4 MiB: refused without a parse (which would succeed).
  const huge = `version: 1\ndestinations: []\n#${'y'.repeat(4 * 1024 * 1024)}\n`;
  t.regex(errorsOf(huge)[0] ?? '', /more than the limit of 4194304/);
});

test('policy validation - an alias bomb is refused', (t) => {
  const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 12; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
  const errors = errorsOf(lines.join('\n') + '\nversion: 1\ndestinations: []\n');
  t.true(errors.length > 0);
  t.regex(errors[0]!, /^\(yaml\)/);
});

test('policy validation - JSON and objects go through the same checks', (t) => {
  const json = JSON.stringify({ version: 1, destinations: [{ workload: PAYMENTS, rules: [{ name: 'r', paths: [{ exact: '/a' }], callers: ['wimse://example.org/%61'], authn: ['any'] }] }] });
  t.deepEqual(errorsOf(json), ['destinations[0].rules[0].callers[0]: not a workload identifier (percent_unreserved)']);
  const r = checkPolicy(JSON.parse(json));
  t.false(r.ok);
  t.deepEqual(checkPolicy(null), { ok: false, errors: ['(root): policy document is empty'] });
});
