import test, { type ExecutionContext } from 'ava';
import { X509Certificate } from 'node:crypto';
import { ManualClock } from '../../src/identity/clock.ts';
import { NodeTokenStore } from '../../src/envoy/sds-auth.ts';
import { rotationTime, ROTATE_JITTER } from '../../src/envoy/sds-catalog.ts';
import { TestAuthority, TestSecretSource } from './helpers/test-source.ts';
import { FakeEnvoy, secretsOf, startSds, type Harness } from './helpers/fake-envoy.ts';
import { keyMatches, spiffeBundlesOf, tlsCertificateOf, trustedCaOf, verifiesTo } from './helpers/verify.ts';

const ORDERS = 'spiffe://example.org/ns/shop/sa/orders';
const FRONTEND = 'spiffe://example.org/ns/shop/sa/frontend';
const HOUR = 3_600_000;

async function setup(t: ExecutionContext, random = () => 0.5) {
  const clock = new ManualClock(Date.now());
  const source = await TestSecretSource.create({
    trustDomain: 'example.org',
    clock,
    registrations: { 'sidecar-orders-0': [ORDERS], 'sidecar-frontend-0': [FRONTEND] },
    leafLifetimeMs: HOUR,
  });
  const tokens = new NodeTokenStore();
  const h: Harness = await startSds({ source, clock, auth: { tokens }, random });
  const orders = new FakeEnvoy(h.address, { nodeId: 'sidecar-orders-0', token: tokens.issue('sidecar-orders-0') });
  const frontend = new FakeEnvoy(h.address, { nodeId: 'sidecar-frontend-0', token: tokens.issue('sidecar-frontend-0') });
  t.teardown(async () => {
    orders.close();
    frontend.close();
    await h.close();
  });
  return { clock, source, h, orders, frontend };
}

test('sds rotation - rotation time is half the lifetime, jittered by at most ±10%', (t) => {
  const leaf = { notBefore: 1_000_000, notAfter: 1_000_000 + HOUR };
  t.is(rotationTime(leaf, 0.5), 1_000_000 + HOUR / 2);
  t.is(rotationTime(leaf, 0), 1_000_000 + HOUR * (0.5 - ROTATE_JITTER));
  t.true(rotationTime(leaf, 0.999999) <= 1_000_000 + HOUR * (0.5 + ROTATE_JITTER));
  t.true(rotationTime(leaf, 0.999999) > 1_000_000 + HOUR * 0.59);
});

test('sds rotation - a leaf is re-issued at 50% ±10% of its life and pushed on every subscribed stream', async (t) => {
  // random() = 0.99 puts the rotation at ~60% of the lifetime.
  const { clock, source, h, orders } = await setup(t, () => 0.99);
  const sDefault = orders.open(['default']);
  const sById = orders.open([ORDERS]);
  const [r1, r1b] = await Promise.all([sDefault.next(), sById.next()]);
  sDefault.ack(r1);
  sById.ack(r1b);
  const before = tlsCertificateOf(secretsOf(r1).get('default')!);
  t.is(source.issuedCount, 1, 'default and the identifier share one leaf');

  clock.advance(0.55 * HOUR);
  await h.sds.tick();
  t.true(await sDefault.silentFor(300), 'not due yet at 55% with this jitter');

  clock.advance(0.06 * HOUR);
  await h.sds.tick();
  const [r2, r2b] = await Promise.all([sDefault.next(), sById.next()]);
  const after = tlsCertificateOf(secretsOf(r2).get('default')!);
  t.not(r2.version_info, r1.version_info);
  t.not(after.leaf.serialNumber, before.leaf.serialNumber);
  t.not(after.keyPem, before.keyPem);
  t.true(keyMatches(after));
  t.deepEqual(after.uriSans, [ORDERS]);
  t.deepEqual(tlsCertificateOf(secretsOf(r2b).get(ORDERS)!).leaf.serialNumber, after.leaf.serialNumber);
  t.is(source.issuedCount, 2);
});

