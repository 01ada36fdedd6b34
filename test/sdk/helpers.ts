/**
 * A real Workload API for the SDK tests: the project's gRPC service (WorkloadApiServer) on
 * loopback or a Unix socket, backed by the real Identity Server (src/ca) in a temp directory and
 * a real node-token store holding NODE_TOKEN, with entitlements from a table.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { IdentityServer } from '../../src/ca/index.ts';
import { ManualClock, type Clock } from '../../src/identity/clock.ts';
import type { PublicJwk } from '../../src/identity/jwk.ts';
import type { TrustBundleSet } from '../../src/identity/trust-bundle.ts';
import { hashToken, NodeTokenStore } from '../../src/identity/node-tokens.ts';
import { WorkloadApiServer, workloadServiceDefinition } from '../../src/workload-api/server.ts';
import type { Timers } from '../../src/sdk/timers.ts';

export const TRUST_DOMAIN = 'example.org';
export const CLIENT_ID = 'spiffe://example.org/ns/default/sa/client';
export const SERVER_ID = 'spiffe://example.org/ns/default/sa/server';
export const NODE_TOKEN = 'node-token-' + randomBytes(8).toString('hex');

export interface TestWorkloadApi {
  address: string;
  clock: Clock;
  ca: IdentityServer;
  /** The node tokens the API accepts: NODE_TOKEN for `node-1`, and any issued here. */
  tokens: NodeTokenStore;
  /** The service itself (its open streams, `tick`, `close`). */
  service: WorkloadApiServer;
  /** Every FetchWIT request as received. */
  requests: { workload_id: string; proof: string }[];
  /** Make the next `n` mints fail (an internal error on the server). */
  failNext(n: number): void;
  /** Replace the WIT the server returns (a misbehaving server). */
  tamper: ((wit: string) => string | Promise<string>) | undefined;
  issued: number;
  bundles(): TrustBundleSet;
  close(): Promise<void>;
}

export async function startWorkloadApi(opts: { clock?: Clock; witTtlSec?: number; entitlements?: Record<string, string[]>; bind?: string; tls?: boolean } = {}): Promise<TestWorkloadApi> {
  const clock = opts.clock ?? new ManualClock(Date.UTC(2026, 5, 1));
  const stateDir = await mkdtemp(join(tmpdir(), 'sdk-ca-'));
  const ca = await IdentityServer.open({ stateDir, trustDomain: TRUST_DOMAIN, clock, witTtlSec: opts.witTtlSec ?? 3600 });
  const entitlements = opts.entitlements ?? { 'node-1': [CLIENT_ID, SERVER_ID] };
  const tokens = new NodeTokenStore([{ nodeId: 'node-1', sha256: hashToken(NODE_TOKEN) }], { now: () => clock.now() });
  let failures = 0;
  const service = new WorkloadApiServer({
    auth: { tokens },
    entitled: (caller, id) => (entitlements[caller.nodeId] ?? []).includes(id),
    async mintWit(sub: string, jwk: PublicJwk) {
      if (failures > 0) {
        failures--;
        throw new Error('issuer unavailable');
      }
      const minted = await ca.mintWit({ sub, cnf: jwk });
      const token = api.tamper ? await api.tamper(minted.token) : minted.token;
      api.issued++;
      return { token, exp: minted.exp };
    },
    bundles: () => ca.bundles(),
    onBundlesChange: (l) => ca.onChange((e) => e.type === 'bundle-changed' && l()),
    clock,
    logger: pino({ level: 'silent' }),
  });
  const api: TestWorkloadApi = {
    address: '',
    clock,
    ca,
    tokens,
    service,
    requests: [],
    failNext: (n) => (failures = n),
    tamper: undefined,
    issued: 0,
    bundles: () => ca.bundles(),
    close: async () => undefined,
  };
  const impl = service.implementation;
  const server = new grpc.Server();
  server.addService(workloadServiceDefinition(), {
    ...impl,
    FetchWIT(call: grpc.ServerUnaryCall<{ workload_id: string; proof: string }, unknown>, cb: grpc.sendUnaryData<unknown>) {
      api.requests.push({ ...call.request });
      (impl.FetchWIT as grpc.handleUnaryCall<unknown, unknown>)(call, cb);
    },
  });
  // With `tls`, the API serves a certificate for `localhost` from the same CA.
  let creds = grpc.ServerCredentials.createInsecure();
  if (opts.tls) {
    const wic = await ca.issueWic({ id: `spiffe://${TRUST_DOMAIN}/node/api`, dnsNames: ['localhost'] });
    creds = grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(wic.certPem), private_key: Buffer.from(wic.privateKeyPem!) }]);
  }
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(opts.bind ?? '127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  api.address = opts.bind?.startsWith('unix:') ? opts.bind : `${opts.tls ? 'localhost' : '127.0.0.1'}:${port}`;
  api.close = async () => {
    service.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    await ca.close();
    await rm(stateDir, { recursive: true, force: true });
  };
  return api;
}

/** Timers driven by a ManualClock: `advance` moves the clock and runs what fell due. */
export class ManualTimers implements Timers {
  #next = 1;
  readonly #pending = new Map<number, { at: number; fn: () => void }>();
  constructor(readonly clock: ManualClock) {}
  set(fn: () => void, delayMs: number): unknown {
    const id = this.#next++;
    this.#pending.set(id, { at: this.clock.now() + Math.max(0, delayMs), fn });
    return id;
  }
  clear(h: unknown): void {
    this.#pending.delete(h as number);
  }
  /** The earliest due time, if any timer is pending. */
  nextAt(): number | undefined {
    let min: number | undefined;
    for (const t of this.#pending.values()) if (min === undefined || t.at < min) min = t.at;
    return min;
  }
  get size(): number {
    return this.#pending.size;
  }
  advance(ms: number): void {
    const target = this.clock.now() + ms;
    for (;;) {
      let due: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#pending) if (e[1].at <= target && (!due || e[1].at < due[1].at)) due = e;
      if (!due) break;
      this.#pending.delete(due[0]);
      if (due[1].at > this.clock.now()) this.clock.set(due[1].at);
      due[1].fn();
    }
    this.clock.set(target);
  }
}

/** Wait until `cond` holds (real time, bounded by a safety net). */
export async function until(cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The WIT verification key of the test trust domain with this kid. */
export function witKey(api: TestWorkloadApi, kid: string): PublicJwk {
  const k = api.bundles().get(TRUST_DOMAIN)?.witKeys.find((w) => w.kid === kid);
  if (!k) throw new Error(`no WIT key ${kid}`);
  return k;
}
