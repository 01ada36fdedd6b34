import test from 'ava';
import { Authenticator, AuthnError, ReplayCache } from '../../src/authn/index.ts';
import type { TrustBundleSet } from '../../src/identity/trust-bundle.ts';
import { AUD, NOW, bundleOf, bundleSet, env, issuer, mintWitRaw, wptRequest } from './helpers.ts';

test('wit cache - a second request with the same WIT is a hit; the WPT is still verified', (t) => {
  const e = env();
  const wit = mintWitRaw(e.iss, { workload: e.workload });
  e.auth.authenticate(wptRequest(wit, e.workload));
  e.auth.authenticate(wptRequest(wit, e.workload));
  t.is(e.auth.witCache?.hits, 1);
  t.is(e.auth.witCache?.size, 1);
  // A cached WIT does not excuse a bad WPT.
  const other = env().workload;
  const err = t.throws(() => e.auth.authenticate(wptRequest(wit, other)), { instanceOf: AuthnError });
  t.is(err?.code, 'wpt.bad_signature');
});

test('wit cache - an entry is never returned at or after its exp', (t) => {
  const e = env();
  const wit = mintWitRaw(e.iss, { workload: e.workload, claims: { exp: NOW + 100 } });
  e.auth.authenticate(wptRequest(wit, e.workload));
  e.clock.set((NOW + 100) * 1000);
  const wpt = { nowSec: NOW + 100 };
  // Still inside the skew window: verified again (a miss), not served from the cache.
  e.auth.authenticate(wptRequest(wit, e.workload, wpt));
  t.is(e.auth.witCache?.hits, 0);
  e.clock.set((NOW + 161) * 1000);
  const err = t.throws(() => e.auth.authenticate(wptRequest(wit, e.workload, { nowSec: NOW + 161 })), { instanceOf: AuthnError });
  t.is(err?.code, 'wit.expired');
});

test('wit cache - a bundle change invalidates entries verified under the old bundle', (t) => {
  const iss = issuer('example.org');
  let bundles: TrustBundleSet = bundleSet(bundleOf('example.org', [iss.witKey]));
  const e = env({ bundles: () => bundles });
  const wit = mintWitRaw(iss, { workload: e.workload });
  e.auth.authenticate(wptRequest(wit, e.workload));
  // The key is withdrawn: the cached verification must not survive it.
  bundles = bundleSet(bundleOf('example.org', [issuer('example.org', 'ES256', 'new').witKey]));
  const err = t.throws(() => e.auth.authenticate(wptRequest(wit, e.workload)), { instanceOf: AuthnError });
  t.is(err?.code, 'wit.unknown_kid');
  t.is(e.auth.witCache?.hits, 0);
});

test('wit cache - bounded, least recently used entry leaves first', (t) => {
  const e = env({ witCache: { maxEntries: 2 } });
  const [a, b, c] = ['a', 'b', 'c'].map((n) => mintWitRaw(e.iss, { workload: e.workload, sub: `spiffe://example.org/${n}` }));
  const go = (w: string) => e.auth.authenticate(wptRequest(w!, e.workload));
  go(a!);
  go(b!);
  go(a!); // a is now the most recent
  go(c!); // evicts b
  t.is(e.auth.witCache?.size, 2);
  const hits = e.auth.witCache!.hits;
  go(a!);
  t.is(e.auth.witCache?.hits, hits + 1);
  go(b!);
  t.is(e.auth.witCache?.hits, hits + 1);
});

test('wit cache - can be disabled', (t) => {
  const e = env({ witCache: false });
  const wit = mintWitRaw(e.iss, { workload: e.workload });
  e.auth.authenticate(wptRequest(wit, e.workload));
  e.auth.authenticate(wptRequest(wit, e.workload));
  t.is(e.auth.witCache, undefined);
});

test('replay cache - a key is accepted once while held, again after it expires', (t) => {
  const r = new ReplayCache();
  t.true(r.checkAndStore('wpt:a:1', 100, 50));
  t.false(r.checkAndStore('wpt:a:1', 100, 60));
  t.true(r.checkAndStore('wpt:b:1', 100, 60));
  t.true(r.checkAndStore('wpt:a:1', 200, 101));
});

test('replay cache - bounded: the oldest key is evicted at maxEntries', (t) => {
  const r = new ReplayCache({ maxEntries: 3 });
  for (const k of ['1', '2', '3', '4']) t.true(r.checkAndStore(k, 1000, 10));
  t.is(r.size, 3);
  t.true(r.checkAndStore('1', 1000, 10)); // evicted, so no longer remembered
  t.false(r.checkAndStore('4', 1000, 10));
});

