/**
 * ext_authz `Check` over real gRPC on loopback against a real node in its own process.
 *
 *   node --import=tsx bench/extauthz-check.ts            (about 3 minutes; 4 with BENCH_FLOORS=all)
 *
 * Three kinds of request, each a realistic Envoy CheckRequest (test/helpers/envoy-pep.ts):
 * - mTLS only: `source.principal` + URL-encoded PEM leaf, which the node verifies once (chain to
 *   the trust bundle, one ECDSA verification) and then serves from its verified-chain cache
 *   (src/authn/mtls-cache.ts), as for a workload that keeps its certificate;
 * - WIT + WPT: a fresh WPT per request (the WIT is reused, as in production, so the node's
 *   verified-WIT cache holds it): one ECDSA verification;
 * - WIT + HTTP signature: a fresh signature per request over a POST with a JSON body and its
 *   Content-Digest: one ECDSA verification plus SHA-256.
 * Proofs are made before each timed phase, so signing is not charged to the server.
 *
 * Phases: a warm-up until the node's first full collection is behind it; per kind, a 3 s warm-up
 * at 1,000/s and open loops at 250 and 500/s for 3 s and at 1,000/s for 20 s (latency from the
 * moment each request is written, the sender's lateness against its schedule reported apart);
 * then, per kind, the ceiling in a closed loop with N requests in flight, and one in flight.
 * Next to them, in the same run: the raw `crypto.verify` rate (ES256, one core), the node's own
 * handler time (its `wimse_authz_check_duration_seconds` histogram), a CPU profile of the node
 * during a closed loop, per phase the CPU time per check of both processes and their stalls
 * (event-loop delay, GC pauses); and the floors (bench/_extauthz-floor.ts): the same gRPC server
 * answering a constant allow, with and without the one ES256 verification a WPT or signature
 * needs, driven the same way at 1,000/s, which no handler on this machine can beat.
 *
 *   BENCH_CLIENT=frames|grpc-js  another load generator (default: C for open loops, bench/loadgen/h2grpc.c)
 *   BENCH_FLOORS=all             also the floors on bare node:http2
 */
import { fork } from 'node:child_process';
import { generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { PublicJwk } from '../src/identity/jwk.ts';
import * as grpc from '@grpc/grpc-js';
import { envoyProtos } from '../src/envoy/protos.ts';
import { checkRequestFor as buildCheckRequest, type Kind, type Workload } from './_extauthz-requests.ts';
import { stallMonitor, type Stalls } from './_extauthz-stalls.ts';
import { H2GrpcClient } from './_h2-frames.ts';
import { buildCLoadgen, runCLoadgen } from './_c-loadgen.ts';
import { pct } from './_timing.ts';

const WORKLOADS = 32;
const RATES = [250, 500, 1000];
const PHASE_MS = 3000;
/** The goal's load (1,000 checks/s) runs this long: p99 over a few seconds hangs on one GC. */
const STEADY_MS = 20_000;
const WARMUP = 3000;
const CEILING_MS = 3000;
const CONCURRENCY = 32;
const PROFILE_MS = 2000;


// ---- the node process ----------------------------------------------------------------------

interface Child {
  address: string;
  /** A node token of the node under test (its first message); the floors have none and check none. */
  proxyToken?: string;
  rpc<T>(op: string, args?: object): Promise<T>;
  kill(): void;
}

/** Fork a bench server process; it answers `{ id, op }` messages and first sends `{ ready: address }`. */
async function spawn(file: string, args: string[] = []): Promise<Child> {
  const child = fork(new URL(file, import.meta.url), args, { execArgv: ['--import=tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  process.on('exit', () => child.kill());
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  let proxyToken: string | undefined;
  const address = await new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.on('message', (m: any) => {
      if (m.ready) {
        proxyToken = m.proxyToken;
        return resolve(m.ready);
      }
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.error) p.reject(new Error(m.error));
      else p.resolve(m.body);
    });
  });
  const rpc = <T>(op: string, args: object = {}): Promise<T> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ id, op, ...args });
    });
  return { address, ...(proxyToken ? { proxyToken } : {}), rpc, kill: () => child.kill() };
}

