/**
 * The verified mTLS chain cache (src/authn/mtls-cache.ts) through the Authenticator: hits, the
 * validity window of the whole path, invalidation by a bundle change, and its bounds.
 */
import test from 'ava';
import { Authenticator, AuthnError, MtlsChainCache, type AuthenticatorOptions, type TransportPeer } from '../../src/authn/index.ts';
import { ManualClock } from '../../src/identity/clock.ts';
import type { TrustBundleSet } from '../../src/identity/trust-bundle.ts';
import { NOW, bundleOf, bundleSet, request } from './helpers.ts';
import { intermediateCa, leaf, rootCa, type Ca } from './pki.ts';

const NOW_MS = NOW * 1000;
const DAY = 86_400_000;
const CLIENT = 'spiffe://example.org/ns/default/sa/client';

let caA: Ca;
let interA: Ca;
test.before(async () => {
  caA = await rootCa('example.org root', NOW_MS);
  interA = await intermediateCa(caA, 'example.org intermediate', NOW_MS);
});

interface Env {
  auth: Authenticator;
  clock: ManualClock;
  setBundles(b: TrustBundleSet): void;
}

function env(opts: Partial<AuthenticatorOptions> = {}): Env {
  let bundles: TrustBundleSet = bundleSet(bundleOf('example.org', [], [caA.der]));
  const clock = new ManualClock(NOW_MS);
  const auth = new Authenticator({ bundles: () => bundles, clock, ...opts });
  return { auth, clock, setBundles: (b) => (bundles = b) };
}

const authn = (e: Env, peer: TransportPeer) => e.auth.authenticate(request({ peer }));
function code(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (err) {
    return err instanceof AuthnError ? err.code : 'not-an-authn-error';
  }
}

test('mtls cache - the second check of the same chain is a hit with the same result', async (t) => {
  const e = env();
  const chain = (await leaf(interA, NOW_MS)) + interA.pem;
  t.deepEqual(authn(e, { certificateChainPem: chain }), { caller: CLIENT, via: 'mtls' });
  t.is(e.auth.mtlsCache?.hits, 0);
  t.is(e.auth.mtlsCache?.size, 1);
  t.deepEqual(authn(e, { certificateChainPem: chain, verifiedPrincipal: CLIENT }), { caller: CLIENT, via: 'mtls' });
  t.is(e.auth.mtlsCache?.hits, 1);
  // A hit still checks the proxy's principal against the certificate.
  t.is(code(() => authn(e, { certificateChainPem: chain, verifiedPrincipal: 'spiffe://example.org/other' })), 'mtls.principal_mismatch');
});

test('mtls cache - a failed chain is not cached', async (t) => {
  const e = env();
  const rogue = await rootCa('example.org root', NOW_MS);
  const pem = await leaf(rogue, NOW_MS);
  t.is(code(() => authn(e, { certificateChainPem: pem })), 'mtls.untrusted');
  t.is(code(() => authn(e, { certificateChainPem: pem })), 'mtls.untrusted');
  t.is(e.auth.mtlsCache?.size, 0);
});

test("mtls cache - an entry is never used after the leaf's notAfter", async (t) => {
  const e = env();
  const pem = await leaf(caA, NOW_MS, { notAfter: NOW_MS + 10_000 });
  authn(e, { certificateChainPem: pem });
  e.clock.set(NOW_MS + 10_000); // notAfter itself is inside the validity period (RFC 5280 §4.1.2.5)
  t.is(authn(e, { certificateChainPem: pem }).caller, CLIENT);
  t.is(e.auth.mtlsCache?.hits, 1);
  e.clock.set(NOW_MS + 11_000);
  t.is(code(() => authn(e, { certificateChainPem: pem })), 'mtls.expired');
  t.is(e.auth.mtlsCache?.hits, 1);
});

test('mtls cache - an entry is never used after an intermediate expires, nor before the leaf is valid', async (t) => {
  const e = env();
  // The intermediate lives 30 days, the leaf 40: the path is valid for the shorter one.
  const chain = (await leaf(interA, NOW_MS, { notAfter: NOW_MS + 40 * DAY })) + interA.pem;
  authn(e, { certificateChainPem: chain });
  e.clock.set(NOW_MS + 31 * DAY);
  t.is(code(() => authn(e, { certificateChainPem: chain })), 'mtls.expired');
  // A clock set back before the leaf's notBefore does not reuse the entry either.
  const e2 = env();
  const pem = await leaf(caA, NOW_MS, { notBefore: NOW_MS - 1000 });
  authn(e2, { certificateChainPem: pem });
  e2.clock.set(NOW_MS - 60_000);
  t.is(code(() => authn(e2, { certificateChainPem: pem })), 'mtls.not_yet_valid');
  t.is(e2.auth.mtlsCache?.hits, 0);
});

