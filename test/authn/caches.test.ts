import test from 'ava';
import { Authenticator, AuthnError } from '../../src/authn/index.ts';
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
