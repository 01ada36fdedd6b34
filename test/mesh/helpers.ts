/**
 * Several real control-plane nodes (startNode, real gRPC on loopback, real journals) joined by
 * real nats-server processes, with short cluster timings.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { connect } from 'nats';
import type { ExecutionContext } from 'ava';
import { parseConfig } from '../../src/config/config.ts';
import { startNode, type RunningNode } from '../../src/node.ts';
import { createLogger, silentLogger, type Logger } from '../../src/log.ts';
import { adminClientConstructor } from '../../src/admin/api.ts';
import { createWpt } from '../../src/authn/wpt.ts';
import type { NodeClusterTuning } from '../../src/node-cluster.ts';
import type { Clock } from '../../src/identity/clock.ts';
import { getCheckRequest } from '../helpers/node.ts';
import { authzClient as pepAuthzClient, callCheck } from '../helpers/envoy-pep.ts';

export const A = 'wimse://example.org/svc/a';
export const B = 'wimse://example.org/svc/b';
export const AUD = 'https://b.example.org';

export const policyFor = (callers: string[], paths = ['/orders/']) => `version: 1
destinations:
  - workload: ${B}
    audiences: [${AUD}]
    rules:
      - name: reads
        paths: [${paths.map((p) => `{prefix: ${p}}`).join(', ')}]
        methods: [GET]
        callers: [${callers.join(', ')}]
        authn: [wpt, httpsig]
`;

// A node stays live for 30 s after its last heartbeat: a loaded machine can stall a process (or
// the NATS server) for seconds, and a live node must not look dead (bundle status, the gate's
// report of missing nodes). Tests where a stopped node must age out use AGING_TUNING.
export const TUNING: NodeClusterTuning = {
  heartbeatIntervalMs: 200,
  heartbeatTimeoutMs: 30_000,
  gapGraceMs: 100,
  retryMs: 200,
  // A killed NATS server closes its sockets, so clients notice at once; pings only find silent
  // deaths, and a short ping interval would take a stalled server for a dead one. A store request
  // may take seconds on a busy machine: one given up after 1 s is a write the store "did not
  // take", which loses the node its confirmed contact (and, after cluster.maxStaleness, makes it
  // stale).
  nats: { startTimeoutMs: 1_000, reconnectWaitMs: 100, pingIntervalMs: 5_000, requestTimeoutMs: 5_000 },
};

/** A stopped node ages out of presence 2 s after its last heartbeat. */
export const AGING_TUNING: NodeClusterTuning = { ...TUNING, heartbeatTimeoutMs: 2_000 };

export interface MeshNode {
  name: string;
  dir: string;
  node: RunningNode;
  /** A node token for `sidecar-callee` issued on this node: what `check` sends. */
  proxyToken: string;
  /** One Check, as a callee's Envoy makes it. */
  check(req: unknown): Promise<any>;
  stop(): Promise<void>;
}

export interface MeshNodeSpec {
  name: string;
  servers: string[];
  dir?: string;
  policy?: string;
  activationTimeout?: string;
  extraYaml?: string;
  nodeTokensFile?: string;
  /** `sds.expiredTokenRetention`; the default when absent. */
  expiredTokenRetention?: string;
  tuning?: NodeClusterTuning;
  /** JetStream replicas of the bucket; default 3 with three or more servers, else 1. */
  replicas?: number;
  /** `cluster.maxStaleness`; the default when absent. */
  maxStaleness?: string;
  logger?: Logger;
  /** The node's clock (default: the system clock). */
  clock?: Clock;
}

export async function startMeshNode(t: ExecutionContext, spec: MeshNodeSpec): Promise<MeshNode> {
  const dir = spec.dir ?? mkdtempSync(join(tmpdir(), `wimse-mesh-${spec.name}-`));
  if (!spec.dir) t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let yaml = `nodeName: ${spec.name}
grpc:
  listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
sds:
${spec.nodeTokensFile ? `  nodeTokensFile: ${spec.nodeTokensFile}\n` : ''}${spec.expiredTokenRetention ? `  expiredTokenRetention: ${spec.expiredTokenRetention}\n` : ''}  registrations:
    - nodeId: sidecar-b
      workloads: [${B}]
cluster:
  servers: [${spec.servers.join(', ')}]
  replicas: ${spec.replicas ?? (spec.servers.length >= 3 ? 3 : 1)}
  activationTimeout: ${spec.activationTimeout ?? '20s'}
  reconcileInterval: 1s
${spec.maxStaleness ? `  maxStaleness: ${spec.maxStaleness}\n` : ''}${spec.extraYaml ?? ''}`;
  if (spec.policy !== undefined) {
    writeFileSync(join(dir, 'policy.yaml'), spec.policy);
    yaml += 'policy:\n  file: policy.yaml\n';
  }
  const cfg = parseConfig(yaml, dir);
  if (!cfg.ok) throw new Error(cfg.errors.join('; '));
  const node = await startNode(cfg.value, { logger: spec.logger ?? silentLogger(), cluster: spec.tuning ?? TUNING, ...(spec.clock ? { clock: spec.clock } : {}) });
  const proxyToken = node.nodeTokens.issue('sidecar-callee');
  const authz = authzClient(node.grpcAddress, proxyToken);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    authz.close();
    await node.close();
  };
  t.teardown(stop);
  return { name: spec.name, dir, node, proxyToken, check: authz.check, stop };
}