const node = await spawn('./_extauthz-node.ts');
const rpc = node.rpc;
// Every Check carries the callee sidecar's node token (grpc_service.initial_metadata), as
// envoy/sidecar-callee.yaml sends it; the floors receive it too and ignore it.
const AUTHORIZATION = `Bearer ${node.proxyToken}`;

// ---- credentials and requests ----------------------------------------------------------------


const workloads: Workload[] = [];
for (let i = 0; i < WORKLOADS; i++) {
  const sub = `spiffe://example.org/ns/bench/sa/w${i}`;
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(publicKey.export({ format: 'jwk' }) as PublicJwk), alg: 'ES256' };
  const [wit, certPem] = await Promise.all([rpc<string>('mint', { sub, jwk }), rpc<string>('wic', { sub })]);
  workloads.push({ sub, privateKey, wit, certPem });
}


// Requests are encoded before the timed phase too: protobuf encoding is Envoy's cost, not ours.
const CheckRequest = envoyProtos().root.lookupType('envoy.service.auth.v3.CheckRequest');
const CheckResponse = envoyProtos().root.lookupType('envoy.service.auth.v3.CheckResponse');
const encode = (o: Record<string, unknown>): Buffer => Buffer.from(CheckRequest.encode(CheckRequest.fromObject(o)).finish());

function makeRequest(kind: Kind, i: number): Buffer {
  return encode(checkRequestFor(kind, i));
}

const checkRequestFor = (kind: Kind, i: number): Record<string, unknown> => buildCheckRequest(workloads, kind, i, 120);

const generate = (kind: Kind, n: number, offset: number) => Array.from({ length: n }, (_, i) => makeRequest(kind, offset + i));

// ---- load ------------------------------------------------------------------------------------

interface Result {
  sent: number;
  ok: number;
  failed: number;
  seconds: number;
  lat: number[];
  /** How late each request left against its schedule (open loop) (ms). */
  lag: number[];
  /** Latency counted from the schedule instead (ms): lag + latency. */
  fromDue: number[];
  /** CPU time of a load generator in another process (µs), when it was not this one. */
  clientCpuUs?: number;
}

// One HTTP/2 connection, as one Envoy worker thread keeps to its authorization cluster.
// The load generator stands in for Envoy's C++ gRPC client, which costs a few tens of µs per
// call and has no garbage collector. By default it writes HTTP/2 frames straight to the socket
// (bench/_h2-frames.ts); BENCH_CLIENT=grpc-js uses a grpc-js client, which costs the shared cores
// several times more per call.
const CLIENT_KIND = process.env.BENCH_CLIENT === 'grpc-js' ? 'grpc-js' : process.env.BENCH_CLIENT === 'frames' ? 'frames' : 'c';
// The C generator runs the open loops; closed loops (and machines without a compiler) use frames.
const cLoadgen = CLIENT_KIND === 'c' ? buildCLoadgen() : undefined;
const CHECK = '/envoy.service.auth.v3.Authorization/Check';
const identity = (b: Buffer): Buffer => b;

type Call = (req: Buffer, timeoutMs: number) => Promise<Buffer>;

/** A connection to `address` of the chosen kind, and how to close it. */
async function connectClient(address: string): Promise<{ call: Call; close(): void }> {
  if (CLIENT_KIND === 'frames' || CLIENT_KIND === 'c') {
    const frames = new H2GrpcClient(address, { headers: [['authorization', AUTHORIZATION]] });
    await frames.ready;
    return { call: (req, timeoutMs) => frames.unary(CHECK, req, timeoutMs), close: () => frames.close() };
  }
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('authorization', AUTHORIZATION);
  const call: Call = (req, timeoutMs) =>
    new Promise((resolve, reject) =>
      client.makeUnaryRequest(CHECK, identity, identity, req, md, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res!))),
    );
  return { call, close: () => client.close() };
}

