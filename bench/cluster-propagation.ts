/**
 * Cluster propagation: 3 control-plane nodes on a 3-server NATS JetStream cluster (loopback),
 * bucket with 3 replicas.
 *
 *   node --import=tsx bench/cluster-propagation.ts [changes=300]
 *
 * Measures (1) the latency from `put` on one node to the change being applied on all three
 * (p50/p99 over a bounded number of sequential changes, origins rotating), against two baselines
 * measured in the same run on the same servers: a bare core NATS publish reaching subscribers on
 * the other servers, and a bare JetStream KV put (R3) followed by that publish; (2) the time to
 * converge after a full NATS outage during which every node wrote a change.
 */
import { performance } from 'node:perf_hooks';
import { connect } from 'nats';
import { NatsBus, type NatsBusOptions } from '../src/cluster/index.ts';
import { startNatsCluster } from '../test/helpers/nats-server.ts';
import { keyRecord, policyRecord } from '../test/cluster/fixtures.ts';

const CHANGES = Number(process.argv[2] ?? 300);
const cleanups: Array<() => Promise<void> | void> = [];
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const fmt = (ms: number): string => `${ms.toFixed(2)} ms`;
const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error('timed out');
    await wait(2);
  }
}

async function baselines(urls: string[]): Promise<{ core: number[]; kvPut: number[] }> {
  const pubs = await Promise.all(urls.map((u) => connect({ servers: u })));
  const subject = 'bench.baseline';
  const core: number[] = [];
  const kvPut: number[] = [];
  let pending: { left: number; done: () => void } | undefined;
  for (const nc of pubs.slice(1))
    nc.subscribe(subject, {
      callback: () => {
        if (pending && --pending.left === 0) pending.done();
      },
    });
  await Promise.all(pubs.map((nc) => nc.flush()));
  const kv = await pubs[0]!.jetstream().views.kv('bench_baseline', { history: 1, replicas: 3 });
  const round = async (withKv: boolean): Promise<number> => {
    const t0 = performance.now();
    const got = new Promise<void>((r) => (pending = { left: 2, done: r }));
    if (withKv) await kv.put('k', new Uint8Array(200));
    pubs[0]!.publish(subject, new Uint8Array(200));
    await got;
    return performance.now() - t0;
  };
  for (let i = 0; i < 20; i++) await round(i % 2 === 0); // warm-up
  for (let i = 0; i < CHANGES; i++) core.push(await round(false));
  for (let i = 0; i < CHANGES; i++) kvPut.push(await round(true));
  await Promise.all(pubs.map((nc) => nc.close()));
  return { core, kvPut };
}

async function main(): Promise<void> {
  const servers = await startNatsCluster({ teardown: (fn) => cleanups.push(fn) }, 3);
  const urls = servers.map((s) => s.url);
  const base = await baselines(urls);

  const opts = (name: string, i: number): NatsBusOptions => ({
    servers: [...urls.slice(i), ...urls.slice(0, i)],
    trustDomain: 'bench.example.org',
    nodeName: name,
    replicas: 3,
    requestTimeoutMs: 2_000,
    retryMs: 200,
    reconcileIntervalMs: 5_000,
    startTimeoutMs: 15_000,
  });
  const nodes = ['n1', 'n2', 'n3'].map((n, i) => new NatsBus(opts(n, i)));
  cleanups.unshift(() => Promise.all(nodes.map((b) => b.close())).then(() => undefined));
  await Promise.all(nodes.map((b) => b.start()));

  // (1) propagation: put on one node -> applied on all three.
  const applied = new Map<string, number>();
  let expect: { version: string; left: number; done: () => void } | undefined;
  for (const b of nodes)
    b.watch('policy', (ch) => {
      if (expect && ch.entry?.record.version === expect.version && --expect.left === 0) expect.done();
    });
  const lat: number[] = [];
  for (let i = 0; i < CHANGES + 20; i++) {
    const origin = nodes[i % 3]!;
    const version = `v${i}`;
    const got = new Promise<void>((r) => (expect = { version, left: 3, done: r }));
    const t0 = performance.now();
    await origin.put('policy', 'current', policyRecord(version));
    await got;
    if (i >= 20) lat.push(performance.now() - t0);
    applied.set(version, performance.now() - t0);
  }

  // (2) full outage: every server down, each node writes, servers back, time to converge.
  await Promise.all(servers.map((s) => s.kill()));
  await until(() => nodes.every((b) => !b.connected), 10_000);
  await Promise.all(nodes.map((b, i) => b.put('keys', `${b.nodeName}/outage`, keyRecord(b.nodeName, 'outage', { keySeq: i + 1 }))));
  const tRestart = performance.now();
  await Promise.all(servers.map((s) => s.start({ waitReady: false })));
  await Promise.all(servers.map((s) => s.waitReady('healthy', 30_000)));
  const tHealthy = performance.now();
  await until(() => nodes.every((b) => b.connected && b.stats().pending === 0 && b.list('keys').length === 3), 60_000);
  const tConverged = performance.now();

  const p50 = pct(lat, 50);
  const p99 = pct(lat, 99);
  const coreP50 = pct(base.core, 50);
  const kvP50 = pct(base.kvPut, 50);
  console.log(`changes measured: ${lat.length} (3 nodes, 3 NATS servers, KV replicas 3, loopback)`);
  console.log(`baseline core publish -> 2 subscribers on other servers: p50 ${fmt(coreP50)}, p99 ${fmt(pct(base.core, 99))}`);
  console.log(`baseline KV put (R3) + core publish -> 2 subscribers:      p50 ${fmt(kvP50)}, p99 ${fmt(pct(base.kvPut, 99))}`);
  console.log(`bus put -> applied on all 3 nodes:                          p50 ${fmt(p50)}, p99 ${fmt(p99)}, max ${fmt(Math.max(...lat))}`);
  console.log(`ratio bus p50 / KV-put baseline p50: ${(p50 / kvP50).toFixed(2)}; bus p50 / core baseline p50: ${(p50 / coreP50).toFixed(2)}`);
  console.log(`full outage: servers healthy ${fmt(tHealthy - tRestart)} after restart; all nodes converged ${fmt(tConverged - tHealthy)} after that (${fmt(tConverged - tRestart)} from restart)`);
  console.log(`goal p99 < 100 ms: ${p99 < 100 ? 'met' : 'NOT met'}`);
}

try {
  await main();
} finally {
  for (const fn of cleanups) await fn();
}
