import test from 'ava';
import { Authenticator, AuthnError, ReplayCache, headersFrom, type AuthnRequest } from '../../src/authn/index.ts';
import { signWimseRequest } from '../../src/authn/httpsig/index.ts';
import { AUD, NOW, bundleOf, bundleSet, env, mintWitRaw, wptRequest, type KeyPair } from './helpers.ts';

test('replay cache - a key is accepted once while held, again after it expires', (t) => {
  const r = new ReplayCache();
  t.is(r.checkAndStore('wpt:a:1', 100, 50), 'fresh');
  t.is(r.checkAndStore('wpt:a:1', 100, 60), 'replayed');
  t.is(r.checkAndStore('wpt:a:1', 100, 100), 'replayed', 'held through its last second');
  t.is(r.checkAndStore('wpt:b:1', 100, 60), 'fresh');
  t.is(r.checkAndStore('wpt:a:1', 200, 101), 'fresh');
});

test('replay cache - full of live keys: a new key is refused and nothing still valid is evicted', (t) => {
  const r = new ReplayCache({ maxEntries: 3 });
  for (const k of ['1', '2', '3']) t.is(r.checkAndStore(k, 1000, 10), 'fresh');
  t.is(r.checkAndStore('4', 1000, 10), 'full');
  t.is(r.size, 3);
  // The oldest key is still held: replaying it is still refused.
  t.is(r.checkAndStore('1', 1000, 11), 'replayed');
  t.is(r.checkAndStore('4', 1000, 11), 'full', 'a refused key was not recorded, and is refused again while full');
  t.deepEqual(r.stats(), { entries: 3, capacity: 3, refusedFull: 2 });
});

test('replay cache - room comes back as soon as held keys can no longer be accepted', (t) => {
  const r = new ReplayCache({ maxEntries: 2 });
  t.is(r.checkAndStore('a', 20, 10), 'fresh');
  t.is(r.checkAndStore('b', 30, 10), 'fresh');
  t.is(r.checkAndStore('c', 40, 20), 'full', 'a is still acceptable at 20');
  t.is(r.checkAndStore('c', 40, 21), 'fresh', 'a is dropped at 21');
  t.is(r.checkAndStore('b', 30, 21), 'replayed');
  t.is(r.size, 2);
});

test('replay cache - expired keys leave in expiry order, even behind a longer-lived key', (t) => {
  const r = new ReplayCache();
  t.is(r.checkAndStore('short-1', 20, 10), 'fresh');
  t.is(r.checkAndStore('long', 1000, 10), 'fresh');
  t.is(r.checkAndStore('short-2', 20, 10), 'fresh');
  t.is(r.size, 3);
  // At 21 both short keys go, the one stored after `long` included.
  t.is(r.checkAndStore('new', 100, 21), 'fresh');
  t.is(r.size, 2);
  t.is(r.checkAndStore('short-2', 40, 22), 'fresh', 'an expired key is accepted again');
  t.is(r.checkAndStore('long', 1000, 22), 'replayed', 'the held key is still refused');
  // A key stored again with a later expiry is not dropped with its old expiry.
  t.is(r.checkAndStore('short-2', 40, 39), 'replayed');
  t.is(r.checkAndStore('late', 2000, 1001), 'fresh');
  t.is(r.size, 1);
});

test('replay cache - fractional expiries are held through their last instant', (t) => {
  const r = new ReplayCache();
  t.is(r.checkAndStore('k', 20.5, 10), 'fresh');
  t.is(r.checkAndStore('k', 30, 20), 'replayed');
  t.is(r.checkAndStore('k', 30, 21), 'fresh');
});

test('replay cache - a check costs what it removes, not what it holds', (t) => {
  const r = new ReplayCache({ maxEntries: 200_000 });
  for (let i = 0; i < 100_000; i++) r.checkAndStore(`k${i}`, 1000 + i, 100);
  // One second later nothing has expired: a scan would visit all 100,000 keys.
  let visited = 0;
  const it = Map.prototype[Symbol.iterator];
  const values = Map.prototype.values;
  const count = (orig: (this: Map<unknown, unknown>) => IterableIterator<unknown>) =>
    function (this: Map<unknown, unknown>) {
      const inner = orig.call(this);
      return { next: () => (visited++, inner.next()), [Symbol.iterator]() { return this; } } as never;
    };
  Map.prototype[Symbol.iterator] = count(it);
  Map.prototype.values = count(values);
  try {
    t.is(r.checkAndStore('x', 5000, 101), 'fresh');
    // 500 seconds later exactly the keys that expired go.
    t.is(r.checkAndStore('y', 5000, 1500), 'fresh');
  } finally {
    Map.prototype[Symbol.iterator] = it;
    Map.prototype.values = values;
  }
  t.is(visited, 0, 'no iteration over the held keys');
  t.is(r.size, 100_000 - 500 + 2);
});

