/**
 * Mesh propagation: 3 real control-plane nodes (startNode), each pinned to its own server of a
 * 3-server NATS JetStream cluster on loopback (bucket R3).
 *
 *   node --import=tsx bench/mesh-propagation.ts [rounds=40]
 *
 * Measures, from a change on node 1 to it being applied on nodes 2 and 3 (p50/p99):
 *   - baseline: a bare bus record (`put` on node 1's bus, seen by the other two buses);
 *   - a policy accepted on node 1, loaded by the others' PolicyStore;
 *   - a WIT key prepared on node 1, journaled and in the trust bundle of the others;
 * and the time to converge after a full NATS outage during which node 1 changed the policy and
 * prepared a key.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseConfig } from '../src/config/config.ts';
import { silentLogger } from '../src/log.ts';
import { startNode, type RunningNode } from '../src/node.ts';
import { startNatsCluster } from '../test/helpers/nats-server.ts';
import { fmtMs, pct, until as untilEvery, wait } from './_timing.ts';

const ROUNDS = Number(process.argv[2] ?? 40);
const cleanups: Array<() => Promise<void> | void> = [];
const fmt = fmtMs;
const until = (cond: () => boolean, timeoutMs: number): Promise<void> => untilEvery(cond, timeoutMs, 1);


const policy = (n: number) => `version: 1
destinations:
  - workload: wimse://example.org/svc/b
    rules:
      - name: r${n}
        paths: [{prefix: /p${n}/}]
        methods: [GET]
        callers: [wimse://example.org/svc/a]
        authn: [wpt]
`;

async function startMeshNode(name: string, server: string): Promise<RunningNode> {
  const dir = mkdtempSync(join(tmpdir(), `wimse-bench-${name}-`));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const yaml = `nodeName: ${name}
grpc:
  listen: 127.0.0.1:0
admin:
  listen: ''
cluster:
  servers: [${server}]
  replicas: 3
  activationTimeout: 30s
  reconcileInterval: 2s
`;
  const cfg = parseConfig(yaml, dir);
  if (!cfg.ok) throw new Error(cfg.errors.join('; '));
  const node = await startNode(cfg.value, {
    logger: silentLogger(),
    cluster: { heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 5000, retryMs: 200, nats: { reconnectWaitMs: 100, pingIntervalMs: 500, startTimeoutMs: 2000 } },
  });
  cleanups.push(() => node.close());
  return node;
}

function report(label: string, xs: number[], base?: number): void {
  const p50 = pct(xs, 50);
  const ratio = base ? `  (${(p50 / base).toFixed(1)}x the bare bus p50)` : '';
  console.log(`${label.padEnd(34)} p50 ${fmt(p50).padStart(10)}  p99 ${fmt(pct(xs, 99)).padStart(10)}${ratio}`);
}

async function main(): Promise<void> {
  const teardown = { teardown: (fn: () => Promise<void> | void) => void cleanups.push(fn) };
  const nats = await startNatsCluster(teardown, 3);
  const nodes: RunningNode[] = [];
  for (let i = 0; i < 3; i++) nodes.push(await startMeshNode(`cp-${i + 1}`, nats[i]!.url));
  const [n1, ...peers] = nodes as [RunningNode, RunningNode, RunningNode];
  await until(() => peers.every((p) => n1.ca.keys().filter((k) => !k.origin).every((k) => p.ca.keys().some((x) => x.kid === k.kid))), 20_000);

  // Baseline: a bare record through the same buses.
  const bus: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const id = `bench${i}`;
    const t0 = performance.now();
    await n1.cluster.bus.put('revocations', id, { tokenId: id, revokedAt: 1, expiresAt: 2 });
    await until(() => peers.every((p) => p.cluster.bus.get('revocations', id) !== undefined), 5000);
    bus.push(performance.now() - t0);
  }
  const base = pct(bus, 50);

  const pol: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now();
    const r = n1.policy.load(policy(i), 'bench');
    if (!r.ok) throw new Error('policy refused');
    await until(() => peers.every((p) => p.policy.digest === r.digest), 5000);
    pol.push(performance.now() - t0);
  }

  const keys: number[] = [];
  for (let i = 0; i < Math.max(5, Math.floor(ROUNDS / 3)); i++) {
    const t0 = performance.now();
    const { kid } = await n1.ca.prepare('wit');
    await until(() => peers.every((p) => p.ca.keys().some((k) => k.kid === kid)), 5000);
    keys.push(performance.now() - t0);
  }

  // A full outage: node 1 changes policy and prepares a key meanwhile.
  await Promise.all(nats.map((s) => s.kill()));
  await until(() => nodes.every((n) => !n.cluster.bus.connected), 10_000);
  const r = n1.policy.load(policy(9999), 'bench');
  const { kid } = await n1.ca.prepare('x509');
  const t0 = performance.now();
  await Promise.all(nats.map((s) => s.start({ waitReady: false })));
  await until(() => peers.every((p) => r.ok && p.policy.digest === r.digest && p.ca.keys().some((k) => k.kid === kid)), 30_000);
  const converge = performance.now() - t0;

  console.log(`mesh propagation, 3 nodes on 3 NATS servers (R3), ${ROUNDS} rounds, change on node 1 applied on nodes 2 and 3`);
  report('bare bus record (baseline)', bus);
  report('policy accepted -> loaded', pol, base);
  report('WIT key prepared -> in bundle', keys, base);
  console.log(`after a full NATS outage: every node converged ${fmt(converge)} after the 3 servers were restarted (includes JetStream recovery)`);
  console.log(`command: node --import=tsx bench/mesh-propagation.ts ${ROUNDS}`);
}

try {
  await main();
} finally {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
}
