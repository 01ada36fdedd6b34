/**
 * The replication logic shared by every bus implementation; a `BusBackend` supplies the store
 * and the broadcast.
 *
 * Ordering is the replica's rule (replica.ts). Writes made while the store is unreachable are
 * kept locally ("pending") and written when it is back: node-owned kinds unconditionally (only
 * their owner writes them),
 * shared kinds by compare-and-set against the revision they were based on, so a concurrent
 * write made elsewhere in the meantime wins and the conflict is counted.
 *
 * Convergence (core NATS is at most once, JetStream acknowledges before fsync,
 * https://jepsen.io/analyses/nats-2.12.1): catch up from the store (convergence.ts) on start, on
 * reconnect, when a revision gap stays open, and periodically.
 *
 * Expiry (`BusOptions.forgetAt`): a record past its forget time is refused on receipt, dropped
 * from the replica by every reconcile (periodic or not, connected or not) and removed from the
 * store by the next connected one. It needs no tombstone: every node applies the same rule to
 * whatever copy turns up.
 */
import type { BusBackend } from './backend.ts';
import { decodeEnvelope, encodeEnvelope, MAX_MESSAGE_BYTES, type Envelope } from './envelope.ts';
import { ClusterError } from './errors.ts';
import { GapTracker } from './gap-tracker.ts';
import { Convergence } from './convergence.ts';
import { Replica } from './replica.ts';
import { changeSubject, eventSubject, kvKey, parseSubject, subjectPrefix } from './naming.ts';
import { checkKeySyntax, checkRecord, expectedKey, isNodeName, ownerOfKey } from './records.ts';
import {
  INVALID_REASONS,
  NODE_OWNED_KINDS,
  noopLogger,
  type Bus,
  type BusLogger,
  type BusOptions,
  type BusStats,
  type Change,
  type Entry,
  type EventMeta,
  type ForgetRule,
  type InvalidInfo,
  type InvalidReason,
  type ReconcileReport,
  type RecordKind,
  type RecordOf,
} from './types.ts';
import { parseTrustDomain, systemClock } from '../identity/index.ts';

type EventHandler = (record: unknown, meta: EventMeta) => void;

