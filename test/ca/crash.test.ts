import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { IdentityServer } from '../../src/ca/index.ts';
import { ManualClock } from '../../src/identity/index.ts';
import { tempDir, TD } from './helpers.ts';

const CHILD = fileURLToPath(new URL('./fixtures/crash-child.ts', import.meta.url));
const KILLS = 6;

interface Run {
  child: ChildProcess;
  loaded: Promise<string[]>;
  reported: string[];
  exited: Promise<void>;
}

function startChild(dir: string): Run {
  const child = spawn(process.execPath, ['--import=tsx', CHILD, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const reported: string[] = [];
  let buf = '';
  let stderr = '';
  let onLoaded!: (kids: string[]) => void;
  let onFail!: (e: Error) => void;
  const loaded = new Promise<string[]>((res, rej) => ((onLoaded = res), (onFail = rej)));
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith('LOADED ')) {
        const kids = JSON.parse(line.slice(7)) as string[];
        reported.push(...kids);
        onLoaded(kids);
      } else if (line.startsWith('KID ')) reported.push(line.split(' ')[2]!);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((res) =>
    child.once('exit', (code, signal) => {
      if (signal !== 'SIGKILL') onFail(new Error(`child exited ${code} ${signal}: ${stderr}`));
      res();
    }),
  );
  return { child, loaded, reported, exited };
}

test('crash - SIGKILL at random moments never loses a reported key and never corrupts the journal', async (t) => {
  const dir = await tempDir(t);
  const everReported = new Set<string>();
  let totalKeys = 0;
  for (let i = 0; i < KILLS; i++) {
    const run = startChild(dir);
    t.teardown(() => void run.child.kill('SIGKILL'));
    const loaded = await run.loaded; // a damaged journal would make the child exit instead
    for (const kid of everReported) t.true(loaded.includes(kid), `restart ${i}: reported key ${kid} is back`);
    // Let it rotate at least once, then kill it at a random moment (often inside a write).
    const deadline = Date.now() + 60_000; // a safety net: a busy machine can be slow to rotate
    while (run.reported.length <= loaded.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, randomInt(0, 300)));
    run.child.kill('SIGKILL');
    await run.exited;
    for (const kid of run.reported) everReported.add(kid);
    totalKeys = everReported.size;
  }
  const ca = await IdentityServer.open({ stateDir: dir, trustDomain: TD, clock: new ManualClock() });
  t.teardown(() => ca.close());
  const kids = new Set(ca.keys().map((k) => k.kid));
  for (const kid of everReported) t.true(kids.has(kid), `reported key ${kid} is in the journal`);
  t.log(`keys created across ${KILLS} kills: ${totalKeys}`);
  t.true(totalKeys >= 2 + KILLS, 'every run added keys');
  t.truthy(ca.slot('x509').current);
  t.truthy(ca.slot('wit').current);
});