const nodeClient = await connectClient(node.address);
const rawCheck = nodeClient.call;

/** OK iff `status.code` is 0 (the response is decoded after the latency is taken). */
const isOk = (res: Buffer): boolean => ((CheckResponse.decode(res) as any).status?.code ?? 0) === 0;
if (!isOk(await rawCheck(makeRequest('mtls', 0), 5000))) throw new Error('the first check was denied: bench setup is wrong');

/**
 * One call. Latency runs from the moment the request is written (when Envoy would send it) to
 * the response; the sender's own lateness against the schedule is kept apart (`lag`), so the
 * load generator's timer granularity is not charged to the node, and is reported next to it.
 */
async function one(call: Call, req: Buffer, due: number, r: Result): Promise<void> {
  const sent = performance.now();
  r.lag.push(sent - due);
  let ok = false;
  try {
    ok = isOk(await call(req, 2000));
  } catch {
    ok = false;
  }
  const done = performance.now();
  r.lat.push(done - sent);
  r.fromDue.push(done - due);
  if (ok) r.ok++;
  else r.failed++;
}

/** Open loop: request i is due at start + i/rate; latency counts from when it was due. */
/**
 * Open loop: request i is due at start + i/rate. With the C generator (the default where a C
 * compiler exists) the whole phase runs in it; otherwise in this process through `call`.
 */
async function openLoop(reqs: Buffer[], rate: number, target: { address: string; call: Call } = { address: node.address, call: rawCheck }): Promise<Result> {
  if (cLoadgen) {
    const c = await runCLoadgen(cLoadgen, target.address, CHECK, rate, reqs, 2000, AUTHORIZATION);
    return { sent: reqs.length, ok: c.ok, failed: c.failed, seconds: c.seconds, lat: c.lat, lag: c.lag, fromDue: c.fromDue, clientCpuUs: c.cpuUs };
  }
  const call = target.call;
  const r: Result = { sent: 0, ok: 0, failed: 0, seconds: 0, lat: [], lag: [], fromDue: [] };
  const interval = 1000 / rate;
  const start = performance.now() + 2;
  const inflight: Promise<void>[] = [];
  await new Promise<void>((done) => {
    const tick = () => {
      const now = performance.now();
      while (r.sent < reqs.length && start + r.sent * interval <= now) {
        inflight.push(one(call, reqs[r.sent]!, start + r.sent * interval, r));
        r.sent++;
      }
      if (r.sent < reqs.length) setTimeout(tick, Math.max(0, start + r.sent * interval - performance.now() - 0.5));
      else done();
    };
    tick();
  });
  await Promise.all(inflight);
  r.seconds = (performance.now() - start) / 1000;
  return r;
}

