/**
 * A caller may cover `@authority`, `@scheme` or `@target-uri` in its HTTP message signature (RFC
 * 9421; http-signature-07 does not require them). Over real gRPC, the node takes them from what
 * Envoy sends in the CheckRequest (`attributes.request.http.scheme` and `host`, the request's
 * `:authority`), so such a signature verifies through Check, and fails if Envoy saw another
 * authority or scheme than the client signed.
 */
import test from 'ava';
import { envoyCheckRequest } from '../helpers/envoy-pep.ts';
import { signCovering } from '../authn/helpers.ts';
import { AUD, EXT, HOST, PARTNER, expectAllowed, expectDenied, nowSec, partnerWit, startAdversarialNode, type Ctx } from './fixtures.ts';

let ctx: Ctx;
test.before(async () => {
  ctx = await startAdversarialNode();
});
test.after.always(async () => {
  await ctx?.close();
});

/** What the client signs (https://HOST/orders/1?v=2) and what its Envoy then sees. */
function call(o: { extra: string[]; seenScheme?: 'http' | 'https'; seenHost?: string; encodeRawHeaders?: boolean }): Record<string, unknown> {
  const wit = partnerWit(ctx.partner);
  const headers = signCovering({
    scheme: 'https',
    authority: HOST,
    path: '/orders/1',
    query: '?v=2',
    headers: [['Workload-Identity-Token', wit.token]],
    key: wit.workload,
    audience: AUD,
    nowSec: nowSec(),
    extra: o.extra,
  });
  return envoyCheckRequest({
    method: 'GET',
    path: '/orders/1?v=2',
    scheme: o.seenScheme ?? 'https',
    headers: [['Host', o.seenHost ?? HOST], ...headers],
    contextExtensions: EXT,
    ...(o.encodeRawHeaders ? { encodeRawHeaders: true } : {}),
  });
}

for (const encodeRawHeaders of [false, true]) {
  const how = encodeRawHeaders ? 'header_map' : 'headers';
  test(`extauthz @authority - a signature covering @authority and @target-uri verifies through Check (${how})`, async (t) => {
    expectAllowed(t, await ctx.check(call({ extra: ['@authority', '@target-uri'], encodeRawHeaders })), PARTNER, 'httpsig');
    expectAllowed(t, await ctx.check(call({ extra: ['@scheme'], encodeRawHeaders })), PARTNER, 'httpsig');
  });
}

test('extauthz @authority - the default port is normalized away, as RFC 9110 §4.2.3 says', async (t) => {
  expectAllowed(t, await ctx.check(call({ extra: ['@authority', '@target-uri'], seenHost: `${HOST}:443` })), PARTNER, 'httpsig');
});

test('extauthz @authority - another authority or scheme than the client signed fails the signature', async (t) => {
  expectDenied(t, await ctx.check(call({ extra: ['@authority'], seenHost: 'other.shop.example.org' })), 400, 'httpsig.bad_signature');
  expectDenied(t, await ctx.check(call({ extra: ['@target-uri'], seenHost: 'other.shop.example.org' })), 400, 'httpsig.bad_signature');
  expectDenied(t, await ctx.check(call({ extra: ['@target-uri'], seenScheme: 'http' })), 400, 'httpsig.bad_signature');
  expectDenied(t, await ctx.check(call({ extra: ['@scheme'], seenScheme: 'http' })), 400, 'httpsig.bad_signature');
  // Not covered: the authority Envoy saw does not matter (the profile binds the recipient through wimse-aud).
  expectAllowed(t, await ctx.check(call({ extra: [], seenHost: 'other.shop.example.org' })), PARTNER, 'httpsig');
});
