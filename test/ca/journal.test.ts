import test from 'ava';
import { spawn } from 'node:child_process';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  IdentityServer,
  JournalCorruptError,
  type JournalCorruptReason,
  JournalLockedError,
  JournalMismatchError,
  JournalUnloadableError,
  decodeJournal,
  encodeJournal,
  journalPath,
  type JournalBody,
} from '../../src/ca/index.ts';
import { writeJournal } from '../../src/ca/journal.ts';
import { ManualClock } from '../../src/identity/index.ts';
import { openCa, tempDir, TD } from './helpers.ts';

test('journal - keys, statuses and the bundle survive a restart', async (t) => {
  const dir = await tempDir(t);
  const clock = new ManualClock();
  const ca = await IdentityServer.open({ stateDir: dir, trustDomain: TD, clock });
  await ca.prepare('x509');
  await ca.activate('x509');
  const tainted = ca.slot('wit').current!.kid;
  await ca.taint('wit', tainted);
  await ca.revoke('wit', tainted);
  const keys = ca.keys();
  const bundle = ca.bundle();
  const wic = await ca.issueWic({ id: `spiffe://${TD}/a` });
  await ca.close();

  const again = await IdentityServer.open({ stateDir: dir, trustDomain: TD, clock });
  t.teardown(() => again.close());
  t.deepEqual(again.keys(), keys);
  t.deepEqual(again.bundle(), bundle);
  t.is((await again.issueWic({ id: `spiffe://${TD}/a` })).caKid, wic.caKid, 'same active key after restart');
  const body = decodeJournal('j', await readFile(journalPath(dir)));
  t.is(body.keys.find((k) => k.kid === tainted)!.privateKeyPem, undefined, 'a revoked key is erased from disk');
});

test('journal - files are 0600 and the directory 0700', async (t) => {
  const { dir } = await openCa(t);
  t.is((await stat(join(dir, 'ca'))).mode & 0o777, 0o700);
  for (const f of await readdir(join(dir, 'ca'))) t.is((await stat(join(dir, 'ca', f))).mode & 0o777, 0o600, f);
});

test('journal - a journal of another trust domain is refused', async (t) => {
  const { ca, dir, clock } = await openCa(t);
  await ca.close();
  const e = await t.throwsAsync(IdentityServer.open({ stateDir: dir, trustDomain: 'other.org', clock }), { instanceOf: JournalMismatchError });
  t.is(e!.code, 'ca.journal_mismatch');
});

test('journal - a directory held by another live process is refused', async (t) => {
  const { ca, dir, clock } = await openCa(t);
  await ca.close();
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
  t.teardown(() => void sleeper.kill('SIGKILL'));
  await writeFile(join(dir, 'ca', 'lock'), `${sleeper.pid}\n`);
  const e = await t.throwsAsync(IdentityServer.open({ stateDir: dir, trustDomain: TD, clock }), { instanceOf: JournalLockedError });
  t.is(e!.code, 'ca.journal_locked');
  sleeper.kill('SIGKILL');
  await new Promise((r) => sleeper.once('exit', r));
  const ok = await IdentityServer.open({ stateDir: dir, trustDomain: TD, clock });
  await ok.close();
  t.pass();
});

test('journal - temp files of an interrupted write are removed, the journal kept', async (t) => {
  const { ca, dir, clock } = await openCa(t);
  const keys = ca.keys();
  await ca.close();
  await writeFile(join(dir, 'ca', 'keys.journal.tmp-1-abc'), '{"format":"wimse-ca-jou');
  const again = await IdentityServer.open({ stateDir: dir, trustDomain: TD, clock });
  t.teardown(() => again.close());
  t.deepEqual(again.keys(), keys);
  t.deepEqual((await readdir(join(dir, 'ca'))).sort(), ['keys.journal', 'lock']);
});

