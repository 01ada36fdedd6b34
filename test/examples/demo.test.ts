/**
 * `npm run demo` as a real child process: a real node, SDS, the Workload API, three PEPs calling
 * ext_authz over gRPC, the mixed chain and three attacks. The type-only imports make the
 * project type-check (tsc) cover the demo's files.
 */
import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHILD_TIMEOUT_MS, runTs } from '../helpers/process.ts';
import { POLICY, WORKLOADS } from '../../examples/demo-mesh.ts';
import type * as _demo from '../../examples/demo.ts';

const { A, B, C } = WORKLOADS;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

test('examples demo - the chain is allowed hop by hop, the three attacks are denied, exit 0', async (t) => {
  const r = await runTs('examples/demo.ts', [], { timeoutMs: CHILD_TIMEOUT_MS });
  t.is(r.code, 0, r.stdout + r.stderr);
  const out = r.stdout;

  // What each application was told by its sidecar.
  t.regex(out, new RegExp(`\\[B app\\] GET /orders/1  x-wimse-caller=${esc(A.id)}  x-wimse-auth=mtls`));
  t.regex(out, new RegExp(`\\[C app\\] GET /stock/sku-42  x-wimse-caller=${esc(B.id)}  x-wimse-auth=wpt`));
  t.regex(out, new RegExp(`\\[D app\\] POST /entries  x-wimse-caller=${esc(C.id)}  x-wimse-auth=httpsig  \\(29-byte body, content-digest sha-256\\)`));
  t.regex(out, /\[A\] 200 \{"order":1,"inventory":\{"sku":"sku-42","stock":7,"ledger":201\}\}/);

  // One line per hop, each with its own decision id.
  const hops = [
    new RegExp(`^A -> B  mTLS      allow  caller=${esc(A.id)}  \\(decision (${UUID})\\)$`, 'm'),
    new RegExp(`^B -> C  WIT\\+WPT   allow  caller=${esc(B.id)}  \\(decision (${UUID})\\)$`, 'm'),
    new RegExp(`^C -> D  HTTP-sig  allow  caller=${esc(C.id)}  \\(decision (${UUID})\\)$`, 'm'),
  ];
  const ids = hops.map((re) => re.exec(out)?.[1]);
  t.true(ids.every((id) => id !== undefined), out);
  t.is(new Set(ids).size, 3, 'three distinct decisions');

  t.regex(out, /^attack  replayed WPT \(B -> C\) +deny   401 wpt\.replay$/m);
  t.regex(out, /^attack  B -> D \(not granted\) +deny   403 policy\.caller_not_granted$/m);
  t.regex(out, /^attack  tampered body \(C -> D\) +deny   400 httpsig\.digest_mismatch$/m);
  t.regex(out, /^ok: 3 hops allowed, 3 attacks denied, everything shut down \(\d+ ms\)$/m);
  t.notRegex(out, /FAIL/);
  t.notRegex(r.stderr, /error/i);
});

test('examples demo - under a policy that also grants B -> D, the demo reports the allow and exits 1', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wimse-demo-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const granted = POLICY.replace(`callers: [${C.id}]`, `callers: [${C.id}, ${B.id}]`);
  t.not(granted, POLICY);
  const file = join(dir, 'too-open.yaml');
  await writeFile(file, granted);

  const r = await runTs('examples/demo.ts', ['--policy', file], { timeoutMs: CHILD_TIMEOUT_MS });
  t.is(r.code, 1, r.stdout + r.stderr);
  t.regex(r.stdout, new RegExp(`^policy: ${esc(file)}$`, 'm'));
  // The granted hops still pass; B's write reaches D and is reported.
  t.regex(r.stdout, new RegExp(`^C -> D  HTTP-sig  allow  caller=${esc(C.id)}`, 'm'));
  t.regex(r.stdout, new RegExp(`\\[D app\\] POST /entries  x-wimse-caller=${esc(B.id)}  x-wimse-auth=httpsig  \\(32-byte body, content-digest sha-256\\)`));
  t.regex(r.stdout, /^attack  B -> D \(not granted\) +FAIL   201 -$/m);
  t.regex(r.stdout, /^FAILED: B -> D \(not granted\): expected 403/m);
  t.regex(r.stdout, /^attack  replayed WPT \(B -> C\) +deny   401 wpt\.replay$/m);
  t.notRegex(r.stdout, /^ok:/m);
});

test('examples demo - the quick start\'s policy decides as docs/quickstart.md shows (wimsectl policy test --file)', async (t) => {
  const doc = await readFile(new URL('../../docs/quickstart.md', import.meta.url), 'utf8');
  const policy = /```yaml\n# policy\.yaml\n([\s\S]*?)```/.exec(doc)?.[1];
  t.truthy(policy, 'the quick start has a policy.yaml block');
  const dir = await mkdtemp(join(tmpdir(), 'wimse-quickstart-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'policy.yaml'), policy!);
  const ask = (method: string) =>
    runTs('src/cli/wimsectl.ts', ['policy', 'test', '--file', join(dir, 'policy.yaml'), '--from', 'spiffe://example.org/ns/shop/sa/frontend',
      '--to', 'spiffe://example.org/ns/shop/sa/orders', '--method', method, '--path', '/orders/7']);
  const [get, del] = await Promise.all([ask('GET'), ask('DELETE')]);
  t.is(get.code, 0, get.stderr);
  const allowLine = get.stdout.split('\n')[0]!;
  t.true(doc.includes(allowLine), allowLine);
  t.is(del.code, 1, del.stderr);
  const denyLine = del.stdout.split('\n')[0]!;
  t.true(doc.includes(denyLine), denyLine);
  t.regex(del.stdout, /method NO  DELETE is not in \[GET\]/);
});
