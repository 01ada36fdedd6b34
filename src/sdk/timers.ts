/**
 * Timers are an input, like the clock: the client schedules renewals through `Timers`, so tests
 * drive renewal with a ManualClock and fire due timers themselves.
 */
export interface Timers {
  set(fn: () => void, delayMs: number): unknown;
  clear(handle: unknown): void;
}

export const systemTimers: Timers = {
  set: (fn, delayMs) => {
    const t = setTimeout(fn, Math.max(0, delayMs));
    // A pending renewal must not keep a process alive on its own.
    t.unref?.();
    return t;
  },
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};
