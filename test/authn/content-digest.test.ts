import test from 'ava';
import { AuthnError } from '../../src/authn/errors.ts';
import { contentDigestValue, parseContentDigest, verifyContentDigest } from '../../src/authn/content-digest.ts';

const body = new TextEncoder().encode('{"hello": "world"}');
// RFC 9530 Appendix B.1 / RFC 9421 test-request values for {"hello": "world"}.
const SHA256 = 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:';
const SHA512 = 'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:';

const code = (t: { throws: Function }, fn: () => unknown): string | undefined => (t.throws(fn, { instanceOf: AuthnError }) as AuthnError | undefined)?.code;

test('content-digest - computes the RFC 9530 sha-256 and sha-512 values', (t) => {
  t.is(contentDigestValue(body), SHA256);
  t.is(contentDigestValue(body, ['sha-256', 'sha-512']), `${SHA256}, ${SHA512}`);
});

test('content-digest - verifies each supported algorithm over the received body', (t) => {
  t.deepEqual(verifyContentDigest(SHA256, body), ['sha-256']);
  t.deepEqual(verifyContentDigest(SHA512, body), ['sha-512']);
  t.deepEqual(verifyContentDigest([SHA512, SHA256], body), ['sha-512', 'sha-256']);
  t.deepEqual(verifyContentDigest(`${SHA256}, ${SHA512}`, body), ['sha-256', 'sha-512']);
});

test('content-digest - unknown algorithms are ignored but one supported one is required', (t) => {
  t.deepEqual(verifyContentDigest(`md5=:AAAA:, ${SHA256}, unixsum=:AAAA:`, body), ['sha-256']);
  t.is(code(t, () => verifyContentDigest('md5=:XrY7u+Ae7tCTyyK7j1rNww==:', body)), 'httpsig.digest_unsupported');
  t.is(code(t, () => verifyContentDigest('', body)), 'httpsig.digest_unsupported');
});

test('content-digest - a changed body or a wrong digest is a mismatch', (t) => {
  t.is(code(t, () => verifyContentDigest(SHA256, new TextEncoder().encode('{"hello": "world!"}'))), 'httpsig.digest_mismatch');
  t.is(code(t, () => verifyContentDigest(SHA256, new Uint8Array())), 'httpsig.digest_mismatch');
  // Every supported algorithm present must match, not just one of them.
  t.is(code(t, () => verifyContentDigest(`${SHA256}, sha-512=:${Buffer.alloc(64).toString('base64')}:`, body)), 'httpsig.digest_mismatch');
  // A truncated digest is a mismatch, not a crash in timingSafeEqual.
  t.is(code(t, () => verifyContentDigest('sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDU:', body)), 'httpsig.digest_mismatch');
});

test('content-digest - values that are not a dictionary of byte sequences are malformed', (t) => {
  for (const v of ['sha-256=X48E9q', 'sha-256="X48E9q"', 'sha-256=:not base64:', 'SHA-256=:AAAA:', 'sha-256=(:AAAA:)', ':AAAA:', `sha-256=:${'A'.repeat(9000)}:`]) {
    t.is(code(t, () => verifyContentDigest(v, body)), 'httpsig.digest_malformed', v.slice(0, 40));
  }
});

test('content-digest - parse returns members by algorithm, last duplicate wins', (t) => {
  const m = parseContentDigest('sha-256=:AAAA:, sha-256=:AQID:');
  t.deepEqual([...m.keys()], ['sha-256']);
  t.deepEqual([...m.get('sha-256')!], [1, 2, 3]);
});
