import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTs, startProcess, startTs, ROOT, type Ran } from '../helpers/process.ts';

const CLI = join(ROOT, 'src/cli/wimse-server.ts');
// Each test starts node processes (tsx compiles the whole node): generous bounds on a loaded machine.
const SLOW = { timeoutMs: 120_000 };

test('wimse-server - validate accepts a good config and starts nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-cfg-'));
  const file = join(dir, 'node.yaml');
  writeFileSync(file, 'trustDomain: corp.example\nsds:\n  registrations:\n    - {nodeId: a, workloads: [wimse://corp.example/svc/a]}\n');
  const r = await runTs(CLI, ['validate', '--config', file], SLOW);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /valid \(trust domain corp\.example; gRPC 127\.0\.0\.1:8443, admin HTTP 127\.0\.0\.1:8081\)/);
});

test('wimse-server - validate reports every error with its field path and exits 1', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-cfg-'));
  const file = join(dir, 'node.yaml');
  writeFileSync(file, 'trustDomain: Corp.example\ngrpc:\n  listn: x\n');
  const r = await runTs(CLI, ['validate', '--config', file], SLOW);
  t.is(r.code, 1);
  t.regex(r.stderr, /trustDomain: not a valid trust domain \(trust_domain_uppercase\)/);
  t.regex(r.stderr, /grpc\.listn: unknown field/);
});

test('wimse-server - validate reports a policy file the node would refuse', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-cfg-'));
  const file = join(dir, 'node.yaml');
  writeFileSync(join(dir, 'policy.yaml'), 'version: 1\ndestinations: [{workload: nope, rules: []}]\n');
  writeFileSync(file, 'trustDomain: corp.example\npolicy: {file: policy.yaml}\n');
  const r = await runTs(CLI, ['validate', '--config', file], SLOW);
  t.is(r.code, 1);
  t.regex(r.stderr, /policy\.file: .*policy\.yaml is not a valid policy \(docs\/policy\.md\); the node would start and deny every request until it is fixed:\n {4}destinations\[0\]\.workload: /);
  writeFileSync(join(dir, 'policy.yaml'), 'version: 1\ndestinations: []\n');
  t.is((await runTs(CLI, ['validate', '--config', file], SLOW)).code, 0);
});

test('wimse-server - usage errors exit 2', async (t) => {
  t.is((await runTs(CLI, ['validate'], SLOW)).code, 2);
  t.is((await runTs(CLI, ['--bogus'], SLOW)).code, 2);
  t.is((await runTs(CLI, ['--config'], SLOW)).code, 2);
});

test('wimse-server - a missing config file is reported, not a crash', async (t) => {
  const r = await runTs(CLI, ['validate', '--config', '/nonexistent/node.yaml'], SLOW);
  t.is(r.code, 1);
  t.regex(r.stderr, /ENOENT: cannot read the config file/);
});

test('wimse-server - runs a node that prints where it listens and answers /healthz', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-run-'));
  const file = join(dir, 'node.yaml');
  writeFileSync(file, 'grpc:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nlogging:\n  level: warn\n');
  const { child, stdout } = await startTs(CLI, ['--config', file], /admin HTTP: (http:\S+)/, SLOW);
  t.teardown(() => child.kill('SIGKILL'));
  const admin = /admin HTTP: (http:\S+)/.exec(stdout())![1]!;
  t.regex(stdout(), /gRPC \(SDS, ext_authz, Workload API, admin API\): 127\.0\.0\.1:\d+/);
  const res = await fetch(`${admin}/healthz`);
  t.is(res.status, 200);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  t.is(await exited, 0);
});

test('wimse-server - --version prints the package version', async (t) => {
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const r = await runTs(CLI, ['--version']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `wimse-server ${version}\n`);
});

/** This environment without WIMSE_* listen variables, plus `extra`. */
const envWith = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const env = { ...process.env, ...extra };
  for (const k of ['WIMSE_GRPC_LISTEN', 'WIMSE_ADMIN_LISTEN']) if (!(k in extra)) delete env[k];
  return env;
};