/** Closed loop: `concurrency` requests in flight until `ms` has passed. */
async function closedLoop(reqs: Buffer[], concurrency: number, ms: number): Promise<Result> {
  const r: Result = { sent: 0, ok: 0, failed: 0, seconds: 0, lat: [], lag: [], fromDue: [] };
  const start = performance.now();
  const end = start + ms;
  const worker = async () => {
    while (performance.now() < end && r.sent < reqs.length) {
      const req = reqs[r.sent++]!;
      await one(rawCheck, req, performance.now(), r);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  r.seconds = (performance.now() - start) / 1000;
  return r;
}


interface ServerTime {
  sum: number;
  count: number;
  /** Cumulative counts per histogram bound (`le`, seconds; `+Inf` last). */
  buckets: Record<string, number>;
}

async function serverTime(): Promise<ServerTime> {
  return rpc('server-time');
}

/** The histogram bound under which 99 % of this phase's handler times fall (ms). */
function handlerP99(before: ServerTime, after: ServerTime): string {
  const n = after.count - before.count;
  const bounds = Object.keys(after.buckets).sort((a, b) => (a === '+Inf' ? 1 : b === '+Inf' ? -1 : Number(a) - Number(b)));
  for (const le of bounds) {
    const c = (after.buckets[le] ?? 0) - (before.buckets[le] ?? 0);
    if (c >= 0.99 * n) return le === '+Inf' ? '> 100' : `≤ ${(Number(le) * 1000).toString()}`;
  }
  return '?';
}

// ---- baseline: raw signature verification, same key type, this process ----------------------

function verifyRate(ms = 1000): { es256: number; x509: number } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = Buffer.from('x'.repeat(300));
  const sig = cryptoSign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const pub = publicKey;
  let n = 0;
  let t0 = performance.now();
  while (performance.now() - t0 < ms) {
    for (let i = 0; i < 50; i++) cryptoVerify('sha256', data, { key: pub, dsaEncoding: 'ieee-p1363' }, sig);
    n += 50;
  }
  const es256 = (n * 1000) / (performance.now() - t0);
  // The mTLS path: parse the leaf and verify its signature with the CA key.
  const leafPem = workloads[0]!.certPem;
  const issuer = new X509Certificate(rootPem);
  n = 0;
  t0 = performance.now();
  while (performance.now() - t0 < ms) {
    for (let i = 0; i < 20; i++) if (!new X509Certificate(leafPem).verify(issuer.publicKey)) throw new Error('WIC does not verify');
    n += 20;
  }
  return { es256, x509: (n * 1000) / (performance.now() - t0) };
}
const rootPem = await rpc<string>('roots');

// ---- run ---------------------------------------------------------------------------------------

interface Row {
  kind: Kind;
  phase: string;
  offered: string;
  throughput: number;
  p50: number;
  p99: number;
  p999: number;
  /** Share of requests slower than 2 ms (%). */
  over2Pct: number;
  /** p99 of the sender's lateness against its schedule, and of latency counted from the schedule. */
  lagP99: number;
  p99FromDue: number;
  max: number;
  failed: number;
  serverMeanUs: number;
  /** Bucket bound of the handler's p99, ms. */
  serverP99: string;
  /** The node process's CPU time (user + system) per check: independent of how busy the machine is. */
  cpuPerCheckUs: number;
  /** This process's (the load generator's, Envoy's stand-in) CPU time per check. */
  clientCpuPerCheckUs: number;
  node: Stalls;
  client: Stalls;
  load: number;
}

const clientStalls = stallMonitor();
// This process stands in for Envoy, which has no garbage collector: collect the garbage of the
// previous phase (and of generating this one's requests) before the timed phase, not during it.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;
const cpuNow = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

const rows: Row[] = [];
const profiles: Record<string, Awaited<ReturnType<typeof profile>>> = {};
let offset = 1;

async function measure(kind: Kind, phase: string, offered: string, run: () => Promise<Result>): Promise<Row> {
  const before = await serverTime();
  collectGarbage();
  // Let the GC entry and the late loop timer of that collection land before the counters reset.
  await new Promise((r) => setTimeout(r, 20));
  const cpu0 = await rpc<number>('cpu');
  await rpc('stalls-reset');
  clientStalls.reset();
  const own0 = cpuNow();
  const r = await run();
  const own1 = cpuNow();
  const client = clientStalls.read();
  const node = await rpc<Stalls>('stalls');
  const cpu1 = await rpc<number>('cpu');
  const after = await serverTime();
  const row: Row = {
    kind,
    phase,
    offered,
    throughput: r.ok / r.seconds,
    p50: pct(r.lat, 50),
    p99: pct(r.lat, 99),
    p999: pct(r.lat, 99.9),
    over2Pct: (100 * r.lat.filter((x) => x > 2).length) / Math.max(1, r.lat.length),
    lagP99: pct(r.lag, 99),
    p99FromDue: pct(r.fromDue, 99),
    max: pct(r.lat, 100),
    failed: r.failed,
    serverMeanUs: ((after.sum - before.sum) / Math.max(1, after.count - before.count)) * 1e6,
    serverP99: handlerP99(before, after),
    cpuPerCheckUs: (cpu1 - cpu0) / Math.max(1, r.ok + r.failed),
    clientCpuPerCheckUs: (r.clientCpuUs ?? own1 - own0) / Math.max(1, r.ok + r.failed),
    node,
    client,
    load: loadavg()[0]!,
  };
  rows.push(row);
  console.error(`${kind.padEnd(7)} ${phase.padEnd(7)} ${offered.padStart(8)}  ${row.throughput.toFixed(0).padStart(6)}/s  p50 ${row.p50.toFixed(2)} ms  p99 ${row.p99.toFixed(2)} ms p99.9 ${row.p999.toFixed(2)} ms over 2 ms ${row.over2Pct.toFixed(2)} % (from schedule ${row.p99FromDue.toFixed(2)}, lag p99 ${row.lagP99.toFixed(2)})  max ${row.max.toFixed(1)} ms  server ${row.serverMeanUs.toFixed(0)} µs (p99 ${row.serverP99} ms)  cpu ${row.cpuPerCheckUs.toFixed(0)} µs (client ${row.clientCpuPerCheckUs.toFixed(0)} µs)  node loop p99/max ${row.node.loopP99Ms.toFixed(1)}/${row.node.loopMaxMs.toFixed(1)} ms gc max ${row.node.gcMaxMs.toFixed(1)} ms  client loop max ${row.client.loopMaxMs.toFixed(1)} ms gc max ${row.client.gcMaxMs.toFixed(1)} ms  load ${row.load.toFixed(1)}  failed ${row.failed}`);
  return row;
}

async function profile(kind: Kind) {
  const reqs = generate(kind, 10_000, offset);
  offset += reqs.length;
  await rpc('profile-start');
  const r = await closedLoop(reqs, CONCURRENCY, PROFILE_MS);
  const summary = await rpc<{ total: number; areas: Record<string, number>; top: Array<[string, number]> }>('profile-stop');
  return { ...summary, throughput: r.ok / r.seconds };
}

const started = performance.now();
const base1 = verifyRate();
// The first full collection after start is the longest (up to 45 ms here: the start's garbage and
// the warm-up's promotions, compacted at once) and happens once in a node's life: warm up until it
// is behind us (at most 30 s), so the phases see the node's steady state.
{
  const majors0 = await rpc<number>('major-gcs');
  const until = performance.now() + 30_000;
  while ((await rpc<number>('major-gcs')) === majors0 && performance.now() < until) {
    await openLoop(generate('mtls', 2000, offset), 1000);
    offset += 2000;
  }
}
for (const kind of ['mtls', 'wpt', 'httpsig'] as const) {
  // Warm-up (JIT, caches), not reported.
  await openLoop(generate(kind, WARMUP, offset), 1000);
  offset += WARMUP;
  for (const rate of RATES) {
    const reqs = generate(kind, Math.round((rate * (rate === 1000 ? STEADY_MS : PHASE_MS)) / 1000), offset);
    offset += reqs.length;
    await measure(kind, 'open', `${rate}/s`, () => openLoop(reqs, rate));
  }
}
// Closed loops after every open loop: a saturated node promotes far more to its old generation,
// and the full collection that follows (up to about 100 ms here) belongs to saturation, not to
// the latency phases.
for (const kind of ['mtls', 'wpt', 'httpsig'] as const) {
  const reqs = generate(kind, 15_000, offset);
  offset += reqs.length;
  await measure(kind, 'closed', `N=${CONCURRENCY}`, () => closedLoop(reqs, CONCURRENCY, CEILING_MS));
  const single = generate(kind, 4_000, offset);
  offset += single.length;
  await measure(kind, 'closed', 'N=1', () => closedLoop(single, 1, 1500));
}
// The table lists each kind's phases together.
const KIND_ORDER = ['mtls', 'wpt', 'httpsig'];
rows.sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind));
for (const kind of ['mtls', 'wpt', 'httpsig'] as const) profiles[kind] = await profile(kind);