export const checkRequest = (headers: Record<string, string>, path = '/orders/1') => getCheckRequest(B, AUD, headers, path);

/** A WIT minted by `node`'s active WIT key, and a fresh WPT for it, as headers of a request. */
export async function callerHeaders(node: { ca: Pick<RunningNode['ca'], 'mintWit'> }, sub = A): Promise<{ headers: Record<string, string>; kid: string; wit: string; fresh: () => Record<string, string> }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(publicKey.export({ format: 'jwk' }) as Record<string, string>), alg: 'ES256' };
  const wit = await node.ca.mintWit({ sub, cnf: jwk as any });
  const kid = JSON.parse(Buffer.from(wit.token.split('.')[0]!, 'base64url').toString()).kid as string;
  const fresh = () => ({
    'workload-identity-token': wit.token,
    authorization: `WPT ${createWpt({ wit: wit.token, privateKey, alg: 'ES256', aud: AUD, nowSec: Math.floor(Date.now() / 1000) })}`,
  });
  return { headers: fresh(), kid, wit: wit.token, fresh };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `cond` until it holds (resolves the elapsed ms) or fail after `timeoutMs` (a safety net only). */
export async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000, stepMs = 20): Promise<number> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(stepMs);
  }
  return Date.now() - start;
}

export const trusts = (n: RunningNode, kid: string): boolean => n.ca.keys().some((k) => k.kid === kid && k.status !== 'revoked');
export const ownKids = (n: RunningNode): string[] => n.ca.keys().filter((k) => k.origin === undefined && k.status !== 'revoked').map((k) => k.kid);

/** Every node trusts every other node's keys. */
export async function converged(nodes: RunningNode[], timeoutMs = 30_000): Promise<number> {
  return until('every node trusts every node\'s keys', () => nodes.every((a) => nodes.every((b) => ownKids(b).every((kid) => trusts(a, kid)))), timeoutMs);
}

export async function readyz(n: RunningNode): Promise<{ status: number; body: any }> {
  const r = await fetch(`${n.adminUrl}/readyz`);
  return { status: r.status, body: await r.json() };
}

export async function metricsText(n: RunningNode): Promise<string> {
  return (await fetch(`${n.adminUrl}/metrics`)).text();
}

/** Every value the cluster's JetStream KV bucket holds (example.org), as text. */
export async function storedValues(servers: string[]): Promise<string[]> {
  const nc = await connect({ servers });
  try {
    const kv = await nc.jetstream().views.kv('wimse_example_2eorg');
    const names: string[] = [];
    for await (const k of await kv.keys()) names.push(k);
    const values: string[] = [];
    for (const k of names) {
      const e = await kv.get(k);
      if (e?.value.length) values.push(new TextDecoder().decode(e.value));
    }
    return values;
  } finally {
    await nc.close();
  }
}

/** An ext_authz client for a node (possibly in another process), sending the proxy's node token. */
export function authzClient(address: string, proxyToken: string): { check(req: unknown): Promise<any>; close(): void } {
  const c = pepAuthzClient(address, proxyToken);
  return { check: (req: unknown) => callCheck(c, req), close: () => c.close() };
}

/** An admin API client (as wimsectl) for a node, with its admin token. */
export function admin(n: MeshNode) {
  const Ctor = adminClientConstructor();
  const client = new Ctor(n.node.grpcAddress, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${readFileSync(join(n.node.config.stateDir, 'admin-token'), 'utf8').trim()}`);
  const call = (method: string, req: unknown) =>
    new Promise<any>((resolve, reject) => client[method](req, md, (e: unknown, r: unknown) => (e ? reject(e) : resolve(r))));
  return { client, call };
}

/** A logger that keeps every line (parsed JSON) for the test to inspect. */
export function recordingLogger(): { logger: Logger; lines: () => Array<Record<string, any>> } {
  const sink = new PassThrough();
  let out = '';
  sink.on('data', (d: Buffer) => (out += d));
  return {
    logger: createLogger({ level: 'info', destination: sink }),
    lines: () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>),
  };
}
