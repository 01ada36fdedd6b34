/**
 * A bounded replay cache: remembers keys (a WPT `jti` scoped to its sender, an HTTP-signature
 * nonce) until they expire, and refuses a key it has already seen.
 *
 * Bounded in memory (at `maxEntries` the oldest entries are evicted) and in time: once a second
 * the oldest entries that have expired are dropped, from the oldest on, stopping at the first one
 * still held. That costs only what it removes: a full scan of 100,000 keys took 1-14 ms, a stall
 * on every check path once a second. An expired key behind a longer-lived one stays until that
 * one goes (or is evicted), but it no longer counts: a key is refused only while it is held.
 * Eviction can only let a replay through for a key older than every key still held, so size it
 * for the traffic in one validity window. A cache is per node: replays sent to another node are
 * not seen (documented in docs/authn.md).
 */
export interface ReplayGuard {
  /**
   * Record `key` as used until `expiresAtSec`. Returns true if it was new, false if it is a
   * replay of a key still held.
   */
  checkAndStore(key: string, expiresAtSec: number, nowSec: number): boolean;
}

export class ReplayCache implements ReplayGuard {
  // Insertion-ordered: Map iteration gives the oldest first.
  readonly #entries = new Map<string, number>();
  readonly #maxEntries: number;
  #lastSweep = 0;

  constructor(opts: { maxEntries?: number } = {}) {
    const max = opts.maxEntries ?? 100_000;
    if (!Number.isInteger(max) || max < 1) throw new TypeError('"maxEntries" must be a positive integer');
    this.#maxEntries = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  checkAndStore(key: string, expiresAtSec: number, nowSec: number): boolean {
    const held = this.#entries.get(key);
    if (held !== undefined && held >= nowSec) return false;
    if (nowSec !== this.#lastSweep) this.#sweep(nowSec);
    if (held !== undefined) this.#entries.delete(key);
    while (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
    this.#entries.set(key, expiresAtSec);
    return true;
  }

  #sweep(nowSec: number): void {
    this.#lastSweep = nowSec;
    for (const [k, exp] of this.#entries) {
      if (exp >= nowSec) break;
      this.#entries.delete(k);
    }
  }
}
