/** RFC 9421 §2 component derivation, with the RFC's own examples. */
import test from 'ava';
import { AuthnError } from '../../src/authn/errors.ts';
import { headersFrom } from '../../src/authn/request.ts';
import {
  buildSignatureBase,
  component,
  componentValue,
  parseSignatureInputs,
  type HttpRequestMessage,
  type HttpResponseMessage,
  type SignatureContext,
} from '../../src/authn/httpsig/index.ts';

const req = (over: Partial<HttpRequestMessage> = {}): HttpRequestMessage => ({
  method: 'POST',
  scheme: 'https',
  path: '/path',
  query: '?param=value',
  headers: headersFrom([['Host', 'www.example.com']]),
  ...over,
});
const val = (ctx: SignatureContext, name: string, opts?: Parameters<typeof component>[1]) => componentValue(component(name, opts), ctx);
const code = (t: import('ava').ExecutionContext, fn: () => unknown) => (t.throws(fn, { instanceOf: AuthnError }) as AuthnError | undefined)?.code;

test('httpsig components - derived request components (RFC 9421 §2.2 examples)', (t) => {
  const ctx = { message: req() };
  t.is(val(ctx, '@method'), 'POST');
  t.is(val(ctx, '@target-uri'), 'https://www.example.com/path?param=value');
  t.is(val(ctx, '@authority'), 'www.example.com');
  t.is(val(ctx, '@scheme'), 'https');
  t.is(val(ctx, '@request-target'), '/path?param=value');
  t.is(val(ctx, '@path'), '/path');
  t.is(val(ctx, '@query'), '?param=value');
});

test('httpsig components - @query is "?" without a query; @path is "/" when empty', (t) => {
  const ctx = { message: req({ path: '', query: '' }) };
  t.is(val(ctx, '@query'), '?');
  t.is(val(ctx, '@path'), '/');
  t.is(val(ctx, '@request-target'), '/');
  t.is(val({ message: req({ query: '?' }) }, '@query'), '?');
});

test('httpsig components - @authority is lower-cased without the default port; absent authority is component_missing', (t) => {
  t.is(val({ message: req({ authority: 'WWW.Example.COM:443' }) }, '@authority'), 'www.example.com');
  t.is(val({ message: req({ authority: 'www.example.com:8443' }) }, '@authority'), 'www.example.com:8443');
  t.is(val({ message: req({ headers: new Map([[':authority', ['API.example.com']]]) }) }, '@authority'), 'api.example.com');
  t.is(code(t, () => val({ message: req({ headers: new Map() }) }, '@authority')), 'httpsig.component_missing');
  t.is(code(t, () => val({ message: req({ headers: new Map([['host', ['a.example', 'b.example']]]) }) }, '@authority')), 'httpsig.component_missing');
  t.is(code(t, () => val({ message: req({ scheme: undefined }) }, '@scheme')), 'httpsig.component_missing');
  t.is(code(t, () => val({ message: req({ scheme: undefined }) }, '@target-uri')), 'httpsig.component_missing');
});

test('httpsig components - an authority or scheme an adapter passed that is not one cannot forge base lines', (t) => {
  t.is(code(t, () => val({ message: req({ authority: 'a.example\n"@method": POST' }) }, '@authority')), 'httpsig.malformed');
  t.is(code(t, () => val({ message: req({ authority: 'user@a.example' }) }, '@target-uri')), 'httpsig.malformed');
  t.is(code(t, () => val({ message: req({ scheme: 'https\n' }) }, '@scheme')), 'httpsig.malformed');
  t.is(code(t, () => val({ message: req({ scheme: 'ht tp' }) }, '@target-uri')), 'httpsig.malformed');
});

test('httpsig components - @query-param decodes and re-encodes names and values (RFC 9421 §2.2.8)', (t) => {
  const ctx = { message: req({ path: '/parameters', query: '?var=this%20is%20a%20big%0Avalue&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something' }) };
  t.is(val(ctx, '@query-param', { name: 'var' }), 'this%20is%20a%20big%0Avalue');
  t.is(val(ctx, '@query-param', { name: 'bar' }), 'with%20plus%20whitespace');
  t.is(val(ctx, '@query-param', { name: 'fa%C3%A7ade%22%3A%20' }), 'something');
  t.is(code(t, () => val(ctx, '@query-param', { name: 'absent' })), 'httpsig.component_missing');
  t.is(code(t, () => val({ message: req({ query: '?a=1&a=2' }) }, '@query-param', { name: 'a' })), 'httpsig.malformed');
});

test('httpsig components - field values: outer whitespace trimmed, lines joined with ", " (RFC 9421 §2.1)', (t) => {
  const ctx = {
    message: req({
      headers: headersFrom([
        ['X-OWS-Header', '   Leading and trailing whitespace.   '],
        ['Cache-Control', 'max-age=60'],
        ['Cache-Control', '   must-revalidate'],
        ['Example-Dict', ' a=1,    b=2;x=1;y=2,   c=(a   b   c)'],
        ['X-Empty', ''],
      ]),
    }),
  };
  t.is(val(ctx, 'x-ows-header'), 'Leading and trailing whitespace.');
  t.is(val(ctx, 'cache-control'), 'max-age=60, must-revalidate');
  t.is(val(ctx, 'example-dict'), 'a=1,    b=2;x=1;y=2,   c=(a   b   c)');
  t.is(val(ctx, 'x-empty'), '');
  t.is(code(t, () => val(ctx, 'x-absent')), 'httpsig.component_missing');
});

