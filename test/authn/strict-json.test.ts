import test from 'ava';
import { MAX_JSON_DEPTH, parseStrictJsonObject } from '../../src/authn/strict-json.ts';

test('strict json - a plain object parses like JSON.parse', (t) => {
  const text = '{"a":1,"b":{"c":[1,{"d":"x"}]},"e":"he said \\"hi\\""}';
  t.deepEqual(parseStrictJsonObject(text), { ok: true, value: JSON.parse(text) });
});

test('strict json - duplicate member names are rejected at any depth', (t) => {
  t.deepEqual(parseStrictJsonObject('{"a":1,"a":2}'), { ok: false, reason: 'duplicate_member' });
  t.deepEqual(parseStrictJsonObject('{"x":{"a":1,"b":2,"a":3}}'), { ok: false, reason: 'duplicate_member' });
  t.deepEqual(parseStrictJsonObject('{"x":[{"a":1,"a":1}]}'), { ok: false, reason: 'duplicate_member' });
});

test('strict json - names are compared after unescaping', (t) => {
  t.deepEqual(parseStrictJsonObject('{"sub":1,"\\u0073ub":2}'), { ok: false, reason: 'duplicate_member' });
  t.deepEqual(parseStrictJsonObject('{"a\\"b":1,"a\\u0022b":2}'), { ok: false, reason: 'duplicate_member' });
});

test('strict json - the same name in sibling objects, or as a string value, is not a duplicate', (t) => {
  t.true(parseStrictJsonObject('{"a":{"k":1},"b":{"k":2},"c":"a","d":["a","a"]}').ok);
  t.true(parseStrictJsonObject('{"a":"{\\"a\\":1,","b":"}"}').ok);
});

test('strict json - non-objects, invalid JSON and deep nesting are rejected', (t) => {
  t.deepEqual(parseStrictJsonObject('[1]'), { ok: false, reason: 'not_an_object' });
  t.deepEqual(parseStrictJsonObject('"s"'), { ok: false, reason: 'not_an_object' });
  t.deepEqual(parseStrictJsonObject('{"a":1,}'), { ok: false, reason: 'not_json' });
  t.deepEqual(parseStrictJsonObject('{"a'), { ok: false, reason: 'not_json' });
  t.deepEqual(parseStrictJsonObject('{"a":' + '['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH) + '}'), { ok: false, reason: 'too_deep' });
});
