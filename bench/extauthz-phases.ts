/**
 * Where one ext_authz `Check` spends its CPU, phase by phase, in one process (no network, no
 * scheduling): the per-phase numbers behind bench/extauthz-check.ts.
 *
 *   node --import=tsx bench/extauthz-phases.ts          (about 20 s)
 *
 * A real node (`startNode`: its CA, Authenticator with its caches, policy store and metrics), the
 * same three kinds of request as bench/extauthz-check.ts (mTLS with a peer chain, WIT + fresh WPT,
 * WIT + fresh HTTP signature over a JSON POST), protobuf-encoded as Envoy sends them. Per kind,
 * the mean µs of: authenticating the asking proxy by its node token (`authenticateCaller`, from
 * the call's metadata, as the Check service does before the handler), decoding the CheckRequest
 * with the server's own codec, translating it
 * (check-request.ts), authenticating (src/authn), the policy decision (src/policy), building the
 * answer (check-response.ts), encoding it, and the whole handler `check()` on fresh requests.
 * Baseline in the same run: one raw ES256 `crypto.verify` of a 300-byte message. Median of 5
 * rounds of 2,000 requests each.
 */
import { generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseConfig } from '../src/config/config.ts';
import { silentLogger } from '../src/log.ts';
import { startNode } from '../src/node.ts';
import { Metadata } from '@grpc/grpc-js';
import { check, type CheckPorts } from '../src/envoy/extauthz.ts';
import { authenticateCaller } from '../src/identity/node-tokens.ts';
import { routeSettings, toAuthnRequest, type CheckRequestMessage } from '../src/envoy/check-request.ts';
import { okResponse } from '../src/envoy/check-response.ts';
import { envoyProtos } from '../src/envoy/protos.ts';
import { authorizationService } from '../src/envoy/check-codec.ts';
import { authorize } from '../src/policy/authorize.ts';
import { audiencesFor } from '../src/policy/compile.ts';
import type { AuthnResult } from '../src/authn/authenticate.ts';
import type { PublicJwk } from '../src/identity/jwk.ts';
import { AUD, BENCH_POLICY, DEST, checkRequestFor as buildCheckRequest, type Kind, type Workload } from './_extauthz-requests.ts';

const N = 2000;
const ROUNDS = 5;

const dir = mkdtempSync(join(tmpdir(), 'wimse-bench-phases-'));
writeFileSync(
  join(dir, 'policy.yaml'),
  BENCH_POLICY,
);
const cfg = parseConfig(
  `nodeName: bench\ntrustDomain: example.org\ngrpc:\n  listen: 127.0.0.1:0\nadmin:\n  listen: ''\nlogging:\n  level: silent\npolicy:\n  file: policy.yaml\n`,
  dir,
);
if (!cfg.ok) throw new Error(cfg.errors.join('; '));
const node = await startNode(cfg.value, { logger: silentLogger() });

const workloads: Workload[] = [];
for (let i = 0; i < 32; i++) {
  const sub = `spiffe://example.org/ns/bench/sa/w${i}`;
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(publicKey.export({ format: 'jwk' }) as PublicJwk), alg: 'ES256' };
  const wit = (await node.ca.mintWit({ sub, cnf: jwk as never })).token;
  workloads.push({ sub, privateKey, wit, certPem: (await node.ca.issueWic({ id: sub })).certPem });
}


const checkRequestFor = (kind: Kind, i: number): Record<string, unknown> => buildCheckRequest(workloads, kind, i, 300);

// The server's own codec (src/envoy/check-codec.ts), and proto-loader's generic one as the
// baseline it replaced (same bytes in and out; test/envoy/check-codec.test.ts).
const codec = authorizationService().Check!;
const generic = envoyProtos().Authorization.Check!;
const ports: CheckPorts = {
  authenticate: (req, ctx) => node.authenticator.authenticate(req, { audiences: ctx.audiences }),
  authorize: (input) => authorize(input, node.policy.current(), { newId: () => input.decisionId }),
  audiencesFor: (d) => audiencesFor(node.policy.current(), d) ?? [],
  logger: silentLogger(),
  onCheck: (o) => {
    node.metrics.checks.inc({ result: o.allowed ? 'allow' : 'deny', reason: o.code, via: o.via ?? 'none' });
    node.metrics.checkDuration.observe({ result: o.allowed ? 'allow' : 'deny' }, o.seconds);
  },
};

// The callee sidecar's node token, as its Checks carry it (grpc_service.initial_metadata).
const proxyMetadata = new Metadata();
proxyMetadata.set('authorization', `Bearer ${node.nodeTokens.issue('sidecar-bench')}`);

