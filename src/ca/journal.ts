/**
 * The key journal: every key (private keys as PKCS#8 PEM) and its status, in one file of the
 * node's state directory (`<stateDir>/ca/keys.journal`).
 *
 * File format, version 1 (docs/ca.md "Journal"):
 *
 *     {"format":"wimse-ca-journal","version":1,"length":<body bytes>,"sha256":"<hex of body>"}\n
 *     <body: JSON {trustDomain, sequence, keys: KeyRecord[]}>
 *
 * Writes are atomic (temp file in the same directory, fsync, rename, fsync of the directory);
 * files are 0600 and the directory 0700. A file that exists but does not check out is reported
 * with a `JournalCorruptError` and left untouched: the node never generates keys over it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { chmod, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { JournalCorruptError, JournalUnloadableError } from './errors.ts';
import { CA_ALGS, KEY_KINDS, KEY_STATUSES, type KeyRecord } from './key-record.ts';

export const JOURNAL_FORMAT = 'wimse-ca-journal';
export const JOURNAL_VERSION = 1;
export const JOURNAL_FILE = 'keys.journal';
const TEMP_PREFIX = `${JOURNAL_FILE}.tmp-`;
/** A journal far larger than any key history is refused rather than read. */
const MAX_JOURNAL_BYTES = 64 << 20;

export interface JournalBody {
  readonly trustDomain: string;
  /** The trust bundle's sequence: bumped on every change of the bundle's content. */
  readonly sequence: number;
  readonly keys: readonly KeyRecord[];
}

export const journalDir = (stateDir: string): string => join(stateDir, 'ca');
export const journalPath = (stateDir: string): string => join(journalDir(stateDir), JOURNAL_FILE);

export function encodeJournal(body: JournalBody): Buffer {
  const b = Buffer.from(JSON.stringify(body));
  const header = { format: JOURNAL_FORMAT, version: JOURNAL_VERSION, length: b.length, sha256: sha256(b) };
  return Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), b]);
}

/** Check a journal's bytes; throws `JournalCorruptError` naming `path` and the reason. */
export function decodeJournal(path: string, bytes: Uint8Array): JournalBody {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const corrupt = (reason: ConstructorParameters<typeof JournalCorruptError>[1], detail: string) =>
    new JournalCorruptError(path, reason, detail);
  if (buf.length === 0) throw corrupt('empty', 'the file is empty');
  const nl = buf.indexOf(0x0a);
  if (nl < 0) throw corrupt('truncated', 'no header line');
  let header: unknown;
  try {
    header = JSON.parse(buf.subarray(0, nl).toString('utf8'));
  } catch {
    throw corrupt('bad_header', 'header is not JSON');
  }
  if (typeof header !== 'object' || header === null) throw corrupt('bad_header', 'header is not an object');
  const h = header as Record<string, unknown>;
  if (h.format !== JOURNAL_FORMAT) throw corrupt('wrong_format', `format is not "${JOURNAL_FORMAT}"`);
  if (h.version !== JOURNAL_VERSION) throw corrupt('unsupported_version', `version ${JSON.stringify(h.version)}, this build reads ${JOURNAL_VERSION}`);
  if (!Number.isSafeInteger(h.length) || typeof h.sha256 !== 'string') throw corrupt('bad_header', 'length or sha256 missing');
  const body = buf.subarray(nl + 1);
  if (body.length < (h.length as number)) throw corrupt('truncated', `body has ${body.length} of ${String(h.length)} bytes`);
  if (body.length > (h.length as number)) throw corrupt('bad_body', `body has ${body.length - (h.length as number)} trailing bytes`);
  if (sha256(body) !== h.sha256) throw corrupt('checksum_mismatch', 'SHA-256 of the body does not match the header');
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw corrupt('bad_body', 'body is not JSON');
  }
  const problems = checkBody(doc);
  if (problems.length) throw corrupt('bad_body', problems.slice(0, 5).join('; '));
  return doc as JournalBody;
}