// ---- floors: the same server with a handler that does nothing (or only the one verification) --

interface Floor {
  mode: string;
  p50: number;
  p99: number;
  p999: number;
  over2Pct: number;
  cpuPerCheckUs: number;
  failed: number;
}

/** bench/_extauthz-floor.ts in `mode`, at 1,000/s for STEADY_MS with the mTLS requests. */
async function floorRun(mode: string[]): Promise<Floor> {
  const floor = await spawn('./_extauthz-floor.ts', mode);
  const c = await connectClient(floor.address);
  const target = { address: floor.address, call: c.call };
  await openLoop(generate('mtls', WARMUP, offset), 1000, target);
  offset += WARMUP;
  const reqs = generate('mtls', STEADY_MS, offset);
  offset += reqs.length;
  collectGarbage();
  await new Promise((r) => setTimeout(r, 20));
  const cpu0 = await floor.rpc<number>('cpu');
  const r = await openLoop(reqs, 1000, target);
  const cpu1 = await floor.rpc<number>('cpu');
  c.close();
  floor.kill();
  const f: Floor = {
    mode: mode.join('+'),
    p50: pct(r.lat, 50),
    p99: pct(r.lat, 99),
    p999: pct(r.lat, 99.9),
    over2Pct: (100 * r.lat.filter((x) => x > 2).length) / r.lat.length,
    cpuPerCheckUs: (cpu1 - cpu0) / r.lat.length,
    failed: r.failed,
  };
  console.error(`floor ${f.mode.padEnd(11)} 1000/s  p50 ${f.p50.toFixed(2)} ms  p99 ${f.p99.toFixed(2)} ms  p99.9 ${f.p999.toFixed(2)} ms  over 2 ms ${f.over2Pct.toFixed(2)} %  cpu ${f.cpuPerCheckUs.toFixed(0)} µs  failed ${f.failed}`);
  return f;
}
// grpc: the node's server; +verify: plus one ES256 verification per check. BENCH_FLOORS=all adds
// the same on bare node:http2, to separate grpc-js's share.
const FLOOR_MODES = [['grpc'], ['grpc', 'verify'], ...(process.env.BENCH_FLOORS === 'all' ? [['h2'], ['h2', 'verify']] : [])];
const floors: Floor[] = [];
for (const mode of FLOOR_MODES) floors.push(await floorRun(mode));
const floorOf = (kind: Kind): Floor => floors.find((f) => f.mode === (kind === 'mtls' ? 'grpc' : 'grpc+verify'))!;
const base2 = verifyRate();

