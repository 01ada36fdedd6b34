/**
 * A bounded replay cache that fails closed: it remembers keys (a WPT `jti` scoped to its sender,
 * an HTTP-signature nonce) for as long as their token can still be accepted, and refuses a key it
 * already holds.
 *
 * A key is dropped only once its token can no longer be accepted (the `expiresAtSec` the caller
 * passes is the token's expiry plus the allowed skew). Nothing still valid is ever evicted: a
 * cache full of live keys refuses the *new* key (`'full'`), so a full cache costs availability,
 * never a replay. Size it by time: entries needed ≈ accepted tokens per second × how long each is
 * held (docs/authn.md, "Replay caches").
 *
 * Expired keys leave from the soonest-expiring on: keys are grouped by the second in which they
 * expire, and a min-heap of those seconds says which group goes next. Each call looks at the top
 * of the heap (one comparison when nothing is due) and removes only what is due, so the cost is
 * what it removes, never what it holds, and no expired key stays behind a longer-lived one. A
 * cache is per node: replays sent to another node are not seen (documented in docs/authn.md).
 */

/** `fresh`: recorded now. `replayed`: the key is held. `full`: not recorded, refuse the request. */
export type ReplayVerdict = 'fresh' | 'replayed' | 'full';

export interface ReplayGuard {
  /**
   * Record `key` as used until `expiresAtSec` (the last second its token can be accepted).
   * Returns `'fresh'` if it was recorded, `'replayed'` if the key is held already, `'full'` if it
   * could not be recorded because every entry is still live: the caller must refuse the request.
   */
  checkAndStore(key: string, expiresAtSec: number, nowSec: number): ReplayVerdict;
}

export interface ReplayCacheStats {
  /** Keys held now. */
  readonly entries: number;
  /** `maxEntries`. */
  readonly capacity: number;
  /** Keys refused because the cache was full of live keys, since it was created. */
  readonly refusedFull: number;
}

/** About 110 MB when full (keys of ~60 characters); see docs/authn.md for sizing. */
export const DEFAULT_REPLAY_CACHE_ENTRIES = 1_000_000;

export class ReplayCache implements ReplayGuard {
  /** key -> the second after which it may be dropped (its token's expiry plus skew). */
  readonly #entries = new Map<string, number>();
  /** ceil(expiry) -> keys stored with an expiry in that second. */
  readonly #buckets = new Map<number, string[]>();
  /** The bucket seconds, a binary min-heap. */
  readonly #heap: number[] = [];
  readonly #maxEntries: number;
  #refusedFull = 0;

  constructor(opts: { maxEntries?: number } = {}) {
    const max = opts.maxEntries ?? DEFAULT_REPLAY_CACHE_ENTRIES;
    if (!Number.isInteger(max) || max < 1) throw new TypeError('"maxEntries" must be a positive integer');
    this.#maxEntries = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  stats(): ReplayCacheStats {
    return { entries: this.#entries.size, capacity: this.#maxEntries, refusedFull: this.#refusedFull };
  }

  checkAndStore(key: string, expiresAtSec: number, nowSec: number): ReplayVerdict {
    if (!Number.isFinite(expiresAtSec)) throw new TypeError('"expiresAtSec" must be a finite number');
    this.#sweep(nowSec);
    const held = this.#entries.get(key);
    if (held !== undefined) {
      if (held >= nowSec) return 'replayed';
      // Expired within the current second: its bucket is not due yet. The bucket still lists the
      // key; the sweep drops a key only if its current expiry belongs to the bucket being swept.
      this.#entries.delete(key);
    }
    if (this.#entries.size >= this.#maxEntries) {
      this.#refusedFull++;
      return 'full';
    }
    this.#entries.set(key, expiresAtSec);
    const second = Math.ceil(expiresAtSec);
    const bucket = this.#buckets.get(second);
    if (bucket) bucket.push(key);
    else {
      this.#buckets.set(second, [key]);
      heapPush(this.#heap, second);
    }
    return 'fresh';
  }

  /** Drop every key whose expiry second is before `nowSec` (those can no longer be accepted). */
  #sweep(nowSec: number): void {
    const heap = this.#heap;
    while (heap.length > 0 && heap[0]! < nowSec) {
      const second = heapPop(heap);
      for (const k of this.#buckets.get(second)!) {
        const exp = this.#entries.get(k);
        // A key stored again later (after it expired) belongs to a later bucket: keep it.
        if (exp !== undefined && Math.ceil(exp) <= second) this.#entries.delete(k);
      }
      this.#buckets.delete(second);
    }
  }
}

function heapPush(h: number[], v: number): void {
  let i = h.length;
  h.push(v);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (h[parent]! <= v) break;
    h[i] = h[parent]!;
    i = parent;
  }
  h[i] = v;
}

function heapPop(h: number[]): number {
  const top = h[0]!;
  const last = h.pop()!;
  if (h.length === 0) return top;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= h.length) break;
    const r = l + 1;
    const c = r < h.length && h[r]! < h[l]! ? r : l;
    if (h[c]! >= last) break;
    h[i] = h[c]!;
    i = c;
  }
  h[i] = last;
  return top;
}
