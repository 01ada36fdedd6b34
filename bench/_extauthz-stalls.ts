/**
 * Stalls of one process during a benchmark phase: event-loop delay (how late a ready callback
 * ran: a check waiting behind other work, GC, or a descheduled process) and GC pauses. Used by
 * bench/extauthz-check.ts for its own process and for the node's (bench/_extauthz-node.ts).
 */
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

export interface Stalls {
  loopP99Ms: number;
  loopMaxMs: number;
  gcMaxMs: number;
  gcTotalMs: number;
}

/** Event-loop delay and GC pauses of this process since the last reset (ms): what stalls checks. */
export function stallMonitor() {
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  let gc = { count: 0, totalMs: 0, maxMs: 0 };
  let majorSinceStart = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if ((e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majorSinceStart++;
      gc.count++;
      gc.totalMs += e.duration;
      gc.maxMs = Math.max(gc.maxMs, e.duration);
    }
  }).observe({ entryTypes: ['gc'] });
  return {
    reset(): void {
      loop.reset();
      gc = { count: 0, totalMs: 0, maxMs: 0 };
    },
    /** Full (mark-compact) collections since the monitor started. */
    majorGcs(): number {
      return majorSinceStart;
    },
    read(): Stalls {
      return { loopP99Ms: loop.percentile(99) / 1e6, loopMaxMs: loop.max / 1e6, gcMaxMs: gc.maxMs, gcTotalMs: gc.totalMs };
    },
  };
}
