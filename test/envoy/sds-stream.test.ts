import test, { type ExecutionContext } from 'ava';
import { ManualClock } from '../../src/identity/clock.ts';
import { NodeTokenStore } from '../../src/envoy/sds-auth.ts';
import { TYPE_URL } from '../../src/envoy/protos.ts';
import { TestSecretSource } from './helpers/test-source.ts';
import { FakeEnvoy, secretsOf, startSds, type Harness } from './helpers/fake-envoy.ts';
import { keyMatches, spiffeBundlesOf, tlsCertificateOf, trustedCaOf, verifiesTo } from './helpers/verify.ts';

const ORDERS = 'spiffe://example.org/ns/shop/sa/orders';
const ORDERS_ADMIN = 'spiffe://example.org/ns/shop/sa/orders-admin';
const FRONTEND = 'spiffe://example.org/ns/shop/sa/frontend';

interface Env {
  h: Harness;
  source: TestSecretSource;
  clock: ManualClock;
  envoy: FakeEnvoy;
}

const hookCalls: string[] = [];

async function setup(t: ExecutionContext): Promise<Env> {
  const clock = new ManualClock(Date.now());
  const source = await TestSecretSource.create({
    trustDomain: 'example.org',
    clock,
    registrations: { 'sidecar-orders-0': [ORDERS, ORDERS_ADMIN], 'sidecar-frontend-0': [FRONTEND] },
  });
  const tokens = new NodeTokenStore();
  const token = tokens.issue('sidecar-orders-0');
  const h = await startSds({
    source,
    clock,
    auth: { tokens },
    hooks: {
      streamOpened: () => hookCalls.push('opened'),
      streamClosed: () => hookCalls.push('closed'),
      pushed: (r) => hookCalls.push(`pushed:${r}`),
      nack: () => hookCalls.push('nack'),
    },
  });
  const envoy = new FakeEnvoy(h.address, { nodeId: 'sidecar-orders-0', token });
  t.teardown(async () => {
    envoy.close();
    await h.close();
  });
  return { h, source, clock, envoy };
}

test('sds stream - one stream per name: exactly one Secret, exact name and type URLs, fresh nonce', async (t) => {
  const e = await setup(t);
  const sDefault = e.envoy.open(['default']);
  const sAll = e.envoy.open(['ALL']);
  const sRoot = e.envoy.open(['ROOTCA']);
  const [rd, ra, rr] = await Promise.all([sDefault.next(), sAll.next(), sRoot.next()]);
  for (const [r, name] of [[rd, 'default'], [ra, 'ALL'], [rr, 'ROOTCA']] as const) {
    t.is(r.type_url, TYPE_URL.secret);
    t.is(r.resources.length, 1);
    t.is(r.resources[0]!.type_url, TYPE_URL.secret);
    t.deepEqual([...secretsOf(r).keys()], [name]);
    t.regex(r.nonce, /^[0-9a-f]{32}$/);
    t.true(r.version_info.length > 0);
  }
  t.not(rd.nonce, ra.nonce);
  // What Envoy would load: key matches, SAN is the entitled identifier, chain verifies to both
  // the ROOTCA and the ALL bundle of its trust domain.
  const leaf = tlsCertificateOf(secretsOf(rd).get('default')!);
  t.true(keyMatches(leaf));
  t.deepEqual(leaf.uriSans, [ORDERS]);
  t.true(verifiesTo(leaf, trustedCaOf(secretsOf(rr).get('ROOTCA')!)));
  const all = spiffeBundlesOf(secretsOf(ra).get('ALL')!);
  t.deepEqual([...all.keys()], ['example.org']);
  t.true(verifiesTo(leaf, all.get('example.org')!));
});

test('sds stream - several names on one stream, duplicates collapsed, one Secret each', async (t) => {
  const e = await setup(t);
  const s = e.envoy.open(['default', 'ROOTCA', 'ALL', ORDERS_ADMIN, 'ALL']);
  const r = await s.next();
  const secrets = secretsOf(r);
  t.deepEqual([...secrets.keys()].sort(), ['ALL', 'ROOTCA', ORDERS_ADMIN, 'default'].sort());
  t.is(r.resources.length, 4);
  const admin = tlsCertificateOf(secrets.get(ORDERS_ADMIN)!);
  t.deepEqual(admin.uriSans, [ORDERS_ADMIN]);
  t.true(keyMatches(admin));
  t.true(verifiesTo(admin, trustedCaOf(secrets.get('ROOTCA')!)));
});

test('sds stream - an ACK is not answered', async (t) => {
  const e = await setup(t);
  const s = e.envoy.open(['default']);
  const r = await s.next();
  s.ack(r);
  t.true(await s.silentFor(400));
  t.is(e.h.sds.stats().responses, 1);
});

test('sds stream - a NACK is counted and not answered; the next real change is pushed', async (t) => {
  const e = await setup(t);
  const s = e.envoy.open(['ALL']);
  const r1 = await s.next();
  s.nack(r1, '');
  t.true(await s.silentFor(400));
  t.is(e.h.sds.stats().nacks, 1);
  await e.source.federate('partner.example');
  const r2 = await s.next();
  t.not(r2.version_info, r1.version_info);
  t.not(r2.nonce, r1.nonce);
  t.deepEqual([...spiffeBundlesOf(secretsOf(r2).get('ALL')!).keys()], ['example.org', 'partner.example']);
});

