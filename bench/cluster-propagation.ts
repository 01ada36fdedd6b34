/**
 * Cluster propagation: 3 control-plane nodes, each on its own server of a 3-server NATS JetStream
 * cluster (loopback),
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
import { fmtMs, pct, until as untilEvery, wait } from './_timing.ts';

const CHANGES = Number(process.argv[2] ?? 300);
const cleanups: Array<() => Promise<void> | void> = [];
const fmt = fmtMs;
const until = (cond: () => boolean, timeoutMs: number): Promise<void> => untilEvery(cond, timeoutMs, 2);


/** Bare NATS rounds on the same servers: core publish (and optionally a KV put first) reaching the two other servers. */
async function baselineRounds(urls: string[]): Promise<{ round(withKv: boolean): Promise<number>; close(): Promise<void> }> {
  const pubs = await Promise.all(urls.map((u) => connect({ servers: u })));
  const subject = 'bench.baseline';
  let pending: { left: number; done: () => void } | undefined;
  for (const nc of pubs.slice(1))
    nc.subscribe(subject, {
      callback: () => {
        if (pending && --pending.left === 0) pending.done();
      },
    });
  await Promise.all(pubs.map((nc) => nc.flush()));
  const kv = await pubs[0]!.jetstream().views.kv('bench_baseline', { history: 1, replicas: 3 });
  const payload = new Uint8Array(300);
  return {
    async round(withKv: boolean): Promise<number> {
      const t0 = performance.now();
      const got = new Promise<void>((r) => (pending = { left: 2, done: r }));
      if (withKv) await kv.put('k', payload);
      pubs[0]!.publish(subject, payload);
      await got;
      return performance.now() - t0;
    },
    close: () => Promise.all(pubs.map((nc) => nc.close())).then(() => undefined),
  };
}

const debugLogger = {
  debug: () => undefined,
  info: (o: object, m: string) => console.log(performance.now().toFixed(0), m, JSON.stringify(o)),
  warn: (o: object, m: string) => console.log(performance.now().toFixed(0), m, JSON.stringify(o)),
  error: (o: object, m: string) => console.log(performance.now().toFixed(0), m, JSON.stringify(o)),
};

async function main(): Promise<void> {
  const servers = await startNatsCluster({ teardown: (fn) => cleanups.push(fn) }, 3);
  const urls = servers.map((s) => s.url);
  const base = await baselineRounds(urls);

  const opts = (name: string, i: number): NatsBusOptions => ({
    servers: [...urls.slice(i), ...urls.slice(0, i)],
    trustDomain: 'bench.example.org',
    nodeName: name,
    replicas: 3,
    preferListedOrder: true,
    requestTimeoutMs: 2_000,
    retryMs: 200,
    reconcileIntervalMs: 5_000,
    startTimeoutMs: 15_000,
    ...(process.env.BENCH_DEBUG && i === 0 ? { logger: debugLogger } : {}),
  });
  const nodes = ['n1', 'n2', 'n3'].map((n, i) => new NatsBus(opts(n, i)));
  cleanups.unshift(() => Promise.all(nodes.map((b) => b.close())).then(() => undefined));
  await Promise.all(nodes.map((b) => b.start()));

  // (1) propagation: put on one node -> applied on all three, interleaved with the two baselines
  // so that load from other processes hits all three series alike.
  let expect: { version: string; left: number; done: () => void } | undefined;
  for (const b of nodes)
    b.watch('policy', (ch) => {
      if (expect && ch.entry?.record.version === expect.version && --expect.left === 0) expect.done();
    });
  const busRound = async (i: number): Promise<number> => {
    const version = `v${i}`;
    const got = new Promise<void>((r) => (expect = { version, left: 3, done: r }));
    const t0 = performance.now();
    await nodes[i % 3]!.put('policy', 'current', policyRecord(version));
    await got;
    return performance.now() - t0;
  };
  const lat: number[] = [];
  const core: number[] = [];
  const kvPut: number[] = [];
  for (let i = 0; i < CHANGES + 20; i++) {
    const c = await base.round(false);
    const k = await base.round(true);
    const b = await busRound(i);
    if (i < 20) continue; // warm-up
    core.push(c);
    kvPut.push(k);
    lat.push(b);
  }
  await base.close();
  const baseSeries = { core, kvPut };

  // (2) full outage: every server down, each node writes, servers back, time to converge.
  await Promise.all(servers.map((s) => s.kill()));
  await until(() => nodes.every((b) => !b.connected), 10_000);
  await Promise.all(nodes.map((b, i) => b.put('keys', `${b.nodeName}/outage`, keyRecord(b.nodeName, 'outage', { keySeq: i + 1 }))));
  const tRestart = performance.now();
  await Promise.all(servers.map((s) => s.start({ waitReady: false })));
  await Promise.all(servers.map((s) => s.waitReady('healthy', 30_000)));
  const tHealthy = performance.now();
  if (process.env.BENCH_DEBUG) console.log(tRestart.toFixed(0), 'restart;', tHealthy.toFixed(0), 'healthy');
  await until(() => nodes.every((b) => b.connected && b.stats().pending === 0 && b.list('keys').length === 3), 60_000);
  const tConverged = performance.now();

  const p50 = pct(lat, 50);
  const p99 = pct(lat, 99);
  const coreP50 = pct(baseSeries.core, 50);
  const kvP50 = pct(baseSeries.kvPut, 50);
  console.log(`changes measured: ${lat.length} (3 nodes, 3 NATS servers, KV replicas 3, loopback)`);
  console.log(`baseline core publish -> 2 subscribers on other servers: p50 ${fmt(coreP50)}, p99 ${fmt(pct(baseSeries.core, 99))}`);
  console.log(`baseline KV put (R3) + core publish -> 2 subscribers:      p50 ${fmt(kvP50)}, p99 ${fmt(pct(baseSeries.kvPut, 99))}`);
  console.log(`bus put -> applied on all 3 nodes:                          p50 ${fmt(p50)}, p99 ${fmt(p99)}, max ${fmt(Math.max(...lat))}`);
  console.log(`ratio bus / KV-put baseline: p50 ${(p50 / kvP50).toFixed(2)}, p99 ${(p99 / pct(baseSeries.kvPut, 99)).toFixed(2)}; bus p50 / core baseline p50: ${(p50 / coreP50).toFixed(2)}`);
  console.log(`full outage: servers healthy ${fmt(tHealthy - tRestart)} after restart; all nodes converged ${fmt(tConverged - tHealthy)} after that (${fmt(tConverged - tRestart)} from restart)`);
  console.log(`goal p99 < 100 ms: ${p99 < 100 ? 'met' : 'NOT met'}`);
}

try {
  await main();
} finally {
  for (const fn of cleanups) await fn();
}
