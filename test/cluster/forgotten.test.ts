import test from 'ava';
import { ManualClock } from '../../src/identity/index.ts';
import { MemoryBus, MemoryHub, Presence, checkRecord, isForgotten, visibleRecord, type Bus } from '../../src/cluster/index.ts';
import { T0, eventually } from './fixtures.ts';

const SHA = 'q'.repeat(43);

async function buses(t: { teardown(fn: () => Promise<void>): void }, hub: MemoryHub, names: string[], clock: ManualClock): Promise<MemoryBus[]> {
  return Promise.all(
    names.map(async (nodeName) => {
      // No periodic catch-up: a node learns what it missed only when the test says so.
      const bus = new MemoryBus({ hub, trustDomain: 'example.org', nodeName, clock, reconcileIntervalMs: 0 });
      t.teardown(() => bus.close());
      await bus.start();
      return bus;
    }),
  );
}

const heard = (bus: Bus, clock: ManualClock) => new Presence(bus, { clock }).nodes().map((n) => n.node);
const adminTokenOf = (bus: Bus, node: string) => visibleRecord(bus, 'adminTokens', node)?.record.sha256;

test('cluster forgotten - a forget hides the node\'s heartbeat and admin token stored before it, on every node; what the node writes afterwards counts again', async (t) => {
  const clock = new ManualClock(T0);
  const [a, b, c] = await buses(t, new MemoryHub(), ['a', 'b', 'c'], clock);
  await a!.put('nodes', 'a', { node: 'a', lastSeen: T0, trustedKids: ['k1'] });
  await a!.put('adminTokens', 'a', { node: 'a', sha256: SHA });
  await eventually('c has a\'s records', () => adminTokenOf(c!, 'a') === SHA && heard(c!, clock).includes('a'));

  // b forgets a: one shared record, compare-and-set against none.
  await b!.update('forgottenNodes', 'a', { node: 'a', forgottenAt: T0 + 60_000, lastSeen: T0 }, 0);
  for (const bus of [b!, c!]) await eventually(`${bus.nodeName} hides a`, () => !heard(bus, clock).includes('a') && adminTokenOf(bus, 'a') === undefined);
  // The records are still in the store (only their owner writes them); they are disregarded.
  t.truthy(c!.get('nodes', 'a'));
  t.true(isForgotten(c!, c!.get('adminTokens', 'a')!));
  // A node never disregards its own records.
  t.deepEqual(heard(a!, clock), ['a']);
  t.is(adminTokenOf(a!, 'a'), SHA);

  // a writes again (it restarted, or its partition healed): newer than the forget, it counts.
  await a!.put('nodes', 'a', { node: 'a', lastSeen: T0 + 120_000, trustedKids: ['k1'] });
  await eventually('c hears a again', () => heard(c!, clock).includes('a'));
  t.is(adminTokenOf(c!, 'a'), undefined, 'until it writes its admin token again');
  await a!.put('adminTokens', 'a', { node: 'a', sha256: SHA });
  await eventually('c accepts a\'s admin token again', () => adminTokenOf(c!, 'a') === SHA);
});

test('cluster forgotten - a node that missed the forget learns it from the store; replayed announcements of the old records bring nothing back', async (t) => {
  const clock = new ManualClock(T0);
  const hub = new MemoryHub();
  const [a, b, c] = await buses(t, hub, ['a', 'b', 'c'], clock);
  const seen: Array<[string, Uint8Array]> = [];
  let drop = false;
  hub.dropAnnounce = (subject, bytes) => {
    seen.push([subject, Uint8Array.from(bytes)]);
    return drop;
  };
  await a!.put('nodes', 'a', { node: 'a', lastSeen: T0, trustedKids: [] });
  await a!.put('adminTokens', 'a', { node: 'a', sha256: SHA });
  await eventually('c has a\'s records', () => adminTokenOf(c!, 'a') === SHA && heard(c!, clock).includes('a'));
  const old = [...seen];

  // The forget's announcement is lost: c still holds a's records as they were.
  drop = true;
  await b!.update('forgottenNodes', 'a', { node: 'a', forgottenAt: T0 + 60_000 }, 0);
  drop = false;
  t.is(c!.get('forgottenNodes', 'a'), undefined);
  t.is(adminTokenOf(c!, 'a'), SHA);
  // Its next catch-up from the store brings the forget.
  await c!.reconcile();
  t.is(adminTokenOf(c!, 'a'), undefined);
  t.false(heard(c!, clock).includes('a'));

  // The old records announced again (a replay, a peer repeating what it heard) change nothing.
  for (const [subject, bytes] of old) hub.inject(subject, bytes);
  await c!.reconcile();
  for (const bus of [b!, c!]) {
    t.is(adminTokenOf(bus, 'a'), undefined, bus.nodeName);
    t.false(heard(bus, clock).includes('a'), bus.nodeName);
  }
  // Nor does any node write them back: the store's copies are still a's own, older than the forget.
  await Promise.all([a!, b!, c!].map((bus) => bus.reconcile()));
  const late = (await buses(t, hub, ['d'], clock))[0]!;
  t.is(adminTokenOf(late, 'a'), undefined, 'a node started later reads the forget from the store');
  t.false(heard(late, clock).includes('a'));
  t.is(late.get('adminTokens', 'a')?.origin, 'a');
});

test('cluster forgotten - the record is checked like every record: a node name, a time, nothing else', (t) => {
  t.true(checkRecord('forgottenNodes', { node: 'cp-3', forgottenAt: T0, lastSeen: T0 - 60_000 }).ok);
  t.true(checkRecord('forgottenNodes', { node: 'cp-3', forgottenAt: T0 }).ok);
  const bad = checkRecord('forgottenNodes', { node: 'cp 3', forgottenAt: -1, extra: true });
  t.false(bad.ok);
  t.deepEqual(!bad.ok && bad.errors, ['record.extra: unexpected member', 'record.node: must match /^[A-Za-z0-9._-]{1,64}$/', 'record.forgottenAt: must be an integer >= 0']);
});
