/**
 * Catching up with the shared store, and writing back to it (the convergence aid of
 * DESIGN.md: JetStream acknowledges before fsync and can lose acknowledged writes,
 * https://jepsen.io/analyses/nats-2.12.1; so: push plus periodic anti-entropy).
 *
 * One reconcile: read the whole store, apply what is newer than the local replica, write back
 * this node's pending writes, re-assert this node's own values that the store lost or holds in an
 * older version, and remove from the store the values past their forget time
 * (`BusOptions.forgetAt`), which are neither applied, written back nor re-asserted.
 */
import type { BusBackend, StoredValue } from './backend.ts';
import { decodeEnvelope, encodeEnvelope, type Envelope } from './envelope.ts';
import { isClusterError } from './errors.ts';
import { parseKvKey } from './naming.ts';
import type { Replica } from './replica.ts';
import { NODE_OWNED_KINDS, type InvalidInfo, type ReconcileReport } from './types.ts';

/** What the bus lends to its convergence logic. */
export interface ConvergenceHost {
  nodeName: string;
  backend: BusBackend;
  replica: Replica;
  connected(): boolean;
  /**
   * Apply a stored value by the replica's rule (counted by the bus); true when it changed state.
   * A value past its forget time is not applied: it drops what it supersedes.
   */
  apply(id: string, env: Envelope, revision: number, force?: boolean): boolean;
  /** Whether `env` holds a record past its forget time. */
  expired(env: Envelope): boolean;
  /** Drop a value past its forget time from the replica. */
  forget(id: string): void;
  /** One of this node's writes is in the store at `revision`: record and announce it. */
  stored(id: string, env: Envelope, revision: number): void;
  invalid(info: InvalidInfo): void;
}

export class Convergence {
  readonly #h: ConvergenceHost;
  /** Local revisions above the store's last revision seen by the previous reconcile. */
  #suspects = new Map<string, number>();

  constructor(host: ConvergenceHost) {
    this.#h = host;
  }

  /** Returns the report and the revision up to which the local replica is now complete. */
  async reconcile(): Promise<{ report: ReconcileReport; coveredRevision: number }> {
    const { backend, replica, nodeName } = this.#h;
    const report: ReconcileReport = { applied: 0, reasserted: 0, flushed: 0, purged: 0 };
    const coveredRevision = await backend.lastRevision();
    const snap = await backend.snapshot();
    const inStore = new Map<string, { env: Envelope; revision: number }>();
    const nextSuspects = new Map<string, number>();
    const expired: { kvKey: string; revision: number }[] = [];
    for (const sv of snap.entries) {
      const env = this.decodeStored(sv);
      if (!env) continue;
      inStore.set(sv.kvKey, { env, revision: sv.revision });
      // Applied like any value (the bus drops it, and what it supersedes), then removed below.
      if (this.#h.expired(env)) expired.push(sv);
      const cur = replica.value(sv.kvKey);
      // A revision above the store's last one cannot be real (the store was reset, or a peer
      // announced a made-up revision). A change announced while this reconcile ran can look the
      // same once, so the store wins only when the same revision is still there next time.
      let force = false;
      if (cur !== undefined && cur.pendingBase === undefined && cur.revision > snap.lastRevision) {
        force = this.#suspects.get(sv.kvKey) === cur.revision;
        nextSuspects.set(sv.kvKey, cur.revision);
      }
      if (this.#h.apply(sv.kvKey, env, sv.revision, force)) report.applied += 1;
    }
    this.#suspects = nextSuspects;
    report.flushed = await this.flushPending();
    for (const [id, l] of replica.values()) {
      if (l.env.origin !== nodeName || l.pendingBase !== undefined || this.#h.expired(l.env)) continue;
      const stored = inStore.get(id);
      const lost = !stored || (stored.env.origin === nodeName && stored.env.seq < l.env.seq);
      if (!lost) continue;
      try {
        const base = stored ? stored.revision : (snap.markers.get(id) ?? 0);
        this.#h.stored(id, l.env, await backend.kvUpdate(id, encodeEnvelope(l.env), base));
        report.reasserted += 1;
      } catch (err) {
        if (!isClusterError(err, 'ERR_CLUSTER_REVISION_MISMATCH')) throw err;
      }
    }
    // Whoever gets there first removes it; a value written since (a newer revision) stays.
    for (const sv of expired) {
      await backend.kvPurge(sv.kvKey, sv.revision);
      report.purged += 1;
    }
    return { report, coveredRevision };
  }

  decodeStored(sv: StoredValue): Envelope | undefined {
    const where = parseKvKey(sv.kvKey);
    if (!where) {
      this.#h.invalid({ reason: 'key_mismatch', source: sv.kvKey, errors: ['not a key of ours'] });
      return undefined;
    }
    const d = decodeEnvelope(sv.bytes, { kind: where.kind, key: where.key, event: false, requireRevision: false });
    if (!d.ok) {
      this.#h.invalid({ reason: d.reason, source: sv.kvKey, errors: d.errors });
      return undefined;
    }
    return d.env;
  }

  /** Write back what this node wrote while the store was unreachable. Returns how many were stored. */
  async flushPending(): Promise<number> {
    let flushed = 0;
    for (const [id, l] of this.#h.replica.values()) {
      if (l.pendingBase === undefined || !this.#h.connected()) continue;
      if (this.#h.expired(l.env)) {
        this.#h.forget(id);
        continue;
      }
      if (await this.#flushOne(id, l.env, l.pendingBase)) flushed += 1;
    }
    return flushed;
  }

  /**
   * Node-owned kinds are written unconditionally. Shared kinds are written by compare-and-set
   * against the pending write's base; when that loses, the store's value tells what happened:
   * our own write stored after all (a timeout that was not a failure), our own earlier write
   * (rebase on it), or someone else's (theirs wins).
   */
  async #flushOne(id: string, env: Envelope, base: number): Promise<boolean> {
    const { backend, nodeName } = this.#h;
    const bytes = encodeEnvelope(env);
    if (NODE_OWNED_KINDS.has(env.kind)) {
      this.#h.stored(id, env, await backend.kvPut(id, bytes));
      return true;
    }
    for (let expected = base, attempt = 0; attempt < 3; attempt++) {
      try {
        this.#h.stored(id, env, await backend.kvUpdate(id, bytes, expected));
        return true;
      } catch (err) {
        if (!isClusterError(err, 'ERR_CLUSTER_REVISION_MISMATCH')) throw err;
      }
      const now = await backend.kvGet(id);
      const stored = now && this.decodeStored(now);
      if (!now || !stored) {
        // Deleted at the store level since: nothing to lose by writing.
        this.#h.stored(id, env, await backend.kvPut(id, bytes));
        return true;
      }
      if (stored.origin === nodeName && stored.seq < env.seq) {
        expected = now.revision;
        continue;
      }
      this.#h.apply(id, stored, now.revision);
      return false;
    }
    return false;
  }
}
