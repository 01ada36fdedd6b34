import test from 'ava';
import { ManualClock } from '../../src/identity/index.ts';
import { MemoryBus, MemoryHub, NodeHeartbeat, Presence, allNodesTrust, liveNodes, peersMissing, trustReport, type NodeRecord } from '../../src/cluster/index.ts';
import { T0, eventually, settled } from './fixtures.ts';

const rec = (node: string, lastSeen: number, trustedKids: string[]): NodeRecord => ({ node, lastSeen, trustedKids });

test('cluster presence - live nodes are those whose heartbeat is within the timeout', (t) => {
  const nodes = [rec('a', T0, []), rec('b', T0 - 15_000, []), rec('c', T0 - 15_001, [])];
  t.deepEqual(liveNodes(nodes, T0, 15_000).map((n) => n.node), ['a', 'b']);
});

test('cluster presence - a key is trusted everywhere only when every live node lists it; stale nodes do not count', (t) => {
  const nodes = [rec('a', T0, ['k1', 'k2']), rec('b', T0 - 1_000, ['k1']), rec('dead', T0 - 60_000, [])];
  t.true(allNodesTrust('k1', nodes, T0, 15_000));
  t.false(allNodesTrust('k2', nodes, T0, 15_000));
  // Once b's heartbeat is stale too, only a is live, and a trusts k2.
  t.true(allNodesTrust('k2', nodes, T0 + 14_500, 15_000));
  const r = trustReport('k2', nodes, T0, 15_000);
  t.false(r.everywhere);
  t.deepEqual(r.missing, ['b']);
  t.deepEqual(r.nodes.map((x) => [x.node, x.live, x.trusts]), [['a', true, true], ['b', true, false], ['dead', false, false]]);
});

test('cluster presence - with no live node the answer is no (an empty set proves nothing)', (t) => {
  t.false(allNodesTrust('k1', [], T0, 15_000));
  t.false(allNodesTrust('k1', [rec('a', T0 - 20_000, ['k1'])], T0, 15_000));
});

test('cluster presence - the gate\'s view: a known peer is missing until its latest heartbeat lists the key, however old; one never heard from is missing', (t) => {
  const nodes = [rec('a', T0, ['k1']), rec('silent', T0 - 3_600_000, ['k1']), rec('cut-off', T0 - 60_000, ['k0'])];
  t.deepEqual(peersMissing('k1', ['a', 'silent', 'cut-off', 'journaled-only', 'a'], nodes), ['cut-off', 'journaled-only']);
  t.deepEqual(peersMissing('k1', [], nodes), []);
});

test('cluster presence - a heartbeat tells whether the store took it; leave() deletes it', async (t) => {
  const hub = new MemoryHub();
  const clock = new ManualClock(T0);
  const bus = new MemoryBus({ hub, trustDomain: 'example.org', nodeName: 'a', clock });
  t.teardown(() => bus.close());
  await bus.start();
  const told: number[] = [];
  const hb = new NodeHeartbeat(bus, { clock, trustedKids: () => ['k1'], onBeat: (r) => told.push(r) });
  const rev = await hb.beat();
  t.true(rev > 0);
  t.deepEqual(told, [rev]);
  t.truthy(bus.get('nodes', 'a'));
  await hb.leave();
  t.is(bus.get('nodes', 'a'), undefined);
});

async function threeNodes(t: { teardown(fn: () => Promise<void>): void }, clock: ManualClock) {
  const hub = new MemoryHub();
  const trusted: Record<string, string[]> = { a: ['k1'], b: ['k1'], c: ['k1'] };
  const buses = await Promise.all(
    ['a', 'b', 'c'].map(async (name) => {
      const bus = new MemoryBus({ hub, trustDomain: 'example.org', nodeName: name, clock });
      t.teardown(() => bus.close());
      await bus.start();
      return bus;
    }),
  );
  const beats = buses.map((bus) => new NodeHeartbeat(bus, { clock, intervalMs: 60_000, trustedKids: () => trusted[bus.nodeName]! }));
  for (const h of beats) t.teardown(async () => h.stop());
  await Promise.all(beats.map((h) => h.start()));
  return { buses, beats, trusted };
}

test('cluster presence - waitUntilTrustedEverywhere resolves true once the last node reports the key', async (t) => {
  const clock = new ManualClock(T0);
  const { buses, beats, trusted } = await threeNodes(t, clock);
  const presence = new Presence(buses[0]!, { clock, heartbeatTimeoutMs: 15_000, recheckMs: 20 });
  await eventually('a sees three nodes', () => presence.liveNodes().length === 3);
  t.false(presence.allNodesTrust('k2'));
  // Its own timeout is far longer than the safety net: if it settles, the last beat ended it.
  const waiting = presence.waitUntilTrustedEverywhere('k2', { timeoutMs: 60_000 });
  trusted.a!.push('k2');
  trusted.b!.push('k2');
  await beats[0]!.beat();
  await beats[1]!.beat();
  await new Promise((r) => setTimeout(r, 50));
  t.false(presence.allNodesTrust('k2'));
  trusted.c!.push('k2');
  await beats[2]!.beat();
  t.is(await settled(waiting), true);
  t.deepEqual(presence.report('k2').missing, []);
});

test('cluster presence - waitUntilTrustedEverywhere gives up with false after its timeout', async (t) => {
  const clock = new ManualClock(T0);
  const { buses } = await threeNodes(t, clock);
  const presence = new Presence(buses[1]!, { clock, heartbeatTimeoutMs: 15_000, recheckMs: 20 });
  await eventually('b sees three nodes', () => presence.liveNodes().length === 3);
  const started = Date.now();
  t.false(await presence.waitUntilTrustedEverywhere('never', { timeoutMs: 200 }));
  t.true(Date.now() - started >= 190);
});

test('cluster presence - a node that stops beating stops blocking activation', async (t) => {
  const clock = new ManualClock(T0);
  const { buses, beats, trusted } = await threeNodes(t, clock);
  const presence = new Presence(buses[0]!, { clock, heartbeatTimeoutMs: 15_000, recheckMs: 20 });
  await eventually('a sees three nodes', () => presence.liveNodes().length === 3);
  trusted.a!.push('k3');
  trusted.b!.push('k3');
  const waiting = presence.waitUntilTrustedEverywhere('k3', { timeoutMs: 60_000 });
  clock.advance(10_000);
  await beats[0]!.beat();
  await beats[1]!.beat();
  // c never beats again; 6 s later its last heartbeat is 16 s old, and the next recheck sees it.
  clock.advance(6_000);
  t.is(await settled(waiting), true);
  t.deepEqual(presence.liveNodes().map((n) => n.node).sort(), ['a', 'b']);
});

test('cluster presence - options are checked at construction', (t) => {
  const bus = new MemoryBus({ trustDomain: 'example.org', nodeName: 'a' });
  t.throws(() => new Presence(bus, { clock: new ManualClock(), heartbeatTimeoutMs: 0 }), { instanceOf: TypeError });
  t.throws(() => new NodeHeartbeat(bus, { clock: new ManualClock(), intervalMs: -1, trustedKids: () => [] }), { instanceOf: TypeError });
  t.throws(() => new MemoryBus({ trustDomain: 'Example.org', nodeName: 'a' }), { instanceOf: TypeError });
  t.throws(() => new MemoryBus({ trustDomain: 'example.org', nodeName: 'a b' }), { instanceOf: TypeError });
});
