/**
 * The rotation driver (SPIRE `pkg/server/ca/rotator/rotator.go`): it ticks, reads each kind's
 * slot, decides which verbs to call (`decide`, pure) and calls them on its target. Errors of
 * one kind are logged and counted, and the loop keeps going. Time comes from the injected clock;
 * the tick interval is real time (tests call `tick()` directly after moving a ManualClock).
 */
import type { Clock } from '../identity/index.ts';
import { KEY_KINDS, type KeyKind } from './key-record.ts';
import { silentLogger, type CaLogger } from './logger.ts';
import { hasUsableNext, needsActiveKey, shouldActivateNext, shouldPrepareNext, type Slot } from './slot.ts';

/** What the rotator drives: the consumer owns the interface (STYLE.md §8). */
export interface RotatorTarget {
  slot(kind: KeyKind): Slot;
  prepare(kind: KeyKind): Promise<unknown>;
  activate(kind: KeyKind): Promise<unknown>;
  prune(): Promise<unknown>;
}

export type Verb = 'prepare' | 'activate';

/** Which verbs a slot needs at `now`, in order. */
export function decide(s: Slot, now: number): Verb[] {
  if (needsActiveKey(s, now)) return hasUsableNext(s, now) ? ['activate'] : ['prepare', 'activate'];
  const cur = s.current!;
  if (s.next && !hasUsableNext(s, now)) return now >= cur.activateNextAt ? ['prepare', 'activate'] : ['prepare'];
  if (shouldActivateNext(s, now)) return ['activate'];
  if (shouldPrepareNext(s, now)) return now >= cur.activateNextAt ? ['prepare', 'activate'] : ['prepare'];
  return [];
}

export interface RotatorStats {
  ticks: number;
  errors: number;
  prepared: number;
  activated: number;
}

export class Rotator {
  readonly stats: RotatorStats = { ticks: 0, errors: 0, prepared: 0, activated: 0 };
  readonly #target: RotatorTarget;
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #log: CaLogger;
  readonly #kinds: readonly KeyKind[];
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = true;

  constructor(opts: { target: RotatorTarget; clock: Clock; intervalMs: number; logger?: CaLogger; kinds?: readonly KeyKind[] }) {
    // A Node timer fires a delay past 2^31 - 1 ms after 1 ms: such a rotator would spin.
    if (!Number.isFinite(opts.intervalMs) || opts.intervalMs <= 0 || opts.intervalMs > 2 ** 31 - 1)
      throw new TypeError('"intervalMs" must be a positive number of at most 2^31 - 1');
    this.#target = opts.target;
    this.#clock = opts.clock;
    this.#intervalMs = opts.intervalMs;
    this.#log = opts.logger ?? silentLogger;
    this.#kinds = opts.kinds ?? KEY_KINDS;
  }

  /** One pass over every kind, then pruning. Never throws. Overlapping calls share one pass. */
  tick(): Promise<void> {
    if (!this.#running) this.#running = this.#tickOnce().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #tickOnce(): Promise<void> {
    this.stats.ticks++;
    for (const kind of this.#kinds) {
      try {
        for (const verb of decide(this.#target.slot(kind), this.#clock.now())) {
          await this.#target[verb](kind);
          if (verb === 'prepare') this.stats.prepared++;
          else this.stats.activated++;
        }
      } catch (e) {
        this.stats.errors++;
        this.#log.error({ kind, err: errInfo(e) }, 'key rotation failed; will retry next tick');
      }
    }
    try {
      await this.#target.prune();
    } catch (e) {
      this.stats.errors++;
      this.#log.error({ err: errInfo(e) }, 'key pruning failed; will retry next tick');
    }
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    const loop = () => {
      this.#timer = setTimeout(() => {
        void this.tick().then(() => {
          if (!this.#stopped) loop();
        });
      }, this.#intervalMs);
      this.#timer.unref();
    };
    loop();
  }

  /** Stop ticking; resolves once a tick in progress has finished. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}

const errInfo = (e: unknown) => (e instanceof Error ? { name: e.name, message: e.message, code: (e as { code?: unknown }).code } : { value: String(e) });
