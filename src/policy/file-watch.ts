/**
 * Reloading a policy file when it changes: fs.watch on its directory (which also sees editors
 * and config-map updates that replace the file by rename) plus stat polling as a fallback for
 * file systems where fs.watch is silent. Changes are debounced, reloads never overlap, and a
 * refused or unreadable file leaves the current policy serving.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { systemClock, type Clock } from '../identity/index.ts';
import { MAX_POLICY_BYTES } from './load.ts';
import type { LoadResult, PolicyStore } from './store.ts';

export interface WatchOptions {
  /** Quiet time after the last change before reloading. Default 100 ms. */
  readonly debounceMs?: number;
  /** Stat polling period. Default 1000 ms; 0 disables polling. */
  readonly pollMs?: number;
  /** Skip fs.watch and rely on polling only. */
  readonly pollOnly?: boolean;
  readonly maxBytes?: number;
  /** Stamps events. */
  readonly clock?: Clock;
  /** Every reload attempt: a LoadResult, or the read error (the old policy keeps serving). */
  readonly onReload?: (event: WatchEvent) => void;
}

export type WatchEvent =
  | { readonly at: number; readonly path: string; readonly result: LoadResult }
  | { readonly at: number; readonly path: string; readonly readError: string };

export interface PolicyWatch {
  /** The first load of the file. */
  readonly initial: Promise<WatchEvent>;
  /** Reload now (also what a change triggers after the debounce). */
  reload(): Promise<WatchEvent>;
  close(): void;
}

export function watchPolicyFile(store: PolicyStore, path: string, opts: WatchOptions = {}): PolicyWatch {
  const debounceMs = opts.debounceMs ?? 100;
  const pollMs = opts.pollMs ?? 1000;
  const maxBytes = opts.maxBytes ?? MAX_POLICY_BYTES;
  const clock = opts.clock ?? systemClock;
  for (const [k, v] of [['debounceMs', debounceMs], ['pollMs', pollMs], ['maxBytes', maxBytes]] as const)
    if (!Number.isInteger(v) || v < 0) throw new TypeError(`"${k}" must be a non-negative integer`);
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<WatchEvent> | undefined;
  let again = false;
  let lastStat = '';

  const readOnce = async (): Promise<WatchEvent> => {
    const at = clock.now();
    try {
      const st = await stat(path);
      lastStat = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (st.size > maxBytes) return { at, path, readError: `file is ${st.size} bytes, more than the limit of ${maxBytes}` };
      const text = await readFile(path, 'utf8');
      return { at, path, result: store.load(text, path) };
    } catch (e) {
      return { at, path, readError: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
    }
  };

  const reload = (): Promise<WatchEvent> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      let ev: WatchEvent;
      do {
        again = false;
        ev = await readOnce();
        if (!closed) opts.onReload?.(ev);
      } while (again && !closed);
      running = undefined;
      return ev;
    })();
    return running;
  };

  const schedule = (): void => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void reload();
    }, debounceMs);
  };

  let watcher: FSWatcher | undefined;
  if (!opts.pollOnly) {
    try {
      const name = basename(path);
      watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
        if (file === null || file === name) schedule();
      });
      watcher.on('error', () => watcher?.close());
    } catch {
      watcher = undefined; // polling still runs
    }
  }
  let poller: NodeJS.Timeout | undefined;
  if (pollMs > 0) {
    poller = setInterval(() => {
      stat(path).then(
        (st) => {
          if (`${st.ino}:${st.size}:${st.mtimeMs}` !== lastStat) schedule();
        },
        () => {
          if (lastStat !== 'missing') {
            lastStat = 'missing';
            schedule();
          }
        },
      );
    }, pollMs);
    poller.unref();
  }

  return {
    initial: reload(),
    reload,
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      if (poller) clearInterval(poller);
      watcher?.close();
    },
  };
}