test('replay cache - expired keys leave from the oldest on; a longer-lived key holds only itself', (t) => {
  const r = new ReplayCache();
  t.true(r.checkAndStore('short-1', 20, 10));
  t.true(r.checkAndStore('long', 1000, 10));
  t.true(r.checkAndStore('short-2', 20, 10));
  t.is(r.size, 3);
  // At 21 the sweep drops short-1 and stops at `long`; short-2 stays behind it but no longer counts.
  t.true(r.checkAndStore('new', 100, 21));
  t.is(r.size, 3);
  t.true(r.checkAndStore('short-2', 40, 22), 'an expired key is accepted again');
  t.false(r.checkAndStore('long', 1000, 22), 'the held key is still refused');
  // Once `long` expires everything expired in front of a live key goes.
  t.true(r.checkAndStore('late', 2000, 1001));
  t.is(r.size, 1);
});

test('replay cache - the once-a-second sweep costs what it removes, not what it holds', (t) => {
  const r = new ReplayCache({ maxEntries: 200_000 });
  for (let i = 0; i < 100_000; i++) r.checkAndStore(`k${i}`, 1000 + i, 100);
  // One second later nothing has expired: a full scan would visit all 100,000 keys.
  let visited = 0;
  const entries = (r as unknown as { size: number }).size;
  const it = Map.prototype[Symbol.iterator];
  Map.prototype[Symbol.iterator] = function (this: Map<unknown, unknown>) {
    const inner = it.call(this);
    return { next: () => (visited++, inner.next()), [Symbol.iterator]() { return this; } } as never;
  };
  try {
    t.true(r.checkAndStore('x', 5000, 101));
  } finally {
    Map.prototype[Symbol.iterator] = it;
  }
  t.is(entries, 100_000);
  t.true(visited <= 2, `visited ${visited} entries`);
});

test('replay cache - a WPT replay is refused through authenticate, and the cache is shared across calls', (t) => {
  const replay = new ReplayCache({ maxEntries: 10 });
  const e = env({ replay });
  const wit = mintWitRaw(e.iss, { workload: e.workload });
  const req = wptRequest(wit, e.workload, { jti: 'fixed' });
  e.auth.authenticate(req);
  const again = new Authenticator({ bundles: bundleSet(bundleOf('example.org', [e.iss.witKey])), clock: e.clock, audiences: [AUD], replay });
  const err = t.throws(() => again.authenticate(req), { instanceOf: AuthnError });
  t.is(err?.code, 'wpt.replay');
});

test('authenticator - misuse is a TypeError at construction', (t) => {
  const base = { bundles: new Map(), clock: env().clock };
  t.throws(() => new Authenticator({ ...base, maxSkewSec: -1 }), { instanceOf: TypeError, message: /maxSkewSec/ });
  t.throws(() => new Authenticator({ ...base, maxWptLifetimeSec: 1.5 }), { instanceOf: TypeError, message: /maxWptLifetimeSec/ });
  t.throws(() => new Authenticator({ ...base, audiences: [''] }), { instanceOf: TypeError, message: /audiences/ });
  t.throws(() => new Authenticator({ ...base, bundles: {} as never }), { instanceOf: TypeError, message: /bundles/ });
  t.throws(() => new Authenticator({ ...base, clock: undefined as never }), { instanceOf: TypeError, message: /clock/ });
  t.throws(() => new Authenticator({ ...base, trustDomains: { 'Bad.Domain': {} } }), { instanceOf: TypeError, message: /trust domain/ });
  t.throws(() => new Authenticator({ ...base, trustDomains: { 'example.org': { witAlgs: ['none'] } } }), { instanceOf: TypeError });
  t.throws(() => new Authenticator({ ...base, trustDomains: { 'example.org': { witAlgs: ['HS256'] } } }), { instanceOf: TypeError });
  t.throws(() => new Authenticator({ ...base, othHeaders: ['X-Upper'] }), { instanceOf: TypeError, message: /othHeaders/ });
  t.throws(() => new Authenticator({ ...base, witCache: { maxEntries: 0 } }), { instanceOf: TypeError });
  t.throws(() => new Authenticator({ ...base, replay: {} as never }), { instanceOf: TypeError, message: /replay/ });
});
