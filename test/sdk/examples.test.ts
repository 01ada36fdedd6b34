/**
 * The examples run as real processes: the development Workload API, the server, then the client
 * calling the server with a WPT and with an HTTP signature. The type-only imports make the
 * project type-check (tsc) cover the example files as well.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { CHILD_TIMEOUT_MS, ROOT } from '../helpers/process.ts';
import type * as _client from '../../examples/client.ts';
import type * as _server from '../../examples/server.ts';
import type * as _devApi from '../../examples/dev-workload-api.ts';

interface Proc {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

function run(script: string, env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ['--import=tsx', script], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, exited };
}

async function waitFor(p: Proc, re: RegExp, ms = CHILD_TIMEOUT_MS): Promise<RegExpExecArray> {
  const start = Date.now();
  for (;;) {
    const m = re.exec(p.out());
    if (m) return m;
    if (p.child.exitCode !== null || Date.now() - start > ms) throw new Error(`not ready: ${p.out()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const stop = async (p: Proc) => {
  if (p.child.exitCode === null) p.child.kill('SIGTERM');
  await p.exited;
};

test('sdk examples - the client calls the server through a local Workload API, with a WPT and a signed exchange', async (t) => {
  const token = randomBytes(12).toString('hex');
  const api = run('examples/dev-workload-api.ts', { WIMSE_NODE_TOKEN: token });
  t.teardown(() => stop(api));
  const address = (await waitFor(api, /listening on (127\.0\.0\.1:\d+)/))[1]!;
  const server = run('examples/server.ts', { WIMSE_WORKLOAD_API: address, WIMSE_NODE_TOKEN: token });
  t.teardown(() => stop(server));
  const url = (await waitFor(server, /listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
  const client = run('examples/client.ts', {
    WIMSE_WORKLOAD_API: address,
    WIMSE_NODE_TOKEN: token,
    SERVER_URL: url,
    WIMSE_EXPECTED_SERVER: 'spiffe://example.org/ns/demo/sa/server',
  });
  const code = await client.exited;
  const out = client.out();
  t.is(code, 0, out);
  t.regex(out, /wpt: 200 .*"hello":"spiffe:\/\/example\.org\/ns\/demo\/sa\/client","via":"wpt"/);
  t.regex(out, /httpsig: 200 .*"via":"httpsig".*\(response signed by spiffe:\/\/example\.org\/ns\/demo\/sa\/server\)/);

  // A client with the wrong node token gets the typed refusal and exits non-zero.
  const bad = run('examples/client.ts', { WIMSE_WORKLOAD_API: address, WIMSE_NODE_TOKEN: 'wrong', SERVER_URL: url });
  t.not(await bad.exited, 0);
  t.regex(bad.out(), /refused the node credentials/);
});
