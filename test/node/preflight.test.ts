import test from 'ava';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseConfig, type NodeConfig } from '../../src/config/config.ts';
import { policyProblems, preflight } from '../../src/node-preflight.ts';
import { startNode } from '../../src/node.ts';
import { silentLogger } from '../../src/log.ts';
import { decodeJournal, journalPath } from '../../src/ca/index.ts';

/** `yaml` with free ports for the listeners it does not set itself. */
function config(dir: string, yaml: string): NodeConfig {
  const listen = (/^grpc:/m.test(yaml) ? '' : 'grpc:\n  listen: 127.0.0.1:0\n') + (/^admin:/m.test(yaml) ? '' : 'admin:\n  listen: 127.0.0.1:0\n');
  const r = parseConfig(listen + yaml, dir);
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.value;
}

function selfSigned(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`, '-days', '1', '-keyout', key, '-out', cert], {
    stdio: 'ignore',
  });
  return { cert, key };
}

/** Each: a config the schema accepts but the node could not start with, and the problem expected. */
const cases: Array<[string, (dir: string) => string, RegExp]> = [
  ['a TLS certificate file that does not exist', () => 'grpc:\n  listen: 127.0.0.1:0\n  tls: {certFile: /nonexistent/c.pem, keyFile: /nonexistent/k.pem}\n', /^grpc\.tls\.certFile: \/nonexistent\/c\.pem: does not exist$/],
  [
    'a TLS key that is not the certificate\'s',
    (dir) => {
      const a = selfSigned(dir, 'a');
      const b = selfSigned(dir, 'b');
      return `grpc:\n  listen: 127.0.0.1:0\n  tls: {certFile: ${a.cert}, keyFile: ${b.key}}\n`;
    },
    /^grpc\.tls\.keyFile: .*b\.key is not the private key of the first certificate/,
  ],
  ['a federation bundle that is not JSON', (dir) => (writeFileSync(join(dir, 'b.json'), '{nope'), 'federation: [{trustDomain: partner.example, bundleFile: b.json}]\n'), /^federation\[0\]\.bundleFile: .*b\.json: not JSON/],
  ['an admin token file that does not exist', () => 'admin:\n  listen: 127.0.0.1:0\n  tokenFile: /nonexistent/token\n', /^admin\.tokenFile: \/nonexistent\/token does not exist/],
  ['a node-token file that is not JSON', (dir) => (writeFileSync(join(dir, 't.json'), 'x'), 'sds: {nodeTokensFile: t.json}\n'), /^sds\.nodeTokensFile: .*t\.json: not JSON/],
  ['NATS credentials that do not exist', () => 'cluster: {servers: [nats://127.0.0.1:4222], credsFile: /nonexistent/n.creds}\n', /^cluster\.credsFile: \/nonexistent\/n\.creds: does not exist/],
  ['a state directory that is a file', (dir) => (writeFileSync(join(dir, 'f'), ''), 'stateDir: f\n'), /^stateDir: .*\/f is not a directory$/],
  ['a host name that does not resolve', () => 'grpc: {listen: "no-such-host.invalid:8443"}\n', /^grpc\.listen: host "no-such-host\.invalid" does not resolve/],
  ['a Unix socket in a directory that does not exist', () => 'grpc: {listen: "unix:/nonexistent/dir/s.sock"}\n', /^grpc\.listen: the socket's directory \/nonexistent\/dir does not exist$/],
];

for (const [name, write, expected] of cases)
  test(`preflight - ${name}: validate and start refuse it alike, and the start writes nothing`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wimse-preflight-'));
    const cfg = config(dir, write(dir));
    const existed = existsSync(cfg.stateDir);
    const problems = await preflight(cfg);
    t.true(problems.some((p) => expected.test(p)), JSON.stringify(problems));
    const e = await t.throwsAsync<ConfigError>(startNode(cfg, { logger: silentLogger() }), { instanceOf: ConfigError });
    t.deepEqual(e!.errors, problems, 'start refuses with what validate reports');
    t.is(existsSync(cfg.stateDir), existed, 'the state directory was not created');
    t.false(existsSync(join(cfg.stateDir, 'ca')), 'no journal, no lock were written');
  });

test('preflight - problems are reported in the config order, not in the order the checks finish', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-preflight-'));
  // The certificate file takes long to read; the key file fails at once.
  const slow = join(dir, 'slow.pem');
  writeFileSync(slow, Buffer.alloc(16 << 20, 'x'));
  const cfg = config(dir, `grpc:\n  listen: 127.0.0.1:0\n  tls: {certFile: ${slow}, keyFile: /nonexistent/k.pem}\n`);
  const expected = [`grpc.tls.certFile: ${slow} holds no PEM certificate`, 'grpc.tls.keyFile: /nonexistent/k.pem: does not exist'];
  t.deepEqual(await preflight(cfg), expected);
  const e = await t.throwsAsync<ConfigError>(startNode(cfg, { logger: silentLogger() }), { instanceOf: ConfigError });
  t.deepEqual(e!.errors, expected);
});

test('preflight - a state directory of another trust domain is refused before the lock is taken, the journal left as it was', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-preflight-'));
  const first = await startNode(config(dir, 'trustDomain: one.example\n'), { logger: silentLogger() });
  await first.close();
  const journal = readFileSync(journalPath(join(dir, 'state')));
  const cfg = config(dir, 'trustDomain: two.example\n');
  t.deepEqual(await preflight(cfg), [
    `stateDir: ${journalPath(cfg.stateDir)}: journal is for trust domain "one.example", not "two.example"; give this trust domain a stateDir of its own, or set trustDomain back to the journal's`,
  ]);
  await t.throwsAsync(startNode(cfg, { logger: silentLogger() }), { instanceOf: ConfigError });
  t.deepEqual(readFileSync(journalPath(cfg.stateDir)), journal);
  t.deepEqual(readdirSync(join(cfg.stateDir, 'ca')), ['keys.journal'], 'no lock left behind');
});

