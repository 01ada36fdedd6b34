import test from 'ava';
import {
  SfError,
  innerList,
  item,
  parseDictionary,
  parseList,
  serializeBareItem,
  serializeDictionary,
  serializeItem,
  serializeList,
  sfBinary,
  sfBoolean,
  sfDecimal,
  sfInteger,
  sfString,
  sfToken,
  type Dictionary,
  type ListMember,
} from '../../src/authn/httpsig/index.ts';

test('sf serialize - bare items', (t) => {
  t.is(serializeBareItem(sfInteger(-42)), '-42');
  t.is(serializeBareItem(sfInteger(999_999_999_999_999)), '999999999999999');
  t.is(serializeBareItem(sfString('a "b" \\ c')), '"a \\"b\\" \\\\ c"');
  t.is(serializeBareItem(sfToken('text/plain')), 'text/plain');
  t.is(serializeBareItem(sfBinary(Buffer.from('hello'))), ':aGVsbG8=:');
  t.is(serializeBareItem(sfBoolean(true)), '?1');
  t.is(serializeBareItem(sfBoolean(false)), '?0');
});

test('sf serialize - decimals: at least one fractional digit, 3 at most, ties to even', (t) => {
  t.is(serializeBareItem(sfDecimal(2)), '2.0');
  t.is(serializeBareItem(sfDecimal(1.5)), '1.5');
  t.is(serializeBareItem(sfDecimal(-1.25)), '-1.25');
  t.is(serializeBareItem(sfDecimal(0.0025)), '0.002');
  t.is(serializeBareItem(sfDecimal(0.0015)), '0.002');
  t.is(serializeBareItem(sfDecimal(1.23456)), '1.235');
  t.throws(() => serializeBareItem(sfDecimal(1_000_000_000_000)), { instanceOf: SfError });
  t.throws(() => serializeBareItem(sfDecimal(Number.NaN)), { instanceOf: SfError });
});

test('sf serialize - refuses values RFC 8941 cannot carry', (t) => {
  t.throws(() => serializeBareItem(sfInteger(1_000_000_000_000_000)), { instanceOf: SfError });
  t.throws(() => serializeBareItem(sfInteger(1.5)), { instanceOf: SfError });
  t.throws(() => serializeBareItem(sfString('line\nbreak')), { instanceOf: SfError });
  t.throws(() => serializeBareItem(sfString('caf\u00e9')), { instanceOf: SfError });
  t.throws(() => serializeBareItem(sfToken('1abc')), { instanceOf: SfError });
  t.throws(() => serializeBareItem(sfToken('a b')), { instanceOf: SfError });
  t.throws(() => serializeDictionary(new Map([['Upper', item(sfInteger(1))]])), { instanceOf: SfError });
});

test('sf serialize - true booleans are bare in parameters and dictionary members', (t) => {
  const params = new Map([
    ['a', sfBoolean(true)],
    ['b', sfBoolean(false)],
    ['c', sfString('x')],
  ]);
  t.is(serializeItem(item(sfToken('t'), params)), 't;a;b=?0;c="x"');
  const d: Dictionary = new Map<string, ListMember>([
    ['flag', item(sfBoolean(true), new Map([['p', sfInteger(1)]]))],
    ['off', item(sfBoolean(false))],
    ['list', innerList([item(sfString('@method')), item(sfString('@path'), new Map([['req', sfBoolean(true)]]))], new Map([['created', sfInteger(1)]]))],
  ]);
  t.is(serializeDictionary(d), 'flag;p=1, off=?0, list=("@method" "@path";req);created=1');
});

test('sf serialize - parse then serialize is canonical', (t) => {
  t.is(serializeDictionary(parseDictionary('a=1 ,\tb;x=?1,  c=( "s"   tok );q=1.50')), 'a=1, b;x, c=("s" tok);q=1.5');
  t.is(serializeList(parseList(':aGVsbG8:, 0042, -0')), ':aGVsbG8=:, 42, 0');
  const canonical = 'sig1=("@method" "@path" "@query" "workload-identity-token");created=1788298924;expires=1788299224;nonce="abcd1111";tag="wimse-workload-to-workload";wimse-aud="https://svcb.example.com/gimme-ice-cream";wimse-sign-response';
  t.is(serializeDictionary(parseDictionary(canonical)), canonical);
});
