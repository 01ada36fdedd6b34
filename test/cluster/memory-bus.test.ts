import test from 'ava';
import { MemoryBus, MemoryHub, kvKey, type Bus, type BusOptions } from '../../src/cluster/index.ts';
import { runBusContract, type Group } from './contract.ts';
import { eventually, keyRecord, policyRecord } from './fixtures.ts';

let groups = 0;

function memoryGroup(t: { teardown(fn: () => Promise<void>): void }): Group & { hub: MemoryHub } {
  const hub = new MemoryHub();
  const trustDomain = `g${++groups}.example.org`;
  return {
    hub,
    trustDomain,
    async node(name: string, opts: Partial<BusOptions> = {}): Promise<Bus> {
      const bus = new MemoryBus({ hub, trustDomain, nodeName: name, ...opts });
      t.teardown(() => bus.close());
      await bus.start();
      return bus;
    },
    async inject(subject, bytes) {
      hub.inject(subject, bytes);
    },
    async storeRaw(key, bytes) {
      return hub.storeRaw(trustDomain, key, bytes);
    },
    async eraseRaw(key) {
      hub.bucket(trustDomain).values.delete(key);
    },
    async rawEntry(key) {
      return hub.bucket(trustDomain).values.has(key) ? 'value' : undefined;
    },
  };
}

runBusContract(test, { name: 'memory', group: async (t) => memoryGroup(t) });

test('cluster memory - an outage keeps local state, queues writes, and converges when the bus is back', async (t) => {
  const g = memoryGroup(t);
  const [a, b] = await Promise.all([g.node('a', { retryMs: 20 }), g.node('b', { retryMs: 20 })]);
  await a.put('policy', 'current', policyRecord('v1'));
  await eventually('b at v1', () => b.get('policy', 'current')?.record.version === 'v1');
  const transitions: boolean[] = [];
  a.onConnectionChange((c) => transitions.push(c));
  g.hub.setOnline(false);
  await eventually('a disconnected', () => transitions.includes(false));
  t.false(a.connected);
  t.is(b.get('policy', 'current')?.record.version, 'v1');
  t.is(await a.put('keys', 'a/k2', keyRecord('a', 'k2')), 0);
  t.is(a.get('keys', 'a/k2')?.revision, 0);
  t.is(a.stats().pending, 1);
  const cas = await t.throwsAsync(a.update('policy', 'current', policyRecord('v9'), 1));
  t.is((cas as { code?: string }).code, 'ERR_CLUSTER_UNAVAILABLE');
  g.hub.setOnline(true);
  await eventually('b has a/k2', () => b.get('keys', 'a/k2') !== undefined);
  t.deepEqual(transitions, [false, true]);
  t.is(a.stats().pending, 0);
  t.true((a.get('keys', 'a/k2')?.revision ?? 0) > 0);
});

test('cluster memory - a shared write made while cut off loses to a concurrent write made elsewhere', async (t) => {
  const g = memoryGroup(t);
  const [a, b] = await Promise.all([g.node('a', { retryMs: 20 }), g.node('b')]);
  await a.put('policy', 'current', policyRecord('v1'));
  await eventually('b at v1', () => b.get('policy', 'current') !== undefined);
  // a is cut off alone: its backend reports unavailable while b keeps writing.
  g.hub.setOnline(false);
  await eventually('a offline', () => !a.connected);
  t.is(await a.put('policy', 'current', policyRecord('from-a')), 0);
  g.hub.setOnline(true);
  await eventually('b online', () => b.connected);
  // b writes first (as if it had been connected all along), then a catches up.
  const bRev = await b.put('policy', 'current', policyRecord('from-b'));
  await eventually('a converged on b', () => a.get('policy', 'current')?.record.version === 'from-b' && a.stats().pending === 0);
  t.is(a.get('policy', 'current')?.revision, bRev);
  t.is(a.stats().conflicts, 1);
  t.is(g.hub.bucket(g.trustDomain).values.get(kvKey('policy', 'current'))?.revision, bRev);
});

test('cluster memory - a pending shared write based on our own in-flight write rebases on it instead of sticking', async (t) => {
  const g = memoryGroup(t);
  const [a, b] = await Promise.all([g.node('a', { retryMs: 20 }), g.node('b')]);
  const first = a.put('policy', 'current', policyRecord('first'));
  g.hub.setOnline(false); // the first write reached the store; the second will not
  const second = a.put('policy', 'current', policyRecord('second'));
  t.true((await first) > 0);
  t.is(await second, 0);
  g.hub.setOnline(true);
  await eventually('second stored and seen by b', () => a.stats().pending === 0 && b.get('policy', 'current')?.record.version === 'second');
  t.is(a.stats().conflicts, 0);
  t.is(a.get('policy', 'current')?.revision, g.hub.bucket(g.trustDomain).values.get(kvKey('policy', 'current'))?.revision);
});
