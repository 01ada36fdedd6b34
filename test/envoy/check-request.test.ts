/**
 * CheckRequest -> AuthnRequest: the scheme and authority Envoy saw (for signatures covering
 * `@scheme`, `@authority`, `@target-uri`).
 */
import test from 'ava';
import { AuthnError } from '../../src/authn/errors.ts';
import { toAuthnRequest, type CheckRequestMessage } from '../../src/envoy/check-request.ts';
import { envoyCheckRequest } from '../helpers/envoy-pep.ts';

const http = (h: Record<string, unknown>): CheckRequestMessage => ({ attributes: { request: { http: { method: 'GET', path: '/a?b=1', ...h } } } });

test('check request - scheme and authority come from http.scheme and http.host, as Envoy fills them', (t) => {
  for (const encodeRawHeaders of [false, true]) {
    const msg = envoyCheckRequest({ method: 'GET', path: '/a?b=1', scheme: 'https', headers: [['Host', 'Svc.Example.org:8443']], encodeRawHeaders });
    const r = toAuthnRequest(msg as CheckRequestMessage);
    t.is(r.scheme, 'https');
    t.is(r.authority, 'Svc.Example.org:8443');
    t.false(r.headers.has(':authority'), 'pseudo-headers are not fields');
  }
});

test('check request - without http.scheme / http.host, the :scheme and :authority pseudo-headers are used', (t) => {
  const r = toAuthnRequest(http({ headers: { ':scheme': 'HTTPS', ':authority': 'svc.example.org' } }));
  t.is(r.scheme, 'https');
  t.is(r.authority, 'svc.example.org');
  const raw = toAuthnRequest(http({ header_map: { headers: [{ key: ':authority', raw_value: Buffer.from('[::1]:80') }, { key: ':scheme', value: 'http' }] } }));
  t.is(raw.authority, '[::1]:80');
  t.is(raw.scheme, 'http');
  const none = toAuthnRequest(http({}));
  t.is(none.scheme, undefined);
  t.is(none.authority, undefined);
});

test('check request - an authority or scheme no Envoy would send is request.malformed', (t) => {
  for (const h of [{ host: 'a b' }, { host: 'user@svc' }, { host: 'svc\r\nx: y' }, { host: 'x'.repeat(1100) }, { scheme: 'ht tp' }, { scheme: '1http' }]) {
    const e = t.throws(() => toAuthnRequest(http(h)), { instanceOf: AuthnError }, JSON.stringify(h).slice(0, 40));
    t.is(e?.code, 'request.malformed');
  }
});
