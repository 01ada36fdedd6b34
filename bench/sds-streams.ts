/**
 * SDS fan-out benchmark: many concurrent StreamSecrets streams from one node.
 *
 *   node --import=tsx bench/sds-streams.ts [streams=10000] [channels=20]
 *
 * The server runs in a child process (so its memory is measured alone). Two servers are measured
 * in the same run over the same client code:
 * - baseline: the same grpc-js service definition whose handler answers every first request with
 *   one pre-built response and writes one more to every stream on "change" (transport cost only);
 * - sds: the real SdsServer over the real CA (token auth, per-stream state, secret catalog,
 *   `ALL` secret); the change is the CA preparing its next key (a new root in the bundle).
 * Reported: time to open N streams and get the first answer, time from a bundle change to the
 * last stream receiving it, server memory per stream, and sds/baseline ratios.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { envoyProtos, TYPE_URL } from '../src/envoy/protos.ts';

const N = Number(process.argv[2] ?? 10_000);
const CHANNELS = Number(process.argv[3] ?? 20);

type Reply = { port?: number; heap?: number; rss?: number; ok?: boolean; changeMs?: number };

if (process.argv[2] === 'server') await serverMain(process.argv[3] as 'baseline' | 'sds');
else await clientMain();

// ---- server child ---------------------------------------------------------------------------

async function serverMain(mode: 'baseline' | 'sds'): Promise<void> {
  const server = new grpc.Server({ 'grpc.max_concurrent_streams': 1_000_000 });
  let change: () => Promise<void>;
  let token = '';
  let cleanup = async (): Promise<void> => {};
  if (mode === 'baseline') {
    const calls = new Set<grpc.ServerDuplexStream<any, any>>();
    const response = { version_info: '1', resources: [], type_url: TYPE_URL.secret, nonce: 'n' };
    server.addService(envoyProtos().SecretDiscoveryService, {
      StreamSecrets: (call: grpc.ServerDuplexStream<any, any>) => {
        let first = true;
        calls.add(call);
        call.on('data', () => {
          if (first) call.write(response);
          first = false;
        });
        call.on('cancelled', () => calls.delete(call));
        call.on('end', () => calls.delete(call));
      },
      FetchSecrets: () => undefined,
      DeltaSecrets: () => undefined,
    });
    change = async () => {
      for (const c of calls) c.write({ ...response, version_info: '2' });
    };
  } else {
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { systemClock } = await import('../src/identity/clock.ts');
    const { IdentityServer } = await import('../src/ca/index.ts');
    const { NodeTokenStore } = await import('../src/identity/node-tokens.ts');
    const { SdsServer } = await import('../src/envoy/sds.ts');
    const { CaSecretSource } = await import('../src/envoy/sds-ca-source.ts');
    const dir = await mkdtemp(join(tmpdir(), 'sds-bench-'));
    const ca = await IdentityServer.open({ stateDir: dir, trustDomain: 'example.org', clock: systemClock });
    const source = new CaSecretSource(ca, [{ nodeId: 'sidecar-0', workloads: ['spiffe://example.org/ns/bench/sa/app'] }]);
    const tokens = new NodeTokenStore();
    token = tokens.issue('sidecar-0');
    const sds = new SdsServer({ source, clock: systemClock, auth: { tokens } });
    sds.register(server);
    // A bundle change: the CA prepares its next X.509 key, whose root is published at once.
    change = async () => {
      await ca.prepare('x509');
    };
    cleanup = async () => {
      await ca.close();
      const { rm } = await import('node:fs/promises');
      await rm(dir, { recursive: true, force: true });
    };
  }
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  const mem = (): Reply => {
    (globalThis as any).gc?.();
    const m = process.memoryUsage();
    return { heap: m.heapUsed + m.external + m.arrayBuffers, rss: m.rss };
  };
  process.on('message', async (msg: string) => {
    if (msg === 'mem') process.send!(mem());
    else if (msg === 'change') {
      const t = performance.now();
      await change();
      process.send!({ ok: true, changeMs: performance.now() - t });
    } else if (msg === 'exit') await cleanup().finally(() => process.exit(0));
  });
  process.send!({ port, token, ...mem() });
}

// ---- client (parent) ------------------------------------------------------------------------

function ask(child: ChildProcess, msg: string): Promise<Reply & { token?: string }> {
  return new Promise((res) => {
    child.once('message', (m: any) => res(m));
    child.send(msg);
  });
}

async function run(mode: 'baseline' | 'sds', n = N) {
  const child = fork(new URL(import.meta.url).pathname, ['server', mode], {
    execArgv: ['--import=tsx', '--expose-gc', '--max-old-space-size=4096'],
  });
  const ready = await new Promise<Reply & { token: string }>((res) => child.once('message', (m: any) => res(m)));
  const Ctor = grpc.makeClientConstructor(envoyProtos().SecretDiscoveryService, 'SDS');
  const clients = Array.from(
    { length: CHANNELS },
    () => new Ctor(`127.0.0.1:${ready.port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as any,
  );
  const md = new grpc.Metadata();
  if (ready.token) md.set('authorization', `Bearer ${ready.token}`);

  let firstCount = 0;
  let pushCount = 0;
  let onFirst: () => void = () => {};
  let onPush: () => void = () => {};
  const allFirst = new Promise<void>((r) => (onFirst = r));
  const allPush = new Promise<void>((r) => (onPush = r));
  const calls: grpc.ClientDuplexStream<any, any>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const call = clients[i % CHANNELS].StreamSecrets(md) as grpc.ClientDuplexStream<any, any>;
    let seen = 0;
    call.on('data', (r: any) => {
      seen++;
      if (seen === 1) {
        call.write({ resource_names: ['ALL'], type_url: TYPE_URL.secret, version_info: r.version_info, response_nonce: r.nonce });
        if (++firstCount === n) onFirst();
      } else if (seen === 2 && ++pushCount === n) onPush();
    });
    call.on('error', () => undefined);
    call.write({
      node: { id: 'sidecar-0', user_agent_name: 'envoy' },
      resource_names: ['ALL'],
      type_url: TYPE_URL.secret,
    });
    calls.push(call);
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
  }
  const timeout = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());
  const opened = await Promise.race([allFirst, timeout(40_000)]);
  const openMs = performance.now() - t0;
  const memAfter = await ask(child, 'mem');
  const t1 = performance.now();
  const changed = ask(child, 'change');
  const pushed = await Promise.race([allPush, timeout(20_000)]);
  const changeMs = (await changed).changeMs ?? NaN;
  const pushMs = performance.now() - t1;
  for (const c of calls) c.cancel();
  clients.forEach((c) => c.close());
  child.send('exit');
  return {
    mode,
    reached: firstCount,
    pushed: pushCount,
    openMs: opened === 'timeout' ? NaN : openMs,
    pushMs: pushed === 'timeout' ? NaN : pushMs,
    changeMs,
    bytesPerStream: (memAfter.heap! - ready.heap!) / Math.max(1, firstCount),
    rssPerStream: (memAfter.rss! - ready.rss!) / Math.max(1, firstCount),
  };
}

async function clientMain(): Promise<void> {
  // Warm-up (JIT, proto loading in this process); discarded.
  await run('baseline', Math.min(N, 1000));
  const base = await run('baseline');
  const sds = await run('sds');
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
  console.log(`streams requested: ${N} over ${CHANNELS} HTTP/2 connections`);
  console.log('| server | streams answered | open all + first answer (ms) | change -> last stream (ms) | of which the change itself (ms) | heap+external per stream (bytes) | RSS per stream (bytes) |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of [base, sds])
    console.log(`| ${r.mode} | ${r.reached} (pushed ${r.pushed}) | ${f(r.openMs)} | ${f(r.pushMs)} | ${f(r.changeMs)} | ${f(r.bytesPerStream)} | ${f(r.rssPerStream)} |`);
  console.log(
    `| ratio sds/baseline | | ${f(sds.openMs / base.openMs, 2)} | ${f(sds.pushMs / base.pushMs, 2)} | | ${f(sds.bytesPerStream / base.bytesPerStream, 2)} | ${f(sds.rssPerStream / base.rssPerStream, 2)} |`,
  );
  console.log(`command: node --import=tsx bench/sds-streams.ts ${N} ${CHANNELS}   (${process.version})`);
  process.exit(0);
}
