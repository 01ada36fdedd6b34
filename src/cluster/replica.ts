/**
 * A node's local copy of the shared state, and the rule that orders writes into it.
 *
 * A stored value is applied only if its store revision is higher than the one held, and a value
 * from the same origin with an older sequence is ignored: duplicates and reordered deliveries are
 * harmless (idempotent, revision-ordered). A local write not yet stored ("pending") keeps the
 * revision it was based on; a value from another node stored after that base wins over it
 * (counted as a conflict).
 */
import type { Envelope } from './envelope.ts';
import { kvKey } from './naming.ts';
import type { BusLogger, Change, Entry, RecordKind } from './types.ts';

export interface LocalValue {
  env: Envelope;
  /** 0 while pending. */
  revision: number;
  /** Defined while this node's write is not stored yet: the revision it was based on. */
  pendingBase?: number;
}

export type ApplyOutcome = 'applied' | 'conflict' | 'stale';

type Handler = (change: Change) => void;

export class Replica {
  readonly #values = new Map<string, LocalValue>();
  readonly #watchers = new Map<RecordKind, Set<Handler>>();
  readonly #nodeName: string;
  readonly #log: BusLogger;
  /** The highest sequence of this node's own writes seen in the shared state. */
  maxOwnSeq = 0;

  constructor(nodeName: string, log: BusLogger) {
    this.#nodeName = nodeName;
    this.#log = log;
  }

  value(id: string): LocalValue | undefined {
    return this.#values.get(id);
  }

  values(): [string, LocalValue][] {
    return [...this.#values];
  }

  /** Record a value and tell the watchers of its kind. */
  set(id: string, l: LocalValue, local: boolean): void {
    this.#values.set(id, l);
    const { kind, key } = l.env;
    const entry = toEntry(l);
    const change: Change = { kind, key: key!, deleted: !entry, origin: l.env.origin, revision: l.revision, local };
    if (entry) change.entry = entry;
    this.#tell(change);
  }

  #tell(change: Change): void {
    for (const h of this.#watchers.get(change.kind) ?? []) {
      try {
        h(change);
      } catch (err) {
        this.#log.error({ err: String(err) }, 'cluster watcher threw');
      }
    }
  }

  /**
   * Drop a value (past its forget time) without a tombstone, and tell the watchers of its kind of a
   * deletion if a record was held. False when nothing was held.
   */
  forget(id: string): boolean {
    const l = this.#values.get(id);
    if (!l) return false;
    this.#values.delete(id);
    if (l.env.deleted || l.env.record === undefined) return true;
    this.#tell({ kind: l.env.kind, key: l.env.key!, deleted: true, origin: l.env.origin, revision: l.revision, local: true });
    return true;
  }

  /** Learn the store revision of a value already held, without telling anyone (nothing changed). */
  learnRevision(id: string, env: Envelope, revision: number): void {
    this.#values.set(id, { env, revision });
  }

  /**
   * The ordering rule, without applying anything: a stored value is taken ('applied', or
   * 'conflict' when it wins over a pending local write) or ignored ('stale': the same write
   * again, an older sequence of the same origin, or a revision not above the one held).
   */
  judge(id: string, env: Envelope, revision: number, force = false): ApplyOutcome {
    const cur = this.#values.get(id);
    if (!cur || force) return 'applied';
    if (env.origin === cur.env.origin && env.seq <= cur.env.seq) return 'stale';
    if (revision <= (cur.pendingBase ?? cur.revision)) return 'stale';
    return cur.pendingBase !== undefined ? 'conflict' : 'applied';
  }

  /** Apply a stored value by the ordering rule; `force` lets the store win regardless. */
  apply(id: string, env: Envelope, revision: number, force = false): ApplyOutcome {
    const cur = this.#values.get(id);
    const outcome = this.judge(id, env, revision, force);
    if (outcome === 'stale') {
      // The same write seen again (our own echo, or a peer's write twice): at most learn its revision.
      if (cur && env.origin === cur.env.origin && env.seq === cur.env.seq && cur.revision < revision) this.learnRevision(id, cur.env, revision);
      return 'stale';
    }
    if (outcome === 'conflict') this.#log.warn({ kind: env.kind, key: env.key, winner: env.origin }, 'cluster write lost to a concurrent write');
    if (env.origin === this.#nodeName && env.seq > this.maxOwnSeq) this.maxOwnSeq = env.seq;
    this.set(id, { env, revision }, false);
    return outcome;
  }

  get<K extends RecordKind>(kind: K, key: string): Entry<K> | undefined {
    const l = this.#values.get(kvKey(kind, key));
    return l ? (toEntry(l) as Entry<K> | undefined) : undefined;
  }

  list<K extends RecordKind>(kind: K): Entry<K>[] {
    const out: Entry<K>[] = [];
    for (const l of this.#values.values()) {
      if (l.env.kind !== kind) continue;
      const e = toEntry(l);
      if (e) out.push(e as Entry<K>);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  watch(kind: RecordKind, handler: Handler): () => void {
    let set = this.#watchers.get(kind);
    if (!set) this.#watchers.set(kind, (set = new Set()));
    set.add(handler);
    return () => set.delete(handler);
  }

  pendingCount(): number {
    let n = 0;
    for (const l of this.#values.values()) if (l.pendingBase !== undefined) n += 1;
    return n;
  }
}

function toEntry(l: LocalValue): Entry | undefined {
  const { env } = l;
  if (env.deleted || env.record === undefined) return undefined;
  return { kind: env.kind, key: env.key!, record: env.record, origin: env.origin, seq: env.seq, revision: l.revision };
}
