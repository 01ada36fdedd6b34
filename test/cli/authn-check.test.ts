import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createWpt } from '../../src/authn/index.ts';
import { AUTHN_CHECK_HELP } from '../../src/cli/wimsectl-help.ts';
import { runAuthnCheck } from '../../src/cli/authn-check.ts';
import { toSpiffeBundleMap } from '../../src/identity/trust-bundle.ts';
import { AUD, NOW, bundleOf, bundleSet, issuer, keyPair, mintWitRaw, signCovering } from '../authn/helpers.ts';
import { leaf, rootCa, type Ca } from '../authn/pki.ts';
import { CHILD_TIMEOUT_MS } from '../helpers/process.ts';

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
    const child = execFile(process.execPath, ['--import=tsx', WIMSECTL, 'authn', 'check', ...args], { timeout: CHILD_TIMEOUT_MS }, (err, stdout) => {
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
  t.true(JSON.parse(noBundle.stdout).error.detail.endsWith(`. usage: wimsectl ${AUTHN_CHECK_HELP.usage}`), 'the usage wimsectl authn check --help prints');
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

// A client may cover @authority and @target-uri too (RFC 9421; http-signature-07 does not require
// them): the checker takes scheme and authority from `url`, never from a Host field.

function coveringJson(o: { url: string; extra: string[]; host?: string }): string {
  const wit = mintWitRaw(iss, { workload });
  const headers = signCovering({
    scheme: 'https',
    authority: 'svc-b.example.org',
    path: '/api',
    query: '?x=1',
    headers: [['Workload-Identity-Token', wit], ...(o.host ? ([['Host', o.host]] as [string, string][]) : [])],
    key: workload,
    audience: AUD,
    nowSec: NOW,
    extra: o.extra,
  });
  return JSON.stringify({ method: 'GET', url: o.url, headers });
}

test('authn check - a signature covering @authority and @target-uri verifies with the scheme and authority of url (child process)', async (t) => {
  const r = await run(args, coveringJson({ url: 'https://svc-b.example.org/api?x=1', extra: ['@authority', '@target-uri'] }));
  t.is(r.code, 0, r.stdout);
  t.deepEqual(JSON.parse(r.stdout), { authenticated: true, caller: 'spiffe://example.org/ns/default/sa/client', via: 'httpsig' });
});

test('authn check - @authority, @scheme and @target-uri come from url: a default port is dropped, another authority or scheme fails', (t) => {
  const ok = (url: string, extra: string[]) => runAuthnCheck(args, coveringJson({ url, extra }));
  t.is(ok('https://svc-b.example.org/api?x=1', ['@scheme']).exitCode, 0);
  t.is(ok('https://SVC-B.example.org:443/api?x=1', ['@authority', '@target-uri']).exitCode, 0, 'normalized per RFC 9110 §4.2.3');
  const code = (r: { stdoutLine: string }) => JSON.parse(r.stdoutLine).error?.code;
  t.is(code(ok('https://svc-c.example.org/api?x=1', ['@authority'])), 'httpsig.bad_signature');
  t.is(code(ok('http://svc-b.example.org/api?x=1', ['@target-uri'])), 'httpsig.bad_signature');
  // A Host field naming the signed authority does not override the url.
  t.is(code(runAuthnCheck(args, coveringJson({ url: 'https://svc-c.example.org/api?x=1', extra: ['@authority'], host: 'svc-b.example.org' }))), 'httpsig.bad_signature');
  // userinfo, or an empty authority, is not a request authority.
  const bad = runAuthnCheck(args, coveringJson({ url: 'https://user@svc-b.example.org/api?x=1', extra: ['@authority'] }));
  t.is(bad.exitCode, 2);
  t.regex(JSON.parse(bad.stdoutLine).error.detail, /authority/);
  t.is(runAuthnCheck(args, coveringJson({ url: 'https:///api', extra: [] })).exitCode, 2);
});
