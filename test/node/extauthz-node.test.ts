import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { getCheckRequest, startTestNode } from '../helpers/node.ts';
import * as grpc from '@grpc/grpc-js';
import { createWpt } from '../../src/authn/wpt.ts';
import { hashToken, tokenIdOf } from '../../src/identity/node-tokens.ts';

const B = 'wimse://example.org/svc/b';
const A = 'wimse://example.org/svc/a';
const POLICY = `version: 1
destinations:
  - workload: ${B}
    audiences: [https://b.example.org]
    rules:
      - name: a-reads
        paths: [{prefix: /orders/}]
        methods: [GET]
        callers: [${A}]
        authn: [wpt, httpsig]
`;


const checkRequest = (headers: Record<string, string>, path = '/orders/1') => getCheckRequest(B, 'https://b.example.org', headers, path);

async function callerCredentials(node: Awaited<ReturnType<typeof startTestNode>>['node']) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(publicKey.export({ format: 'jwk' }) as Record<string, string>), alg: 'ES256' };
  const wit = await node.ca.mintWit({ sub: A, cnf: jwk as any });
  const wpt = createWpt({ wit: wit.token, privateKey, alg: 'ES256', aud: 'https://b.example.org', nowSec: Math.floor(Date.now() / 1000) });
  return { wit: wit.token, wpt };
}

test('node ext_authz - a WIT+WPT caller allowed by policy gets OK with its identity for the app', async (t) => {
  const { node, check } = await startTestNode(t, { policy: POLICY });
  const { wit, wpt } = await callerCredentials(node);
  const res = await check(checkRequest({ 'workload-identity-token': wit, authorization: `WPT ${wpt}`, 'x-wimse-caller': 'spoofed' }));
  t.is(res.status.code, 0);
  const set = Object.fromEntries(res.ok_response.headers.map((h: any) => [h.header.key, h.header.value]));
  t.is(set['x-wimse-caller'], A);
  t.is(set['x-wimse-auth'], 'wpt');
  t.truthy(set['x-wimse-decision-id']);
  t.deepEqual(res.ok_response.headers_to_remove, ['x-wimse-transport-peer']);
  t.is(res.dynamic_metadata.fields.caller.stringValue, A);
});

test('node ext_authz - the same WPT replayed is denied 401 with a WPT challenge', async (t) => {
  const { node, check } = await startTestNode(t, { policy: POLICY });
  const { wit, wpt } = await callerCredentials(node);
  const req = checkRequest({ 'workload-identity-token': wit, authorization: `WPT ${wpt}` });
  t.is((await check(req)).status.code, 0);
  const res = await check(req);
  t.not(res.status.code, 0);
  t.is(res.denied_response.status.code, 'Unauthorized');
  const hdr = Object.fromEntries(res.denied_response.headers.map((h: any) => [h.header.key, h.header.value]));
  t.is(hdr['www-authenticate'], 'WPT');
  t.is(hdr['content-type'], 'application/problem+json');
  t.is(JSON.parse(res.denied_response.body).code, 'wpt.replay');
});

test('node ext_authz - a path outside the grant is denied 403 by policy', async (t) => {
  const { node, check } = await startTestNode(t, { policy: POLICY });
  const { wit, wpt } = await callerCredentials(node);
  const res = await check(checkRequest({ 'workload-identity-token': wit, authorization: `WPT ${wpt}` }, '/admin'));
  t.is(res.denied_response.status.code, 'Forbidden');
  t.is(JSON.parse(res.denied_response.body).code, 'policy.route_not_granted');
});

test('node ext_authz - with no policy file every request is denied (default deny)', async (t) => {
  const { node, check } = await startTestNode(t);
  const { wit, wpt } = await callerCredentials(node);
  const res = await check(checkRequest({ 'workload-identity-token': wit, authorization: `WPT ${wpt}` }));
  t.is(res.denied_response.status.code, 'Forbidden');
  t.is(JSON.parse(res.denied_response.body).code, 'policy.empty');
});

test('node ext_authz - a request with no credentials is denied, not allowed', async (t) => {
  const { check } = await startTestNode(t, { policy: POLICY });
  const res = await check(checkRequest({}));
  t.not(res.status.code, 0);
  t.is(JSON.parse(res.denied_response.body).code, 'request.no_credentials');
});

test('node ext_authz - the proxy must present a live node token: without one, or with a wrong or revoked one, Check is UNAUTHENTICATED and decides nothing', async (t) => {
  const { node, authz } = await startTestNode(t, { policy: POLICY });
  const { wit, wpt } = await callerCredentials(node);
  const req = checkRequest({ 'workload-identity-token': wit, authorization: `WPT ${wpt}` });
  const checkWith = (values: string[]) => {
    const md = new grpc.Metadata();
    for (const v of values) md.add('authorization', v);
    return new Promise<any>((resolve, reject) => authz.Check(req, md, (err: grpc.ServiceError | null, res: any) => (err ? reject(err) : resolve(res))));
  };
  const token = node.nodeTokens.issue('sidecar-b');
  const decisions = () => node.metrics.checks.get().then((m) => m.values.filter((v) => v.labels.result === 'allow').reduce((a, v) => a + v.value, 0));
  // (Two values cannot be sent from grpc-js; test/node/repeated-authorization.test.ts sends them.)
  for (const values of [[], ['Bearer wnt_not-a-token-0123456789'], [`Bearer ${token}x`], [token], [`bearer ${token}`]]) {
    const err = (await t.throwsAsync(checkWith(values))) as grpc.ServiceError;
    t.is(err.code, grpc.status.UNAUTHENTICATED, JSON.stringify(values.map((v) => v.slice(0, 12))));
    t.false(err.details.includes(token), 'the token is never echoed');
  }
  t.is(await decisions(), 0, 'no request was decided');
  // The WPT was not consumed by the refused calls: the proxy with its token gets the decision.
  t.is((await checkWith([`Bearer ${token}`])).status.code, 0);
  t.true(node.nodeTokens.revokeToken(tokenIdOf(hashToken(token))));
  t.is(((await t.throwsAsync(checkWith([`Bearer ${token}`]))) as grpc.ServiceError).code, grpc.status.UNAUTHENTICATED);
});

test('node - ready once it has active keys and a bundle; /readyz says so', async (t) => {
  const { node } = await startTestNode(t);
  t.deepEqual(node.readiness(), { ready: true, reasons: [] });
  const res = await fetch(`${node.adminUrl}/readyz`);
  t.is(res.status, 200);
  const metrics = await (await fetch(`${node.adminUrl}/metrics`)).text();
  t.regex(metrics, /wimse_key_expiration_timestamp_seconds\{kind="x509",kid="[^"]+",state="active"\} \d{10}/);
});
