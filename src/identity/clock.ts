/**
 * Time is an input. Core code never reads the wall clock itself: it is handed a Clock
 * (the composition root passes `systemClock`; tests pass a `ManualClock`).
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to: rotations in milliseconds of test time. */
export class ManualClock implements Clock {
  #t: number;
  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.#t = startMs;
  }
  now(): number {
    return this.#t;
  }
  set(ms: number): void {
    this.#t = ms;
  }
  advance(ms: number): number {
    this.#t += ms;
    return this.#t;
  }
}

/** Seconds since the epoch, floored: the NumericDate of JWT claims. */
export const nowSeconds = (clock: Clock): number => Math.floor(clock.now() / 1000);
