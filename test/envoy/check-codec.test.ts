/**
 * The Check codec (src/envoy/check-codec.ts) against proto-loader's generic codec: the request
 * the handler reads and the response bytes Envoy receives must not depend on which one runs.
 */
import test from 'ava';
import { decodeCheckRequest, encodeCheckResponse, authorizationService } from '../../src/envoy/check-codec.ts';
import { toAuthnRequest, routeSettings, type CheckRequestMessage } from '../../src/envoy/check-request.ts';
import { deniedResponse, okResponse } from '../../src/envoy/check-response.ts';
import { envoyProtos } from '../../src/envoy/protos.ts';
import { envoyCheckRequest } from '../helpers/envoy-pep.ts';

const generic = (envoyProtos().Authorization as any).Check as {
  requestSerialize(o: unknown): Buffer;
  requestDeserialize(b: Buffer): CheckRequestMessage;
  responseSerialize(o: unknown): Buffer;
  responseDeserialize(b: Buffer): Record<string, unknown>;
};

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const requests: Array<[string, Record<string, unknown>]> = [
  ['mTLS GET with query', envoyCheckRequest({ method: 'GET', path: '/orders/1?x=1&y=%20', headers: [['Host', 'orders'], ['Accept', 'a, b']], source: { address: '10.0.0.2', port: 4000, principal: 'spiffe://example.org/a', certificatePem: PEM }, contextExtensions: { destination_workload: 'spiffe://example.org/b', audience: 'https://b https://c' } })],
  ['WPT, repeated header joined', envoyCheckRequest({ method: 'GET', path: '/', headers: [['Host', 'b'], ['Workload-Identity-Token', 'a.b.c'], ['Authorization', 'WPT x.y.z'], ['X-Dup', '1'], ['X-Dup', '2']] })],
  ['POST with a raw body', envoyCheckRequest({ method: 'POST', path: '/pay', headers: [['Host', 'b'], ['Content-Type', 'application/json']], body: Buffer.from('{"a":1}') })],
  ['no context extensions, no source principal', envoyCheckRequest({ method: 'DELETE', path: '/x', headers: [] })],
];

for (const [name, obj] of requests) {
  test(`request: ${name} reads the same through both codecs`, (t) => {
    const bytes = generic.requestSerialize(obj);
    const ours = decodeCheckRequest(bytes);
    const theirs = generic.requestDeserialize(bytes);
    t.deepEqual(routeSettings(ours), routeSettings(theirs));
    t.deepEqual(toAuthnRequest(ours), toAuthnRequest(theirs));
    t.is(ours.attributes?.destination?.principal ?? '', theirs.attributes?.destination?.principal ?? '');
  });
}

test('request: header_map (encode_raw_headers) reads the same through both codecs', (t) => {
  const obj = {
    attributes: {
      request: {
        http: {
          method: 'GET',
          path: '/p',
          header_map: { headers: [{ key: ':path', raw_value: Buffer.from('/p') }, { key: 'X-A', raw_value: Buffer.from('1') }, { key: 'x-a', raw_value: Buffer.from('2') }, { key: 'x-b', value: 'v' }] },
        },
      },
    },
  };
  const bytes = generic.requestSerialize(obj);
  const ours = toAuthnRequest(decodeCheckRequest(bytes));
  t.deepEqual(ours, toAuthnRequest(generic.requestDeserialize(bytes)));
  t.deepEqual(ours.headers.get('x-a'), ['1', '2']);
});

test('request: bytes that are not a CheckRequest throw (the call fails; nothing is decided)', (t) => {
  t.throws(() => decodeCheckRequest(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])));
});

const responses: Array<[string, Record<string, unknown>]> = [
  ['allow over mTLS', okResponse({ caller: 'spiffe://example.org/a', via: 'mtls', transportPeer: 'spiffe://example.org/a', decisionId: 'd-1', rule: 'r', clientWimseHeaders: ['x-wimse-caller', 'x-wimse-other'] })],
  ['allow over WPT', okResponse({ caller: 'spiffe://example.org/a', via: 'wpt', decisionId: 'd-2' })],
  ['deny 401 with a challenge', deniedResponse({ status: 401, code: 'wpt.expired', detail: 'expired', challenge: 'WPT', decisionId: 'd-3' })],
  ['deny 403', deniedResponse({ status: 403, code: 'policy.no_rule', detail: 'no', decisionId: 'd-4', caller: 'spiffe://example.org/a', via: 'httpsig' })],
  ['deny 400', deniedResponse({ status: 400, code: 'request.malformed', detail: 'bad', decisionId: 'd-5' })],
  ['deny 503', deniedResponse({ status: 503, code: 'internal.error', detail: 'down', decisionId: 'd-6' })],
];

for (const [name, res] of responses) {
  test(`response: ${name} is byte-identical to proto-loader's encoding`, (t) => {
    const ours = encodeCheckResponse(res);
    t.true(Buffer.isBuffer(ours));
    t.deepEqual(ours, generic.responseSerialize(res));
    t.deepEqual(generic.responseDeserialize(ours), generic.responseDeserialize(generic.responseSerialize(res)));
  });
}

test('response: an unknown HTTP status name is refused, not sent as 0', (t) => {
  const res = deniedResponse({ status: 403, code: 'x', detail: 'x', decisionId: 'd' });
  (res.denied_response as any).status.code = 'NoSuchStatus';
  t.throws(() => encodeCheckResponse(res), { message: /unknown envoy.type.v3.StatusCode/ });
});

test('the service definition keeps the method path and streaming shape of Envoy\'s proto', (t) => {
  const def = authorizationService() as any;
  t.is(def.Check.path, '/envoy.service.auth.v3.Authorization/Check');
  t.false(def.Check.requestStream);
  t.false(def.Check.responseStream);
});