/** Damage a good journal; opening must fail with the reason, writing nothing. */
const damages: [string, (b: Buffer) => Buffer, JournalCorruptReason][] = [
  ['truncated', (b) => b.subarray(0, Math.floor(b.length / 2)), 'truncated'],
  ['truncated in the header', (b) => b.subarray(0, 20), 'truncated'],
  ['one flipped byte in the body', (b) => flip(b, b.length - 100), 'checksum_mismatch'],
  ['one flipped byte in the header checksum', (b) => flip(b, b.indexOf('"sha256":"') + 12), 'checksum_mismatch'],
  ['garbage', () => Buffer.from('\x00\x01garbage\nmore garbage'), 'bad_header'],
  ['empty file', () => Buffer.alloc(0), 'empty'],
  ['another file format', () => Buffer.from('{"format":"something-else","version":1}\n{}'), 'wrong_format'],
  ['trailing bytes', (b) => Buffer.concat([b, Buffer.from('x')]), 'bad_body'],
];

function flip(b: Buffer, i: number): Buffer {
  const c = Buffer.from(b);
  c[i] = c[i]! ^ 0x04;
  return c;
}

for (const [name, damage, reason] of damages)
  test(`journal - ${name}: JournalCorruptError(${reason}), file untouched, no new keys`, async (t) => {
    const { ca, dir, clock } = await openCa(t);
    await ca.close();
    const path = journalPath(dir);
    const bad = damage(await readFile(path));
    await writeFile(path, bad, { mode: 0o600 });
    const before = await stat(path);
    const e = await t.throwsAsync<JournalCorruptError>(IdentityServer.open({ stateDir: dir, trustDomain: TD, clock }), { instanceOf: JournalCorruptError });
    t.is(e!.code, 'ca.journal_corrupt');
    t.is(e!.reason, reason);
    t.is(e!.path, path);
    t.deepEqual(await readFile(path), bad, 'the damaged file is left as it was');
    t.is((await stat(path)).mtimeMs, before.mtimeMs);
    t.deepEqual((await readdir(join(dir, 'ca'))).sort(), ['keys.journal'], 'no temp file, lock released');
  });

test('journal - a version this build does not read is refused even with a valid checksum', async (t) => {
  const { ca, dir, clock } = await openCa(t);
  await ca.close();
  const path = journalPath(dir);
  const good = await readFile(path);
  const nl = good.indexOf(0x0a);
  const header = JSON.parse(good.subarray(0, nl).toString());
  const v2 = Buffer.concat([Buffer.from(JSON.stringify({ ...header, version: 2 }) + '\n'), good.subarray(nl + 1)]);
  await writeFile(path, v2);
  const e = await t.throwsAsync<JournalCorruptError>(IdentityServer.open({ stateDir: dir, trustDomain: TD, clock }), { instanceOf: JournalCorruptError });
  t.is(e!.reason, 'unsupported_version');
  t.deepEqual(await readFile(path), v2);
});

test('journal - a well-formed journal whose key does not match its kid is refused', async (t) => {
  const { ca, dir, clock } = await openCa(t);
  await ca.close();
  const path = journalPath(dir);
  const body = decodeJournal(path, await readFile(path)) as JournalBody;
  const [a, b] = body.keys;
  const swapped = { ...body, keys: [{ ...a!, privateKeyPem: b!.privateKeyPem }, b!] };
  await writeFile(path, encodeJournal(swapped));
  const e = await t.throwsAsync<JournalCorruptError>(IdentityServer.open({ stateDir: dir, trustDomain: TD, clock }), { instanceOf: JournalCorruptError });
  t.is(e!.reason, 'bad_body');
  t.regex(e!.message, /keys\[0\]/);
});

test('journal - two active keys of a kind are refused', async (t) => {
  const { ca, dir, clock } = await openCa(t);
  await ca.prepare('wit');
  await ca.close();
  const path = journalPath(dir);
  const body = decodeJournal(path, await readFile(path));
  await writeFile(path, encodeJournal({ ...body, keys: body.keys.map((k) => ({ ...k, status: 'active' as const })) }));
  const e = await t.throwsAsync<JournalCorruptError>(IdentityServer.open({ stateDir: dir, trustDomain: TD, clock }), { instanceOf: JournalCorruptError });
  t.regex(e!.message, /more than one active/);
});