test('preflight - a damaged journal is reported with its path and reason, and left untouched', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-preflight-'));
  const cfg = config(dir, '');
  await (await startNode(cfg, { logger: silentLogger() })).close();
  const path = journalPath(cfg.stateDir);
  const damaged = Buffer.from(readFileSync(path));
  damaged[damaged.length - 2] = damaged[damaged.length - 2]! ^ 0x04;
  writeFileSync(path, damaged);
  t.deepEqual(await preflight(cfg), [
    `stateDir: ${path}: checksum_mismatch: SHA-256 of the body does not match the header; restore it from a copy of this node's state directory, ` +
      `or move ${join(cfg.stateDir, 'ca')} aside to start with new keys (their roots replace the old ones in the trust bundle; SDS re-issues every certificate)`,
  ]);
  await t.throwsAsync(startNode(cfg, { logger: silentLogger() }), { instanceOf: ConfigError });
  t.deepEqual(readFileSync(path), damaged);
});

test('preflight - the largest values validate accepts start, and the journal they write loads on the next start', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-preflight-'));
  const cfg = config(dir, 'keys:\n  ttl: 36500d\n  rotationInterval: 24d\ncredentials: {wicTtl: 6083d, witTtl: 6083d}\nauthn: {maxWptLifetime: 1d, maxSignatureWindow: 1d, maxClockSkew: 10m}\n');
  t.deepEqual(await preflight(cfg), []);
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  t.teardown(() => void process.off('warning', onWarning));
  const node = await startNode(cfg, { logger: silentLogger() });
  await node.close();
  const again = await startNode(cfg, { logger: silentLogger() });
  t.teardown(() => again.close());
  t.true(again.readiness().ready);
  const body = decodeJournal('j', readFileSync(journalPath(cfg.stateDir)));
  const root = new X509Certificate(body.keys.find((k) => k.kind === 'x509')!.certPem!);
  t.true(Date.parse(root.validTo) > Date.now() + 99 * 365 * 86_400_000, root.validTo);
  t.false(warnings.includes('TimeoutOverflowWarning'), 'no timer was cut to 1 ms');
});

test('preflight - a fresh state directory under a writable parent passes, and nothing is created by the check', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-preflight-'));
  mkdirSync(join(dir, 'etc'));
  const cfg = config(join(dir, 'etc'), 'stateDir: ../var/lib/wimse\n');
  t.deepEqual(await preflight(cfg), []);
  t.false(existsSync(join(dir, 'var')));
});

const GOOD_POLICY = 'version: 1\ndestinations: []\n';

test('policy problems - the policy file start would load is checked as start loads it; start itself still refuses none of them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-preflight-'));
  writeFileSync(join(dir, 'good.yaml'), GOOD_POLICY);
  writeFileSync(join(dir, 'bad.yaml'), 'version: 1\ndestinations:\n  - workload: not-an-id\n    rules: []\n');
  writeFileSync(join(dir, 'big.yaml'), Buffer.alloc((4 << 20) + 1, ' '));
  const named = (file: string) => config(dir, `policy: {file: ${file}}\n`);
  t.deepEqual(await policyProblems(named('good.yaml')), []);
  t.deepEqual(await policyProblems(config(dir, '')), [], 'no policy named and none in the state directory: nothing to check');
  const missing = await policyProblems(named('gone.yaml'));
  t.deepEqual(missing, [`policy.file: ${join(dir, 'gone.yaml')}: does not exist; the node would start and deny every request until it is fixed`]);
  const bad = await policyProblems(named('bad.yaml'));
  t.regex(bad[0]!, /^policy\.file: .*bad\.yaml is not a valid policy \(docs\/policy\.md\); the node would start and deny every request until it is fixed:$/);
  t.regex(bad[1]!, /^ {2}destinations\[0\]\.workload: .*\(line 3, column \d+\)$/, 'errors point into the file');
  const big = await policyProblems(named('big.yaml'));
  t.regex(big[0]!, /big\.yaml is 4194305 bytes, more than the limit of 4194304/);
  t.deepEqual(await policyProblems(named('.')), [`policy.file: ${dir} is not a file; the node would start and deny every request until it is fixed`]);
  // The state directory's policy.yaml (written by the admin API) is checked when no file is named.
  const cfg = config(dir, '');
  mkdirSync(cfg.stateDir, { recursive: true });
  writeFileSync(join(cfg.stateDir, 'policy.yaml'), 'version: 2\n');
  t.regex((await policyProblems(cfg))[0]!, /^stateDir: .*policy\.yaml is not a valid policy/);
  // A start is not refused for any of these: the node denies every request and watches the file.
  t.deepEqual(await preflight(named('bad.yaml')), []);
  const node = await startNode(named('bad.yaml'), { logger: silentLogger() });
  t.is(node.policy.current().status, 'invalid');
  await node.close();
});