// ---- report ------------------------------------------------------------------------------------

const cpu = cpus()[0]?.model ?? 'unknown CPU';
const out: string[] = [];
out.push(`Run: ${new Date().toISOString()}, ${cpus().length} vCPU (${cpu}), Node ${process.version}, client ${cLoadgen ? 'c (open loops), frames (closed loops)' : CLIENT_KIND}, ${((performance.now() - started) / 1000).toFixed(0)} s`);
out.push('');
out.push(`Baseline, this process, one core: crypto.verify ES256 ${Math.round(base1.es256)}/s before, ${Math.round(base2.es256)}/s after; X509 parse + verify of a WIC ${Math.round(base1.x509)}/s before, ${Math.round(base2.x509)}/s after.`);
out.push('');
out.push('| request | phase | offered | checks/s | p50 ms | p99 ms | p99.9 ms | > 2 ms | max ms | sender lag p99 ms | p99 from schedule ms | handler mean µs | handler p99 ms | node CPU µs/check | client CPU µs/check | node loop delay p99 / max ms | node GC max ms | client loop delay max ms | client GC max ms | load avg | failed |');
out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows)
  out.push(
    `| ${r.kind} | ${r.phase} | ${r.offered} | ${r.throughput.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.p999.toFixed(2)} | ${r.over2Pct.toFixed(2)} % | ${r.max.toFixed(1)} | ${r.lagP99.toFixed(2)} | ${r.p99FromDue.toFixed(2)} | ${r.serverMeanUs.toFixed(0)} | ${r.serverP99} | ${r.cpuPerCheckUs.toFixed(0)} | ${r.clientCpuPerCheckUs.toFixed(0)} | ${r.node.loopP99Ms.toFixed(1)} / ${r.node.loopMaxMs.toFixed(1)} | ${r.node.gcMaxMs.toFixed(1)} | ${r.client.loopMaxMs.toFixed(1)} | ${r.client.gcMaxMs.toFixed(1)} | ${r.load.toFixed(1)} | ${r.failed} |`,
  );
