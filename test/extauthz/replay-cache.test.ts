/**
 * A node whose replay caches are full of live tokens, over real gRPC: a new WPT or signature is
 * refused with 503 (`*.replay_cache_full`, `Retry-After`, no challenge: the caller did nothing
 * wrong), a still-valid token already seen stays a replay, and the node counts the refusals.
 */
import test from 'ava';
import { PARTNER, expectAllowed, expectDenied, headerMap, partnerWit, sigCall, startAdversarialNode, wptCall, wptFor, type Ctx } from './fixtures.ts';

const SIZE = 100; // authn.replayCacheSize's minimum

let ctx: Ctx;
test.before(async () => {
  ctx = await startAdversarialNode({ yaml: `authn:\n  replayCacheSize: ${SIZE}\n` });
});
test.after.always(async () => {
  await ctx?.close();
});

const metric = async (name: string, cache: string): Promise<number | undefined> => {
  const text = await ctx.node.metrics.registry.metrics();
  const m = new RegExp(`^${name}\\{cache="${cache}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
};

test.serial('extauthz replay cache - full of live WPTs: a new one is refused with 503, a replay of a held one stays 401', async (t) => {
  const partner = partnerWit(ctx.partner);
  const first = wptCall(partner.token, wptFor(partner, { jti: 'first' }));
  expectAllowed(t, await ctx.check(first), PARTNER, 'wpt');
  for (let i = 1; i < SIZE; i++) expectAllowed(t, await ctx.check(wptCall(partner.token, wptFor(partner, { jti: `jti-${i}` }))), PARTNER, 'wpt');
  t.is(await metric('wimse_replay_cache_entries', 'wpt'), SIZE);
  t.is(await metric('wimse_replay_cache_rejections_total', 'wpt'), 0);

  const refused = await ctx.check(wptCall(partner.token, wptFor(partner, { jti: 'one-too-many' })));
  expectDenied(t, refused, 503, 'wpt.replay_cache_full');
  t.is(headerMap(refused.denied_response.headers)['retry-after'], '1');
  // Nothing still valid was evicted to make room: the first WPT is still a replay.
  expectDenied(t, await ctx.check(first), 401, 'wpt.replay', 'WPT');
  t.is(await metric('wimse_replay_cache_rejections_total', 'wpt'), 1);
  t.is(await metric('wimse_replay_cache_capacity', 'wpt'), SIZE);
  t.is(await metric('wimse_replay_cache_entries', 'wpt'), SIZE);
});

test.serial('extauthz replay cache - full of live nonces: a new signature is refused with 503, a held nonce stays a replay', async (t) => {
  const partner = partnerWit(ctx.partner);
  const first = sigCall(partner, { nonce: 'first-nonce' });
  expectAllowed(t, await ctx.check(first), PARTNER, 'httpsig');
  for (let i = 1; i < SIZE; i++) expectAllowed(t, await ctx.check(sigCall(partner, { nonce: `nonce-${i}` })), PARTNER, 'httpsig');
  const refused = await ctx.check(sigCall(partner, { nonce: 'one-too-many' }));
  expectDenied(t, refused, 503, 'httpsig.replay_cache_full');
  t.is(headerMap(refused.denied_response.headers)['retry-after'], '1');
  expectDenied(t, await ctx.check(first), 400, 'httpsig.nonce_replay');
  t.is(await metric('wimse_replay_cache_rejections_total', 'httpsig'), 1);
  t.is(await metric('wimse_replay_cache_entries', 'httpsig'), SIZE);
});