test('httpsig components - sf re-serializes a known structured field; key selects a dictionary member (§2.1.1, §2.1.2)', (t) => {
  const ctx = { message: req({ headers: headersFrom([['Example-Dict', ' a=1,    b=2;x=1;y=2,   c=(a   b   c), d']]) }) };
  const opts = { sfTypes: { 'example-dict': 'dictionary' as const } };
  t.is(componentValue(component('example-dict', { sf: true }), ctx, opts), 'a=1, b=2;x=1;y=2, c=(a b c), d');
  t.is(componentValue(component('example-dict', { key: 'a' }), ctx, opts), '1');
  t.is(componentValue(component('example-dict', { key: 'b' }), ctx, opts), '2;x=1;y=2');
  t.is(componentValue(component('example-dict', { key: 'c' }), ctx, opts), '(a b c)');
  t.is(componentValue(component('example-dict', { key: 'd' }), ctx, opts), '?1');
  t.is(code(t, () => componentValue(component('example-dict', { key: 'z' }), ctx, opts)), 'httpsig.component_missing');
  // Without a known type, sf cannot be applied.
  t.is(code(t, () => val(ctx, 'example-dict', { sf: true })), 'httpsig.malformed');
});

test('httpsig components - bs wraps each field line as a byte sequence (§2.1.3)', (t) => {
  const ctx = { message: req({ headers: headersFrom([['Example-Header', 'value, with, lots'], ['Example-Header', 'of, commas']]) }) };
  t.is(val(ctx, 'example-header'), 'value, with, lots, of, commas');
  t.is(val(ctx, 'example-header', { bs: true }), ':dmFsdWUsIHdpdGgsIGxvdHM=:, :b2YsIGNvbW1hcw==:');
});

test('httpsig components - req takes components from the related request; only valid on responses (§2.4)', (t) => {
  const request = req({ headers: headersFrom([['Host', 'www.example.com'], ['Content-Digest', 'sha-256=:AAAA:']]) });
  const response: HttpResponseMessage = { status: 503, headers: new Map() };
  t.is(val({ message: response, request }, '@status'), '503');
  t.is(val({ message: response, request }, '@method', { req: true }), 'POST');
  t.is(val({ message: response, request }, 'content-digest', { req: true }), 'sha-256=:AAAA:');
  t.is(code(t, () => val({ message: response }, '@method', { req: true })), 'httpsig.component_missing');
  t.is(code(t, () => val({ message: request }, '@method', { req: true })), 'httpsig.malformed');
  t.is(code(t, () => val({ message: request }, '@status')), 'httpsig.malformed');
  t.is(code(t, () => val({ message: response }, '@method')), 'httpsig.malformed');
});

test('httpsig components - invalid component identifiers are malformed', (t) => {
  const si = (inner: string) => ({ message: req({ headers: new Map([['signature-input', [`s=(${inner});created=1`]]]) }) });
  const problem = (headers: ReadonlyMap<string, readonly string[]>) => parseSignatureInputs(headers)?.get('s')?.problem?.code;
  for (const bad of ['"Content-Type"', '"@unknown"', 'method', '"@method";name="x"', '"a";bs;sf', '"a";foo', '"a";req=?0', '"@query-param"', '"a";key=1', '""', '"@method" "@method"', '"@signature-params"']) {
    t.is(problem(si(bad).message.headers), 'httpsig.malformed', bad);
  }
  t.is(problem(new Map([['signature-input', ['s="@method"']]])), 'httpsig.malformed');
  // A member that cannot be verified does not stop the others from being read.
  const both = parseSignatureInputs(new Map([['signature-input', ['s=("@unknown");created=1, ok=("@method");created=1']]]))!;
  t.truthy(both.get('s')?.problem);
  t.is(both.get('ok')?.problem, undefined);
  t.deepEqual(both.get('ok')?.components.map((c) => c.id), ['"@method"']);
  // A dictionary that does not parse is refused as a whole.
  t.is(code(t, () => parseSignatureInputs(new Map([['signature-input', ['s=("@method"']]]))), 'httpsig.malformed');
});

test('httpsig components - the signature base ends with the @signature-params line, verbatim and without a newline', (t) => {
  const raw = '("@method"  "@path");created=1;nonce="n"';
  const headers = new Map([['signature-input', [`s=${raw}`]]]);
  const input = parseSignatureInputs(headers)!.get('s')!;
  t.is(input.raw, raw);
  t.is(buildSignatureBase({ message: req() }, input.components, input.raw), `"@method": POST\n"@path": /path\n"@signature-params": ${raw}`);
  t.is(code(t, () => buildSignatureBase({ message: req() }, [component('@path'), component('@path')], raw)), 'httpsig.malformed');
});
