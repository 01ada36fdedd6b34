/**
 * Slots are data (SPIRE `pkg/server/ca/manager/slot.go`): per key kind, the `current` (active)
 * key and the `next` (prepared) key. Predicates are one-liners over the slot and `now`; the
 * thresholds themselves are fixed into each key record when it is created (`keyTimes`), so the
 * predicates need no configuration.
 */
import type { KeyKind, KeyRecord, KeyStatus } from './key-record.ts';

export interface SlotKey {
  readonly kid: string;
  readonly status: KeyStatus;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly prepareNextAt: number;
  readonly activateNextAt: number;
}

export interface Slot {
  readonly kind: KeyKind;
  readonly current?: SlotKey;
  readonly next?: SlotKey;
}

/** Rotation timing; every duration in seconds. Defaults follow SPIRE (`ca_ttl` 24 h, 1/2, 5/6). */
export interface Timing {
  /** Lifetime of each signing key (and of its CA certificate). */
  readonly keyTtlSec: number;
  /** Fraction of the current key's life after which the next key is prepared. */
  readonly prepareAt: number;
  /** Fraction of the current key's life after which the next key is activated. */
  readonly activateAt: number;
  /** How often the rotator ticks. */
  readonly rotateIntervalSec: number;
  /** How long an old/tainted/revoked key stays after its notAfter (clock skew of verifiers). */
  readonly pruneGraceSec: number;
}

/** Longest key lifetime (100 years): every CA certificate ends far inside X.509's year 9999. */
export const MAX_KEY_TTL_SEC = 36_500 * 86_400;
/** Longest rotator tick: a Node timer holds at most 2^31 - 1 ms and fires a longer delay at once. */
export const MAX_ROTATE_INTERVAL_SEC = Math.floor((2 ** 31 - 1) / 1000);

export const DEFAULT_TIMING: Timing = Object.freeze({
  keyTtlSec: 24 * 3600,
  prepareAt: 1 / 2,
  activateAt: 5 / 6,
  rotateIntervalSec: 10,
  pruneGraceSec: 300,
});

/** Merge and check timing; bad options are misuse (TypeError), thrown once at construction. */
export function resolveTiming(t: Partial<Timing> = {}): Timing {
  const r = { ...DEFAULT_TIMING, ...t };
  for (const f of ['keyTtlSec', 'rotateIntervalSec'] as const)
    if (!Number.isFinite(r[f]) || r[f] <= 0) throw new TypeError(`timing.${f} must be a positive number`);
  if (r.keyTtlSec > MAX_KEY_TTL_SEC) throw new TypeError(`timing.keyTtlSec must be at most ${MAX_KEY_TTL_SEC} (100 years)`);
  if (r.rotateIntervalSec > MAX_ROTATE_INTERVAL_SEC) throw new TypeError(`timing.rotateIntervalSec must be at most ${MAX_ROTATE_INTERVAL_SEC} (a Node timer's limit)`);
  if (!Number.isFinite(r.pruneGraceSec) || r.pruneGraceSec < 0) throw new TypeError('timing.pruneGraceSec must be >= 0');
  if (!(r.prepareAt > 0 && r.prepareAt < r.activateAt && r.activateAt < 1))
    throw new TypeError('timing must satisfy 0 < prepareAt < activateAt < 1');
  return Object.freeze(r);
}

/** A new key's lifetime and thresholds, pure in its creation time. */
export function keyTimes(notBefore: number, t: Timing): Pick<SlotKey, 'notBefore' | 'notAfter' | 'prepareNextAt' | 'activateNextAt'> {
  const life = Math.round(t.keyTtlSec * 1000);
  return {
    notBefore,
    notAfter: notBefore + life,
    prepareNextAt: notBefore + Math.round(life * t.prepareAt),
    activateNextAt: notBefore + Math.round(life * t.activateAt),
  };
}

/** Build the slot of `kind`: current = the active key; next = the newest prepared key. */
export function slotOf(kind: KeyKind, records: readonly KeyRecord[]): Slot {
  let current: KeyRecord | undefined;
  let next: KeyRecord | undefined;
  for (const r of records) {
    if (r.kind !== kind || r.origin !== undefined) continue;
    if (r.status === 'active') current = r;
    else if (r.status === 'prepared' && (!next || r.notBefore >= next.notBefore)) next = r;
  }
  return { kind, ...(current ? { current: view(current) } : {}), ...(next ? { next: view(next) } : {}) };
}

const view = (r: KeyRecord): SlotKey => ({
  kid: r.kid,
  status: r.status,
  notBefore: r.notBefore,
  notAfter: r.notAfter,
  prepareNextAt: r.prepareNextAt,
  activateNextAt: r.activateNextAt,
});

/** No usable active key: nothing active, or the active key has expired (node was down). */
export const needsActiveKey = (s: Slot, now: number): boolean => s.current === undefined || now >= s.current.notAfter;

/** A usable prepared key exists (not expired). */
export const hasUsableNext = (s: Slot, now: number): boolean => s.next !== undefined && now < s.next.notAfter;

/** Half the current key's life has gone and nothing is prepared yet. */
export const shouldPrepareNext = (s: Slot, now: number): boolean =>
  s.current !== undefined && s.next === undefined && now >= s.current.prepareNextAt;

/** Five sixths of the current key's life have gone and a next key is waiting. */
export const shouldActivateNext = (s: Slot, now: number): boolean =>
  s.current !== undefined && s.next !== undefined && now >= s.current.activateNextAt;
