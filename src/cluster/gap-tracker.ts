/**
 * Detects missed change messages. Every store write gets the next revision of the bucket and is
 * announced with it, so revisions seen on the bus should be contiguous. A hole that stays open
 * longer than a short grace (reordering) means a message was lost: time to catch up from the store.
 */
export class GapTracker {
  #upTo = 0;
  readonly #seen = new Set<number>();

  /** Everything up to `revision` is known (after a catch-up from the store). */
  reset(revision: number): void {
    if (revision > this.#upTo) this.#upTo = revision;
    for (const r of this.#seen) if (r <= this.#upTo) this.#seen.delete(r);
    this.#advance();
  }

  see(revision: number): void {
    if (revision <= this.#upTo) return;
    this.#seen.add(revision);
    this.#advance();
  }

  /** The lowest revision not seen while a later one was, or undefined when there is no hole. */
  missing(): number | undefined {
    return this.#seen.size ? this.#upTo + 1 : undefined;
  }

  #advance(): void {
    while (this.#seen.delete(this.#upTo + 1)) this.#upTo += 1;
  }
}
