/**
 * When to renew a WIT and how long to wait after a failure: pure functions of `now`.
 *
 * Renewal happens at the server's `refresh_at` (about half-way through the WIT's life), or at
 * half-life when the server gave none or an unusable one, plus a small random jitter so that many
 * workloads started together do not renew together; always before expiry.
 */

export interface RenewalPlan {
  /** Milliseconds since the epoch at which to fetch the next WIT. */
  readonly renewAtMs: number;
}

/**
 * `issuedAtMs` is when the WIT was received; `refreshAtSec` and `expiresAtSec` come from the
 * server. `random` in [0, 1) draws the jitter (up to `jitterFraction` of the remaining life,
 * default 5%).
 */
export function planRenewal(issuedAtMs: number, expiresAtSec: number, refreshAtSec: number | undefined, random: number, jitterFraction = 0.05): RenewalPlan {
  const expMs = expiresAtSec * 1000;
  const life = Math.max(0, expMs - issuedAtMs);
  const half = issuedAtMs + life / 2;
  const refreshMs = refreshAtSec !== undefined && refreshAtSec > 0 ? refreshAtSec * 1000 : undefined;
  // The server's hint is used only when it lies inside the WIT's life.
  const base = refreshMs !== undefined && refreshMs > issuedAtMs && refreshMs < expMs ? refreshMs : half;
  const jitter = random * jitterFraction * life;
  // Never later than 90% of the life: leave room for retries before expiry.
  const latest = issuedAtMs + life * 0.9;
  return { renewAtMs: Math.round(Math.min(base + jitter, latest)) };
}

/** Exponential backoff with full jitter: attempt 0 -> [base/2, base), capped at `maxMs`. */
export function backoffDelay(attempt: number, random: number, baseMs = 1000, maxMs = 30_000): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling / 2 + random * (ceiling / 2));
}