test('sds stream - a request with a stale nonce is dropped, the current nonce is honoured', async (t) => {
  const e = await setup(t);
  const s = e.envoy.open(['ROOTCA']);
  const r = await s.next();
  s.send({ resource_names: ['ROOTCA', 'ALL'], type_url: TYPE_URL.secret, version_info: r.version_info, response_nonce: 'not-our-nonce' });
  t.true(await s.silentFor(400));
  t.is(e.h.sds.stats().staleDropped, 1);
  s.send({ resource_names: ['ROOTCA', 'ALL'], type_url: TYPE_URL.secret, version_info: r.version_info, response_nonce: r.nonce });
  const r2 = await s.next();
  // Only the newly added name is sent.
  t.deepEqual([...secretsOf(r2).keys()], ['ALL']);
});

test('sds stream - reconnect with the old version and nonce is answered with current data', async (t) => {
  const e = await setup(t);
  const s1 = e.envoy.open(['ALL']);
  const r1 = await s1.next();
  s1.ack(r1);
  s1.end();
  const s2 = e.envoy.open(['ALL'], { version_info: r1.version_info, response_nonce: r1.nonce });
  const r2 = await s2.next();
  t.is(r2.version_info, r1.version_info, 'same content, same version');
  t.not(r2.nonce, r1.nonce);
  t.deepEqual([...secretsOf(r2).keys()], ['ALL']);
});

test('sds stream - empty names after a subscription unsubscribe: silence, even on changes', async (t) => {
  const e = await setup(t);
  const s = e.envoy.open(['ALL']);
  const r = await s.next();
  s.send({ resource_names: [], type_url: TYPE_URL.secret, version_info: r.version_info, response_nonce: r.nonce });
  await e.source.federate('partner.example');
  t.true(await s.silentFor(400));
});

test('sds stream - a re-added name is sent again although it was sent before', async (t) => {
  const e = await setup(t);
  const s = e.envoy.open(['ROOTCA', 'ALL']);
  const r1 = await s.next();
  s.send({ resource_names: ['ROOTCA'], type_url: TYPE_URL.secret, version_info: r1.version_info, response_nonce: r1.nonce });
  t.true(await s.silentFor(300));
  s.send({ resource_names: ['ROOTCA', 'ALL'], type_url: TYPE_URL.secret, version_info: r1.version_info, response_nonce: r1.nonce });
  const r2 = await s.next();
  t.deepEqual([...secretsOf(r2).keys()], ['ALL']);
});

test('sds stream - a bundle change pushes only to streams whose secret content changed', async (t) => {
  const e = await setup(t);
  const sAll = e.envoy.open(['ALL']);
  const sRoot = e.envoy.open(['ROOTCA']);
  const sDefault = e.envoy.open(['default']);
  const [ra, rr, rd] = await Promise.all([sAll.next(), sRoot.next(), sDefault.next()]);
  sAll.ack(ra);
  sRoot.ack(rr);
  sDefault.ack(rd);
  await e.source.federate('partner.example');
  const ra2 = await sAll.next();
  t.not(ra2.version_info, ra.version_info);
  // A federated bundle does not change our own roots or our leaf.
  t.true(await sRoot.silentFor(300));
  t.true(await sDefault.silentFor(100));
});

test('sds stream - a name with nothing to serve yet is answered as soon as it exists', async (t) => {
  const e = await setup(t);
  const roots = e.source.published.get('example.org')!;
  e.source.published.set('example.org', []);
  e.source.emit({ kind: 'bundles' });
  const s = e.envoy.open(['ROOTCA']);
  t.true(await s.silentFor(300));
  e.source.published.set('example.org', roots);
  e.source.emit({ kind: 'bundles' });
  const r = await s.next();
  t.is(trustedCaOf(secretsOf(r).get('ROOTCA')!).length, 1);
});

test('sds fetch - FetchSecrets answers once, without a nonce', async (t) => {
  const e = await setup(t);
  const r = await e.envoy.fetch(['default', 'ALL']);
  t.is(r.nonce ?? '', '');
  t.true(r.version_info.length > 0);
  t.deepEqual([...secretsOf(r).keys()].sort(), ['ALL', 'default']);
  const leaf = tlsCertificateOf(secretsOf(r).get('default')!);
  t.deepEqual(leaf.uriSans, [ORDERS]);
});

test('sds stream - concurrent first requests for one identity share a single issuance', async (t) => {
  const e = await setup(t);
  const streams = [e.envoy.open(['default']), e.envoy.open(['default']), e.envoy.open([ORDERS]), e.envoy.open(['default'])];
  const rs = await Promise.all(streams.map((s) => s.next()));
  t.is(e.source.issuedCount, 1);
  const serials = new Set(rs.map((r) => tlsCertificateOf([...secretsOf(r).values()][0]!).leaf.serialNumber));
  t.is(serials.size, 1);
});

test('sds stream - a rotation on a multi-name stream sends only the changed secrets', async (t) => {
  const e = await setup(t);
  const s = e.envoy.open(['default', 'ROOTCA', 'ALL']);
  const r1 = await s.next();
  s.ack(r1);
  e.clock.advance(0.7 * 3_600_000);
  await e.h.sds.tick();
  const r2 = await s.next();
  t.deepEqual([...secretsOf(r2).keys()], ['default']);
  t.not(r2.version_info, r1.version_info);
});

test.serial('sds stream - metric hooks see streams, pushes by name class and NACKs', async (t) => {
  const e = await setup(t);
  hookCalls.length = 0;
  const s = e.envoy.open(['default', ORDERS_ADMIN, 'ALL']);
  const r = await s.next();
  s.nack(r, '');
  t.true(await s.silentFor(200));
  s.end();
  await s.status;
  await new Promise((res) => setTimeout(res, 100));
  t.deepEqual(hookCalls.filter((c) => c !== 'closed').sort(), ['nack', 'opened', 'pushed:ALL', 'pushed:default', 'pushed:identity'].sort());
  t.true(hookCalls.includes('closed'));
});