function checkBody(doc: unknown): string[] {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return ['body: must be an object'];
  const d = doc as Record<string, unknown>;
  const errs: string[] = [];
  if (typeof d.trustDomain !== 'string') errs.push('trustDomain: must be a string');
  if (!Number.isSafeInteger(d.sequence) || (d.sequence as number) < 0) errs.push('sequence: must be a non-negative integer');
  if (!Array.isArray(d.keys)) return [...errs, 'keys: must be an array'];
  const seen = new Set<string>();
  d.keys.forEach((k: unknown, i: number) => {
    const at = `keys[${i}]`;
    if (typeof k !== 'object' || k === null) return void errs.push(`${at}: must be an object`);
    const r = k as Record<string, unknown>;
    if (!(KEY_KINDS as readonly unknown[]).includes(r.kind)) errs.push(`${at}.kind: unknown`);
    if (!(KEY_STATUSES as readonly unknown[]).includes(r.status)) errs.push(`${at}.status: unknown`);
    if (!(CA_ALGS as readonly unknown[]).includes(r.alg)) errs.push(`${at}.alg: unknown`);
    if (typeof r.kid !== 'string' || !r.kid) errs.push(`${at}.kid: must be a string`);
    else if (seen.has(`${String(r.kind)}/${r.kid}`)) errs.push(`${at}.kid: duplicate`);
    else seen.add(`${String(r.kind)}/${r.kid}`);
    for (const f of ['notBefore', 'notAfter', 'prepareNextAt', 'activateNextAt'])
      if (!Number.isSafeInteger(r[f])) errs.push(`${at}.${f}: must be an integer`);
    for (const f of ['activatedAt', 'taintedAt', 'revokedAt'])
      if (r[f] !== undefined && !Number.isSafeInteger(r[f])) errs.push(`${at}.${f}: must be an integer`);
    for (const f of ['privateKeyPem', 'certPem', 'origin'])
      if (r[f] !== undefined && typeof r[f] !== 'string') errs.push(`${at}.${f}: must be a string`);
    if (typeof r.publicJwk !== 'object' || r.publicJwk === null) errs.push(`${at}.publicJwk: must be an object`);
    if (r.status !== 'revoked' && r.origin === undefined && typeof r.privateKeyPem !== 'string')
      errs.push(`${at}.privateKeyPem: missing for a live key`);
    if (r.kind === 'x509' && r.status !== 'revoked' && typeof r.certPem !== 'string') errs.push(`${at}.certPem: missing`);
  });
  // Other nodes' keys (with an `origin`) have their own active key; only ours count here.
  const active = (kind: string) =>
    (d.keys as Record<string, unknown>[]).filter((k) => k?.kind === kind && k?.status === 'active' && k?.origin === undefined).length;
  for (const kind of KEY_KINDS) if (active(kind) > 1) errs.push(`keys: more than one active ${kind} key`);
  return errs;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Read the journal; undefined when there is none yet (a fresh state directory). */
export async function readJournal(path: string): Promise<JournalBody | undefined> {
  let bytes: Buffer;
  try {
    const fh = await open(path, fsc.O_RDONLY);
    try {
      const st = await fh.stat();
      if (st.size > MAX_JOURNAL_BYTES) throw new JournalCorruptError(path, 'bad_body', `larger than ${MAX_JOURNAL_BYTES} bytes`);
      bytes = await fh.readFile();
    } finally {
      await fh.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (e instanceof JournalCorruptError) throw e;
    throw new JournalCorruptError(path, 'unreadable', (e as Error).message);
  }
  return decodeJournal(path, bytes);
}

/**
 * Replace the journal atomically: write a temp file in the same directory (mode 0600), fsync it,
 * rename it over the journal, fsync the directory. When this resolves the content is durable.
 *
 * Nothing is written that the next start would refuse: the bytes are first read back with the
 * reader a start uses (`decodeJournal`, then `loads` for the checks above it, such as loading
 * each key). A refusal throws `JournalUnloadableError` and leaves the journal as it was.
 */
export async function writeJournal(path: string, body: JournalBody, loads: (body: JournalBody) => void = () => {}): Promise<void> {
  const bytes = encodeJournal(body);
  try {
    loads(decodeJournal(path, bytes));
  } catch (e) {
    throw new JournalUnloadableError(path, e instanceof JournalCorruptError ? e.detail.slice(`${path}: `.length) : (e as Error).message);
  }
  const dir = join(path, '..');
  const tmp = join(dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
  const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  await rename(tmp, path);
  await fsyncDir(dir);
}

async function fsyncDir(dir: string): Promise<void> {
  const d = await open(dir, fsc.O_RDONLY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** Create `<stateDir>/ca` with mode 0700 (tightened if it already exists). */
export async function ensureJournalDir(stateDir: string): Promise<string> {
  const dir = journalDir(stateDir);
  const created = await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  // A directory entry is durable only once its parent is synced.
  if (created !== undefined) await fsyncDir(stateDir);
  return dir;
}

/** Remove temp files left by a write that was interrupted before its rename (never the journal). */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dir))
    if (name.startsWith(TEMP_PREFIX)) {
      await unlink(join(dir, name)).catch(() => {});
      removed.push(name);
    }
  return removed;
}