out.push('');
out.push(`Floors at 1,000 checks/s for ${STEADY_MS / 1000} s (bench/_extauthz-floor.ts: a handler that answers a constant allow, with \`verify\` after one ES256 verification; the same client and mTLS requests; its own process):`);
out.push('');
out.push('| floor | p50 ms | p99 ms | p99.9 ms | > 2 ms | server CPU µs/check | failed |');
out.push('|---|---:|---:|---:|---:|---:|---:|');
for (const f of floors) out.push(`| ${f.mode} | ${f.p50.toFixed(2)} | ${f.p99.toFixed(2)} | ${f.p999.toFixed(2)} | ${f.over2Pct.toFixed(2)} % | ${f.cpuPerCheckUs.toFixed(0)} | ${f.failed} |`);
out.push('');
out.push('The node at 1,000 checks/s against its floor (mtls: grpc; wpt and httpsig: grpc+verify):');
out.push('');
out.push('| request | p99 ms | floor p99 ms | ratio | > 2 ms | node CPU µs/check | floor CPU µs/check | ratio |');
out.push('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const kind of ['mtls', 'wpt', 'httpsig'] as const) {
  const r = rows.find((x) => x.kind === kind && x.offered === '1000/s')!;
  const f = floorOf(kind);
  out.push(`| ${kind} | ${r.p99.toFixed(2)} | ${f.p99.toFixed(2)} | ${(r.p99 / f.p99).toFixed(2)}x | ${r.over2Pct.toFixed(2)} % | ${r.cpuPerCheckUs.toFixed(0)} | ${f.cpuPerCheckUs.toFixed(0)} | ${(r.cpuPerCheckUs / f.cpuPerCheckUs).toFixed(2)}x |`);
}
out.push('');
const verifyMean = (base1.es256 + base2.es256) / 2;
out.push('Ceiling against the raw verification rate (closed loop, N=' + CONCURRENCY + '):');
for (const kind of ['mtls', 'wpt', 'httpsig'] as const) {
  const c = rows.find((r) => r.kind === kind && r.offered === `N=${CONCURRENCY}`)!;
  const cpuPer = rows.filter((r) => r.kind === kind).reduce((a, r) => a + r.cpuPerCheckUs, 0) / rows.filter((r) => r.kind === kind).length;
  out.push(`- ${kind}: ${c.throughput.toFixed(0)} checks/s = ${((100 * c.throughput) / verifyMean).toFixed(1)} % of crypto.verify ES256; node CPU ${cpuPer.toFixed(0)} µs/check on average = ${(1e6 / cpuPer).toFixed(0)} checks/s per fully available core`);
}
out.push('');
out.push(`CPU profile of the node during ${PROFILE_MS / 1000} s closed loops (self time, % of samples):`);
for (const [kind, p] of Object.entries(profiles)) {
  const areas = Object.entries(p.areas).sort((a, b) => b[1] - a[1]).map(([a, n]) => `${a} ${((100 * n) / p.total).toFixed(1)}`);
  out.push(`- ${kind} (${p.throughput.toFixed(0)} checks/s while profiled): ${areas.join(', ')}`);
  out.push(`  top: ${p.top.slice(0, 12).map(([f, n]) => `${f} ${((100 * n) / p.total).toFixed(1)}`).join('; ')}`);
}
console.log(out.join('\n'));

nodeClient.close();
await rpc('close').catch(() => {});
node.kill();
