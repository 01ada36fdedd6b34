/**
 * The node under test for bench/extauthz-check.ts, in its own process (its own core, event loop
 * and heap, like a deployed node). Driven over IPC: mint WITs and issue WICs with the node's own
 * CA, report the server-side check time from the node's metrics, and take a CPU profile. Its
 * first message gives its address and a node token for the load generators' Checks.
 *
 *   fork('bench/_extauthz-node.ts', { execArgv: ['--import=tsx'] })
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/config.ts';
import { silentLogger } from '../src/log.ts';
import { startNode } from '../src/node.ts';
import { rootsPem } from '../src/identity/trust-bundle.ts';
import { stallMonitor } from './_extauthz-stalls.ts';
import { BENCH_POLICY } from './_extauthz-requests.ts';

type Msg =
  | { id: number; op: 'mint'; sub: string; jwk: Record<string, unknown> }
  | { id: number; op: 'wic'; sub: string }
  | { id: number; op: 'roots' }
  | { id: number; op: 'cpu' }
  | { id: number; op: 'stalls-reset' }
  | { id: number; op: 'stalls' }
  | { id: number; op: 'major-gcs' }
  | { id: number; op: 'server-time' }
  | { id: number; op: 'profile-start' }
  | { id: number; op: 'profile-stop' }
  | { id: number; op: 'close' };

const dir = mkdtempSync(join(tmpdir(), 'wimse-bench-'));
writeFileSync(join(dir, 'policy.yaml'), BENCH_POLICY);
const cfg = parseConfig(
  `nodeName: bench\ntrustDomain: example.org\ngrpc:\n  listen: 127.0.0.1:0\nadmin:\n  listen: ''\nlogging:\n  level: silent\npolicy:\n  file: policy.yaml\n`,
  dir,
);
if (!cfg.ok) throw new Error(cfg.errors.join('; '));
const node = await startNode(cfg.value, { logger: silentLogger() });

const stalls = stallMonitor();
const session = new Session();
session.connect();
const post = <T>(method: string, params: object = {}): Promise<T> =>
  new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res as T))));

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

const CRYPTO_NATIVE = new Set(['run', 'SignJob', 'verify', 'parseX509', 'checkCA', 'checkIssued', 'createPublicKey', 'createPrivateKey', 'digest', 'update', 'Hash', 'timingSafeEqual', 'randomUUID', 'secureBuffer']);

/** Where a sample's code lives. Native functions have no URL: named ones are attributed by name. */
function areaOf(fn: string, url: string): string {
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'gc';
  if (fn === '(program)') return 'native (unattributed)';
  if (url === '' && CRYPTO_NATIVE.has(fn)) return 'crypto (OpenSSL: verify, X.509 parse, hash)';
  if (url.includes('/src/authn/')) return 'src/authn (JS)';
  if (url.includes('/src/policy/')) return 'src/policy';
  if (url.includes('/src/envoy/')) return 'src/envoy';
  if (url.includes('@grpc/grpc-js')) return 'grpc-js';
  if (url.includes('protobufjs') || url.includes('proto-loader')) return 'protobufjs';
  if (url.includes('prom-client') || url.includes('pino')) return 'metrics/logging';
  if (url.startsWith('node:internal/http2') || url.startsWith('node:internal/stream') || url.startsWith('node:net') || url.startsWith('node:internal/streams')) return 'node http2/streams';
  // protobufjs generates its codecs at run time (no URL): `HttpRequest$decode`, `Struct$fromObject`.
  if (url === '' && fn.includes('$')) return 'protobufjs';
  if (url === '') return 'native (other)';
  if (url.startsWith('node:')) return 'node (other)';
  return 'other JS';
}

/** Self time by function (top 25) and by area (where its code lives). */
function summarize(p: Profile): { total: number; areas: Record<string, number>; top: Array<[string, number]> } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (const s of p.samples) self.set(s, (self.get(s) ?? 0) + 1);
  const fns = new Map<string, number>();
  const areas: Record<string, number> = {};
  for (const [id, count] of self) {
    const n = byId.get(id)!;
    const f = n.callFrame;
    const url = f.url.replace(/^file:\/\//, '');
    const area = areaOf(f.functionName, url);
    areas[area] = (areas[area] ?? 0) + count;
    const key = `${f.functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
    fns.set(key, (fns.get(key) ?? 0) + count);
  }
  const total = p.samples.length;
  const top = [...fns].sort((a, b) => b[1] - a[1]).slice(0, 25);
  return { total, areas, top };
}

process.on('message', (m: Msg) => {
  const reply = (body: unknown) => process.send!({ id: m.id, body });
  const fail = (e: unknown) => process.send!({ id: m.id, error: String((e as Error)?.message ?? e) });
  switch (m.op) {
    case 'mint':
      node.ca.mintWit({ sub: m.sub, cnf: m.jwk as never }).then((w) => reply(w.token), fail);
      break;
    case 'wic':
      node.ca.issueWic({ id: m.sub }).then((w) => reply(w.certPem), fail);
      break;
    case 'cpu': {
      const u = process.cpuUsage();
      reply(u.user + u.system);
      break;
    }
    case 'stalls-reset':
      stalls.reset();
      reply(true);
      break;
    case 'stalls':
      reply(stalls.read());
      break;
    case 'major-gcs':
      reply(stalls.majorGcs());
      break;
    case 'roots':
      reply(rootsPem(node.ca.bundle()));
      break;
    case 'server-time':
      node.metrics.checkDuration.get().then((v) => {
        let sum = 0;
        let count = 0;
        const buckets: Record<string, number> = {};
        for (const x of v.values) {
          if (x.metricName?.endsWith('_sum')) sum += x.value;
          if (x.metricName?.endsWith('_count')) count += x.value;
          if (x.metricName?.endsWith('_bucket')) {
            const le = String((x.labels as Record<string, unknown>).le);
            buckets[le] = (buckets[le] ?? 0) + x.value;
          }
        }
        reply({ sum, count, buckets });
      }, fail);
      break;
    case 'profile-start':
      post('Profiler.enable')
        .then(() => post('Profiler.setSamplingInterval', { interval: 200 }))
        .then(() => post('Profiler.start'))
        .then(() => reply(true), fail);
      break;
    case 'profile-stop':
      post<{ profile: Profile }>('Profiler.stop').then((r) => reply(summarize(r.profile)), fail);
      break;
    case 'close':
      node.close().then(() => {
        reply(true);
        process.exit(0);
      }, fail);
      break;
  }
});
// The node token the load generators send on every Check, as the callee sidecar's Envoy does.
process.send!({ ready: node.grpcAddress, proxyToken: node.nodeTokens.issue('sidecar-bench') });
