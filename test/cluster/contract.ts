/**
 * The bus contract, written once and run against every implementation (memory-bus.test.ts,
 * nats-bus.test.ts). A harness gives each test an isolated group of nodes (its own trust domain)
 * and raw access to the wire and the store, to play a lost, duplicated or hostile message.
 */
import { createHash } from 'node:crypto';
import type { ExecutionContext, TestFn } from 'ava';
import { ManualClock } from '../../src/identity/clock.ts';
import { ClusterError, changeSubject, encodeToken, eventSubject, kvKey, type Bus, type BusOptions, type Change, type InvalidInfo } from '../../src/cluster/index.ts';
import { caDerBase64, eventually, keyRecord, policyRecord, privateJwk, registration, revocation, bundleRecord, sleep } from './fixtures.ts';

export interface Group {
  trustDomain: string;
  /** A started node of this group. */
  node(name: string, opts?: Partial<BusOptions>): Promise<Bus>;
  /** Publish raw bytes on a subject, as a foreign client would. */
  inject(subject: string, bytes: Uint8Array): Promise<void>;
  /** Write to the store without announcing (a change message that was lost). */
  storeRaw(kvKey: string, bytes: Uint8Array): Promise<number>;
  /** The store loses a value (JetStream dropped an acknowledged write). */
  eraseRaw(kvKey: string): Promise<void>;
  /** What the store holds under a key: a value, a deletion marker, or nothing at all. */
  rawEntry(kvKey: string): Promise<'value' | 'marker' | undefined>;
}

export interface Harness {
  name: string;
  group(t: ExecutionContext): Promise<Group>;
}

const json = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