test('wimse-server - listen addresses: a flag wins over the environment, which wins over the config file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-listen-'));
  const file = join(dir, 'node.yaml');
  writeFileSync(file, 'grpc:\n  listen: 127.0.0.1:7001\nadmin:\n  listen: 127.0.0.1:7002\n');
  const validate = async (args: string[], env: Record<string, string> = {}) => {
    const r = await runTs(CLI, ['validate', '--config', file, ...args], { env: envWith(env) });
    t.is(r.code, 0, r.stderr);
    return /gRPC (\S+), admin HTTP (\S+)\)/.exec(r.stdout)!.slice(1);
  };
  const ENV = { WIMSE_GRPC_LISTEN: '127.0.0.1:7101', WIMSE_ADMIN_LISTEN: '127.0.0.1:7102' };
  const fromFile = await validate([]);
  const fromEnv = await validate([], ENV);
  const fromFlags = await validate(['--grpc-listen', '127.0.0.1:7201', '--admin-listen=127.0.0.1:7202'], ENV);
  const mixed = await validate(['--admin-listen', '127.0.0.1:7302'], { WIMSE_GRPC_LISTEN: `unix:${dir}/grpc.sock` });
  const emptyEnv = await validate([], { WIMSE_GRPC_LISTEN: '', WIMSE_ADMIN_LISTEN: '' });
  const adminOff = await validate(['--admin-listen', '']);
  t.deepEqual(fromFile, ['127.0.0.1:7001', '127.0.0.1:7002']);
  t.deepEqual(fromEnv, ['127.0.0.1:7101', '127.0.0.1:7102']);
  t.deepEqual(fromFlags, ['127.0.0.1:7201', '127.0.0.1:7202']);
  t.deepEqual(mixed, [`unix:${dir}/grpc.sock`, '127.0.0.1:7302']);
  t.deepEqual(emptyEnv, ['127.0.0.1:7001', '127.0.0.1:7002'], 'an empty variable is unset');
  t.deepEqual(adminOff, ['127.0.0.1:7001', 'off']);
  // Without a config file, over the embedded defaults.
  const bare = await runTs(CLI, ['validate', '--config', join(dir, 'empty.yaml')], { env: envWith() });
  t.is(bare.code, 1, 'validate still needs a readable file');
});

test('wimse-server - a bad listen address from a flag or the environment is refused like the config file\'s, naming where it came from', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-listen-'));
  const file = join(dir, 'node.yaml');
  writeFileSync(file, 'grpc:\n  listen: unix:/tmp/wimse-test.sock\n  tls: {certFile: a.pem, keyFile: a.key}\n');
  const flag = await runTs(CLI, ['validate', '--config', file, '--grpc-listen', '127.0.0.1:8443', '--admin-listen', 'localhost'], { env: envWith() });
  const env = await runTs(CLI, ['validate', '--config', file, '--grpc-listen', '127.0.0.1:8443'], { env: envWith({ WIMSE_ADMIN_LISTEN: 'x:99999' }) });
  const both = await runTs(CLI, ['--grpc-listen', 'nowhere'], { env: envWith({ WIMSE_ADMIN_LISTEN: ':1' }) });
  const tlsUnix = await runTs(CLI, ['validate', '--config', file], { env: envWith() });
  const noValue = await runTs(CLI, ['validate', '--config', file, '--grpc-listen'], { env: envWith() });
  t.is(flag.code, 1);
  t.regex(flag.stderr, /admin\.listen \(from --admin-listen\): must be HOST:PORT \(port 0 picks a free port\)/);
  t.is(env.code, 1);
  t.regex(env.stderr, /admin\.listen \(from WIMSE_ADMIN_LISTEN\): port 99999 is out of range/);
  t.is(both.code, 1);
  // A start (here on the embedded defaults) says it in one line.
  t.regex(both.stderr, /^wimse-server: cannot start: the embedded defaults \(no --config\) is not valid: grpc\.listen \(from --grpc-listen\): must be HOST:PORT.*; admin\.listen \(from WIMSE_ADMIN_LISTEN\): must be HOST:PORT.*\. Fix these fields\n$/);
  // The file's cross-field rules see the overridden value: TLS on a unix socket is refused, on TCP accepted.
  t.is(tlsUnix.code, 1);
  t.regex(tlsUnix.stderr, /grpc\.tls: TLS applies to TCP listeners only/);
  t.notRegex(flag.stderr, /grpc\.tls/);
  t.is(noValue.code, 2);
  t.regex(noValue.stderr, /--grpc-listen needs an address/);
});

