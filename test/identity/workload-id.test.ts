import test from 'ava';
import { parseWorkloadId, parseTrustDomain, sameWorkload, MAX_ID_LENGTH, type IdRejection } from '../../src/identity/index.ts';

const accepted = [
  'spiffe://example.org/ns/default/sa/payment',
  'wimse://example.org/service/payment',
  'wimse://trust.corp.example.com/a/b-c_d.e~f',
  'wimse://example.org/space%20here',
  'wimse://example.org/colon:and@at',
  'spiffe://my-td.example_1.org/x',
];

for (const id of accepted) {
  test(`identifier - accepts ${id}`, (t) => {
    const r = parseWorkloadId(id);
    t.true(r.ok, JSON.stringify(r));
    if (r.ok) t.is(r.value.uri, id);
  });
}

const rejected: Array<[string, IdRejection]> = [
  ['', 'empty'],
  ['/relative/path', 'scheme_missing'],
  ['example.org/x', 'scheme_missing'],
  ['https://example.org/x', 'scheme_unsupported'],
  ['SPIFFE://example.org/x', 'scheme_not_canonical'],
  ['Wimse://example.org/x', 'scheme_not_canonical'],
  ['wimse:example.org/x', 'authority_missing'],
  ['wimse:///x', 'trust_domain_empty'],
  ['wimse://Example.org/x', 'trust_domain_uppercase'],
  ['wimse://user@example.org/x', 'userinfo'],
  ['wimse://example.org:443/x', 'port'],
  ['wimse://10.0.0.1/x', 'trust_domain_ip'],
  ['wimse://[::1]/x', 'port'],
  ['wimse://exa$mple.org/x', 'trust_domain_invalid_char'],
  ['wimse://example.org/x?y=1', 'query'],
  ['wimse://example.org/x#frag', 'fragment'],
  ['wimse://example.org', 'path_missing'],
  ['wimse://example.org/', 'path_missing'],
  ['wimse://example.org/pay/', 'path_trailing_slash'],
  ['wimse://example.org/pay//x', 'path_empty_segment'],
  ['wimse://example.org/pay/../admin', 'path_dot_segment'],
  ['wimse://example.org/pay/./admin', 'path_dot_segment'],
  ['wimse://example.org/pay/%2e%2e/admin', 'percent_lowercase'],
  ['wimse://example.org/pay/%2E%2E/admin', 'percent_unreserved'],
  ['wimse://example.org/service/%70ayment', 'percent_unreserved'],
  ['wimse://example.org/a%2Fb', 'percent_not_allowed'],
  ['wimse://example.org/a%2', 'percent_malformed'],
  ['wimse://example.org/a%zz', 'percent_malformed'],
  ['wimse://example.org/a%3a', 'percent_lowercase'],
  ['wimse://example.org/a b', 'not_ascii'],
  ['wimse://example.org/caf\u00e9', 'not_ascii'],
  ['wimse://example.org/a"b', 'path_invalid_char'],
  ['spiffe://example.org/a%20b', 'percent_not_allowed'],
  ['spiffe://example.org/a:b', 'path_invalid_char'],
  ['spiffe://example.org/a~b', 'path_invalid_char'],
];

for (const [id, reason] of rejected) {
  test(`identifier - rejects ${JSON.stringify(id)} as ${reason}`, (t) => {
    const r = parseWorkloadId(id);
    t.false(r.ok);
    if (!r.ok) t.is(r.reason, reason);
  });
}

test('identifier - rejects non-strings with a reason', (t) => {
  for (const v of [undefined, null, 42, {}, ['wimse://example.org/x']]) {
    const r = parseWorkloadId(v);
    t.false(r.ok);
    if (!r.ok) t.is(r.reason, 'not_a_string');
  }
});

test('identifier - length cap is enforced at 2048 bytes', (t) => {
  const base = 'wimse://example.org/';
  const atCap = base + 'a'.repeat(MAX_ID_LENGTH - base.length);
  t.true(parseWorkloadId(atCap).ok);
  const over = atCap + 'a';
  const r = parseWorkloadId(over);
  t.false(r.ok);
  if (!r.ok) t.is(r.reason, 'too_long');
});

test('identifier - comparison is whole-URI: same path under another scheme or authority differs', (t) => {
  const a = 'wimse://example.org/service/payment';
  t.true(sameWorkload(a, 'wimse://example.org/service/payment'));
  t.false(sameWorkload(a, 'spiffe://example.org/service/payment'));
  t.false(sameWorkload(a, 'wimse://example.com/service/payment'));
  t.false(sameWorkload(a, 'wimse://example.org/service/paymentx'));
  // A non-canonical spelling never equals anything, not even itself.
  t.false(sameWorkload('wimse://example.org/service/%70ayment', 'wimse://example.org/service/%70ayment'));
});

test('trust domain - validated on its own', (t) => {
  t.true(parseTrustDomain('example.org').ok);
  const bad: Array<[string, IdRejection]> = [
    ['', 'trust_domain_empty'],
    ['Example.org', 'trust_domain_uppercase'],
    ['example.org:8080', 'port'],
    ['127.0.0.1', 'trust_domain_ip'],
    ['a'.repeat(256), 'trust_domain_too_long'],
  ];
  for (const [td, reason] of bad) {
    const r = parseTrustDomain(td);
    t.false(r.ok, td);
    if (!r.ok) t.is(r.reason, reason, td);
  }
});