export function runBusContract(avaTest: TestFn, h: Harness): void {
  const title = (s: string): string => `cluster ${h.name} contract - ${s}`;
  // Every contract case is bounded: 60 s even on a loaded machine.
  const test = (name: string, fn: (t: ExecutionContext) => Promise<void>): void =>
    avaTest(name, async (t) => {
      t.timeout(60_000);
      await fn(t);
    });

  test(title('a put is readable at once on the writer, with origin, sequence and revision'), async (t) => {
    const g = await h.group(t);
    const a = await g.node('a');
    const rec = keyRecord('a', 'k1');
    const rev = await a.put('keys', 'a/k1', rec);
    t.true(rev > 0);
    const e = a.get('keys', 'a/k1');
    t.deepEqual(e?.record, rec);
    t.is(e?.origin, 'a');
    t.is(e?.revision, rev);
    t.true((e?.seq ?? 0) > 0);
    t.deepEqual(a.list('keys').map((x) => x.key), ['a/k1']);
    t.true(a.connected);
  });

  test(title('a change on one node reaches the others and fires their watchers'), async (t) => {
    const g = await h.group(t);
    const [a, b, c] = await Promise.all([g.node('a'), g.node('b'), g.node('c')]);
    const seenB: Change[] = [];
    b.watch('policy', (ch) => seenB.push(ch));
    const rev = await a.put('policy', 'current', policyRecord('v1'));
    await eventually('b and c see v1', () => b.get('policy', 'current')?.record.version === 'v1' && c.get('policy', 'current')?.record.version === 'v1');
    t.is(b.get('policy', 'current')?.revision, rev);
    t.is(seenB.length, 1);
    t.like(seenB[0], { kind: 'policy', key: 'current', origin: 'a', deleted: false, local: false, revision: rev });
  });

  test(title('every kind round-trips between nodes'), async (t) => {
    const g = await h.group(t);
    const [a, b] = await Promise.all([g.node('a'), g.node('b')]);
    await a.put('bundles', 'partner.example', bundleRecord('partner.example', 3));
    await a.put('registrations', 'web', registration('web'));
    await a.put('revocations', 'tok-1', revocation('tok-1'));
    await a.put('nodes', 'a', { node: 'a', lastSeen: 1, trustedKids: ['k1'] });
    await a.put('keys', 'a/x', keyRecord('a', 'x', { publicJwk: undefined, use: 'x509', x509RootDer: await caDerBase64() }));
    await eventually('all kinds on b', () =>
      (['bundles', 'registrations', 'revocations', 'nodes', 'keys'] as const).every((k) => b.list(k).length === 1),
    );
    t.is(b.get('bundles', 'partner.example')?.record.sequence, 3);
    t.deepEqual(b.get('registrations', 'web')?.record, registration('web'));
    t.is(b.get('keys', 'a/x')?.record.use, 'x509');
  });

  test(title('compare-and-set conflicts surface as a typed error'), async (t) => {
    const g = await h.group(t);
    const [a, b] = await Promise.all([g.node('a'), g.node('b')]);
    const r1 = await a.update('policy', 'current', policyRecord('v1'), 0);
    const dup = await t.throwsAsync(b.update('policy', 'current', policyRecord('v1-b'), 0), { instanceOf: ClusterError });
    t.is(dup?.code, 'ERR_CLUSTER_REVISION_MISMATCH');
    const r2 = await b.update('policy', 'current', policyRecord('v2'), r1);
    t.true(r2 > r1);
    const stale = await t.throwsAsync(a.update('policy', 'current', policyRecord('v3'), r1), { instanceOf: ClusterError });
    t.is(stale?.code, 'ERR_CLUSTER_REVISION_MISMATCH');
    await eventually('a sees v2', () => a.get('policy', 'current')?.record.version === 'v2');
    t.is(b.get('policy', 'current')?.revision, r2);
  });

  test(title('a delete propagates as a tombstone'), async (t) => {
    const g = await h.group(t);
    const [a, b] = await Promise.all([g.node('a'), g.node('b')]);
    await a.put('registrations', 'web', registration('web'));
    await eventually('b has web', () => b.get('registrations', 'web') !== undefined);
    const changes: Change[] = [];
    b.watch('registrations', (ch) => changes.push(ch));
    const rev = await a.delete('registrations', 'web');
    t.true(rev > 0);
    await eventually('b lost web', () => b.get('registrations', 'web') === undefined);
    t.deepEqual(b.list('registrations'), []);
    t.like(changes[0], { deleted: true, key: 'web', origin: 'a' });
  });

  test(title('bad local writes are refused with stable codes before they travel'), async (t) => {
    const g = await h.group(t);
    const a = await g.node('a');
    const notOwner = await t.throwsAsync<ClusterError>(a.put('keys', 'b/k1', keyRecord('b', 'k1')));
    t.is(notOwner?.code, 'ERR_CLUSTER_NOT_OWNER');
    const priv = await t.throwsAsync<ClusterError>(a.put('keys', 'a/k1', keyRecord('a', 'k1', { publicJwk: { ...privateJwk(), alg: 'ES256' } })));
    t.is(priv?.code, 'ERR_CLUSTER_INVALID_RECORD');
    t.true(priv?.errors.some((e) => e.includes('record.publicJwk: private_key')));
    const wrongKey = await t.throwsAsync<ClusterError>(a.put('keys', 'a/other', keyRecord('a', 'k1')));
    t.is(wrongKey?.code, 'ERR_CLUSTER_INVALID_RECORD');
    const digest = await t.throwsAsync<ClusterError>(a.put('policy', 'current', { ...policyRecord('v1'), text: 'tampered' }));
    t.true(digest?.errors.includes('record.digest: does not match text'));
    const big = await t.throwsAsync<ClusterError>(a.put('policy', 'current', policyRecord('big', 'x'.repeat(70_000))));
    t.is(big?.code, 'ERR_CLUSTER_TOO_LARGE');
    t.deepEqual(a.list('keys'), []);
    t.is(a.get('policy', 'current'), undefined);
  });

  test(title('a node that starts late catches up from the store'), async (t) => {
    const g = await h.group(t);
    const a = await g.node('a');
    await a.put('keys', 'a/k1', keyRecord('a', 'k1'));
    await a.put('policy', 'current', policyRecord('v7'));
    await a.put('revocations', 'tok-9', revocation('tok-9'));
    await a.delete('revocations', 'tok-9');
    const late = await g.node('late');
    t.is(late.get('keys', 'a/k1')?.origin, 'a');
    t.is(late.get('policy', 'current')?.record.version, 'v7');
    t.is(late.get('revocations', 'tok-9'), undefined);
  });

  test(title('duplicated and reordered change messages are harmless'), async (t) => {
    const g = await h.group(t);
    const [a, b] = await Promise.all([g.node('a'), g.node('b')]);
    const r1 = await a.put('policy', 'current', policyRecord('v1'));
    const e1 = a.get('policy', 'current')!;
    const r2 = await a.put('policy', 'current', policyRecord('v2'));
    await eventually('b at v2', () => b.get('policy', 'current')?.revision === r2);
    const changes: Change[] = [];
    b.watch('policy', (ch) => changes.push(ch));
    const staleBefore = b.stats().stale;
    const subject = changeSubject(g.trustDomain, 'policy', 'a');
    const old = { v: 1, kind: 'policy', key: 'current', origin: 'a', seq: e1.seq, record: e1.record, revision: r1 };
    const cur = { ...old, seq: a.get('policy', 'current')!.seq, record: policyRecord('v2'), revision: r2 };
    for (const m of [old, cur, old, cur, old]) await g.inject(subject, json(m));
    await eventually('b counted the replays', () => b.stats().stale >= staleBefore + 5);
    t.is(b.get('policy', 'current')?.record.version, 'v2');
    t.is(b.get('policy', 'current')?.revision, r2);
    t.deepEqual(changes, []);
  });

  test(title('malformed and hostile messages are counted and never applied'), async (t) => {
    const g = await h.group(t);
    const refused: InvalidInfo[] = [];
    const b = await g.node('b', { onInvalid: (i) => refused.push(i) });
    const rec = keyRecord('a', 'k1');
    const good = { v: 1, kind: 'keys', key: 'a/k1', origin: 'a', seq: 5, record: rec, revision: 1 };
    const sends: Array<[string, Uint8Array]> = [
      [changeSubject(g.trustDomain, 'keys', 'a'), new TextEncoder().encode('{not json')],
      [changeSubject(g.trustDomain, 'keys', 'a'), json({ ...good, record: { ...rec, state: 'bogus' } })],
      // A node may not speak for another: origin differs from the subject's.
      [changeSubject(g.trustDomain, 'keys', 'mallory'), json(good)],
      // Nor publish a key under another node's name.
      [changeSubject(g.trustDomain, 'keys', 'mallory'), json({ ...good, origin: 'mallory' })],
      [changeSubject(g.trustDomain, 'keys', 'a'), json({ ...good, pad: 'x'.repeat(70_000) })],
      [changeSubject(g.trustDomain, 'policy', 'a'), json({ ...good })],
      [changeSubject(g.trustDomain, 'keys', 'a'), json({ ...good, record: { ...rec, publicJwk: { ...privateJwk(), alg: 'ES256' } } })],
    ];
    for (const [s, bytes] of sends) await g.inject(s, bytes);
    await eventually('all refused', () => refused.length === sends.length);
    t.deepEqual(
      refused.map((r) => r.reason),
      ['bad_json', 'bad_schema', 'origin_mismatch', 'origin_mismatch', 'oversize', 'key_mismatch', 'bad_schema'],
    );
    const stats = b.stats();
    t.is(stats.invalid.bad_json, 1);
    t.is(stats.invalid.origin_mismatch, 2);
    t.is(stats.applied, 0);
    t.deepEqual(b.list('keys'), []);
    // The well-formed message is then applied: the refusals were about content, not the channel.
    await g.inject(changeSubject(g.trustDomain, 'keys', 'a'), json(good));
    await eventually('good applied', () => b.get('keys', 'a/k1') !== undefined);
    t.is(refused.length, sends.length);
  });

  test(title('bad values in the store are counted and never applied'), async (t) => {
    const g = await h.group(t);
    const refused: InvalidInfo[] = [];
    const b = await g.node('b', { reconcileIntervalMs: 0, gapGraceMs: 60_000, onInvalid: (i) => refused.push(i) });
    const rec = keyRecord('a', 'k1');
    await g.storeRaw(kvKey('keys', 'a/k1'), new TextEncoder().encode('{"v":1,'));
    // Stored under a's key, but claims to come from mallory.
    await g.storeRaw(kvKey('keys', 'a/k2'), json({ v: 1, kind: 'keys', key: 'a/k2', origin: 'mallory', seq: 1, record: keyRecord('a', 'k2') }));
    // A valid envelope stored under another key than its own.
    await g.storeRaw(kvKey('keys', 'a/k3'), json({ v: 1, kind: 'keys', key: 'a/k1', origin: 'a', seq: 1, record: rec }));
    await g.storeRaw('nonsense.key', json({ v: 1 }));
    await b.reconcile();
    t.deepEqual(refused.map((r) => r.reason).sort(), ['bad_json', 'key_mismatch', 'key_mismatch', 'origin_mismatch']);
    t.deepEqual(b.list('keys'), []);
  });

  test(title('a change whose message was lost is repaired by reconcile'), async (t) => {
    const g = await h.group(t);
    const [a, b] = await Promise.all([g.node('a', { reconcileIntervalMs: 0 }), g.node('b', { reconcileIntervalMs: 0, gapGraceMs: 60_000 })]);
    await a.put('policy', 'current', policyRecord('v1'));
    await eventually('b at v1', () => b.get('policy', 'current')?.record.version === 'v1');
    const env = { v: 1, kind: 'policy', key: 'current', origin: 'a', seq: Date.now() + 10_000, record: policyRecord('v2') };
    const rev = await g.storeRaw(kvKey('policy', 'current'), json(env));
    await sleep(100);
    t.is(b.get('policy', 'current')?.record.version, 'v1');
    const report = await b.reconcile();
    t.is(report.applied, 1);
    t.is(b.get('policy', 'current')?.record.version, 'v2');
    t.is(b.get('policy', 'current')?.revision, rev);
    t.is(b.stats().repaired, 1);
  });

  test(title('a revision gap on the bus triggers a catch-up without waiting for the periodic reconcile'), async (t) => {
    const g = await h.group(t);
    const [a, b] = await Promise.all([g.node('a', { reconcileIntervalMs: 0 }), g.node('b', { reconcileIntervalMs: 0, gapGraceMs: 50 })]);
    await a.put('policy', 'p0', policyRecord('v0'));
    await eventually('b at p0', () => b.get('policy', 'p0') !== undefined);
    const env = { v: 1, kind: 'registrations', key: 'web', origin: 'a', seq: Date.now() + 10_000, record: registration('web') };
    await g.storeRaw(kvKey('registrations', 'web'), json(env));
    await a.put('policy', 'p1', policyRecord('v1'));
    await eventually('b caught up', () => b.get('registrations', 'web') !== undefined); // periodic reconcile is off
    t.true(b.stats().reconciles >= 2);
  });

  test(title('reconcile re-asserts a node\'s own values that the store lost'), async (t) => {
    const g = await h.group(t);
    const [a, b] = await Promise.all([g.node('a', { reconcileIntervalMs: 0 }), g.node('b', { reconcileIntervalMs: 0 })]);
    await a.put('keys', 'a/k1', keyRecord('a', 'k1'));
    await g.eraseRaw(kvKey('keys', 'a/k1'));
    const late = await g.node('late', { reconcileIntervalMs: 0 });
    t.is(late.get('keys', 'a/k1'), undefined);
    const report = await a.reconcile();
    t.is(report.reasserted, 1);
    await late.reconcile();
    t.is(late.get('keys', 'a/k1')?.origin, 'a');
    await eventually('b has a/k1', () => b.get('keys', 'a/k1')?.origin === 'a');
  });

  test(title('a change announced with a made-up revision is undone by the store on reconcile'), async (t) => {
    const g = await h.group(t);
    const [a, b] = await Promise.all([g.node('a', { reconcileIntervalMs: 0 }), g.node('b', { reconcileIntervalMs: 0, gapGraceMs: 60_000 })]);
    const r1 = await a.put('policy', 'current', policyRecord('v1'));
    await eventually('b at v1', () => b.get('policy', 'current')?.revision === r1);
    const forged = { v: 1, kind: 'policy', key: 'current', origin: 'a', seq: Date.now() + 50_000, record: policyRecord('forged'), revision: 1_000_000_000 };
    await g.inject(changeSubject(g.trustDomain, 'policy', 'a'), json(forged));
    await eventually('b took the forged value', () => b.get('policy', 'current')?.record.version === 'forged');
    await b.reconcile();
    await b.reconcile();
    t.is(b.get('policy', 'current')?.record.version, 'v1');
    t.is(b.get('policy', 'current')?.revision, r1);
    const r2 = await a.put('policy', 'current', policyRecord('v2'));
    await eventually('b follows the store again', () => b.get('policy', 'current')?.revision === r2);
  });

  test(title('a change announced under a node\'s own name that it never wrote is not re-asserted by that node'), async (t) => {
    const g = await h.group(t);
    const [a, b] = await Promise.all([g.node('a', { reconcileIntervalMs: 0, gapGraceMs: 60_000 }), g.node('b', { reconcileIntervalMs: 0, gapGraceMs: 60_000 })]);
    const r1 = await a.put('policy', 'current', policyRecord('v1'));
    await eventually('b at v1', () => b.get('policy', 'current')?.revision === r1);
    const forged = { v: 1, kind: 'policy', key: 'current', origin: 'a', seq: Date.now() + 50_000, record: policyRecord('forged'), revision: 1_000_000_000 };
    await g.inject(changeSubject(g.trustDomain, 'policy', 'a'), json(forged));
    await eventually('b took the forged value', () => b.get('policy', 'current')?.record.version === 'forged');
    // Node a reconciles first (its gap timer, or its period, can fire before anyone else's):
    // it must not write a value it never wrote into the store as its own.
    await a.reconcile();
    t.is(a.get('policy', 'current')?.record.version, 'v1');
    await b.reconcile();
    await b.reconcile();
    t.is(b.get('policy', 'current')?.record.version, 'v1');
    t.is(b.get('policy', 'current')?.revision, r1);
  });

  test(title('events reach other nodes once and are not stored'), async (t) => {
    const g = await h.group(t);
    const [a, b] = await Promise.all([g.node('a'), g.node('b')]);
    const got: Array<{ tokenId: string; origin: string }> = [];
    b.subscribe('revocations', (r, meta) => got.push({ tokenId: r.tokenId, origin: meta.origin }));
    await a.publish('revocations', revocation('tok-ev'));
    await eventually('event received', () => got.length === 1);
    t.deepEqual(got, [{ tokenId: 'tok-ev', origin: 'a' }]);
    t.is(b.get('revocations', 'tok-ev'), undefined);
    const notMine = await t.throwsAsync<ClusterError>(a.publish('nodes', { node: 'b', lastSeen: 1, trustedKids: [] }));
    t.is(notMine?.code, 'ERR_CLUSTER_NOT_OWNER');
    // A forged event for another node's presence is refused on receipt.
    await g.inject(eventSubject(g.trustDomain, 'nodes', 'a'), json({ v: 1, kind: 'nodes', origin: 'a', seq: 1, record: { node: 'b', lastSeen: 1, trustedKids: [] } }));
    await eventually('forged event refused', () => b.stats().invalid.origin_mismatch === 1);
  });

  test(title('names with dots and other characters map to distinct subjects and keys'), async (t) => {
    const g = await h.group(t);
    t.is(encodeToken('example.org'), 'example_2eorg');
    t.not(encodeToken('a.b'), encodeToken('a_b'));
    const a = await g.node('node.one');
    const b = await g.node('node_one');
    await a.put('keys', 'node.one/k:1', keyRecord('node.one', 'k:1'));
    await eventually('b sees node.one key', () => b.get('keys', 'node.one/k:1')?.origin === 'node.one');
    t.deepEqual(b.list('keys').map((e) => e.key), ['node.one/k:1']);
  });

  test(title('records past their forget time are refused, dropped from every replica and removed from the store without a marker; the rest stays'), async (t) => {
    const g = await h.group(t);
    const clock = new ManualClock(Date.now());
    const forgetAt = { nodeTokens: (r: { expiresAt?: number }) => (r.expiresAt === undefined ? undefined : r.expiresAt + 1_000) };
    const [a, b] = await Promise.all([g.node('a', { clock, forgetAt, reconcileIntervalMs: 0 }), g.node('b', { clock, forgetAt, reconcileIntervalMs: 0 })]);
    const digest = (s: string) => createHash('sha256').update(s).digest('base64url');
    const dying = { nodeId: 'sidecar-b', sha256: digest('dying'), expiresAt: clock.now() + 5_000 };
    const forever = { nodeId: 'sidecar-b', sha256: digest('forever') };
    const dyingKey = kvKey('nodeTokens', dying.sha256);
    await a.put('nodeTokens', dying.sha256, dying);
    await a.put('nodeTokens', forever.sha256, forever);
    await eventually('b has both', () => b.list('nodeTokens').length === 2);
    const deletions: string[] = [];
    b.watch('nodeTokens', (c) => void (c.deleted && deletions.push(c.key)));

    clock.advance(5_999);
    t.is((await b.reconcile()).purged, 0);
    t.is(b.list('nodeTokens').length, 2, 'not yet past its forget time: kept');
    clock.advance(1);
    t.is((await b.reconcile()).purged, 1);
    t.deepEqual(b.list('nodeTokens').map((e) => e.key), [forever.sha256]);
    t.deepEqual(deletions, [dying.sha256], 'watchers see it go');
    t.is(await g.rawEntry(dyingKey), undefined, 'neither the value nor a marker is left');
    t.is(await g.rawEntry(kvKey('nodeTokens', forever.sha256)), 'value');
    // Its writer drops its own copy at its next reconcile instead of re-asserting it.
    const byA = await a.reconcile();
    t.is(byA.reasserted, 0);
    t.is(a.get('nodeTokens', dying.sha256), undefined);
    t.is(await g.rawEntry(dyingKey), undefined);

    // A node without the rule writes it again: refused on receipt, removed by the next reconcile.
    const old = await g.node('old', { reconcileIntervalMs: 0 });
    const before = b.stats().forgotten;
    await old.put('nodeTokens', dying.sha256, dying);
    await eventually('b refused the copy', () => b.stats().forgotten > before);
    t.is(b.get('nodeTokens', dying.sha256), undefined);
    t.is((await b.reconcile()).purged, 1);
    t.is(await g.rawEntry(dyingKey), undefined);
    t.is(b.get('nodeTokens', dying.sha256), undefined);
    t.deepEqual(deletions, [dying.sha256], 'what was never taken in is not deleted again');
    t.is(b.get('nodeTokens', forever.sha256)?.record.nodeId, 'sidecar-b');
  });

  test(title('a copy past its forget time is ordered like any write: an older one leaves the newer value alone, a newer one drops it'), async (t) => {
    const g = await h.group(t);
    const clock = new ManualClock(Date.now());
    const b = await g.node('b', { clock, forgetAt: { revocations: (r) => r.expiresAt }, reconcileIntervalMs: 0, gapGraceMs: 60_000 });
    const now = clock.now();
    const change = (origin: string, seq: number, revision: number, expiresAt: number) =>
      g.inject(changeSubject(g.trustDomain, 'revocations', origin), json({ v: 1, kind: 'revocations', key: 'tok-1', origin, seq, revision, record: { ...revocation('tok-1'), expiresAt } }));
    await change('a', now + 2, 2, now + 60_000);
    await eventually('b holds the revocation', () => b.get('revocations', 'tok-1') !== undefined);
    const forgotten = b.stats().forgotten;
    const stale = b.stats().stale;
    await change('a', now + 1, 1, now - 1); // an older write of it, long expired, arrives late
    await eventually('the late copy is judged', () => b.stats().stale > stale);
    t.is(b.get('revocations', 'tok-1')?.record.expiresAt, now + 60_000, 'the newer value stays');
    t.is(b.stats().forgotten, forgotten);
    await change('c', now + 3, 3, now - 1); // a newer write that is past its time: the value goes
    await eventually('the newer expired copy is judged', () => b.stats().forgotten > forgotten);
    t.is(b.get('revocations', 'tok-1'), undefined);
  });

  test(title('close stops the node and refuses further writes'), async (t) => {
    const g = await h.group(t);
    const a = await g.node('a');
    await a.close();
    t.false(a.connected);
    const err = await t.throwsAsync<ClusterError>(a.put('policy', 'p', policyRecord('v1')));
    t.is(err?.code, 'ERR_CLUSTER_CLOSED');
  });
}