export class ReplicatedBus implements Bus {
  readonly trustDomain: string;
  readonly nodeName: string;
  readonly #backend: BusBackend;
  readonly #clock: { now(): number };
  readonly #log: BusLogger;
  readonly #onInvalid: ((info: InvalidInfo) => void) | undefined;
  readonly #reconcileMs: number;
  readonly #retryMs: number;
  readonly #gapGraceMs: number;
  readonly #forgetAt: ForgetRule;
  readonly #replica: Replica;
  readonly #convergence: Convergence;
  readonly #subscribers = new Map<RecordKind, Set<EventHandler>>();
  readonly #connHandlers = new Set<(connected: boolean) => void>();
  readonly #gaps = new GapTracker();
  #seq = 0;
  #started?: Promise<void>;
  #closed = false;
  #wasConnected = false;
  #reconciling?: Promise<ReconcileReport>;
  #again = false;
  #reconcileTimer?: NodeJS.Timeout;
  #retryTimer?: NodeJS.Timeout;
  #gapTimer?: NodeJS.Timeout;
  #catchUpTimer?: NodeJS.Timeout;
  #catchUpBackoff = 0;
  readonly #stats: Omit<BusStats, 'pending'> = {
    applied: 0,
    forgotten: 0,
    stale: 0,
    invalid: Object.fromEntries(INVALID_REASONS.map((r) => [r, 0])) as Record<InvalidReason, number>,
    conflicts: 0,
    reconciles: 0,
    repaired: 0,
  };

  constructor(backend: BusBackend, opts: BusOptions) {
    const td = parseTrustDomain(opts.trustDomain);
    if (!td.ok) throw new TypeError(`"trustDomain" is invalid: ${td.message}`);
    if (!isNodeName(opts.nodeName)) throw new TypeError('"nodeName" must be 1-64 characters of [A-Za-z0-9._-]');
    for (const f of ['reconcileIntervalMs', 'retryMs', 'gapGraceMs'] as const) {
      const v = opts[f];
      if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new TypeError(`"${f}" must be a non-negative integer`);
    }
    this.trustDomain = td.value;
    this.nodeName = opts.nodeName;
    this.#backend = backend;
    this.#clock = opts.clock ?? systemClock;
    this.#log = opts.logger ?? noopLogger;
    this.#onInvalid = opts.onInvalid;
    this.#reconcileMs = opts.reconcileIntervalMs ?? 30_000;
    this.#retryMs = opts.retryMs ?? 1_000;
    this.#gapGraceMs = opts.gapGraceMs ?? 250;
    this.#forgetAt = opts.forgetAt ?? {};
    this.#replica = new Replica(this.nodeName, this.#log);
    this.#convergence = new Convergence({
      nodeName: this.nodeName,
      backend,
      replica: this.#replica,
      connected: () => this.connected,
      apply: (id, env, revision, force) => this.#applyRemote(id, env, revision, force),
      expired: (env) => this.#pastForgetTime(env),
      forget: (id) => this.#forget(id),
      stored: (id, env, revision) => this.#stored(id, env, revision),
      invalid: (info) => this.#invalid(info),
    });
  }

  get connected(): boolean {
    return !this.#closed && this.#backend.connected;
  }

  start(): Promise<void> {
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    this.#assertOpen();
    await this.#backend.open({
      message: (subject, bytes) => this.#onMessage(subject, bytes),
      connection: (connected) => this.#onConnection(connected),
    });
    if (this.#reconcileMs > 0) {
      this.#reconcileTimer = setInterval(() => void this.#reconcileQuietly(), this.#reconcileMs);
      this.#reconcileTimer.unref();
    }
    if (this.connected) {
      this.#wasConnected = true;
      await this.#reconcileQuietly();
    }
  }

  // ---- writes -------------------------------------------------------------------------------

  async put<K extends RecordKind>(kind: K, key: string, record: RecordOf[K]): Promise<number> {
    return this.#write(this.#makeEnvelope(kind, key, record));
  }

  async delete(kind: RecordKind, key: string): Promise<number> {
    this.#assertOpen();
    this.#checkKey(kind, key);
    return this.#write({ v: 1, kind, key, origin: this.nodeName, seq: this.#nextSeq(), deleted: true });
  }

  async update<K extends RecordKind>(kind: K, key: string, record: RecordOf[K], expectedRevision: number): Promise<number> {
    if (!Number.isSafeInteger(expectedRevision) || expectedRevision < 0) throw new TypeError('"expectedRevision" must be a non-negative integer');
    const env = this.#makeEnvelope(kind, key, record);
    if (!this.connected) throw new ClusterError('ERR_CLUSTER_UNAVAILABLE', 'the shared store is unreachable');
    const id = kvKey(kind, key);
    const revision = await this.#backend.kvUpdate(id, encodeEnvelope(env), expectedRevision);
    const cur = this.#replica.value(id);
    if (!cur || cur.revision < revision || cur.pendingBase !== undefined) this.#replica.set(id, { env, revision }, true);
    this.#announce(env, revision);
    return revision;
  }

  #makeEnvelope<K extends RecordKind>(kind: K, key: string, record: RecordOf[K]): Envelope<K> {
    this.#assertOpen();
    this.#checkKey(kind, key);
    const checked = checkRecord(kind, record);
    if (!checked.ok) throw new ClusterError('ERR_CLUSTER_INVALID_RECORD', `invalid ${kind} record: ${checked.errors.join('; ')}`, { errors: checked.errors });
    const want = expectedKey(kind, record);
    if (want !== undefined && want !== key)
      throw new ClusterError('ERR_CLUSTER_INVALID_RECORD', `a ${kind} record must be stored under "${want}", not "${key}"`, { errors: [`key: must be "${want}"`] });
    const env: Envelope<K> = { v: 1, kind, key, origin: this.nodeName, seq: this.#nextSeq(), record };
    // Room for the revision the change message adds.
    const size = encodeEnvelope({ ...env, revision: Number.MAX_SAFE_INTEGER }).byteLength;
    if (size > MAX_MESSAGE_BYTES) throw new ClusterError('ERR_CLUSTER_TOO_LARGE', `record is ${size} bytes, limit ${MAX_MESSAGE_BYTES}`);
    return env;
  }

  #checkKey(kind: RecordKind, key: string): void {
    const bad = checkKeySyntax(key);
    if (bad) throw new ClusterError('ERR_CLUSTER_INVALID_RECORD', bad, { errors: [bad] });
    if (NODE_OWNED_KINDS.has(kind) && ownerOfKey(key) !== this.nodeName)
      throw new ClusterError('ERR_CLUSTER_NOT_OWNER', `"${key}" belongs to another node; ${kind} are written by their own node only`);
  }

  /** Per-origin sequence: monotonic, and above any earlier run's (clock-based floor, raised by catch-up). */
  #nextSeq(): number {
    this.#seq = Math.max(this.#seq + 1, this.#replica.maxOwnSeq + 1, this.#clock.now());
    return this.#seq;
  }

  async #write(env: Envelope): Promise<number> {
    const id = kvKey(env.kind, env.key!);
    const cur = this.#replica.value(id);
    const base = cur ? (cur.pendingBase ?? cur.revision) : 0;
    this.#replica.set(id, { env, revision: 0, pendingBase: base }, true);
    if (!this.connected) {
      this.#scheduleRetry();
      return 0;
    }
    try {
      const revision = await this.#backend.kvPut(id, encodeEnvelope(env));
      this.#stored(id, env, revision);
      return revision;
    } catch (err) {
      this.#log.warn({ kind: env.kind, key: env.key, code: (err as ClusterError).code }, 'cluster write not stored yet; will retry');
      this.#scheduleRetry();
      return 0;
    }
  }

  /** A write of ours reached the store: record its revision and announce it. */
  #stored(id: string, env: Envelope, revision: number): void {
    const cur = this.#replica.value(id);
    if (cur && cur.env === env) this.#replica.learnRevision(id, env, revision);
    else if (cur && cur.pendingBase === undefined && cur.revision < revision) this.#replica.set(id, { env, revision }, true);
    this.#announce(env, revision);
  }

  #announce(env: Envelope, revision: number): void {
    this.#gaps.see(revision);
    try {
      this.#backend.announce(changeSubject(this.trustDomain, env.kind, env.origin), encodeEnvelope({ ...env, revision }));
    } catch (err) {
      // The store has it; peers catch up by reconcile.
      this.#log.debug({ code: (err as ClusterError).code }, 'cluster announce failed');
    }
  }

  // ---- reads --------------------------------------------------------------------------------

  get<K extends RecordKind>(kind: K, key: string): Entry<K> | undefined {
    return this.#replica.get(kind, key);
  }

  list<K extends RecordKind>(kind: K): Entry<K>[] {
    return this.#replica.list(kind);
  }

  watch<K extends RecordKind>(kind: K, handler: (change: Change<K>) => void): () => void {
    return this.#replica.watch(kind, handler as (change: Change) => void);
  }

  // ---- events -------------------------------------------------------------------------------

  async publish<K extends RecordKind>(kind: K, record: RecordOf[K]): Promise<void> {
    this.#assertOpen();
    const checked = checkRecord(kind, record);
    if (!checked.ok) throw new ClusterError('ERR_CLUSTER_INVALID_RECORD', `invalid ${kind} record: ${checked.errors.join('; ')}`, { errors: checked.errors });
    const want = expectedKey(kind, record);
    if (NODE_OWNED_KINDS.has(kind) && want !== undefined && ownerOfKey(want) !== this.nodeName)
      throw new ClusterError('ERR_CLUSTER_NOT_OWNER', `${kind} records are published by their own node only`);
    const bytes = encodeEnvelope({ v: 1, kind, origin: this.nodeName, seq: this.#nextSeq(), record });
    if (bytes.byteLength > MAX_MESSAGE_BYTES) throw new ClusterError('ERR_CLUSTER_TOO_LARGE', `record is ${bytes.byteLength} bytes`);
    if (!this.connected) throw new ClusterError('ERR_CLUSTER_UNAVAILABLE', 'the bus is unreachable');
    this.#backend.announce(eventSubject(this.trustDomain, kind, this.nodeName), bytes);
  }

  subscribe<K extends RecordKind>(kind: K, handler: (record: RecordOf[K], meta: EventMeta) => void): () => void {
    let set = this.#subscribers.get(kind);
    if (!set) this.#subscribers.set(kind, (set = new Set()));
    set.add(handler as EventHandler);
    return () => set.delete(handler as EventHandler);
  }

  onConnectionChange(handler: (connected: boolean) => void): () => void {
    this.#connHandlers.add(handler);
    return () => this.#connHandlers.delete(handler);
  }

  // ---- receipt ------------------------------------------------------------------------------

  #onMessage(subject: string, bytes: Uint8Array): void {
    if (this.#closed) return;
    const where = parseSubject(this.trustDomain, subject);
    if (!where) {
      if (subject.startsWith(subjectPrefix(this.trustDomain) + '.')) this.#invalid({ reason: 'bad_schema', source: subject, errors: ['unknown subject'] });
      return;
    }
    const d = decodeEnvelope(bytes, { kind: where.kind, origin: where.origin, event: where.event, requireRevision: !where.event });
    if (!d.ok) return this.#invalid({ reason: d.reason, source: subject, errors: d.errors });
    const env = d.env;
    if (where.event) {
      for (const h of this.#subscribers.get(env.kind) ?? []) safely(this.#log, () => h(env.record, { origin: env.origin, seq: env.seq }));
      return;
    }
    // A change under this node's own name is the echo of a write it stored (and learned the
    // revision of) itself, or one it never made. Taking the latter in would make it "own"
    // state that reconcile re-asserts into the store.
    if (env.origin === this.nodeName) {
      this.#stats.stale += 1;
      return;
    }
    const revision = env.revision!;
    delete env.revision;
    this.#gaps.see(revision);
    this.#applyRemote(kvKey(env.kind, env.key!), env, revision);
    this.#checkGap();
  }

  #invalid(info: InvalidInfo): void {
    this.#stats.invalid[info.reason] += 1;
    this.#log.warn({ reason: info.reason, source: info.source, errors: info.errors.slice(0, 5) }, 'cluster message refused');
    if (this.#onInvalid) safely(this.#log, () => this.#onInvalid!(info));
  }

  /** Apply a stored value by the replica's rule. Returns true when the local state changed. */
  #applyRemote(id: string, env: Envelope, revision: number, force = false): boolean {
    if (this.#pastForgetTime(env)) {
      // Ordered like any write: one the replica would take drops what is held (as would a value
      // held that is past its time too); an older one is merely stale.
      const cur = this.#replica.value(id);
      if (cur && this.#replica.judge(id, env, revision, force) === 'stale' && !this.#pastForgetTime(cur.env)) this.#stats.stale += 1;
      else this.#forget(id);
      return false;
    }
    const outcome = this.#replica.apply(id, env, revision, force);
    if (outcome === 'stale') {
      this.#stats.stale += 1;
      return false;
    }
    if (outcome === 'conflict') this.#stats.conflicts += 1;
    this.#stats.applied += 1;
    return true;
  }

  /** Whether `env` holds a record past its forget time (`BusOptions.forgetAt`) now. */
  #pastForgetTime(env: Envelope): boolean {
    if (env.deleted || env.record === undefined) return false;
    const rule = this.#forgetAt[env.kind] as ((record: unknown) => number | undefined) | undefined;
    const at = rule?.(env.record);
    return at !== undefined && this.#clock.now() >= at;
  }

  /** A value past its forget time: dropped from the replica if held (watchers see a deletion), and counted. */
  #forget(id: string): void {
    this.#replica.forget(id);
    this.#stats.forgotten += 1;
  }

  /** Drop every value of the replica that is past its forget time. */
  #sweep(): void {
    for (const [id, l] of this.#replica.values()) if (this.#pastForgetTime(l.env)) this.#forget(id);
  }

  #onConnection(connected: boolean): void {
    if (this.#closed || connected === this.#wasConnected) return;
    this.#wasConnected = connected;
    this.#log.info({ connected }, connected ? 'cluster bus connected' : 'cluster bus disconnected');
    for (const h of this.#connHandlers) safely(this.#log, () => h(connected));
    if (connected && this.#started) void this.#reconcileQuietly();
  }

  #checkGap(): void {
    const missing = this.#gaps.missing();
    if (missing === undefined || this.#gapTimer) return;
    this.#gapTimer = setTimeout(() => {
      this.#gapTimer = undefined;
      if (this.#gaps.missing() === missing) {
        this.#log.info({ missing }, 'cluster revision gap; catching up from the store');
        void this.#reconcileQuietly();
      } else this.#checkGap();
    }, this.#gapGraceMs);
    this.#gapTimer.unref();
  }

  // ---- convergence --------------------------------------------------------------------------

  reconcile(): Promise<ReconcileReport> {
    if (this.#reconciling) {
      this.#again = true;
      return this.#reconciling;
    }
    const run = async (): Promise<ReconcileReport> => {
      try {
        let report = await this.#reconcileOnce();
        while (this.#again && this.connected) {
          this.#again = false;
          report = await this.#reconcileOnce();
        }
        return report;
      } finally {
        this.#again = false;
        this.#reconciling = undefined;
      }
    };
    this.#reconciling = run();
    return this.#reconciling;
  }

  /** Reconcile, and after a failure try again soon (backing off to 1 s) rather than at the next period. */
  async #reconcileQuietly(): Promise<void> {
    try {
      await this.reconcile();
      this.#catchUpBackoff = 0;
    } catch (err) {
      this.#catchUpBackoff = Math.min(Math.max(this.#catchUpBackoff * 2, this.#retryMs), 1_000);
      this.#log.warn({ code: (err as ClusterError).code, err: String(err), retryInMs: this.#catchUpBackoff }, 'cluster reconcile failed; will retry');
      if (!this.#catchUpTimer && !this.#closed) {
        this.#catchUpTimer = setTimeout(() => {
          this.#catchUpTimer = undefined;
          if (this.connected) void this.#reconcileQuietly();
        }, this.#catchUpBackoff);
        this.#catchUpTimer.unref();
      }
    }
  }

  async #reconcileOnce(): Promise<ReconcileReport> {
    this.#sweep();
    if (!this.connected) return { applied: 0, reasserted: 0, flushed: 0, purged: 0 };
    const { report, coveredRevision } = await this.#convergence.reconcile();
    this.#gaps.reset(coveredRevision);
    this.#stats.reconciles += 1;
    this.#stats.repaired += report.applied + report.reasserted;
    if (report.applied || report.reasserted || report.flushed) this.#log.info({ ...report }, 'cluster reconcile repaired drift');
    if (report.purged) this.#log.info({ purged: report.purged }, 'cluster reconcile removed expired records from the store');
    return report;
  }

  #scheduleRetry(): void {
    if (this.#retryTimer || this.#closed) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (!this.connected) return; // the reconnect catch-up flushes
      this.#convergence.flushPending().then(
        () => {
          if (this.#replica.pendingCount() > 0) this.#scheduleRetry();
        },
        () => this.#scheduleRetry(),
      );
    }, this.#retryMs);
    this.#retryTimer.unref();
  }

  stats(): BusStats {
    return { ...this.#stats, invalid: { ...this.#stats.invalid }, pending: this.#replica.pendingCount() };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of [this.#reconcileTimer, this.#retryTimer, this.#gapTimer, this.#catchUpTimer]) if (t) clearTimeout(t);
    await this.#reconciling?.catch(() => undefined);
    await this.#backend.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClusterError('ERR_CLUSTER_CLOSED', 'the bus is closed');
  }
}

function safely(log: BusLogger, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    log.error({ err: String(err) }, 'cluster handler threw');
  }
}
