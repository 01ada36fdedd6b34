import test from 'ava';
import {
  SfError,
  parseDictionary,
  parseDictionaryWithRaw,
  parseItem,
  parseList,
  type BareItem,
  type Item,
} from '../../src/authn/httpsig/index.ts';
import { cpuMsSince, cpuStart } from '../helpers/cpu.ts';

const bare = (s: string): BareItem => parseItem(s).value;
const fails = (t: { throws: Function }, fn: () => unknown) => t.throws(fn, { instanceOf: SfError });

test('sf parse - integers: sign, leading zeros, 15-digit limit', (t) => {
  t.deepEqual(bare('42'), { type: 'integer', value: 42 });
  t.deepEqual(bare('-42'), { type: 'integer', value: -42 });
  t.deepEqual(bare('0042'), { type: 'integer', value: 42 });
  t.deepEqual(bare('999999999999999'), { type: 'integer', value: 999999999999999 });
  t.deepEqual(bare('-999999999999999'), { type: 'integer', value: -999999999999999 });
  fails(t, () => parseItem('1000000000000000'));
  fails(t, () => parseItem('+42'));
  fails(t, () => parseItem('- 42'));
  fails(t, () => parseItem('-'));
  fails(t, () => parseItem('4 2'));
});

test('sf parse - decimals: up to 12 integer and 3 fractional digits', (t) => {
  t.deepEqual(bare('1.5'), { type: 'decimal', value: 1.5 });
  t.deepEqual(bare('-0.25'), { type: 'decimal', value: -0.25 });
  t.deepEqual(bare('123456789012.123'), { type: 'decimal', value: 123456789012.123 });
  fails(t, () => parseItem('1234567890123.0'));
  fails(t, () => parseItem('1.1234'));
  fails(t, () => parseItem('1.'));
  fails(t, () => parseItem('.5'));
  fails(t, () => parseItem('1.2.3'));
});

test('sf parse - strings: escapes of DQUOTE and backslash only, printable ASCII only', (t) => {
  t.deepEqual(bare('"foo bar"'), { type: 'string', value: 'foo bar' });
  t.deepEqual(bare('"a \\"quoted\\" \\\\ b"'), { type: 'string', value: 'a "quoted" \\ b' });
  t.deepEqual(bare('""'), { type: 'string', value: '' });
  fails(t, () => parseItem('"bad \\n escape"'));
  fails(t, () => parseItem('"tab\there"'));
  fails(t, () => parseItem('"unterminated'));
  fails(t, () => parseItem('"caf\u00e9"'));
  fails(t, () => parseItem('"a\u0000b"'));
});

test('sf parse - tokens may start with ALPHA or * and contain : and /', (t) => {
  t.deepEqual(bare('foo123/456'), { type: 'token', value: 'foo123/456' });
  t.deepEqual(bare('*foo'), { type: 'token', value: '*foo' });
  t.deepEqual(bare('text/plain:x'), { type: 'token', value: 'text/plain:x' });
  t.deepEqual(bare('Foo'), { type: 'token', value: 'Foo' });
  fails(t, () => parseItem('1abc'));
  fails(t, () => parseItem('foo@bar'));
});

test('sf parse - byte sequences: strict base64 alphabet, padding optional but only at the end', (t) => {
  const b = bare(':aGVsbG8=:');
  t.is(b.type, 'binary');
  t.is(Buffer.from(b.value as Uint8Array).toString(), 'hello');
  t.is(Buffer.from(bare(':aGVsbG8:').value as Uint8Array).toString(), 'hello');
  t.is((bare('::').value as Uint8Array).length, 0);
  fails(t, () => parseItem(':aGVsbG8='));
  fails(t, () => parseItem(':aGV$bG8=:'));
  fails(t, () => parseItem(':aGVsbG8-_:'));
  fails(t, () => parseItem(':Y===:'));
  fails(t, () => parseItem(':YQ=a:'));
  fails(t, () => parseItem(':Y:'));
});

test('sf parse - booleans are ?1 and ?0 only', (t) => {
  t.deepEqual(bare('?1'), { type: 'boolean', value: true });
  t.deepEqual(bare('?0'), { type: 'boolean', value: false });
  fails(t, () => parseItem('?2'));
  fails(t, () => parseItem('?'));
  fails(t, () => parseItem('?true'));
});

