/**
 * The state directory's lock: one process at a time writes a node's key journal.
 *
 * `<stateDir>/ca/lock` is one line of JSON naming its holder:
 *
 *     {"pid":41,"startTime":"8123456","bootId":"08754d05-…","host":"cp-0","pidNamespace":"pid:[4026531836]","since":"2026-…Z"}
 *
 * `startTime` is the process's start in clock ticks since boot (field 22 of /proc/<pid>/stat),
 * `bootId` the kernel's boot id, `pidNamespace` the /proc/self/ns/pid link: with them a pid is
 * compared as "this very process", not just "a process with that number". The holder touches
 * the file every `LOCK_REFRESH_MS`; where the pid cannot be checked, a lock not touched for
 * `LOCK_STALE_MS` is stale. Outside Linux the /proc fields are absent and the lease decides.
 *
 * Whether a lock found on disk is held (`judgeLock`, in this order):
 * 1. not a lock this version reads: held, undecidable (remove it by hand);
 * 2. a bare pid (written by an earlier version): stale if that pid is ours or not alive, else
 *    undecidable (pid reuse cannot be told from a live holder);
 * 3. another host: held while the lease runs, then stale;
 * 4. this host, another boot id: stale (the machine restarted; no process survived it);
 * 5. this host and boot, another PID namespace (a container that restarted, or a second
 *    container on the same volume): held while the lease runs, then stale;
 * 6. this host, boot and namespace: stale if the pid is ours or not alive; held if it is alive
 *    and started when the lock says (certainly the holder); stale if it started at another time
 *    (the pid was reused); held while the lease runs if its start time cannot be read.
 *
 * Taking the lock is atomic (`link` of a complete temp file); a stale lock is moved aside and
 * checked to be the one judged stale before the new one goes in.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { link, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { JournalLockedError } from './errors.ts';

export const LOCK_FILE = 'lock';
/** How often the holder touches its lock. */
export const LOCK_REFRESH_MS = 10_000;
/** A lock whose holder cannot be checked is stale once it has not been touched for this long. */
export const LOCK_STALE_MS = 60_000;

export interface LockRecord {
  readonly pid: number;
  readonly startTime?: string;
  readonly bootId?: string;
  readonly host: string;
  readonly pidNamespace?: string;
  readonly since: string;
}

/** What can be learnt about a pid on this machine. */
export interface ProcessProbe {
  alive(pid: number): boolean;
  /** Its start time as /proc records it; undefined when unknown (no /proc, or no such process). */
  startTime(pid: number): string | undefined;
}

export type LockVerdict =
  | { readonly held: false; readonly why: string }
  /**
   * `certain`: the holder was identified; otherwise the verdict is "cannot tell" and a person must
   * check. `leaseLeftMs`: the holder cannot be checked, but the lock goes stale if it is left
   * untouched this much longer (a start may wait that out).
   */
  | { readonly held: true; readonly certain: boolean; readonly why: string; readonly leaseLeftMs?: number };

const procProbe: ProcessProbe = {
  alive(pid) {
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM';
    }
  },
  startTime(pid) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces and parentheses): state is field 3.
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3];
    } catch {
      return undefined;
    }
  },
};

const readProc = (read: () => string): string | undefined => {
  try {
    return read().trim() || undefined;
  } catch {
    return undefined;
  }
};

/** This process, as its lock names it. */
export function ownLockRecord(): LockRecord {
  const startTime = procProbe.startTime(process.pid);
  const bootId = readProc(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'));
  const pidNamespace = readProc(() => readlinkSync('/proc/self/ns/pid'));
  return {
    pid: process.pid,
    ...(startTime !== undefined ? { startTime } : {}),
    ...(bootId !== undefined ? { bootId } : {}),
    host: hostname(),
    ...(pidNamespace !== undefined ? { pidNamespace } : {}),
    since: new Date().toISOString(),
  };
}

/** Parse a lock file: a record, a bare pid (earlier versions), or undefined for anything else. */
export function parseLock(text: string): LockRecord | number | undefined {
  const t = text.trim();
  if (/^\d{1,10}$/.test(t)) return Number(t) > 0 ? Number(t) : undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(t);
  } catch {
    return undefined;
  }
  const r = doc as Record<string, unknown> | null;
  if (!r || typeof r !== 'object' || !Number.isSafeInteger(r.pid) || (r.pid as number) <= 0 || typeof r.host !== 'string' || typeof r.since !== 'string') return undefined;
  for (const f of ['startTime', 'bootId', 'pidNamespace']) if (r[f] !== undefined && typeof r[f] !== 'string') return undefined;
  return r as unknown as LockRecord;
}

