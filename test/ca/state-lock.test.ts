import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { IdentityServer, JournalLockedError } from '../../src/ca/index.ts';
import { acquireLock, judgeLock, LOCK_STALE_MS, ownLockRecord, parseLock, type LockRecord, type ProcessProbe } from '../../src/ca/state-lock.ts';
import { ManualClock } from '../../src/identity/index.ts';
import { tempDir, TD } from './helpers.ts';

const HOLDER = fileURLToPath(new URL('./fixtures/hold-child.ts', import.meta.url));

/** A real process that is alive and is not a wimse-server. */
function unrelatedProcess(t: { teardown(fn: () => void): void }): ChildProcess {
  const p = spawn('sleep', ['300'], { stdio: 'ignore' });
  t.teardown(() => void p.kill('SIGKILL'));
  return p;
}

/** A real process holding `dir` (the Identity Server opened in a child). */
async function holder(t: { teardown(fn: () => void): void }, dir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import=tsx', HOLDER, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => void child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => ((out += d), out.includes('HELD') && resolve()));
    child.stderr!.on('data', (d: Buffer) => (err += d));
    child.once('exit', (code) => reject(new Error(`holder exited ${code}: ${err}`)));
  });
  return child;
}

const killed = async (p: ChildProcess) => {
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await exited;
};

const open = (dir: string) => IdentityServer.open({ stateDir: dir, trustDomain: TD, clock: new ManualClock() });
const lockPath = (dir: string) => join(dir, 'ca', 'lock');

test('lock - a crashed node whose pid now belongs to a live unrelated process does not block the next start', async (t) => {
  const dir = await tempDir(t);
  const crashed = await holder(t, dir);
  await killed(crashed);
  // The pid is reused: put a live process that is not a wimse-server in the dead one's place.
  const other = unrelatedProcess(t);
  const left = await readFile(lockPath(dir), 'utf8');
  await writeFile(lockPath(dir), left.replace(String(crashed.pid), String(other.pid)));
  const ca = await open(dir);
  t.teardown(() => ca.close());
  t.is((parseLock(await readFile(lockPath(dir), 'utf8')) as LockRecord).pid, process.pid, 'the lock is ours now');
});

test('lock - a running node is refused with what to stop; once it is gone the start goes ahead', async (t) => {
  const dir = await tempDir(t);
  const running = await holder(t, dir);
  const e = await t.throwsAsync<JournalLockedError>(open(dir), { instanceOf: JournalLockedError });
  t.is(e!.code, 'ca.journal_locked');
  t.is(e!.holderPid, running.pid);
  t.regex(e!.message, new RegExp(`process ${running.pid} on host ".+" since .+: that process is running\\. Stop that wimse-server first`));
  await killed(running);
  const ca = await open(dir);
  await ca.close();
  t.pass();
});

test('lock - an earlier version\'s bare pid naming a live process is refused with what to check and which file to remove', async (t) => {
  const dir = await tempDir(t);
  await (await open(dir)).close();
  const other = unrelatedProcess(t);
  await writeFile(lockPath(dir), `${other.pid}\n`);
  const e = await t.throwsAsync<JournalLockedError>(open(dir), { instanceOf: JournalLockedError });
  t.true(e!.message.includes(`ps -p ${other.pid} -o pid,lstart,args), then remove ${lockPath(dir)}`), e!.message);
  await killed(other);
  await (await open(dir)).close();
  t.deepEqual(await readdir(join(dir, 'ca')), ['keys.journal'], 'released: no lock and no temp file left');
});

test('lock - a lock of this host from before a restart (another boot id) is taken over even if its pid is alive', async (t) => {
  const dir = await tempDir(t);
  await (await open(dir)).close();
  const other = unrelatedProcess(t);
  await writeFile(lockPath(dir), JSON.stringify({ ...ownLockRecord(), pid: other.pid, bootId: 'a-boot-before-this-one' }));
  await (await open(dir)).close();
  t.pass();
});