const meanUs = (n: number, f: (i: number) => unknown): number => {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) f(i);
  return ((performance.now() - t0) * 1000) / n;
};
async function meanUsAsync(n: number, f: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await f(i);
  return ((performance.now() - t0) * 1000) / n;
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const data = Buffer.from('x'.repeat(300));
const sig = cryptoSign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });

const PHASES = ['ES256 verify (baseline)', 'proxy node token', 'decode (proto-loader)', 'decode CheckRequest', 'translate', 'authenticate', 'authorize', 'build response', 'encode (proto-loader)', 'encode response', 'check() handler'] as const;
let offset = 0;
const fresh = (kind: Kind): CheckRequestMessage[] => {
  const out = Array.from({ length: N }, (_, i) => codec.requestDeserialize(codec.requestSerialize(checkRequestFor(kind, offset + i))) as CheckRequestMessage);
  offset += N;
  return out;
};
const load0 = loadavg()[0]!;
const table: Array<[Kind, Record<string, number>]> = [];
for (const kind of ['mtls', 'wpt', 'httpsig'] as const) {
  const samples: Record<string, number[]> = Object.fromEntries(PHASES.map((p) => [p, []]));
  const warm = fresh(kind);
  await meanUsAsync(500, (i) => check(warm[i]!, ports)); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    const bufs = Array.from({ length: N }, (_, i) => codec.requestSerialize(checkRequestFor(kind, offset + i)));
    offset += N;
    const msgs = bufs.map((b) => codec.requestDeserialize(b) as CheckRequestMessage);
    samples['ES256 verify (baseline)']!.push(meanUs(N, () => cryptoVerify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig)));
    samples['proxy node token']!.push(
      meanUs(N, () => {
        const who = authenticateCaller(proxyMetadata.get('authorization').map(String), undefined, { tokens: node.nodeTokens });
        if (!who.ok) throw new Error('the proxy token was refused');
      }),
    );
    samples['decode (proto-loader)']!.push(meanUs(N, (i) => generic.requestDeserialize(bufs[i]!)));
    samples['decode CheckRequest']!.push(meanUs(N, (i) => codec.requestDeserialize(bufs[i]!)));
    samples.translate!.push(meanUs(N, (i) => (routeSettings(msgs[i]!), toAuthnRequest(msgs[i]!))));
    const reqs = msgs.map((m) => toAuthnRequest(m));
    const who: AuthnResult[] = [];
    samples.authenticate!.push(meanUs(N, (i) => who.push(node.authenticator.authenticate(reqs[i]!, { audiences: [AUD] }))));
    samples.authorize!.push(
      await meanUsAsync(N, (i) =>
        Promise.resolve(authorize({ caller: who[i]!.caller, via: who[i]!.via, destination: DEST, method: reqs[i]!.method, path: reqs[i]!.path }, node.policy.current(), { newId: () => 'd' })),
      ),
    );
    const answers: Array<Record<string, unknown>> = [];
    samples['build response']!.push(
      meanUs(N, (i) => answers.push(okResponse({ caller: who[i]!.caller, via: who[i]!.via, decisionId: '3f0c2a9e-6a1f-4c55-9d0e-2b7f1f6f4e11', rule: 'bench', clientWimseHeaders: [] }))),
    );
    samples['encode (proto-loader)']!.push(meanUs(N, (i) => generic.responseSerialize(answers[i]!)));
    samples['encode response']!.push(meanUs(N, (i) => codec.responseSerialize(answers[i]!)));
    const handler = fresh(kind);
    samples['check() handler']!.push(
      await meanUsAsync(N, async (i) => {
        const res = (await check(handler[i]!, ports)) as { status?: { code?: number } };
        if (res.status?.code) throw new Error(`${kind}: denied ${JSON.stringify(res.status)}`);
      }),
    );
  }
  table.push([kind, Object.fromEntries(PHASES.map((p) => [p, median(samples[p]!)]))]);
}
const load1 = loadavg()[0]!;

console.log(`Run: ${new Date().toISOString()}, Node ${process.version}, load average ${load0.toFixed(1)} -> ${load1.toFixed(1)}; mean µs per request, median of ${ROUNDS} rounds of ${N}`);
console.log('');
console.log(`| request | ${PHASES.join(' | ')} |`);
console.log(`|---|${PHASES.map(() => '---:').join('|')}|`);
for (const [kind, r] of table) console.log(`| ${kind} | ${PHASES.map((p) => r[p]!.toFixed(1)).join(' | ')} |`);
await node.close();
process.exit(0);
