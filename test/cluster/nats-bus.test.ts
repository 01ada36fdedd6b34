import test from 'ava';
import { connect, type NatsConnection } from 'nats';
import { NatsBus, bucketName, type Bus, type BusOptions, type NatsBusOptions } from '../../src/cluster/index.ts';
import { startNatsServer, type NatsServer } from '../helpers/nats-server.ts';
import { runBusContract, type Group } from './contract.ts';
import { eventually, keyRecord, policyRecord, settled } from './fixtures.ts';

const cleanups: Array<() => Promise<void> | void> = [];
let server: NatsServer;
let raw: NatsConnection;
let groups = 0;

test.before(async () => {
  server = await startNatsServer({ teardown: (fn) => cleanups.push(fn) });
  raw = await connect({ servers: server.url });
});

test.after.always(async () => {
  await raw?.close();
  for (const fn of cleanups.reverse()) await fn();
});

export function natsGroup(
  t: { teardown(fn: () => Promise<void>): void },
  servers: () => string[],
  extra: Partial<NatsBusOptions> = {},
): Group & { nodeOpts(name: string, opts?: Partial<NatsBusOptions>): NatsBusOptions } {
  const trustDomain = `g${++groups}-${process.pid}.example.org`;
  const nodeOpts = (name: string, opts: Partial<NatsBusOptions> = {}): NatsBusOptions => ({
    servers: servers(),
    trustDomain,
    nodeName: name,
    requestTimeoutMs: 2_000,
    retryMs: 100,
    startTimeoutMs: 10_000,
    ...extra,
    ...opts,
  });
  const kv = () => raw.jetstream().views.kv(bucketName(trustDomain), { bindOnly: true });
  return {
    trustDomain,
    nodeOpts,
    async node(name: string, opts: Partial<BusOptions> = {}): Promise<Bus> {
      const bus = new NatsBus(nodeOpts(name, opts));
      t.teardown(() => bus.close());
      await bus.start();
      return bus;
    },
    async inject(subject, bytes) {
      raw.publish(subject, bytes);
      await raw.flush();
    },
    async storeRaw(key, bytes) {
      return (await kv()).put(key, bytes);
    },
    async eraseRaw(key) {
      await (await kv()).purge(key);
    },
    async rawEntry(key) {
      const e = await (await kv()).get(key);
      return e === null ? undefined : e.operation === 'PUT' ? 'value' : 'marker';
    },
  };
}

runBusContract(test, { name: 'nats', group: async (t) => natsGroup(t, () => [server.url]) });

test('cluster nats - three nodes: a change on node 1 reaches nodes 2 and 3, with a dropped fast-path message repaired by reconcile', async (t) => {
  const g = natsGroup(t, () => [server.url]);
  let drop = false;
  const n1 = new NatsBus({ ...g.nodeOpts('n1', { reconcileIntervalMs: 0 }), testHooks: { dropAnnounce: () => drop } });
  t.teardown(() => n1.close());
  await n1.start();
  const [n2, n3] = await Promise.all([g.node('n2', { reconcileIntervalMs: 300, gapGraceMs: 60_000 }), g.node('n3', { reconcileIntervalMs: 300, gapGraceMs: 60_000 })]);
  await n1.put('keys', 'n1/k1', keyRecord('n1', 'k1'));
  await eventually('n2 and n3 have n1/k1', () => n2.get('keys', 'n1/k1') !== undefined && n3.get('keys', 'n1/k1') !== undefined);
  drop = true;
  const rev = await n1.put('keys', 'n1/k1', keyRecord('n1', 'k1', { state: 'active', keySeq: 2 }));
  t.true(rev > 0);
  await eventually('periodic reconcile repairs the dropped message', () =>
    [n2, n3].every((n) => n.get('keys', 'n1/k1')?.record.state === 'active' && n.get('keys', 'n1/k1')?.revision === rev),
  );
  t.true(n2.stats().repaired >= 1);
});

test('cluster nats - a bus pointed at a server that is down starts disconnected and catches up once it is up', async (t) => {
  const { startNatsServer: start } = await import('../helpers/nats-server.ts');
  const own = await start(t, 'late');
  await own.kill();
  const g = natsGroup(t, () => [own.url]);
  const a = new NatsBus(g.nodeOpts('a', { startTimeoutMs: 200 }));
  t.teardown(() => a.close());
  await a.start();
  t.false(a.connected);
  t.is(await a.put('policy', 'current', policyRecord('offline')), 0);
  await own.start();
  await eventually('a connected and flushed', () => a.connected && a.stats().pending === 0);
  const b = await g.node('b');
  t.is(b.get('policy', 'current')?.record.version, 'offline');
});

test('cluster nats - activation gating over NATS: resolves once every live node reports the key', async (t) => {
  const { NodeHeartbeat, Presence } = await import('../../src/cluster/index.ts');
  const { ManualClock } = await import('../../src/identity/index.ts');
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const g = natsGroup(t, () => [server.url]);
  const buses = await Promise.all(['a', 'b', 'c'].map((name) => g.node(name)));
  const trusted: Record<string, string[]> = { a: ['k1'], b: ['k1'], c: ['k1'] };
  const beats = buses.map((bus) => new NodeHeartbeat(bus, { clock, intervalMs: 60_000, trustedKids: () => trusted[bus.nodeName]! }));
  for (const h of beats) t.teardown(async () => h.stop());
  await Promise.all(beats.map((h) => h.start()));
  const presence = new Presence(buses[0]!, { clock, heartbeatTimeoutMs: 15_000, recheckMs: 50 });
  await eventually('a sees 3 live nodes', () => presence.liveNodes().length === 3);
  // A wait that only its own timeout could end would still be waiting after the safety net.
  const waiting = presence.waitUntilTrustedEverywhere('k2', { timeoutMs: 60_000 });
  for (const name of ['c', 'b', 'a']) {
    t.false(presence.allNodesTrust('k2'));
    trusted[name]!.push('k2');
    await beats[['a', 'b', 'c'].indexOf(name)]!.beat();
  }
  t.is(await settled(waiting), true);
  t.deepEqual(presence.report('k2').missing, []);
});

test('cluster nats - createBus picks NATS when the configuration has a cluster section, the in-process bus otherwise', async (t) => {
  const { createBus, MemoryBus: Mem } = await import('../../src/cluster/index.ts');
  const td = `create-${process.pid}.example.org`;
  const single = createBus({ trustDomain: td, nodeName: 'solo' });
  t.true(single instanceof Mem);
  const a = createBus({ trustDomain: td, nodeName: 'a', cluster: { servers: [server.url], reconcileInterval: 30_000 } });
  const b = createBus({ trustDomain: td, nodeName: 'b', cluster: { servers: [server.url] } });
  t.true(a instanceof NatsBus);
  for (const x of [single, a, b]) t.teardown(() => x.close());
  await Promise.all([single.start(), a.start(), b.start()]);
  await a.put('policy', 'current', policyRecord('via-config'));
  await eventually('b sees it', () => b.get('policy', 'current')?.record.version === 'via-config');
  t.is(single.get('policy', 'current'), undefined);
});