test('replay cache - misuse is a TypeError', (t) => {
  t.throws(() => new ReplayCache({ maxEntries: 0 }), { instanceOf: TypeError, message: /maxEntries/ });
  t.throws(() => new ReplayCache().checkAndStore('k', Number.NaN, 1), { instanceOf: TypeError, message: /expiresAtSec/ });
});

// ---- through authenticate: a full cache never lets a live replay through ----------------------

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

test('replay cache full - a still-valid WPT cannot be replayed after more distinct WPTs than the cache holds', (t) => {
  const e = env({ replay: new ReplayCache({ maxEntries: 5 }) });
  const wit = mintWitRaw(e.iss, { workload: e.workload });
  const first = wptRequest(wit, e.workload, { jti: 'first' });
  e.auth.authenticate(first);
  const outcomes: string[] = [];
  for (let i = 0; i < 5; i++) {
    try {
      e.auth.authenticate(wptRequest(wit, e.workload, { jti: `other-${i}` }));
      outcomes.push('ok');
    } catch (err) {
      outcomes.push((err as AuthnError).code);
    }
  }
  t.deepEqual(outcomes, ['ok', 'ok', 'ok', 'ok', 'wpt.replay_cache_full']);
  // The first WPT is still valid: replaying it must be refused, not let through.
  const replayed = t.throws(() => e.auth.authenticate(first), { instanceOf: AuthnError });
  t.is(replayed?.code, 'wpt.replay');
});

test('replay cache full - the refusal is a 503 without a challenge: the caller did nothing wrong', (t) => {
  const e = env({ replay: new ReplayCache({ maxEntries: 1 }) });
  const wit = mintWitRaw(e.iss, { workload: e.workload });
  e.auth.authenticate(wptRequest(wit, e.workload));
  const err = t.throws(() => e.auth.authenticate(wptRequest(wit, e.workload)), { instanceOf: AuthnError });
  t.is(err?.code, 'wpt.replay_cache_full');
  t.is(err?.status, 503);
  t.is(err?.challenge, undefined);
  // Once the first WPT can no longer be accepted (exp + skew passed), there is room again.
  e.clock.set((NOW + 60 + 60 + 1) * 1000);
  t.notThrows(() => e.auth.authenticate(wptRequest(wit, e.workload, { nowSec: NOW + 121 })));
});

function sigRequest(wit: string, workload: KeyPair, nonce: string): AuthnRequest {
  const signed = signWimseRequest({
    method: 'GET',
    path: '/api',
    query: '',
    headers: [['workload-identity-token', wit]],
    key: { privateKey: workload.privateKey, alg: workload.alg },
    audience: AUD,
    clock: { now: () => NOW * 1000 },
    nonce,
  });
  return { method: 'GET', path: '/api', query: '', headers: headersFrom([...signed.headers].flatMap(([k, vs]) => vs.map((v): [string, string] => [k, v]))) };
}

test('replay cache full - a still-valid signature nonce cannot be replayed after more distinct nonces than the cache holds', (t) => {
  const e = env({ nonceReplay: new ReplayCache({ maxEntries: 3 }) });
  const wit = mintWitRaw(e.iss, { workload: e.workload });
  const first = sigRequest(wit, e.workload, 'nonce-first');
  t.is(e.auth.authenticate(first).via, 'httpsig');
  const outcomes: string[] = [];
  for (let i = 0; i < 3; i++) {
    try {
      e.auth.authenticate(sigRequest(wit, e.workload, `nonce-${i}`));
      outcomes.push('ok');
    } catch (err) {
      outcomes.push(`${(err as AuthnError).code} ${(err as AuthnError).status}`);
    }
  }
  t.deepEqual(outcomes, ['ok', 'ok', 'httpsig.replay_cache_full 503']);
  const replayed = t.throws(() => e.auth.authenticate(first), { instanceOf: AuthnError });
  t.is(replayed?.code, 'httpsig.nonce_replay');
});
