import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTs, startTs, ROOT } from '../helpers/process.ts';

const CLI = join(ROOT, 'src/cli/wimse-server.ts');

test('wimse-server - validate accepts a good config and starts nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-cfg-'));
  const file = join(dir, 'node.yaml');
  writeFileSync(file, 'trustDomain: corp.example\nsds:\n  registrations:\n    - {nodeId: a, workloads: [wimse://corp.example/svc/a]}\n');
  const r = await runTs(CLI, ['validate', '--config', file]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /valid \(trust domain corp\.example\)/);
});

test('wimse-server - validate reports every error with its field path and exits 1', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-cfg-'));
  const file = join(dir, 'node.yaml');
  writeFileSync(file, 'trustDomain: Corp.example\ngrpc:\n  listn: x\n');
  const r = await runTs(CLI, ['validate', '--config', file]);
  t.is(r.code, 1);
  t.regex(r.stderr, /trustDomain: not a valid trust domain \(trust_domain_uppercase\)/);
  t.regex(r.stderr, /grpc\.listn: unknown field/);
});

test('wimse-server - usage errors exit 2', async (t) => {
  t.is((await runTs(CLI, ['validate'])).code, 2);
  t.is((await runTs(CLI, ['--bogus'])).code, 2);
  t.is((await runTs(CLI, ['--config'])).code, 2);
});

test('wimse-server - a missing config file is reported, not a crash', async (t) => {
  const r = await runTs(CLI, ['validate', '--config', '/nonexistent/node.yaml']);
  t.is(r.code, 1);
  t.regex(r.stderr, /ENOENT: cannot read the config file/);
});

test('wimse-server - runs a node that prints where it listens and answers /healthz', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-run-'));
  const file = join(dir, 'node.yaml');
  writeFileSync(file, 'grpc:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nlogging:\n  level: warn\n');
  const { child, stdout } = await startTs(CLI, ['--config', file], /admin HTTP: (http:\S+)/);
  t.teardown(() => child.kill('SIGKILL'));
  const admin = /admin HTTP: (http:\S+)/.exec(stdout())![1]!;
  t.regex(stdout(), /gRPC \(SDS, ext_authz, Workload API, admin API\): 127\.0\.0\.1:\d+/);
  const res = await fetch(`${admin}/healthz`);
  t.is(res.status, 200);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  t.is(await exited, 0);
});