test('sds rotation - a failed re-issue keeps the old leaf and retries later', async (t) => {
  const { clock, source, h, orders } = await setup(t);
  const s = orders.open(['default']);
  const r1 = await s.next();
  s.ack(r1);
  source.failIssuance = true;
  clock.advance(0.7 * HOUR);
  await h.sds.tick();
  t.true(await s.silentFor(300));
  source.failIssuance = false;
  clock.advance(10_000);
  await h.sds.tick();
  const r2 = await s.next();
  t.not(r2.version_info, r1.version_info);
});

test('sds rotation - CA rollover: both roots are served before any leaf from the new key', async (t) => {
  const { source, h, orders } = await setup(t);
  const sDefault = orders.open(['default']);
  const sRoot = orders.open(['ROOTCA']);
  const sAll = orders.open(['ALL']);
  const [rd, rr, ra] = await Promise.all([sDefault.next(), sRoot.next(), sAll.next()]);
  [sDefault, sRoot, sAll].forEach((s, i) => s.ack([rd, rr, ra][i]!));
  const old = tlsCertificateOf(secretsOf(rd).get('default')!);

  // 1. prepare: the new root is published beside the old one; leaves are unchanged.
  const next = await source.prepareNext('key-2');
  const [rr2, ra2] = await Promise.all([sRoot.next(), sAll.next()]);
  const roots = trustedCaOf(secretsOf(rr2).get('ROOTCA')!);
  t.is(roots.length, 2);
  t.is(spiffeBundlesOf(secretsOf(ra2).get('ALL')!).get('example.org')!.length, 2);
  t.true(await sDefault.silentFor(300));
  t.true(verifiesTo(old, roots), 'old leaves still verify');

  // 2. activate: leaves are re-issued by the new key and verify against the served roots.
  source.activate(next);
  const rd2 = await sDefault.next();
  const fresh = tlsCertificateOf(secretsOf(rd2).get('default')!);
  t.true(verifiesTo(fresh, roots));
  t.false(verifiesTo(fresh, [trustedCaOf(secretsOf(rr).get('ROOTCA')!)[0]!]), 'signed by the new key, not the old');
  t.true(keyMatches(fresh));
  t.is(h.sds.catalog.reissued, 1);
});

test('sds rotation - a leaf from a key whose root is not served yet is never pushed', async (t) => {
  const { clock, source, h, orders } = await setup(t);
  const s = orders.open(['default']);
  const r1 = await s.next();
  s.ack(r1);
  // The CA signs with a key whose root has not been published: the SDS server refuses it.
  source.issueWith = await TestAuthority.create('example.org', 'unpublished', clock.now());
  clock.advance(0.7 * HOUR);
  await h.sds.tick();
  t.true(await s.silentFor(300));
  t.true(h.sds.catalog.issuanceErrors >= 1);
  // Once its root is published the next attempt goes out.
  source.published.get('example.org')!.push(source.issueWith);
  source.emit({ kind: 'bundles' });
  clock.advance(10_000);
  await h.sds.tick();
  const r2 = await s.next();
  const fresh = tlsCertificateOf(secretsOf(r2).get('default')!);
  t.true(verifiesTo(fresh, [new X509Certificate(source.issueWith.pem)]));
});

test('sds rotation - a tainted key re-issues and pushes every leaf it signed at once', async (t) => {
  const { source, h, orders, frontend } = await setup(t);
  const a = orders.open(['default']);
  const b = frontend.open(['default']);
  const [ra, rb] = await Promise.all([a.next(), b.next()]);
  a.ack(ra);
  b.ack(rb);
  const replacement = await source.prepareNext('key-2');
  // (prepareNext published a bundle change; ROOTCA/ALL are not subscribed here, leaves unchanged)
  t.true(await a.silentFor(200));
  source.active = replacement;
  source.emit({ kind: 'taint', authorityIds: ['key-1'] });
  const [ra2, rb2] = await Promise.all([a.next(), b.next()]);
  t.not(tlsCertificateOf(secretsOf(ra2).get('default')!).leaf.serialNumber, tlsCertificateOf(secretsOf(ra).get('default')!).leaf.serialNumber);
  t.deepEqual(tlsCertificateOf(secretsOf(rb2).get('default')!).uriSans, [FRONTEND]);
  t.is(h.sds.catalog.reissued, 2);
});
