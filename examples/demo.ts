/**
 * A local mixed chain through the real control plane (`npm run demo`), in one process:
 *
 *   A --mTLS--> [PEP B] -> B --WIT+WPT--> [PEP C] -> C --WIT+HTTP-sig--> [PEP D] -> D
 *
 * - one real node (src/node.ts) on free loopback ports, a temporary state directory, a
 *   registration entry per sidecar and a policy file granting exactly these three hops;
 * - A's sidecar and B's sidecar get their WICs over SDS, as Envoy does (examples/demo-sds.ts);
 * - B's and C's applications get WITs through the Workload API with the SDK (`WorkloadClient`),
 *   B signs with a WPT, C with an HTTP message signature over a body (Content-Digest);
 * - B, C and D sit behind a PEP that calls the node's ext_authz `Check` over gRPC exactly as
 *   Envoy's ext_authz filter would (test/helpers/envoy-pep.ts). It stands in for Envoy because no
 *   Envoy binary runs here; envoy/sidecar-callee.yaml is the real configuration it mirrors.
 *
 * Then three attacks, each of which must be denied: a replayed WPT (401 wpt.replay), B calling D,
 * which the policy does not grant (403), and a body changed under a signature (400
 * httpsig.digest_mismatch). Exits 0 only when every hop and every attack behaved as expected.
 *
 *   npm run demo                                  # the policy in examples/demo-mesh.ts
 *   npm run demo -- --policy my-policy.yaml       # the same chain and attacks under another policy
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { startEnvoyPep, type Pep } from '../test/helpers/envoy-pep.ts';
import { WorkloadClient } from '../src/sdk/index.ts';
import { startDemoMesh, WORKLOADS, type WorkloadName } from './demo-mesh.ts';
import { fetchSidecarTls } from './demo-sds.ts';
import { denialOf, digestMatches, mtlsGet, startApp, type App, type Seen } from './demo-apps.ts';

const { A, B, C, D } = WORKLOADS;
const log = (line: string): void => void process.stdout.write(`${line}\n`);
const problems: string[] = [];
const closers: Array<() => Promise<void>> = [];
const started = process.hrtime.bigint();
// A hop that never answers is a failure too, not a hang.
const watchdog = setTimeout(() => {
  log('FAILED: the demo did not finish within 30 s');
  process.exit(1);
}, 30_000);
watchdog.unref();

/** One hop as its callee's application saw it; a wrong caller, method or digest is a failure. */
function reportHop(from: WorkloadName, to: WorkloadName, via: 'mTLS' | 'WIT+WPT' | 'HTTP-sig', seen: Seen | undefined): void {
  const auth = { mTLS: 'mtls', 'WIT+WPT': 'wpt', 'HTTP-sig': 'httpsig' }[via];
  const ok =
    seen !== undefined &&
    seen.caller === WORKLOADS[from].id &&
    seen.auth === auth &&
    seen.decisionId !== undefined &&
    // Under a signature the body arrives with the digest that was signed.
    (via !== 'HTTP-sig' || digestMatches(seen.contentDigest, seen.body));
  log(`${from} -> ${to}  ${via.padEnd(10)}${ok ? 'allow' : 'FAIL '}  caller=${seen?.caller ?? '-'}  (decision ${seen?.decisionId ?? '-'})`);
  if (!ok) problems.push(`${from} -> ${to} over ${via}: expected caller ${WORKLOADS[from].id} via ${auth}${via === 'HTTP-sig' ? ' and a matching Content-Digest' : ''}`);
}

/** One attack: it must be denied with `status` and `code`, and must not reach the application. */
async function reportAttack(label: string, res: Response, want: { status: number; code: string | RegExp }, app: App, seenBefore: number): Promise<void> {
  const d = await denialOf(res);
  const codeOk = typeof want.code === 'string' ? d.code === want.code : want.code.test(d.code);
  const ok = d.status === want.status && codeOk && app.seen.length === seenBefore;
  log(`attack  ${label.padEnd(30)}${ok ? 'deny ' : 'FAIL '}  ${d.status} ${d.code}`);
  if (!ok) problems.push(`${label}: expected ${want.status} ${want.code}, got ${d.status} ${d.code}${app.seen.length !== seenBefore ? ' and it reached the application' : ''}`);
}

