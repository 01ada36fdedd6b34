/** Small timing helpers shared by the latency benchmarks. */

/** The p-th percentile (nearest rank) of `xs`. */
export function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export const fmtMs = (ms: number): string => `${ms.toFixed(2)} ms`;

export const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `cond` every `everyMs` until it holds; throw after `timeoutMs`. */
export async function until(cond: () => boolean, timeoutMs: number, everyMs = 1): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error('timed out');
    await wait(everyMs);
  }
}
