/**
 * Convergence under random faults on the in-process bus: three nodes write shared and own values
 * while announcements are dropped at random and the bus goes away and comes back. After the
 * faults stop and each node reconciles, every node holds exactly what the store holds.
 */
import test from 'ava';
import { MemoryBus, MemoryHub, kvKey, type Bus } from '../../src/cluster/index.ts';
import { keyRecord, policyRecord, sleep } from './fixtures.ts';

/** A small seeded PRNG (mulberry32) so a failing seed can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const snapshot = (b: Bus) =>
  JSON.stringify((['policy', 'keys'] as const).flatMap((k) => b.list(k).map((e) => [e.kind, e.key, e.origin, e.seq, e.revision])));

for (const seed of [1, 2, 3, 4, 5]) {
  test(`cluster convergence - random drops and outages, seed ${seed}: all nodes end equal to the store`, async (t) => {
    t.timeout(60_000);
    const rnd = prng(seed);
    const hub = new MemoryHub();
    let drops = 0;
    let outages = 0;
    hub.dropAnnounce = () => rnd() < 0.3 && ++drops > 0;
    const nodes = ['a', 'b', 'c'].map((n) => new MemoryBus({ hub, trustDomain: 'chaos.example.org', nodeName: n, retryMs: 5, gapGraceMs: 20, reconcileIntervalMs: 0 }));
    t.teardown(() => Promise.all(nodes.map((n) => n.close())).then(() => undefined));
    await Promise.all(nodes.map((n) => n.start()));
    for (let step = 0; step < 120; step++) {
      const node = nodes[Math.floor(rnd() * 3)]!;
      const r = rnd();
      if (r < 0.05) {
        if (hub.online) outages += 1;
        hub.setOnline(!hub.online);
      }
      else if (r < 0.5) await node.put('policy', `p${Math.floor(rnd() * 4)}`, policyRecord(`s${seed}-${step}`));
      else if (r < 0.9) {
        const kid = `k${Math.floor(rnd() * 3)}`;
        await node.put('keys', `${node.nodeName}/${kid}`, keyRecord(node.nodeName, kid, { keySeq: step }));
      }
      else if (node.list('policy').length) await node.delete('policy', node.list('policy')[0]!.key);
      if (rnd() < 0.3) await sleep(1);
    }
    hub.dropAnnounce = undefined;
    hub.setOnline(true);
    await sleep(50);
    // Two rounds: the first writes back pending values, the second picks up the others'.
    for (let round = 0; round < 2; round++) for (const n of nodes) await n.reconcile();
    await sleep(20);
    const views = nodes.map(snapshot);
    // The run did meet faults, and the nodes did repair them.
    t.true(drops > 0 && outages > 0, `drops ${drops}, outages ${outages}`);
    t.true(nodes.reduce((n, b) => n + b.stats().repaired, 0) > 0);
    t.is(views[1], views[0]);
    t.is(views[2], views[0]);
    t.true(nodes.every((n) => n.stats().pending === 0));
    // And the common view is the store's.
    const store = hub.bucket('chaos.example.org').values;
    for (const e of [...nodes[0]!.list('policy'), ...nodes[0]!.list('keys')])
      t.is(store.get(kvKey(e.kind, e.key))?.revision, e.revision);
  });
}
