import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createWpt } from '../../src/authn/index.ts';
import { runAuthnCheck } from '../../src/cli/authn-check.ts';
import { toSpiffeBundleMap } from '../../src/identity/trust-bundle.ts';
import { AUD, NOW, bundleOf, bundleSet, issuer, keyPair, mintWitRaw } from '../authn/helpers.ts';
import { leaf, rootCa, type Ca } from '../authn/pki.ts';

const WIMSECTL = fileURLToPath(new URL('../../src/cli/wimsectl.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'authn-check-'));
const bundlePath = join(dir, 'bundle.json');
const iss = issuer('example.org');
const workload = keyPair('EdDSA');
let ca: Ca;

test.before(async () => {
  ca = await rootCa('example.org root', NOW * 1000);
  writeFileSync(bundlePath, JSON.stringify(toSpiffeBundleMap(bundleSet(bundleOf('example.org', [iss.witKey], [ca.der])))));
});
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function wptRequestJson(opts: { nowSec?: number; query?: string } = {}): string {
  const wit = mintWitRaw(iss, { workload });
  const wpt = createWpt({ wit, privateKey: workload.privateKey, alg: 'EdDSA', aud: AUD, nowSec: opts.nowSec ?? NOW });
  return JSON.stringify({
    method: 'POST',
    url: `https://svc-b.example.org/api${opts.query ?? ''}`,
    headers: [
      ['Workload-Identity-Token', wit],
      ['Authorization', `WPT ${wpt}`],
      ['Content-Type', 'application/json'],
    ],
    body: Buffer.from('{"a":1}').toString('base64'),
  });
}

function run(args: string[], stdin: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, ['--import=tsx', WIMSECTL, 'authn', 'check', ...args], { timeout: 30_000 }, (err, stdout) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? (err.code as number) : 0, stdout });
    });
    child.stdin!.end(stdin);
  });
}

const args = ['--bundle', bundlePath, '--audience', AUD, '--now', String(NOW)];

test('authn check - a WIT+WPT request authenticates (child process, exit 0)', async (t) => {
  const r = await run(args, wptRequestJson());
  t.is(r.code, 0);
  t.deepEqual(JSON.parse(r.stdout), { authenticated: true, caller: 'spiffe://example.org/ns/default/sa/client', via: 'wpt' });
  t.is(r.stdout.split('\n').length, 2); // exactly one line
});

test('authn check - a rejected request prints the error and exits 1 (child process)', async (t) => {
  const r = await run(args, wptRequestJson({ nowSec: NOW - 1000 }));
  t.is(r.code, 1);
  t.deepEqual(JSON.parse(r.stdout), {
    authenticated: false,
    error: { code: 'wpt.expired', status: 401, detail: 'the WPT has expired' },
  });
});

test('authn check - usage and bundle errors exit 2 (child process)', async (t) => {
  const noBundle = await run(['--audience', AUD], wptRequestJson());
  t.is(noBundle.code, 2);
  t.is(JSON.parse(noBundle.stdout).error.code, 'usage');
  const missing = await run(['--bundle', join(dir, 'nope.json')], '{}');
  t.is(missing.code, 2);
  t.is(JSON.parse(missing.stdout).error.code, 'bundle.unreadable');
});

test('authn check - an mTLS peer chain alone authenticates via mtls', async (t) => {
  const pem = await leaf(ca, NOW * 1000, { uris: ['spiffe://example.org/mesh/a'] });
  const r = runAuthnCheck(args, JSON.stringify({ method: 'GET', url: 'https://svc-b.example.org/', headers: [], peerCertificateChain: pem }));
  t.deepEqual(r, { exitCode: 0, stdoutLine: JSON.stringify({ authenticated: true, caller: 'spiffe://example.org/mesh/a', via: 'mtls' }) });
});

test('authn check - WIT+WPT over mTLS reports the transport peer', async (t) => {
  const pem = await leaf(ca, NOW * 1000, { uris: ['spiffe://example.org/mesh/proxy'] });
  const req = JSON.parse(wptRequestJson({ query: '?x=1' }));
  const r = runAuthnCheck(args, JSON.stringify({ ...req, peerCertificateChain: pem }));
  t.is(r.exitCode, 0);
  t.is(JSON.parse(r.stdoutLine).transportPeer, 'spiffe://example.org/mesh/proxy');
});

test('authn check - the audience comes only from --audience', (t) => {
  const r = runAuthnCheck(['--bundle', bundlePath, '--now', String(NOW)], wptRequestJson());
  t.is(r.exitCode, 1);
  t.is(JSON.parse(r.stdoutLine).error.code, 'wpt.aud_mismatch');
});

test('authn check - --max-skew changes the tolerance', (t) => {
  const late = wptRequestJson({ nowSec: NOW - 60 - 30 }); // exp = NOW - 30
  t.is(runAuthnCheck([...args, '--max-skew', '0'], late).exitCode, 1);
  t.is(runAuthnCheck([...args, '--max-skew', '60'], late).exitCode, 0);
});

test('authn check - malformed input, bad arguments and a bad bundle exit 2', (t) => {
  t.is(runAuthnCheck(args, 'not json').exitCode, 2);
  t.is(runAuthnCheck(args, JSON.stringify({ method: 'GET', url: '/relative', headers: [] })).exitCode, 2);
  t.is(runAuthnCheck(args, JSON.stringify({ method: 'GET', url: 'https://h/', headers: [['a']] })).exitCode, 2);
  t.is(runAuthnCheck(args, JSON.stringify({ method: 'GET', url: 'https://h/', headers: [], body: '***' })).exitCode, 2);
  t.is(runAuthnCheck(args, 'x'.repeat((1 << 20) + 1)).exitCode, 2);
  t.is(runAuthnCheck([...args, '--now', 'yesterday'], '{}').exitCode, 2);
  t.is(runAuthnCheck([...args, '--frobnicate', '1'], '{}').exitCode, 2);
  t.is(runAuthnCheck(['--bundle', 'b.json'], '{}', { readFile: () => '{"trust_domains":{"Bad":{}}}' }).exitCode, 2);
  t.is(runAuthnCheck(['--bundle', 'b.json'], '{}', { readFile: () => 'nope' }).exitCode, 2);
});

test('authn check - no credentials is a rejection (exit 1), not a usage error', (t) => {
  const r = runAuthnCheck(args, JSON.stringify({ method: 'GET', url: 'https://svc-b.example.org/api', headers: [] }));
  t.is(r.exitCode, 1);
  t.deepEqual(JSON.parse(r.stdoutLine).error, { code: 'request.no_credentials', status: 401, detail: 'no workload credentials' });
});
