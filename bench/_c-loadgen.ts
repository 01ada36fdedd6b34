/**
 * The C load generator (bench/loadgen/h2grpc.c) from TypeScript: built once per source version
 * with the machine's C compiler into the temp directory, then run per open-loop phase with the
 * phase's pre-encoded requests. It paces requests to the microsecond and has no garbage
 * collector, so what it measures is the server's; the TypeScript clients stay for closed loops
 * and for machines without a compiler.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = new URL('./loadgen/h2grpc.c', import.meta.url);

/** The built binary, or undefined when no C compiler is available (the reason on stderr). */
export function buildCLoadgen(): string | undefined {
  const src = readFileSync(SOURCE);
  const bin = join(tmpdir(), `wimse-bench-h2grpc-${createHash('sha256').update(src).digest('hex').slice(0, 12)}`);
  if (existsSync(bin)) return bin;
  // Built under a private name, then renamed: a process running the binary never sees half of it.
  const partial = `${bin}.${process.pid}.partial`;
  try {
    execFileSync(process.env.CC ?? 'cc', ['-O2', '-o', partial, fileURLToPath(SOURCE)], { stdio: ['ignore', 'ignore', 'pipe'] });
    renameSync(partial, bin);
    return bin;
  } catch (e) {
    rmSync(partial, { force: true });
    console.error(`bench: no C load generator (${(e as Error).message.split('\n')[0]}); using the TypeScript client`);
    return undefined;
  }
}

export interface CRun {
  /** Per request, in order: lateness of the write against the schedule (ms). */
  lag: number[];
  /** Per answered request: write to response (ms). */
  lat: number[];
  /** Per answered request: schedule to response (ms), lag + latency of the same request. */
  fromDue: number[];
  /** Answered with status code 0. */
  ok: number;
  /** Answered with another code, or not at all. */
  failed: number;
  /** The generator's own CPU time (µs). */
  cpuUs: number;
  seconds: number;
}

/**
 * Send `reqs` at `rate`/s to the gRPC method `path` at `address` over one HTTP/2 connection;
 * with `authorization`, every request carries it (the proxy's `Bearer <node token>`).
 */
export async function runCLoadgen(bin: string, address: string, path: string, rate: number, reqs: readonly Buffer[], timeoutMs = 2000, authorization?: string): Promise<CRun> {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-bench-load-'));
  try {
    const parts: Buffer[] = [];
    for (const r of reqs) {
      const len = Buffer.allocUnsafe(4);
      len.writeUInt32BE(r.length, 0);
      parts.push(len, r);
    }
    writeFileSync(join(dir, 'reqs'), Buffer.concat(parts));
    const colon = address.lastIndexOf(':');
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) =>
      execFile(bin, [address.slice(0, colon), address.slice(colon + 1), String(rate), path, join(dir, 'reqs'), join(dir, 'out'), String(timeoutMs)], { env: { ...process.env, ...(authorization ? { H2GRPC_AUTHORIZATION: authorization } : {}) } }, (err, _o, stderr) =>
        err ? reject(new Error(`h2grpc failed: ${stderr || err.message}`)) : resolve(),
      ),
    );
    const seconds = (performance.now() - t0) / 1000;
    const run: CRun = { lag: [], lat: [], fromDue: [], ok: 0, failed: 0, cpuUs: 0, seconds };
    for (const line of readFileSync(join(dir, 'out'), 'utf8').split('\n')) {
      if (line.startsWith('# cpu_us ')) run.cpuUs = Number(line.slice(9));
      else if (line) {
        const [lag, lat, result] = line.split(' ').map(Number) as [number, number, number];
        run.lag.push(lag / 1000);
        if (lat >= 0) {
          run.lat.push(lat / 1000);
          run.fromDue.push((lag + lat) / 1000);
        }
        if (result === 0) run.ok++;
        else run.failed++;
      }
    }
    return run;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
