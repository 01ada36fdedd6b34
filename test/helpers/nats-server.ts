/**
 * Real nats-server processes for tests: free loopback ports, a private JetStream store directory,
 * readiness by polling the monitoring endpoint, and cleanup in `t.teardown`. Never uses the
 * default port 4222.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface NatsServerSpec {
  name: string;
  port: number;
  monitorPort: number;
  storeDir: string;
  cluster?: { name: string; port: number; routes: number[] };
  /** Extra command-line flags (e.g. TLS). */
  extraArgs?: string[];
}

export class NatsServer {
  readonly spec: NatsServerSpec;
  #proc?: ChildProcess;
  #log = '';

  constructor(spec: NatsServerSpec) {
    this.spec = spec;
  }

  get url(): string {
    return `${this.spec.extraArgs?.includes('--tls') ? 'tls' : 'nats'}://127.0.0.1:${this.spec.port}`;
  }

  get running(): boolean {
    return this.#proc !== undefined && this.#proc.exitCode === null && this.#proc.signalCode === null;
  }

  get log(): string {
    return this.#log;
  }

  args(): string[] {
    const s = this.spec;
    const a = ['-a', '127.0.0.1', '-p', String(s.port), '-m', String(s.monitorPort), '-n', s.name, '-js', '-sd', s.storeDir];
    if (s.cluster) {
      a.push('--cluster_name', s.cluster.name, '--cluster', `nats://127.0.0.1:${s.cluster.port}`);
      if (s.cluster.routes.length) a.push('--routes', s.cluster.routes.map((p) => `nats://127.0.0.1:${p}`).join(','));
    }
    return [...a, ...(s.extraArgs ?? [])];
  }

  /** Start the process; `waitReady` polls /healthz (JetStream enabled only, or fully current). */
  async start(opts: { waitReady?: 'js-enabled' | 'healthy' | false; timeoutMs?: number } = {}): Promise<void> {
    if (this.running) return;
    this.#log = '';
    const proc = spawn(NATS_SERVER_BIN, this.args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#proc = proc;
    const keep = (b: Buffer): void => {
      this.#log = (this.#log + b.toString()).slice(-20_000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    const mode = opts.waitReady ?? 'js-enabled';
    if (mode) await this.waitReady(mode, opts.timeoutMs ?? 30_000);
  }

  async waitReady(mode: 'js-enabled' | 'healthy', timeoutMs: number): Promise<void> {
    const url = `http://127.0.0.1:${this.spec.monitorPort}/healthz${mode === 'js-enabled' ? '?js-enabled-only=true' : ''}`;
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (!this.running) throw new Error(`nats-server ${this.spec.name} exited:\n${this.#log}`);
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error(`nats-server ${this.spec.name} not ready after ${timeoutMs} ms:\n${this.#log}`);
  }

  /** SIGKILL: a crash, no lame-duck mode. */
  async kill(): Promise<void> {
    const proc = this.#proc;
    if (!proc || !this.running) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGKILL');
    await exited;
  }
}

/** A directory and servers that `t.teardown` removes and kills. */
interface Teardown {
  teardown(fn: () => Promise<void> | void): void;
}

async function makeServer(t: Teardown, name: string, cluster?: { name: string; port: number; routes: number[] }, extraArgs?: string[]): Promise<NatsServer> {
  const storeDir = await mkdtemp(join(tmpdir(), 'wimse-nats-'));
  const [port, monitorPort] = [await freePort(), await freePort()];
  const server = new NatsServer({ name, port, monitorPort, storeDir, ...(cluster ? { cluster } : {}), ...(extraArgs ? { extraArgs } : {}) });
  t.teardown(async () => {
    await server.kill();
    await rm(storeDir, { recursive: true, force: true });
  });
  return server;
}

/**
 * Ports are found free and then handed to nats-server, so another process can take one in
 * between: a start that fails is retried on fresh ports.
 */
async function withRetries<T>(attempts: number, fn: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts) throw err;
    }
  }
}

/** One JetStream-enabled nats-server on free loopback ports. */
export async function startNatsServer(t: Teardown, name = 'n1', extraArgs?: string[]): Promise<NatsServer> {
  return withRetries(3, async () => {
    const server = await makeServer(t, name, undefined, extraArgs);
    try {
      await server.start();
    } catch (err) {
      await server.kill();
      throw err;
    }
    return server;
  });
}

/** A JetStream cluster of `size` servers (full mesh of routes), ready when every /healthz is ok. */
export async function startNatsCluster(t: Teardown, size = 3): Promise<NatsServer[]> {
  return withRetries(2, async () => {
    const clusterPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
    const clusterName = `c${clusterPorts[0]}`;
    const servers: NatsServer[] = [];
    for (let i = 0; i < size; i++) {
      const routes = clusterPorts.filter((_, j) => j !== i);
      servers.push(await makeServer(t, `s${i + 1}`, { name: clusterName, port: clusterPorts[i]!, routes }));
    }
    try {
      await Promise.all(servers.map((s) => s.start({ waitReady: false })));
      await Promise.all(servers.map((s) => s.waitReady('healthy', 30_000)));
    } catch (err) {
      await Promise.all(servers.map((s) => s.kill()));
      throw err;
    }
    return servers;
  });
}
