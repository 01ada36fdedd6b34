/**
 * `encode_raw_headers` (envoy/sidecar-callee.yaml): Envoy sends every field line on its own in
 * `header_map` instead of joining repeated fields with ',' in `headers`. RFC 9421 rebuilds a field
 * sent on several lines by joining them with ', ', so only the raw form lets an HTTP signature over
 * such a field verify; duplicate WIT detection is exact either way.
 */
import test from 'ava';
import { contentDigestValue } from '../../src/authn/content-digest.ts';
import { signWimseRequest } from '../../src/authn/httpsig/index.ts';
import { systemClock } from '../../src/identity/clock.ts';
import { envoyCheckRequest } from '../helpers/envoy-pep.ts';
import { AUD, EXT, HOST, PAYER, expectAllowed, nodeWit, startAdversarialNode, wptFor, type Ctx } from './fixtures.ts';

let ctx: Ctx;
test.before(async () => {
  ctx = await startAdversarialNode();
});
test.after.always(async () => {
  await ctx?.close();
});

const BODY = Buffer.from('{"amount":42}');

/** A POST /pay signed with Content-Digest sent as two field lines (sha-256, then sha-512). */
async function twoLineDigestRequest(encodeRawHeaders: boolean): Promise<Record<string, unknown>> {
  const wit = await nodeWit(ctx.node, PAYER);
  const signed = signWimseRequest({
    method: 'POST',
    path: '/pay',
    query: '',
    headers: [
      ['workload-identity-token', wit.token],
      ['content-type', 'application/json'],
      ['content-digest', contentDigestValue(BODY, ['sha-256'])],
      ['content-digest', contentDigestValue(BODY, ['sha-512'])],
    ],
    key: { privateKey: wit.workload.privateKey, alg: wit.workload.alg },
    audience: AUD,
    clock: systemClock,
  });
  const headers: Array<[string, string]> = [['Host', HOST]];
  for (const [k, vs] of signed.headers) for (const v of vs) headers.push([k, v]);
  return envoyCheckRequest({ method: 'POST', path: '/pay', headers, body: BODY, contextExtensions: EXT, encodeRawHeaders });
}

test('a signature over a field sent on two lines verifies with encode_raw_headers', async (t) => {
  expectAllowed(t, await ctx.check(await twoLineDigestRequest(true)), PAYER, 'httpsig');
});

test('without encode_raw_headers Envoy joins the lines with "," and the same signature fails', async (t) => {
  const res = await ctx.check(await twoLineDigestRequest(false));
  t.not(res.status?.code ?? 0, 0);
  t.regex(String(res.status?.message), /^httpsig\./);
});

test('a WIT sent on two lines is refused as a duplicate in either form', async (t) => {
  const wit = await nodeWit(ctx.node, 'spiffe://example.org/ns/shop/sa/web');
  const codes: string[] = [];
  for (const encodeRawHeaders of [true, false]) {
    const req = envoyCheckRequest({
      method: 'GET',
      path: '/orders/1',
      headers: [['Host', HOST], ['Workload-Identity-Token', wit.token], ['Workload-Identity-Token', wit.token], ['Authorization', `WPT ${wptFor(wit)}`]],
      contextExtensions: EXT,
      encodeRawHeaders,
    });
    const res = await ctx.check(req);
    t.not(res.status?.code ?? 0, 0, `encodeRawHeaders ${encodeRawHeaders}`);
    codes.push(String(res.status?.message));
  }
  t.deepEqual(codes, ['wit.duplicate', 'wit.duplicate']);
});