test('wimse-server - runs on the listeners given by flag and environment', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-listen-'));
  const file = join(dir, 'node.yaml');
  writeFileSync(file, 'grpc:\n  listen: 127.0.0.1:1\nadmin:\n  listen: ""\nlogging:\n  level: warn\n');
  const sock = join(dir, 'grpc.sock');
  const { child, stdout } = await startTs(CLI, ['--config', file, '--grpc-listen', `unix:${sock}`], /admin HTTP: (http:\S+)/, {
    env: envWith({ WIMSE_ADMIN_LISTEN: '127.0.0.1:0' }),
    timeoutMs: 90_000,
  });
  t.teardown(() => child.kill('SIGKILL'));
  t.regex(stdout(), new RegExp(`admin API\\): unix:${sock.replace(/[.]/g, '\\.')}\\n`));
  const admin = /admin HTTP: (http:\S+)/.exec(stdout())![1]!;
  t.is((await fetch(`${admin}/healthz`)).status, 200);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  t.is(await exited, 0);
});

test('wimse-server - npm start builds dist/ and runs the bin with plain node; flags pass through', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-npm-start-'));
  const file = join(dir, 'node.yaml');
  writeFileSync(file, 'stateDir: ./state\nlogging:\n  level: warn\n');
  const { child, stdout } = await startProcess('npm', ['start', '--', '--config', file, '--grpc-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], /admin HTTP: (http:\S+)/, {
    env: envWith(),
    detached: true,
    timeoutMs: 120_000,
  });
  t.teardown(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  t.regex(stdout(), /tsc -p tsconfig\.build\.json/);
  t.regex(stdout(), /node bin\/wimse-server\.mjs --config/);
  t.true(existsSync(join(ROOT, 'dist/cli/wimse-server.js')));
  t.regex(stdout(), new RegExp(`state: ${dir.replace(/[.]/g, '\\.')}/state`));
  const admin = /admin HTTP: (http:\S+)/.exec(stdout())![1]!;
  t.is((await fetch(`${admin}/healthz`)).status, 200);
  // npm passes SIGTERM on and ends with it; the node stops and its listener closes.
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  process.kill(-child.pid!, 'SIGTERM');
  await exited;
  await t.throwsAsync(async () => {
    for (let i = 0; i < 300; i++) {
      await fetch(`${admin}/healthz`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
});

// ---- a start that fails: one line on stderr with the cause and the remedy, exit 1, no stack ----


/** The one line of a failed start (and that it is one line, with no stack). */
function oneLine(t: ExecutionContext, r: Ran): string {
  t.is(r.code, 1, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  t.is(lines.length, 1, `one line expected, got:\n${r.stderr}`);
  t.false(/\n\s+at /.test(r.stderr), 'no stack trace');
  t.regex(lines[0]!, /^wimse-server: cannot start: /);
  return lines[0]!;
}

function configIn(dir: string, yaml: string): string {
  const file = join(dir, 'node.yaml');
  const listen = (/^grpc:/m.test(yaml) ? '' : 'grpc:\n  listen: 127.0.0.1:0\n') + (/^admin:/m.test(yaml) ? '' : 'admin:\n  listen: 127.0.0.1:0\n');
  writeFileSync(file, `${listen}logging:\n  level: warn\n${yaml}`);
  return file;
}

test.serial('wimse-server - keys.ttl: 99999999999999d is refused by validate and by start, with the field and its range; nothing is written', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-fail-'));
  const file = configIn(dir, 'keys:\n  ttl: 99999999999999d\n');
  const v = await runTs(CLI, ['validate', '--config', file], SLOW);
  t.is(v.code, 1);
  t.regex(v.stderr, /keys\.ttl: must be at most 36500d/);
  const line = oneLine(t, await runTs(CLI, ['--config', file], SLOW));
  t.true(line.includes(`${file} is not valid: keys.ttl: must be at most 36500d. Fix this field (wimse-server validate --config ${file} runs the same checks)`), line);
  t.false(existsSync(join(dir, 'state')), 'no state directory, so no journal to refuse later');
});

test.serial('wimse-server - a missing TLS key file: validate names the field, start says it in one line and writes nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-fail-'));
  const file = configIn(dir, 'grpc:\n  listen: 127.0.0.1:0\n  tls: {certFile: server.pem, keyFile: server.key}\n');
  const v = await runTs(CLI, ['validate', '--config', file], SLOW);
  t.is(v.code, 1);
  t.true(v.stderr.includes(`grpc.tls.certFile: ${join(dir, 'server.pem')}: does not exist`), v.stderr);
  const line = oneLine(t, await runTs(CLI, ['--config', file], SLOW));
  t.true(line.includes(`grpc.tls.keyFile: ${join(dir, 'server.key')}: does not exist`), line);
  t.false(existsSync(join(dir, 'state')));
});

test.serial('wimse-server - a port in use: one line naming the field and how to free it; the state written meanwhile loads again', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-fail-'));
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => void blocker.close());
  const port = (blocker.address() as AddressInfo).port;
  const file = configIn(dir, `grpc:\n  listen: 127.0.0.1:${port}\n`);
  const line = oneLine(t, await runTs(CLI, ['--config', file], SLOW));
  t.true(line.endsWith(`127.0.0.1:${port} (grpc.listen) is already in use. Stop what listens there (ss -ltnp 'sport = :${port}'), or set grpc.listen to another port (0 picks a free one)`), line);
  // The failed start left a state directory that validates and starts.
  const v = await runTs(CLI, ['validate', '--config', configIn(dir, '')], SLOW);
  t.is(v.code, 0, v.stderr);
});