for (const [name, change] of [
  ['another host', { host: 'cp-elsewhere' }],
  ['another PID namespace (a container that restarted)', { pidNamespace: 'pid:[4026530000]' }],
] as const)
  test(`lock - a lock from ${name} is waited out for one lease: held while it is refreshed, with the file to remove, taken over once it is not`, async (t) => {
    const dir = await tempDir(t);
    await (await open(dir)).close();
    await writeFile(lockPath(dir), JSON.stringify({ ...ownLockRecord(), pid: 1, ...change }));
    // A holder this start cannot check, still running: it touches the lock far more often than the lease.
    const touch = setInterval(() => {
      const now = new Date();
      void utimes(lockPath(dir), now, now).catch(() => {});
    }, 200);
    t.teardown(() => clearInterval(touch));
    const e = await t.throwsAsync<JournalLockedError>(IdentityServer.open({ stateDir: dir, trustDomain: TD, clock: new ManualClock(), lockStaleMs: 5_000 }), {
      instanceOf: JournalLockedError,
    });
    t.regex(e!.message, /refreshed \d s ago; this process cannot check whether it still runs\. Check that no wimse-server runs with this state directory \(ps -p 1/);
    t.true(e!.message.includes(`then remove ${lockPath(dir)}; a lock left untouched for 5 s is taken over without that`), e!.message);
    // The holder is gone (nobody touches the lock any more): the next start waits out the lease and takes over.
    clearInterval(touch);
    const waits: unknown[] = [];
    const logger = { info() {}, warn: (o: object, msg?: string) => void (msg?.includes('lease') && waits.push(o)), error() {} };
    await (await IdentityServer.open({ stateDir: dir, trustDomain: TD, clock: new ManualClock(), lockStaleMs: 5_000, logger })).close();
    t.is(waits.length, 1, 'the start said it waited out the lease');
  });

test('lock - the default lease is 60 s: an old lock of another namespace is taken over at once', async (t) => {
  const dir = await tempDir(t);
  await (await open(dir)).close();
  await writeFile(lockPath(dir), JSON.stringify({ ...ownLockRecord(), pid: 1, pidNamespace: 'pid:[4026530000]' }));
  const past = new Date(Date.now() - LOCK_STALE_MS - 5_000);
  await utimes(lockPath(dir), past, past);
  await (await open(dir)).close();
  t.pass();
});

test('lock - a lock file this version cannot read is refused, naming the file to remove', async (t) => {
  const dir = await tempDir(t);
  await (await open(dir)).close();
  await writeFile(lockPath(dir), 'garbage');
  const e = await t.throwsAsync<JournalLockedError>(open(dir), { instanceOf: JournalLockedError });
  t.regex(e!.message, /the lock file is not one this version reads\. Check that no wimse-server runs with this state directory, then remove /);
});

test('lock - the holder keeps its lock fresh, and releasing removes only its own lock', async (t) => {
  const dir = await tempDir(t);
  const release = await acquireLock(dir, { refreshMs: 50 });
  const past = new Date(Date.now() - 3_600_000);
  await utimes(join(dir, 'lock'), past, past);
  const deadline = Date.now() + 20_000;
  while ((await stat(join(dir, 'lock'))).mtimeMs < Date.now() - 600_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.true((await stat(join(dir, 'lock'))).mtimeMs > Date.now() - 600_000, 'refreshed');
  await writeFile(join(dir, 'lock'), JSON.stringify({ ...ownLockRecord(), pid: 1, host: 'cp-elsewhere' }));
  await release();
  t.regex(await readFile(join(dir, 'lock'), 'utf8'), /cp-elsewhere/, 'a lock that is no longer ours is left alone');
});

// The rule itself, with a probe standing in for /proc.
const self: LockRecord = { pid: 100, startTime: '500', bootId: 'b1', host: 'h', pidNamespace: 'pid:[1]', since: '2026-01-01T00:00:00.000Z' };
const probe = (alive: Record<number, string>): ProcessProbe => ({ alive: (pid) => pid in alive, startTime: (pid) => alive[pid] || undefined });
const rec = (r: Partial<LockRecord>): LockRecord => ({ ...self, pid: 7, ...r });
const verdicts: Array<[string, LockRecord | number | undefined, Record<number, string>, number, boolean | 'unsure']> = [
  ['its process is gone', rec({}), {}, 0, false],
  ['its pid is alive with its start time', rec({ startTime: '300' }), { 7: '300' }, 0, true],
  ['its pid is alive but started later (reused)', rec({ startTime: '300' }), { 7: '900' }, 0, false],
  ['its pid is ours', rec({ pid: 100 }), { 100: '500' }, 0, false],
  ['another boot', rec({ bootId: 'b0', startTime: '300' }), { 7: '300' }, 0, false],
  ['no start time, fresh', rec({ startTime: undefined }), { 7: '' }, 1_000, 'unsure'],
  ['no start time, stale', rec({ startTime: undefined }), { 7: '' }, LOCK_STALE_MS + 1, false],
  ['another host, fresh', rec({ host: 'x' }), {}, 1_000, 'unsure'],
  ['another host, stale', rec({ host: 'x' }), {}, LOCK_STALE_MS + 1, false],
  ['another namespace, fresh', rec({ pidNamespace: 'pid:[2]' }), { 7: '300' }, 1_000, 'unsure'],
  ['a bare pid, alive', 7, { 7: '300' }, 10 * LOCK_STALE_MS, 'unsure'],
  ['a bare pid, gone', 7, {}, 0, false],
  ['unreadable', undefined, {}, 10 * LOCK_STALE_MS, 'unsure'],
];
for (const [name, found, alive, age, expected] of verdicts)
  test(`lock - judge: ${name}`, (t) => {
    const v = judgeLock(found, self, probe(alive), age);
    t.is(v.held ? (v.certain ? true : 'unsure') : false, expected, v.why);
  });
