import test from 'ava';
import { readFileSync, statSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startAdminNode, newDir, writeFile, POLICY } from './helpers.ts';

const err = (e: unknown) => e as grpc.ServiceError;
const json = (d: { text: string }) => JSON.parse(d.text);
const ALLOWED = { from: 'wimse://example.org/svc/frontend', to: 'wimse://example.org/svc/orders', method: 'GET', path: '/orders/1' };

test('admin API policy - without a policy file: applied to <stateDir>/policy.yaml, served at once, loaded after a restart', async (t) => {
  const dir = newDir();
  const a = await startAdminNode(t, dir);
  t.is(err(await t.throwsAsync(a.call('GetPolicy'))).code, grpc.status.NOT_FOUND);
  const applied = json(await a.call('ApplyPolicy', { text: POLICY }));
  t.true(applied.changed);
  t.is(applied.file, join(dir, 'state', 'policy.yaml'));
  t.is(a.node.policy.current().status, 'ok');
  t.is(readFileSync(applied.file, 'utf8'), POLICY);
  t.is(statSync(applied.file).mode & 0o777, 0o600);
  const shown = json(await a.call('GetPolicy'));
  t.is(shown.text, POLICY);
  t.is(shown.digest, applied.digest);
  t.is(shown.status, 'ok');
  await a.close();
  const b = await startAdminNode(t, dir);
  t.is(b.node.policy.current().digest, applied.digest);
  t.true(json(await b.call('TestPolicy', ALLOWED)).decision.allow);
});

test('admin API policy - a refused policy lists every error with its field path and the old one keeps serving', async (t) => {
  const dir = newDir();
  const file = writeFile(dir, 'policy.yaml', POLICY);
  const n = await startAdminNode(t, dir, 'policy:\n  file: policy.yaml\n');
  const digest = n.node.policy.current().digest;
  const bad = err(await t.throwsAsync(n.call('ApplyPolicy', { text: 'version: 2\ndestinations:\n  - workload: nope\n    rules: []\n' })));
  t.is(bad.code, grpc.status.INVALID_ARGUMENT);
  t.regex(bad.details, /the policy was refused and the current one keeps serving/);
  t.regex(bad.details, /version/);
  t.regex(bad.details, /destinations\[0\]\.workload/);
  t.regex(bad.details, /Fix these and apply again/);
  t.is(n.node.policy.current().digest, digest);
  t.is(readFileSync(file, 'utf8'), POLICY, 'the file is untouched');
  t.is(err(await t.throwsAsync(n.call('ApplyPolicy', { text: '' }))).code, grpc.status.INVALID_ARGUMENT);
});

test('admin API policy - with a policy file: written there atomically, the watcher sees the same content', async (t) => {
  const dir = newDir();
  const file = writeFile(dir, 'policy.yaml', POLICY);
  const n = await startAdminNode(t, dir, 'policy:\n  file: policy.yaml\n');
  const next = POLICY.replace('methods: [GET]', 'methods: [GET, POST]');
  let fileLoads = 0;
  n.node.policy.onLoad(({ source }) => source === file && fileLoads++);
  const applied = json(await n.call('ApplyPolicy', { text: next }));
  t.is(applied.file, file);
  t.true(applied.changed);
  t.is(readFileSync(file, 'utf8'), next);
  const version = n.node.policy.version;
  // The API's own load, then the watcher's re-read of the file it wrote: same content, no change.
  for (const end = Date.now() + 30_000; fileLoads < 2 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
  t.true(fileLoads >= 2, 'the watcher re-read the file');
  t.is(n.node.policy.version, version);
  t.true(json(await n.call('TestPolicy', { ...ALLOWED, method: 'POST' })).decision.allow);
});

test('admin API policy - an apply that the file watcher loads first still reports the change', async (t) => {
  const dir = newDir();
  const file = writeFile(dir, 'policy.yaml', POLICY);
  const n = await startAdminNode(t, dir, 'policy:\n  file: policy.yaml\n');
  const before = n.node.policy.version;
  // A slow disk: the directory's fsync after the rename outlasts the watcher's debounce, so the
  // watcher loads the new file before the apply does. Held here until that has happened.
  let watcherLoaded = false;
  n.node.policy.onLoad(({ source, result }) => source === file && result.ok && result.changed && (watcherLoaded = true));
  const fsp = createRequire(import.meta.url)('node:fs/promises') as typeof import('node:fs/promises');
  const realOpen = fsp.open;
  fsp.open = (async (path: Parameters<typeof realOpen>[0], ...rest: unknown[]) => {
    if (path === dirname(file) && rest[0] === 'r')
      for (const end = Date.now() + 30_000; !watcherLoaded && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
    return (realOpen as (...a: unknown[]) => ReturnType<typeof realOpen>)(path, ...rest);
  }) as typeof realOpen;
  syncBuiltinESMExports();
  t.teardown(() => {
    fsp.open = realOpen;
    syncBuiltinESMExports();
  });
  const next = POLICY.replace('methods: [GET]', 'methods: [GET, POST]');
  const applied = json(await n.call('ApplyPolicy', { text: next }));
  t.true(watcherLoaded, 'the watcher loaded the file first');
  t.true(applied.changed);
  t.is(applied.version, before + 1);
  t.is(applied.digest, n.node.policy.current().digest);
});

test('admin API policy - test explains allow and deny, and checks its arguments', async (t) => {
  const dir = newDir();
  writeFile(dir, 'policy.yaml', POLICY);
  const n = await startAdminNode(t, dir, 'policy:\n  file: policy.yaml\n');
  const allow = json(await n.call('TestPolicy', ALLOWED));
  t.true(allow.decision.allow);
  t.is(allow.decidedBy, 'frontend-reads');
  t.regex(allow.text, /decision: ALLOW/);
  const deny = json(await n.call('TestPolicy', { ...ALLOWED, method: 'DELETE', via: 'wpt' }));
  t.false(deny.decision.allow);
  t.regex(deny.text, /method NO  DELETE is not in \[GET\]/);
  t.regex(err(await t.throwsAsync(n.call('TestPolicy', { ...ALLOWED, via: 'carrier-pigeon' }))).details, /^via: must be one of mtls, wpt, httpsig/);
  t.regex(err(await t.throwsAsync(n.call('TestPolicy', { ...ALLOWED, path: '' }))).details, /^path: is required/);
});