test.serial('wimse-server - a state directory held by a running node: one line, what to stop', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-fail-'));
  const file = configIn(dir, '');
  const { child } = await startTs(CLI, ['--config', file], /admin HTTP: (http:\S+)/, SLOW);
  t.teardown(() => void child.kill('SIGKILL'));
  const line = oneLine(t, await runTs(CLI, ['--config', file], SLOW));
  t.regex(line, new RegExp(`the state directory is in use: ${join(dir, 'state', 'ca', 'lock')}: process ${child.pid} on host ".+" since \\S+: that process is running\\. Stop that wimse-server first, or give this node a stateDir of its own$`));
});

test.serial('wimse-server - a lock naming a live process that may not be a node: one line with what to check and which file to remove', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-fail-'));
  const file = configIn(dir, '');
  mkdirSync(join(dir, 'state', 'ca'), { recursive: true, mode: 0o700 });
  const other = spawn('sleep', ['300'], { stdio: 'ignore' });
  t.teardown(() => void other.kill('SIGKILL'));
  const lock = join(dir, 'state', 'ca', 'lock');
  writeFileSync(lock, `${other.pid}\n`); // as an earlier version wrote it
  const line = oneLine(t, await runTs(CLI, ['--config', file], SLOW));
  t.true(line.endsWith(`Check that no wimse-server runs with this state directory (ps -p ${other.pid} -o pid,lstart,args), then remove ${lock}`), line);
});

test.serial('wimse-server - a damaged key journal: one line with its path, and how to recover; --debug adds the stack', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-fail-'));
  const file = configIn(dir, '');
  const { child } = await startTs(CLI, ['--config', file], /admin HTTP: (http:\S+)/, SLOW);
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
  const journal = join(dir, 'state', 'ca', 'keys.journal');
  writeFileSync(journal, readFileSync(journal).subarray(0, 200));
  const line = oneLine(t, await runTs(CLI, ['--config', file], SLOW));
  t.true(line.includes(`stateDir: ${journal}: truncated: `), line);
  t.true(line.includes(`restore it from a copy of this node's state directory, or move ${join(dir, 'state', 'ca')} aside to start with new keys`), line);
  const debug = await runTs(CLI, ['--config', file, '--debug'], SLOW);
  t.is(debug.code, 1);
  t.is(debug.stderr.split('\n')[0], line);
  t.regex(debug.stderr, /\n\s+at /, 'the stack, on request');
});