test('sf parse - parameters: bare key is true, last duplicate wins, SP allowed only after ";"', (t) => {
  const it = parseItem('1;a;b=?0;c="x";a=2; d=tok');
  t.deepEqual([...it.params.keys()], ['a', 'b', 'c', 'd']);
  t.deepEqual(it.params.get('a'), { type: 'integer', value: 2 });
  t.deepEqual(it.params.get('b'), { type: 'boolean', value: false });
  t.deepEqual(it.params.get('d'), { type: 'token', value: 'tok' });
  fails(t, () => parseItem('1;A=1'));
  fails(t, () => parseItem('1 ;a=1'));
  fails(t, () => parseItem('1;a='));
  fails(t, () => parseItem('1;1a=1'));
});

test('sf parse - dictionary: OWS around commas, boolean members, last duplicate wins in place', (t) => {
  const d = parseDictionary('a=1 ,\tb, c=(1 2);p, a=3');
  t.deepEqual([...d.keys()], ['a', 'b', 'c']);
  t.deepEqual((d.get('a') as Item).value, { type: 'integer', value: 3 });
  t.deepEqual((d.get('b') as Item).value, { type: 'boolean', value: true });
  const c = d.get('c');
  t.is(c?.kind, 'inner-list');
  t.is(parseDictionary('').size, 0);
  fails(t, () => parseDictionary('a=1,'));
  fails(t, () => parseDictionary('a=1,,b=2'));
  fails(t, () => parseDictionary('a=1 b=2'));
  fails(t, () => parseDictionary('A=1'));
  fails(t, () => parseDictionary('a=1;'));
});

test('sf parse - dictionary keeps each member value text as received (for @signature-params)', (t) => {
  const { raw } = parseDictionaryWithRaw('sig1=("@method"  "@path");created=1;nonce="x", flag;p=1, sig1=("a")');
  t.is(raw.get('sig1'), '("a")');
  t.is(raw.get('flag'), ';p=1');
  t.is(parseDictionaryWithRaw('s=("@method"  "@path");created=1').raw.get('s'), '("@method"  "@path");created=1');
});

test('sf parse - lists and inner lists', (t) => {
  const l = parseList('1, "two", (a  b );q=1, ?0');
  t.is(l.length, 4);
  const inner = l[2];
  t.is(inner?.kind, 'inner-list');
  if (inner?.kind === 'inner-list') {
    t.deepEqual(inner.items.map((i) => i.value), [{ type: 'token', value: 'a' }, { type: 'token', value: 'b' }]);
    t.deepEqual(inner.params.get('q'), { type: 'integer', value: 1 });
  }
  t.is(parseList('()').length, 1);
  fails(t, () => parseList('(1,2)'));
  fails(t, () => parseList('(1 2'));
  fails(t, () => parseList('(1)(2)'));
  fails(t, () => parseList('1,'));
});

test('sf parse - surrounding SP is discarded, other whitespace and non-ASCII are refused', (t) => {
  t.deepEqual(bare('   1   '), { type: 'integer', value: 1 });
  fails(t, () => parseItem('\t1'));
  fails(t, () => parseItem('1\t'));
  fails(t, () => parseDictionary('a="\u00ff"'));
  fails(t, () => parseItem(''));
});

test('sf parse - size and count limits are enforced before and during parsing', (t) => {
  fails(t, () => parseItem(`"${'a'.repeat(8191)}"`));
  t.is(parseItem(`"${'a'.repeat(8190)}"`).value.type, 'string');
  t.is(parseItem('"abc"', { maxLength: 5 }).value.value, 'abc');
  fails(t, () => parseItem('"abcd"', { maxLength: 5 }));
  const many = Array.from({ length: 300 }, (_, i) => `k${i}=1`).join(',');
  fails(t, () => parseDictionary(many));
  t.is(parseDictionary(many, { maxMembers: 300 }).size, 300);
  fails(t, () => parseList(`(${'1 '.repeat(257)})`));
  fails(t, () => parseItem(`1${';a=1'.repeat(1)}${Array.from({ length: 257 }, (_, i) => `;p${i}`).join('')}`));
});

test('sf parse - pathological inputs stay linear', (t) => {
  const start = cpuStart();
  for (const s of ['"' + '\\"'.repeat(4000), '('.repeat(8000), ':' + 'A'.repeat(8000), 'a=' + '1;'.repeat(4000), '1'.repeat(8000), 'a=' + '(1 '.repeat(2000)]) {
    t.throws(() => parseDictionary(s), { instanceOf: SfError });
  }
  t.is(parseDictionary(' '.repeat(8000) + 'x').size, 1);
  const ms = cpuMsSince(start);
  t.true(ms < 2_000, `${ms} ms of CPU`);
});