test('journal - after a long downtime the node activates a fresh key at once and prunes the dead ones', async (t) => {
  const { ca, dir, clock } = await openCa(t, { timing: { keyTtlSec: 3600 } });
  const before = ca.keys().map((k) => k.kid);
  await ca.close();
  clock.advance(3 * 24 * 3600_000);
  const again = await IdentityServer.open({ stateDir: dir, trustDomain: TD, clock, timing: { keyTtlSec: 3600 } });
  t.teardown(() => again.close());
  const wic = await again.issueWic({ id: `spiffe://${TD}/a` });
  t.false(before.includes(wic.caKid));
  t.false(before.includes(again.slot('wit').current!.kid));
  await again.prune();
  t.deepEqual(again.keys().filter((k) => before.includes(k.kid)), []);
  t.is(again.bundle().x509Authorities.length, 1);
});

test('journal - a write the next start would refuse is not made: JournalUnloadableError, the journal on disk unchanged', async (t) => {
  const { ca, dir } = await openCa(t);
  await ca.close();
  const path = journalPath(dir);
  const good = await readFile(path);
  const body = decodeJournal(path, good);
  // A lifetime of 99999999999999 days: past Date and past any safe integer.
  const overflowing = { ...body, keys: body.keys.map((k) => ({ ...k, notAfter: k.notBefore + 99_999_999_999_999 * 86_400_000 })) };
  const e = await t.throwsAsync<JournalUnloadableError>(writeJournal(path, overflowing), { instanceOf: JournalUnloadableError });
  t.is(e!.code, 'ca.journal_unloadable');
  t.regex(e!.message, /keys\[0\]\.notAfter: must be an integer/);
  t.deepEqual(await readFile(path), good);
  t.deepEqual((await readdir(join(dir, 'ca'))).sort(), ['keys.journal'], 'no temp file left');
});

test('journal - a key change the next start could not load is refused and the CA keeps its previous keys', async (t) => {
  const start = Date.UTC(2026, 0, 1);
  const { ca, dir, clock } = await openCa(t, { clock: new ManualClock(start) });
  const path = journalPath(dir);
  const good = await readFile(path);
  const keys = ca.keys();
  // A clock with a fraction of a millisecond: the record's notBefore would not be an integer.
  clock.set(start + 1000.5);
  const e = await t.throwsAsync<JournalUnloadableError>(ca.prepare('wit'), { instanceOf: JournalUnloadableError });
  t.regex(e!.message, /notBefore: must be an integer/);
  t.deepEqual(ca.keys(), keys, 'nothing changed in memory');
  t.deepEqual(await readFile(path), good, 'nothing changed on disk');
  await ca.close();
  const again = await IdentityServer.open({ stateDir: dir, trustDomain: TD, clock: new ManualClock(start + 2000) });
  t.teardown(() => again.close());
  t.deepEqual(again.keys(), keys);
});

test('journal - a first start whose keys could not load again writes no journal and releases the directory', async (t) => {
  const dir = await tempDir(t);
  const e = await t.throwsAsync(IdentityServer.open({ stateDir: dir, trustDomain: TD, clock: new ManualClock(Date.UTC(2026, 0, 1) + 0.5) }), {
    instanceOf: JournalUnloadableError,
  });
  t.is(e!.code, 'ca.journal_unloadable');
  t.deepEqual(await readdir(join(dir, 'ca')), [], 'no journal, no temp file, no lock');
  const ok = await IdentityServer.open({ stateDir: dir, trustDomain: TD, clock: new ManualClock() });
  await ok.close();
  t.pass();
});

test('journal - a key that would outlive X.509 (after 9999-12-31) is refused before anything is written', async (t) => {
  const dir = await tempDir(t);
  const clock = new ManualClock(Date.UTC(9999, 11, 31));
  const e = await t.throwsAsync(IdentityServer.open({ stateDir: dir, trustDomain: TD, clock }), { instanceOf: RangeError });
  t.regex(e!.message, /would end after 9999-12-31T23:59:59\.000Z/);
  t.deepEqual(await readdir(join(dir, 'ca')), []);
});
