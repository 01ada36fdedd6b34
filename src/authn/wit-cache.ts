/**
 * A bounded cache of verified WITs, keyed by the exact token string.
 *
 * A WIT is reused for its whole lifetime (hours), so re-verifying its signature on every request is
 * the largest avoidable cost (a PEM parsed per call makes ES256 verification 3x slower). An entry
 * is returned only while `now < exp` and only if the trust domain's bundle is still the very object
 * that verified it: a bundle update (key rotation, revocation of a key) replaces the object, and
 * every entry it vouched for stops matching. Least recently used entries leave first once
 * `maxEntries` is hit.
 */
import type { TrustBundleSet } from '../identity/trust-bundle.ts';
import type { VerifiedWit } from './wit.ts';

export class WitCache {
  // Map iteration order is insertion order: re-inserting on a hit keeps it LRU.
  readonly #entries = new Map<string, VerifiedWit>();
  readonly maxEntries: number;
  hits = 0;
  misses = 0;

  constructor(opts: { maxEntries?: number } = {}) {
    const max = opts.maxEntries ?? 10_000;
    if (!Number.isInteger(max) || max < 1) throw new TypeError('"witCache.maxEntries" must be a positive integer');
    this.maxEntries = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(token: string, bundles: TrustBundleSet, nowSec: number): VerifiedWit | undefined {
    const e = this.#entries.get(token);
    if (e === undefined) {
      this.misses++;
      return undefined;
    }
    this.#entries.delete(token);
    if (nowSec >= e.exp || bundles.get(e.sub.trustDomain) !== e.bundle) {
      this.misses++;
      return undefined;
    }
    this.#entries.set(token, e);
    this.hits++;
    return e;
  }

  set(wit: VerifiedWit): void {
    this.#entries.delete(wit.token);
    while (this.#entries.size >= this.maxEntries) this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.set(wit.token, wit);
  }

  clear(): void {
    this.#entries.clear();
  }
}