/** Is a lock held? `ageMs`: how long ago it was last touched. Pure: the probe and `self` are inputs. */
export function judgeLock(found: LockRecord | number | undefined, self: LockRecord, probe: ProcessProbe, ageMs: number, staleMs = LOCK_STALE_MS): LockVerdict {
  const lease = (who: string): LockVerdict =>
    ageMs > staleMs
      ? { held: false, why: `${who}, not refreshed for ${Math.round(ageMs / 1000)} s` }
      : {
          held: true,
          certain: false,
          why: `${who}, refreshed ${Math.max(0, Math.round(ageMs / 1000))} s ago; this process cannot check whether it still runs`,
          leaseLeftMs: staleMs - Math.max(0, ageMs),
        };
  if (found === undefined) return { held: true, certain: false, why: 'the lock file is not one this version reads' };
  if (typeof found === 'number') {
    if (found === self.pid || !probe.alive(found)) return { held: false, why: `process ${found} is gone` };
    return { held: true, certain: false, why: `it names process ${found}, which is alive, without a start time (a lock of an earlier version, or a pid reused since)` };
  }
  const who = `process ${found.pid} on host "${found.host}" since ${found.since}`;
  if (found.host !== self.host) return lease(who);
  if (found.bootId && self.bootId && found.bootId !== self.bootId) return { held: false, why: `${who}: this host has restarted since` };
  if (found.pidNamespace && self.pidNamespace && found.pidNamespace !== self.pidNamespace) return lease(`${who} in another PID namespace (${found.pidNamespace})`);
  if (found.pid === self.pid || !probe.alive(found.pid)) return { held: false, why: `${who}: that process is gone` };
  const now = probe.startTime(found.pid);
  if (found.startTime === undefined || now === undefined) return lease(who);
  if (now !== found.startTime) return { held: false, why: `${who}: pid ${found.pid} now belongs to a process started later` };
  return { held: true, certain: true, why: `${who}: that process is running` };
}

/** The refusal, with what to check and which file to remove. */
function lockedError(path: string, found: LockRecord | number | undefined, v: LockVerdict & { held: true }, staleMs: number): JournalLockedError {
  const pid = typeof found === 'number' ? found : found?.pid;
  const remedy = v.certain
    ? 'Stop that wimse-server first, or give this node a stateDir of its own'
    : `Check that no wimse-server runs with this state directory${pid !== undefined ? ` (ps -p ${pid} -o pid,lstart,args${typeof found === 'object' ? ` on host "${found.host}"` : ''})` : ''}, then remove ${path}` +
      (typeof found === 'object' ? `; a lock left untouched for ${staleMs / 1000} s is taken over without that` : '');
  return new JournalLockedError(path, pid, v.why, remedy);
}

export interface AcquireLockOptions {
  refreshMs?: number;
  /** Untouched this long, a lock whose holder cannot be checked is stale. Default `LOCK_STALE_MS`. */
  staleMs?: number;
  /**
   * Told when the start waits out the lease of a lock whose holder it cannot check (a container
   * restarted in a new PID namespace finds its predecessor's lock): `waitMs` at most one lease.
   */
  onLeaseWait?: (why: string, waitMs: number) => void;
}

/**
 * Hold `<dir>/lock` for this process: resolves to the release function. A lock whose holder
 * cannot be checked is waited out once, for what is left of its lease: still touched after that,
 * it is held. Throws `JournalLockedError` (with what to check and which file to remove) when it
 * is held.
 */
export async function acquireLock(dir: string, opts: AcquireLockOptions = {}): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const staleMs = opts.staleMs ?? LOCK_STALE_MS;
  let waited = false;
  const self = ownLockRecord();
  const mine = `${JSON.stringify(self)}\n`;
  const tmp = join(dir, `${LOCK_FILE}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  await writeFile(tmp, mine, { mode: 0o600, flag: 'wx' });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(tmp, path);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw e;
      }
      const seen = await readLock(path);
      if (seen === undefined) continue; // released meanwhile
      const found = parseLock(seen.text);
      const verdict = judgeLock(found, self, procProbe, Date.now() - seen.mtimeMs, staleMs);
      if (verdict.held && verdict.leaseLeftMs !== undefined && !waited) {
        // Its holder touches it every refreshMs while it runs: one lease from now tells.
        waited = true;
        const waitMs = verdict.leaseLeftMs + Math.min(1000, staleMs / 10);
        opts.onLeaseWait?.(verdict.why, waitMs);
        await new Promise((r) => setTimeout(r, waitMs));
        attempt--;
        continue;
      }
      if (verdict.held) throw lockedError(path, found, verdict, staleMs);
      await moveAsideIfUnchanged(path, seen.text);
    }
  } finally {
    await unlink(tmp).catch(() => {});
  }
  const refresh = setInterval(() => {
    const now = new Date();
    utimes(path, now, now).catch(() => {});
  }, opts.refreshMs ?? LOCK_REFRESH_MS);
  refresh.unref();
  return async () => {
    clearInterval(refresh);
    // Only our own lock is removed: never one taken over after ours was judged stale.
    if ((await readLock(path))?.text === mine) await unlink(path).catch(() => {});
  };
}

async function readLock(path: string): Promise<{ text: string; mtimeMs: number } | undefined> {
  try {
    const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { text, mtimeMs: st.mtimeMs };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Remove a stale lock, but only the one judged: it is renamed aside first, and put back if what
 * was moved is another starter's fresh lock (two starters judging the same stale lock).
 */
async function moveAsideIfUnchanged(path: string, judged: string): Promise<void> {
  const aside = `${path}.stale-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const moved = await readFile(aside, 'utf8').catch(() => undefined);
  if (moved !== judged) await link(aside, path).catch(() => {});
  await unlink(aside).catch(() => {});
}
