import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startAdminNode, newDir, writeFile, POLICY } from '../admin/helpers.ts';
import { against, wimsectl } from '../admin/cli.ts';

const REQ = ['--from', 'wimse://example.org/svc/frontend', '--to', 'wimse://example.org/svc/orders', '--method', 'GET', '--path', '/orders/7'];

test('wimsectl policy - apply, show, test against the node (exit 0 allow, 1 deny)', async (t) => {
  const n = await startAdminNode(t, newDir());
  const w = against(n);
  const file = writeFile(n.dir, 'p.yaml', POLICY);
  const applied = await w(['policy', 'apply', file]);
  t.is(applied.code, 0, applied.stderr);
  t.regex(applied.stdout, /^policy applied: version 1, sha256:[0-9a-f]{64} \(written to .*state\/policy\.yaml\)/);
  t.is(readFileSync(join(n.node.config.stateDir, 'policy.yaml'), 'utf8'), POLICY);
  const show = await w(['policy', 'show']);
  t.regex(show.stdout, /^# file: .*policy\.yaml\n# version 1, sha256:\S+, status ok\n/);
  t.true(show.stdout.endsWith(POLICY));
  const [allow, deny, denyJson] = await Promise.all([
    w(['policy', 'test', ...REQ]),
    w(['policy', 'test', ...REQ, '--via', 'wpt']),
    w(['policy', 'test', ...REQ.slice(0, 4), '--method', 'DELETE', '--path', '/orders/7', '-o', 'json']),
  ]);
  t.is(allow.code, 0, allow.stderr);
  t.regex(allow.stdout, /decision: ALLOW \(policy\.allow\) by rule "frontend-reads"/);
  t.is(deny.code, 1);
  t.regex(deny.stdout, /decision: DENY/);
  t.regex(deny.stdout, /authn\s+NO\s+wpt is not in \[mtls\]/);
  t.is(denyJson.code, 1);
  t.false(JSON.parse(denyJson.stdout).decision.allow);
});

test('wimsectl policy - a refused apply lists every error and exits 1; the old policy keeps serving', async (t) => {
  const n = await startAdminNode(t, newDir());
  const w = against(n);
  t.is((await w(['policy', 'apply', '-'], { stdin: POLICY })).code, 0);
  const digest = n.node.policy.current().digest;
  const bad = await w(['policy', 'apply', '-'], { stdin: 'version: 1\ndestinations:\n  - workload: wimse://example.org/a\n    rules:\n      - {name: r, paths: [{prefix: /x}], callers: [nope], authn: [sms]}\n' });
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^wimsectl: the policy was refused and the current one keeps serving:\n/);
  t.regex(bad.stderr, /destinations\[0\]\.rules\[0\]\.paths\[0\]\.prefix/);
  t.regex(bad.stderr, /destinations\[0\]\.rules\[0\]\.callers\[0\]/);
  t.regex(bad.stderr, /destinations\[0\]\.rules\[0\]\.authn\[0\]/);
  t.is(n.node.policy.current().digest, digest);
  const missing = await w(['policy', 'apply']);
  t.is(missing.code, 2);
});

test('wimsectl policy test --file works offline, with no node and no token', async (t) => {
  const dir = newDir();
  const file = writeFile(dir, 'p.yaml', POLICY);
  const bad = writeFile(dir, 'bad.yaml', 'version: 1\ndestinations: 7\n');
  const [allow, deny, invalid, via] = await Promise.all([
    wimsectl(['--server', '127.0.0.1:1', 'policy', 'test', ...REQ, '--file', file]),
    wimsectl(['policy', 'test', ...REQ.slice(0, 6), '--path', '/admin', '--file', file, '-o', 'json']),
    wimsectl(['policy', 'test', ...REQ, '--file', bad]),
    wimsectl(['policy', 'test', ...REQ, '--via', 'fax', '--file', file]),
  ]);
  t.is(allow.code, 0, allow.stderr);
  t.regex(allow.stdout, /decision: ALLOW/);
  t.is(deny.code, 1);
  t.is(JSON.parse(deny.stdout).rules[0].path.ok, false);
  t.is(invalid.code, 1);
  t.regex(invalid.stderr, /bad\.yaml is not a valid policy:\n\s+destinations/);
  t.is(via.code, 2);
  t.regex(via.stderr, /--via must be one of mtls, wpt, httpsig/);
});

test('wimsectl authn check - delegates to the offline checker (exit 1 rejected, 2 usage)', async (t) => {
  const n = await startAdminNode(t, newDir());
  const bundle = writeFile(n.dir, 'bundle.json', (await against(n)(['bundle', 'export'])).stdout);
  const req = JSON.stringify({ method: 'GET', url: 'https://orders.example.org/orders/1', headers: [['host', 'orders.example.org']] });
  const [rejected, usage] = await Promise.all([
    wimsectl(['authn', 'check', '--bundle', bundle, '-o', 'json'], { stdin: req }),
    wimsectl(['authn', 'check'], { stdin: req }),
  ]);
  t.is(rejected.code, 1, rejected.stderr);
  const out = JSON.parse(rejected.stdout);
  t.false(out.authenticated);
  t.is(out.error.status, 401);
  t.is(usage.code, 2);
  t.regex(JSON.parse(usage.stdout).error.detail, /--bundle is required/);
});