try {
  const { values: args } = parseArgs({ options: { policy: { type: 'string' } } });
  // The control plane.
  const mesh = await startDemoMesh(args.policy !== undefined ? { policy: await readFile(args.policy, 'utf8') } : {});
  if (args.policy !== undefined) log(`policy: ${args.policy}`);
  closers.push(() => mesh.close());
  const { node, tokens } = mesh;
  const ready = await fetch(`${node.adminUrl}/readyz`);
  log(`control plane: node ${node.name}, gRPC ${node.grpcAddress}, GET /readyz -> ${ready.status}`);
  if (ready.status !== 200) problems.push(`/readyz answered ${ready.status}`);

  // Credentials: the sidecars of A and B over SDS, the applications B and C over the Workload API.
  const aTls = await fetchSidecarTls(node.grpcAddress, A.sidecar, tokens.A);
  const bTls = await fetchSidecarTls(node.grpcAddress, B.sidecar, tokens.B);
  log(`SDS: ${A.sidecar} and ${B.sidecar} received their certificates and the trust domain's roots`);
  const bIdentity = new WorkloadClient({ address: node.grpcAddress, workloadId: B.id, nodeToken: tokens.B, watchBundles: false });
  closers.push(() => bIdentity.close());
  const cIdentity = new WorkloadClient({ address: node.grpcAddress, workloadId: C.id, nodeToken: tokens.C, watchBundles: false });
  closers.push(() => cIdentity.close());
  await Promise.all([bIdentity.start(), cIdentity.start()]);
  log(`Workload API: B and C hold WITs for ${B.id} and ${C.id}`);

  const pep = async (to: typeof B | typeof C | typeof D, app: App, tls?: { certPem: string; keyPem: string; caPem: string }): Promise<Pep> => {
    const p = await startEnvoyPep({
      authzAddress: node.grpcAddress,
      // The sidecar's own node token authenticates its Checks (envoy/sidecar-callee.yaml).
      nodeToken: to === B ? tokens.B : to === C ? tokens.C : tokens.D,
      upstream: { host: '127.0.0.1', port: app.port },
      // From the sidecar's own configuration, never from the request.
      contextExtensions: { destination_workload: to.id, audience: to.audience },
      ...(tls ? { tls } : {}),
    });
    closers.push(() => p.close());
    return p;
  };

  // D records ledger entries.
  const dApp = await startApp('D', async (s) => ({ status: 201, body: { recorded: s.body.length } }), log);
  closers.push(() => dApp.close());
  const pepD = await pep(D, dApp);

  // C answers stock reads after writing a ledger entry to D, signed with its WIT's key.
  const cApp = await startApp(
    'C',
    async (s) => {
      const sku = s.path.split('/').pop();
      const r = await cIdentity.fetch(
        `${pepD.url}/entries`,
        { method: 'POST', body: JSON.stringify({ sku, reserved: 1 }), headers: { 'content-type': 'application/json' } },
        { mode: 'httpsig', audience: D.audience },
      );
      await r.arrayBuffer();
      return { status: r.status === 201 ? 200 : 502, body: { sku, stock: 7, ledger: r.status } };
    },
    log,
  );
  closers.push(() => cApp.close());
  const pepC = await pep(C, cApp);

  // B answers orders after reading stock from C with a WPT. It keeps its last request's fields,
  // which the replay below sends again.
  let lastBtoC: Headers | undefined;
  const bApp = await startApp(
    'B',
    async () => {
      const url = `${pepC.url}/stock/sku-42`;
      const headers = new Headers();
      bIdentity.signRequestWpt({ url, headers }, { audience: C.audience });
      lastBtoC = new Headers(headers);
      const r = await fetch(url, { headers });
      const body = await r.text();
      return { status: r.status, body: { order: 1, inventory: r.ok ? JSON.parse(body) : r.status } };
    },
    log,
  );
  closers.push(() => bApp.close());
  const pepB = await pep(B, bApp, bTls);

  // The chain.
  log('');
  log(`A calls B: GET ${pepB.url}/orders/1 with A's certificate`);
  const res = await mtlsGet(`${pepB.url}/orders/1`, { ...aTls, expectServer: B.id });
  log(`  [A] ${res.status} ${res.body}`);
  log('');
  if (res.status !== 200) problems.push(`the chain answered ${res.status}: ${res.body}`);
  reportHop('A', 'B', 'mTLS', bApp.seen[0]);
  reportHop('B', 'C', 'WIT+WPT', cApp.seen[0]);
  reportHop('C', 'D', 'HTTP-sig', dApp.seen[0]);
  log('');

  // Attack 1: what B sent to C, sent again (wpt-02: a WPT is single-use within its lifetime).
  if (!lastBtoC) throw new Error('B never called C');
  let before = cApp.seen.length;
  await reportAttack('replayed WPT (B -> C)', await fetch(`${pepC.url}/stock/sku-42`, { headers: lastBtoC }), { status: 401, code: 'wpt.replay' }, cApp, before);

  // Attack 2: B, properly authenticated, calls D; no rule grants B anything on D.
  before = dApp.seen.length;
  const bToD = await bIdentity.fetch(
    `${pepD.url}/entries`,
    { method: 'POST', body: JSON.stringify({ sku: 'sku-42', reserved: 1000 }), headers: { 'content-type': 'application/json' } },
    { mode: 'httpsig', audience: D.audience },
  );
  await reportAttack('B -> D (not granted)', bToD, { status: 403, code: /^policy\./ }, dApp, before);

  // Attack 3: C signs one body, another is sent (RFC 9530 Content-Digest under the signature).
  before = dApp.seen.length;
  const signedBody = JSON.stringify({ sku: 'sku-42', reserved: 1 });
  const headers = new Headers({ 'content-type': 'application/json' });
  cIdentity.signRequestHttpSig({ method: 'POST', url: `${pepD.url}/entries`, headers, body: signedBody }, { audience: D.audience });
  const tampered = await fetch(`${pepD.url}/entries`, { method: 'POST', headers, body: signedBody.replace('"reserved":1', '"reserved":9') });
  await reportAttack('tampered body (C -> D)', tampered, { status: 400, code: 'httpsig.digest_mismatch' }, dApp, before);
} catch (e) {
  problems.push(`the demo failed: ${(e as Error).stack ?? e}`);
} finally {
  for (const close of closers.reverse()) {
    try {
      await close();
    } catch (e) {
      problems.push(`shutdown: ${(e as Error).message}`);
    }
  }
}

const ms = Number((process.hrtime.bigint() - started) / 1_000_000n);
log('');
if (problems.length === 0) {
  log(`ok: 3 hops allowed, 3 attacks denied, everything shut down (${ms} ms)`);
} else {
  for (const p of problems) log(`FAILED: ${p}`);
  process.exitCode = 1;
}