test('mtls cache - a bundle change invalidates at once; a revoked root stops a cached chain', async (t) => {
  const e = env();
  const pem = await leaf(caA, NOW_MS);
  authn(e, { certificateChainPem: pem });
  authn(e, { certificateChainPem: pem });
  t.is(e.auth.mtlsCache?.hits, 1);
  // The same roots in a new bundle object: verified again (a miss), then cached again.
  e.setBundles(bundleSet(bundleOf('example.org', [], [caA.der])));
  t.is(authn(e, { certificateChainPem: pem }).caller, CLIENT);
  t.is(e.auth.mtlsCache?.hits, 1);
  t.is(authn(e, { certificateChainPem: pem }).caller, CLIENT);
  t.is(e.auth.mtlsCache?.hits, 2);
  // The root is withdrawn: the very next check refuses the chain.
  const other = await rootCa('example.org root 2', NOW_MS);
  e.setBundles(bundleSet(bundleOf('example.org', [], [other.der])));
  t.is(code(() => authn(e, { certificateChainPem: pem })), 'mtls.untrusted');
  // The trust domain removed altogether.
  e.setBundles(bundleSet(bundleOf('example.org', [], [caA.der])));
  authn(e, { certificateChainPem: pem });
  e.setBundles(bundleSet(bundleOf('other.example', [], [caA.der])));
  t.is(code(() => authn(e, { certificateChainPem: pem })), 'mtls.unknown_trust_domain');
  t.is(e.auth.mtlsCache?.hits, 2);
});

test('mtls cache - bounded by entries, least recently used first, and by PEM bytes', async (t) => {
  const e = env({ mtlsCache: { maxEntries: 2 } });
  const pems = await Promise.all([0, 1, 2].map((i) => leaf(caA, NOW_MS, { uris: [`spiffe://example.org/w${i}`] })));
  authn(e, { certificateChainPem: pems[0]! });
  authn(e, { certificateChainPem: pems[1]! });
  authn(e, { certificateChainPem: pems[0]! }); // w0 is now the most recent
  t.is(e.auth.mtlsCache?.hits, 1);
  authn(e, { certificateChainPem: pems[2]! }); // evicts w1
  t.is(e.auth.mtlsCache?.size, 2);
  authn(e, { certificateChainPem: pems[0]! });
  t.is(e.auth.mtlsCache?.hits, 2);
  authn(e, { certificateChainPem: pems[1]! });
  t.is(e.auth.mtlsCache?.hits, 2);

  const bundles = bundleSet(bundleOf('example.org', [], [caA.der]));
  // PEM lengths differ by a few bytes (ECDSA signatures vary in length): room for the two largest.
  const c = new Authenticator({ bundles, clock: new ManualClock(NOW_MS), mtlsCache: { maxBytes: Math.max(...pems.map((p) => p.length)) * 2 } });
  for (const p of pems) c.authenticate(request({ peer: { certificateChainPem: p } }));
  t.is(c.mtlsCache?.size, 2);
  t.throws(() => new MtlsChainCache({ maxEntries: 0 }), { instanceOf: TypeError });
  t.throws(() => new Authenticator({ bundles, clock: new ManualClock(), mtlsCache: 3 as never }), { instanceOf: TypeError, message: /mtlsCache/ });
});

test('mtls cache - can be disabled; results are the same', async (t) => {
  const e = env({ mtlsCache: false });
  const pem = await leaf(caA, NOW_MS);
  t.is(e.auth.mtlsCache, undefined);
  t.is(authn(e, { certificateChainPem: pem }).caller, CLIENT);
  t.is(authn(e, { certificateChainPem: pem }).caller, CLIENT);
});

test('mtls cache - a proxy-verified principal is parsed once, its trust domain checked every time', (t) => {
  const e = env();
  t.is(authn(e, { verifiedPrincipal: CLIENT }).caller, CLIENT);
  t.is(authn(e, { verifiedPrincipal: CLIENT }).caller, CLIENT);
  e.setBundles(bundleSet(bundleOf('other.example', [], [])));
  t.is(code(() => authn(e, { verifiedPrincipal: CLIENT })), 'mtls.unknown_trust_domain');
  t.is(code(() => authn(e, { verifiedPrincipal: 'spiffe://example.org/a/../b' })), 'mtls.bad_identifier');
});
