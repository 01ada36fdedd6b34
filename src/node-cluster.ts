/**
 * The node's cluster wiring: what travels between the control-plane nodes of one trust domain,
 * and how each node applies what it receives (docs/operations-cluster.md).
 *
 * - Keys: every CA change publishes this node's public key set (`publishOwnKeys`); every node
 *   takes the other nodes' keys into its own trust bundle (`IdentityServer.setPeerKeys`, which
 *   journals them with their origin first, so a restart trusts peers without the bus). The
 *   bundle is the union of every node's keys, as in SPIRE's HA model (https://spiffe.io/docs/latest/planning/scaling_spire/).
 * - Presence and activation gating: a heartbeat lists the key ids this node trusts; a prepared
 *   key becomes active only once every known node trusts it (live ones, and those whose keys are
 *   journaled here: a node cut off or killed is waited for), or after `activationTimeout` with a
 *   loud warning and `wimse_activation_gate_timeouts_total` (SPIRE activates a prepared key later
 *   for the same reason).
 * - Staleness: a node that has had no confirmed contact with the shared store for longer than
 *   `maxStaleness` is stale (`staleness()`): it is not ready, and what it cannot confirm (node
 *   tokens, other nodes' keys) is refused by the servers that ask; contact is confirmed again only
 *   once it has caught up from the store.
 * - Policy, registrations and node-token revocations travel as shared records; each node applies
 *   what others write and publishes what it accepts itself (echoes stop on equal digests).
 * - Caller credentials: every node token's record (its digest, never the token) and every node's
 *   admin-token digest, so a token issued on one node works on all; records heard are merged
 *   into the node-token store, which journals them (a revocation survives a restart without the
 *   bus) and lets a revocation win over any later copy of the unrevoked record. A node token's
 *   record, and its `revocations` record, expire with the token plus `sds.expiredTokenRetention`:
 *   every node forgets them then, on the bus (`forgetAt`) as in its store, and takes no copy back.
 * - Forgetting a node that is gone (`forget`, `wimsectl cluster forget`): a `forgottenNodes`
 *   record hides its heartbeat and admin token on every node (src/cluster/forgotten.ts), so its
 *   admin token is refused and activations stop waiting for it; a forgotten node that comes back
 *   writes its records again and re-joins.
 * - Metrics and readiness: bus connection, propagation lag (from the origin's sequence, a
 *   millisecond timestamp), refused messages; `/readyz` says "bus not connected" in cluster mode.
 *
 * With no `cluster` section the in-process bus is used and no activation gate is installed: a
 * single node behaves exactly as one without this wiring.
 */
import type { NodeMetrics } from './admin/metrics.ts';
import type { IdentityServer } from './ca/index.ts';
import {
  createBus,
  fromRegistrationRecords,
  isClusterError,
  isLive,
  NodeHeartbeat,
  ownKeySeq,
  peersMissing,
  Presence,
  publishOwnKeys,
  toBusKey,
  toPeerKey,
  toRegistrationRecords,
  visibleRecord,
  type Bus,
  type Change,
  type Entry,
  type MemoryHub,
  type NatsTuning,
  type PeerPublicKey,
  type RecordKind,
} from './cluster/index.ts';
import type { NodeConfig } from './config/config.ts';
import type { Registration } from './envoy/sds-ca-source.ts';
import type { Clock } from './identity/clock.ts';
import { nodeTokenForgetAt, sameNodeTokenRecord, tokenIdOf, type ChangeListener, type NodeTokenRecord, type RevokeListener } from './identity/node-tokens.ts';
import { parseSpiffeBundle, toSpiffeBundle } from './identity/trust-bundle.ts';
import type { Logger } from './log.ts';
import type { PolicyStore } from './policy/store.ts';

/** What the wiring needs from the SDS adapter (`CaSecretSource` satisfies it). */
export interface RegistrationSink {
  setRegistrations(registrations: readonly Registration[]): void;
}

/** What the wiring needs from the node-token store (`NodeTokenStore` satisfies it). */
export interface TokenRevoker {
  revokeDigest(sha256: string): boolean;
  onRevoke(listener: RevokeListener): () => void;
}

/** What the wiring needs to share node tokens (`NodeTokenStore` satisfies it). */
export interface NodeTokenShare {
  /** How long a record is kept after its token expired (`sds.expiredTokenRetention`). */
  readonly retentionMs: number;
  /** Past its expiry plus the retention (never taken in, dropped when held). */
  pastRetention(record: NodeTokenRecord): boolean;
  get(sha256: string): NodeTokenRecord | undefined;
  records(): NodeTokenRecord[];
  /** `record` undefined: past its expiry plus the retention, not taken in (and dropped if held). */
  merge(record: NodeTokenRecord): { record: NodeTokenRecord | undefined; changed: boolean };
  onChange(listener: ChangeListener): () => void;
}

/** What the wiring needs to share admin tokens (`AdminTokens` satisfies it). */
export interface AdminTokenShare {
  readonly ownDigest: string;
  setPeer(node: string, sha256: string | undefined): boolean;
  /** The nodes whose admin tokens are accepted besides this one's. */
  peers(): string[];
}

/** Timings for tests and benchmarks; production uses the defaults. */
export interface NodeClusterTuning {
  /** Heartbeat period. Default 5 000 ms. */
  heartbeatIntervalMs?: number;
  /** A node is live while its last heartbeat is younger than this. Default 15 000 ms. */
  heartbeatTimeoutMs?: number;
  gapGraceMs?: number;
  retryMs?: number;
  nats?: NatsTuning;
  /** Several in-process nodes sharing one in-process bus (tests). */
  hub?: MemoryHub;
}

export interface NodeClusterOptions {
  name: string;
  config: NodeConfig;
  clock: Clock;
  logger: Logger;
  ca: IdentityServer;
  policy: PolicyStore;
  registrations: RegistrationSink;
  nodeTokens: TokenRevoker & NodeTokenShare;
  adminTokens: AdminTokenShare;
  metrics: NodeMetrics;
  tuning?: NodeClusterTuning;
}

/** One node as this node knows it (`NodeCluster.nodes`, `wimsectl cluster nodes`). */
export interface ClusterNodeView {
  readonly node: string;
  /** The node serving the call. */
  readonly self: boolean;
  /** Its latest heartbeat's time (its own clock, ms), forgotten or not; absent: none (never heard, or stopped cleanly). */
  readonly lastHeartbeat?: number;
  /** Its heartbeat, not forgotten, is younger than the liveness window (`livenessWindowMs`). */
  readonly live: boolean;
  /** An activation on this node waits for it (`knownPeers`); never this node itself, nor any node without a `cluster` section. */
  readonly countsAtGate: boolean;
  /** Its admin token is accepted here. */
  readonly adminToken: boolean;
  /** How many of its public keys this node's journal holds (this node: its own). */
  readonly journaledKeys: number;
  /** When it was forgotten and by which node, while nothing it wrote since counts. */
  readonly forgotten?: { readonly at: number; readonly by: string };
}

/** What `NodeCluster.forget` did, or why it refused. */
export type ForgetOutcome =
  | { readonly ok: true; readonly changed: boolean; readonly lastHeartbeat?: number }
  | { readonly ok: false; readonly reason: 'self' | 'unconfirmed' | 'unknown' | 'alive'; readonly message: string };

/** Whether this node's cluster state can be trusted (`NodeCluster.staleness`). */
export type Staleness =
  | { readonly stale: false; readonly contactAgeMs: number }
  | { readonly stale: true; readonly contactAgeMs: number; readonly reason: string };

/** A node-token revocation of a token that does not expire is kept this long on the bus (its `nodeTokens` record keeps it for good). */
const REVOCATION_KEEP_MS = 365 * 24 * 3600 * 1000;
const POLICY_KEY = 'current';

export class NodeCluster {
  readonly bus: Bus;
  readonly presence: Presence;
  /** True when a `cluster` section is configured (NATS); false for the in-process bus. */
  readonly clustered: boolean;
  readonly #o: NodeClusterOptions;
  readonly #log: Logger;
  readonly #heartbeat: NodeHeartbeat;
  readonly #unsubscribe: (() => void)[] = [];
  readonly #dirtyOrigins = new Set<string>();
  readonly #gateAborts = new Set<() => void>();
  #work: Promise<void> = Promise.resolve();
  #started = false;
  #closed = false;
  #applyingRevocation = false;
  /** Staleness: the last confirmed contact with the store, and whether contact holds now. */
  #contactAt: number;
  #inContact = false;
  /** The store has been read completely at least once since start (the gate's peer list). */
  #storeRead = false;
  #recovering = false;
  /** Counts losses of contact: a catch-up confirms contact only if none happened while it ran. */
  #losses = 0;
  #staleTimer: NodeJS.Timeout | undefined;
  readonly #retryMs: number;
  /** The digest each policy source (a file path, an API) gave last. */
  readonly #lastBySource = new Map<string, string>();

  private constructor(o: NodeClusterOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'cluster' });
    const cluster = o.config.cluster;
    this.clustered = cluster !== undefined;
    const t = o.tuning ?? {};
    const retentionMs = o.nodeTokens.retentionMs;
    this.bus = createBus({
      trustDomain: o.config.trustDomain,
      nodeName: o.name,
      clock: o.clock,
      logger: this.#log,
      // The node-token store's own rule (NodeTokenStore.prune), so that the bus never hands back
      // what the store dropped; a `revocations` record names its own end.
      forgetAt: { nodeTokens: (r) => nodeTokenForgetAt(r, retentionMs), revocations: (r) => r.expiresAt },
      onInvalid: (info) => o.metrics.busRejected.inc({ reason: info.reason }),
      ...(t.gapGraceMs !== undefined ? { gapGraceMs: t.gapGraceMs } : {}),
      ...(t.retryMs !== undefined ? { retryMs: t.retryMs } : {}),
      ...(cluster
        ? {
            cluster: {
              servers: cluster.servers,
              replicas: cluster.replicas,
              reconcileInterval: cluster.reconcileInterval,
              ...(cluster.credsFile ? { credsFile: cluster.credsFile } : {}),
              ...(cluster.tlsCaFile ? { tlsCaFile: cluster.tlsCaFile } : {}),
            },
          }
        : {}),
      ...(t.nats ? { nats: t.nats } : {}),
      ...(t.hub ? { hub: t.hub } : {}),
    });
    this.presence = new Presence(this.bus, { clock: o.clock, ...(t.heartbeatTimeoutMs ? { heartbeatTimeoutMs: t.heartbeatTimeoutMs } : {}) });
    this.#contactAt = o.clock.now();
    this.#retryMs = t.retryMs ?? 1_000;
    this.#heartbeat = new NodeHeartbeat(this.bus, {
      clock: o.clock,
      trustedKids: () => trustedKids(o.ca),
      onBeat: (revision) => this.#onBeat(revision),
      ...(t.heartbeatIntervalMs ? { intervalMs: t.heartbeatIntervalMs } : {}),
    });
  }

  /** Build the wiring, connect (or not: NATS down at start is survivable) and catch up. */
  static async start(o: NodeClusterOptions): Promise<NodeCluster> {
    const c = new NodeCluster(o);
    await c.#start();
    return c;
  }

  /** Why this node is not ready as far as the cluster goes (empty when it is). */
  readinessReasons(): string[] {
    const reasons = this.clustered && !this.bus.connected ? ['bus not connected'] : [];
    const s = this.staleness();
    if (s.stale) reasons.push(s.reason);
    return reasons;
  }

  /** Replace the registration entries on every node (and here, unless `local` is false). */
  async publishRegistrations(regs: readonly Registration[], local = true): Promise<void> {
    if (local) this.#o.registrations.setRegistrations(regs);
    const wanted = new Map(toRegistrationRecords(regs).map((r) => [r.id, r]));
    for (const r of wanted.values()) {
      const cur = this.bus.get('registrations', r.id);
      if (!cur || JSON.stringify(cur.record) !== JSON.stringify(r)) await this.bus.put('registrations', r.id, r);
    }
    for (const e of this.bus.list('registrations')) if (!wanted.has(e.key)) await this.bus.delete('registrations', e.key);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#o.ca.setActivationGate(undefined);
    for (const abort of this.#gateAborts) abort();
    if (this.#staleTimer) clearTimeout(this.#staleTimer);
    // A clean stop says goodbye, so activations elsewhere do not wait for this node.
    await this.#heartbeat.leave().catch(() => undefined);
    for (const u of this.#unsubscribe.splice(0)) u();
    await this.#work.catch(() => {});
    await this.bus.close();
  }

  // ---- start -------------------------------------------------------------------------------

  async #start(): Promise<void> {
    const { ca, policy, metrics, nodeTokens } = this.#o;
    const file = this.#o.config.policy.file;
    if (file && policy.digest) this.#lastBySource.set(file, policy.digest);
    const on = <K extends RecordKind>(kind: K, h: (c: Change<K>) => void) =>
      this.#unsubscribe.push(
        this.bus.watch(kind, (c) => {
          this.#observeLag(c);
          if (!c.local && !this.#closed) h(c);
        }),
      );
    on('keys', (c) => this.#markOrigin(c.entry?.record.node ?? c.key.split('/')[0] ?? ''));
    on('policy', () => this.#serially(() => this.#adoptPolicy()));
    on('registrations', () => this.#serially(() => this.#adoptRegistrations()));
    on('revocations', (c) => c.entry && this.#applyRevocation(c.entry.record));
    on('bundles', (c) => this.#adoptFederated(c.key));
    on('forgottenNodes', (c) => this.#onForgotten(c.key, c.entry));
    this.#unsubscribe.push(
      this.bus.onConnectionChange((up) => {
        metrics.busConnected.set(up ? 1 : 0);
        if (up) this.#log.info({}, 'cluster bus connected');
        else this.#log.warn({}, 'cluster bus lost: serving with the state this node has');
        if (up) this.#recover();
        else this.#loseContact();
      }),
    );
    this.#unsubscribe.push(
      ca.onChange((e) => {
        // publishOwnKeys writes only what changed, so every event may ask for it.
        this.#serially(() => this.#publishKeys());
        if (e.type !== 'bundle-changed') return;
        void this.#heartbeat.beat().catch(() => undefined);
        this.#serially(() => this.#publishFederated());
      }),
    );
    this.#unsubscribe.push(
      policy.onLoad(({ result, source }) => {
        if (!result.ok || source === 'cluster') return;
        // A source that hands over the very document it gave last time (a policy file re-read
        // after a touch) has not changed: the cluster's newer policy stays. Only new documents travel.
        const previous = this.#lastBySource.get(source ?? '');
        this.#lastBySource.set(source ?? '', result.digest);
        if (previous === result.digest) {
          if (result.changed) this.#serially(() => this.#adoptPolicy());
        } else if (result.changed) this.#serially(() => this.#publishPolicy());
      }),
    );
    this.#unsubscribe.push(nodeTokens.onRevoke((hash, nodeId, scope) => this.#publishRevocation(hash, nodeId, scope)));
    this.#watchCredentials(on);

    await this.bus.start();
    metrics.busConnected.set(this.bus.connected ? 1 : 0);
    // What the bus already holds: peers' keys, the cluster's policy and registrations (the
    // latest accepted change anywhere wins over this node's files), revocations.
    for (const e of this.bus.list('keys')) if (e.record.node !== this.#o.name) this.#dirtyOrigins.add(e.record.node);
    this.#serially(() => this.#syncOrigins());
    this.#serially(() => (this.bus.get('policy', POLICY_KEY) ? this.#adoptPolicy() : this.#publishPolicy()));
    this.#serially(() => (this.bus.list('registrations').length ? this.#adoptRegistrations() : this.#publishConfigRegistrations()));
    for (const e of this.bus.list('revocations')) this.#applyRevocation(e.record);
    this.#syncCredentials();
    for (const e of this.bus.list('bundles')) this.#adoptFederated(e.key);
    this.#serially(() => this.#publishFederated());
    this.#serially(() => this.#publishKeys());
    await this.#work;
    await this.#heartbeat.start();
    if (this.clustered) ca.setActivationGate((kind, kid, signal) => this.#gate(kind, kid, signal));
    this.#started = true;
    this.#recover();
  }

  /** One queue for everything that writes the journal or the bus, in order. */
  #serially(fn: () => Promise<unknown>): void {
    this.#work = this.#work.then(fn).then(
      () => undefined,
      (e: unknown) => this.#log.error({ err: (e as Error).message }, 'cluster change could not be applied; the next change or reconcile retries'),
    );
  }

  #observeLag(c: Change): void {
    // The origin's sequence is `max(last + 1, clock)`: a millisecond timestamp of the write.
    if (!this.#started || c.local || !c.entry) return;
    const lagMs = this.#o.clock.now() - c.entry.seq;
    if (lagMs >= 0 && lagMs < 24 * 3600 * 1000) this.#o.metrics.propagationLag.observe(lagMs / 1000);
  }

  // ---- keys --------------------------------------------------------------------------------

  #markOrigin(origin: string): void {
    if (!origin || origin === this.#o.name) return;
    const first = this.#dirtyOrigins.size === 0;
    this.#dirtyOrigins.add(origin);
    if (first) this.#serially(() => this.#syncOrigins());
  }

  async #syncOrigins(): Promise<void> {
    const origins = [...this.#dirtyOrigins];
    this.#dirtyOrigins.clear();
    for (const origin of origins) {
      const keys = this.bus
        .list('keys')
        .filter((e) => e.record.node === origin)
        .map((e) => toPeerKey(e.record))
        .filter((k): k is PeerPublicKey => k !== undefined);
      const r = await this.#o.ca.setPeerKeys(origin, keys);
      for (const bad of r.refused) this.#log.warn({ origin, kid: bad.kid, errors: bad.errors }, 'peer key refused');
      if (r.changed) this.#log.info({ origin, keys: keys.length }, 'peer keys taken into the trust bundle');
    }
  }

  async #publishKeys(): Promise<void> {
    const own = this.#o.ca.publicKeys().filter((k) => k.origin === undefined);
    await publishOwnKeys(this.bus, own.map((k) => toBusKey(this.#o.name, k, ownKeySeq(own))));
  }

  // ---- activation gate ---------------------------------------------------------------------

  /**
   * The nodes an activation waits for: those heard from lately (live heartbeat), and those whose
   * public keys this node has journaled, unless the shared store, read since this node started,
   * holds no heartbeat of theirs (a node deletes its heartbeat when it stops cleanly; a node an
   * operator forgot has none that counts). A node that has not read the store (started with the
   * bus down) knows its peers from its journal alone.
   */
  knownPeers(now = this.#o.clock.now()): string[] {
    const heard = new Set(this.presence.nodes().map((n) => n.node));
    const peers = new Set(this.presence.liveNodes(now).map((n) => n.node));
    for (const k of this.#o.ca.keys()) if (k.origin !== undefined && (!this.#storeRead || heard.has(k.origin))) peers.add(k.origin);
    peers.delete(this.#o.name);
    return [...peers].sort();
  }

  /**
   * May `kid` become active? Only once the store has been read and every known peer's latest
   * heartbeat lists it: a node cut off from the bus, or not yet in touch, never counts its
   * silent peers as agreeing.
   */
  #gateVerdict(kid: string): { pass: boolean; missing: string[] } {
    const missing = peersMissing(kid, this.knownPeers(), this.presence.nodes());
    return { pass: this.#storeRead && missing.length === 0, missing };
  }

  /** Activation gating: wait until every known node trusts `kid`, or the timeout (then warn and count). */
  async #gate(kind: string, kid: string, signal: AbortSignal): Promise<void> {
    const timeoutMs = this.#o.config.cluster?.activationTimeout ?? 0;
    await this.#heartbeat.beat().catch(() => undefined);
    const waiting = this.#o.metrics.activationGateWaiting;
    waiting.inc();
    const passed = await new Promise<boolean>((resolve) => {
      const finish = () => {
        unwatch();
        clearInterval(recheck);
        clearTimeout(deadline);
        signal.removeEventListener('abort', finish);
        this.#gateAborts.delete(finish);
        resolve(this.#gateVerdict(kid).pass);
      };
      const check = () => this.#gateVerdict(kid).pass && finish();
      const unwatchNodes = this.bus.watch('nodes', check);
      const unwatchForgotten = this.bus.watch('forgottenNodes', check);
      const unwatch = () => {
        unwatchNodes();
        unwatchForgotten();
      };
      const recheck = setInterval(check, 100);
      recheck.unref();
      const deadline = setTimeout(finish, timeoutMs);
      deadline.unref();
      this.#gateAborts.add(finish);
      signal.addEventListener('abort', finish);
      if (signal.aborted) finish();
      else check();
    }).finally(() => waiting.dec());
    if (passed) {
      this.#log.info({ kind, kid }, 'every known node trusts the prepared key: activating');
      return;
    }
    if (this.#closed) throw new Error('cluster wiring closed while a key waited for activation');
    if (signal.aborted) return;
    this.#o.metrics.activationGateTimeouts.inc();
    this.#log.warn(
      { kind, kid, missing: this.#gateVerdict(kid).missing, storeRead: this.#storeRead, timeoutMs },
      'ACTIVATING A KEY NOT YET TRUSTED BY EVERY KNOWN NODE: credentials it signs may be refused by the missing nodes',
    );
  }

  // ---- staleness ---------------------------------------------------------------------------

  /**
   * Whether this node's view of the cluster can still be trusted at `now`. Contact is confirmed
   * by a heartbeat the store took, and, after any loss (bus down, a write the store did not
   * take, the start), only by a complete catch-up from the store. Once the last confirmed
   * contact is older than `cluster.maxStaleness` the node is stale: it may have missed
   * revocations of node tokens and of other nodes' keys. Never stale without a `cluster` section.
   */
  staleness(now = this.#o.clock.now()): Staleness {
    const max = this.#o.config.cluster?.maxStaleness;
    if (max === undefined || this.#inContact) return { stale: false, contactAgeMs: 0 };
    const contactAgeMs = Math.max(0, now - this.#contactAt);
    if (contactAgeMs <= max) return { stale: false, contactAgeMs };
    const ago = `${Math.floor(contactAgeMs / 1000)} s ago`;
    const what = !this.#storeRead
      ? `the shared store not reached since the node started ${ago}`
      : `${this.bus.connected ? 'the shared store is not answering' : 'bus lost'}, last confirmed contact ${ago}`;
    return { stale: true, contactAgeMs, reason: `cluster state stale: ${what} (cluster.maxStaleness ${max / 1000}s)` };
  }

  #onBeat(revision: number): void {
    if (revision === 0) this.#loseContact();
    else if (this.#inContact) this.#contactAt = this.#o.clock.now();
  }

  #loseContact(): void {
    if (this.#closed || !this.clustered) return;
    this.#losses += 1;
    if (this.#inContact) {
      this.#inContact = false;
      this.#log.warn({ lastContact: new Date(this.#contactAt).toISOString() }, 'cluster store contact lost; catching up when it is back');
    }
    this.#armStaleLog();
    this.#recover();
  }

  /** Log once when the node turns stale (staleness itself is computed when asked). */
  #armStaleLog(): void {
    if (this.#staleTimer) return;
    const max = this.#o.config.cluster!.maxStaleness;
    this.#staleTimer = setTimeout(() => {
      this.#staleTimer = undefined;
      const s = this.staleness();
      if (s.stale) this.#log.error({ contactAgeMs: s.contactAgeMs }, `${s.reason}: node tokens and other nodes' keys are refused until the node catches up`);
      else if (!this.#inContact && !this.#closed) this.#armStaleLog();
    }, Math.max(0, this.#contactAt + max - this.#o.clock.now()) + 10);
    this.#staleTimer.unref();
  }

  /**
   * Catch up after a loss of contact: when the bus is up, reconcile with the store and apply what
   * came (the cluster queue drained), and only then count contact as confirmed. Retried until it
   * succeeds or the wiring closes; one run at a time.
   */
  #recover(): void {
    if (!this.clustered || this.#recovering || this.#inContact) return;
    this.#recovering = true;
    void (async () => {
      try {
        while (!this.#closed && !this.#inContact) {
          if (this.bus.connected) {
            const losses = this.#losses;
            try {
              await this.bus.reconcile();
              await this.#work;
              if (this.bus.connected && !this.#closed && losses === this.#losses) {
                const wasStale = this.staleness().stale;
                this.#contactAt = this.#o.clock.now();
                this.#inContact = true;
                this.#storeRead = true;
                if (this.#staleTimer) clearTimeout(this.#staleTimer);
                this.#staleTimer = undefined;
                this.#log[wasStale ? 'warn' : 'info']({ wasStale }, 'cluster state caught up from the store: contact confirmed');
                return;
              }
            } catch (e) {
              this.#log.debug({ err: (e as Error).message }, 'catch-up from the store failed; retrying');
            }
          }
          await new Promise<void>((r) => setTimeout(r, this.#retryMs).unref());
        }
      } finally {
        this.#recovering = false;
      }
    })();
  }

  // ---- policy ------------------------------------------------------------------------------

  async #publishPolicy(): Promise<void> {
    const cur = this.#o.policy.current();
    if (!cur.policy || cur.digest === '') return;
    if (this.bus.get('policy', POLICY_KEY)?.record.digest === cur.digest) return;
    // The policy's canonical JSON: its digest is the store's digest (policy/compile.ts).
    await this.bus.put('policy', POLICY_KEY, { version: `${this.#o.name}:${cur.version}`, digest: cur.digest, text: JSON.stringify(cur.policy) });
  }

  async #adoptPolicy(): Promise<void> {
    const e = this.bus.get('policy', POLICY_KEY);
    if (!e || e.record.digest === this.#o.policy.digest) return;
    const r = this.#o.policy.load(e.record.text, 'cluster');
    if (!r.ok) this.#log.error({ origin: e.origin, errors: r.errors }, 'policy from the cluster refused; the previous one keeps serving');
  }

  // ---- registrations -----------------------------------------------------------------------

  async #publishConfigRegistrations(): Promise<void> {
    const regs = this.#o.config.sds.registrations;
    if (regs.length) await this.publishRegistrations(regs, false);
  }

  async #adoptRegistrations(): Promise<void> {
    const regs = fromRegistrationRecords(this.bus.list('registrations').map((e) => e.record));
    try {
      this.#o.registrations.setRegistrations(regs);
    } catch (e) {
      this.#log.error({ err: (e as Error).message }, 'registrations from the cluster refused; the previous ones stay');
    }
  }

  // ---- federated bundles ------------------------------------------------------------------

  /** Share this node's federation files' bundles when they are newer (higher `spiffe_sequence`) than the cluster's. */
  async #publishFederated(): Promise<void> {
    for (const [td, b] of this.#o.ca.fileFederatedBundles()) {
      const seq = b.sequence ?? 0;
      const cur = this.bus.get('bundles', td);
      if (cur && cur.record.sequence >= seq) continue;
      await this.bus.put('bundles', td, { trustDomain: td, spiffeBundle: JSON.stringify(toSpiffeBundle(b)), sequence: seq });
    }
  }

  #adoptFederated(td: string): void {
    const e = this.bus.get('bundles', td);
    try {
      if (!e) {
        this.#o.ca.setFederatedBundle(td, undefined);
        return;
      }
      const parsed = parseSpiffeBundle(td, JSON.parse(e.record.spiffeBundle));
      if (!parsed.ok) throw new Error(parsed.errors.join('; '));
      const bundle = { ...parsed.value, sequence: e.record.sequence };
      if (this.#o.ca.setFederatedBundle(td, bundle)) this.#log.info({ trustDomain: td, sequence: e.record.sequence, origin: e.origin }, 'federated bundle from the cluster');
    } catch (err) {
      this.#log.error({ trustDomain: td, err: (err as Error).message }, 'federated bundle from the cluster refused');
    }
  }

  // ---- node-token revocations --------------------------------------------------------------

  /**
   * Share a revocation as a `revocations` record too, for nodes of earlier versions, which know no
   * `nodeTokens` records: `reason` says what was revoked, one token (its digest, `tokenId`) or
   * every token of a node id (`node`; one record per token digest, each revoked).
   */
  #publishRevocation(hash: string, nodeId: string, scope: 'token' | 'node'): void {
    if (this.#applyingRevocation || this.bus.get('revocations', hash)) return;
    // Such a node id cannot be a `revocations` record; its `nodeTokens` record carries the revocation.
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(nodeId)) return;
    const now = this.#o.clock.now();
    // Kept as long as the token's record: until the token has expired for the retention.
    const expiresAt = nodeTokenForgetAt(this.#o.nodeTokens.get(hash) ?? {}, this.#o.nodeTokens.retentionMs) ?? now + REVOCATION_KEEP_MS;
    this.#serially(() => this.bus.put('revocations', hash, { tokenId: hash, node: nodeId, reason: scope, revokedAt: now, expiresAt }));
  }

  /**
   * Apply a shared revocation: the token whose digest the record names. Every version writes one
   * record per revoked token, so a node-wide revocation is one record per token; revoking every
   * token the node id has today would also revoke tokens issued after it, on every start.
   */
  #applyRevocation(record: { tokenId: string; node?: string; reason?: string }): void {
    this.#applyingRevocation = true;
    try {
      if (this.#o.nodeTokens.revokeDigest(record.tokenId)) this.#log.info({ nodeId: record.node }, 'a node token was revoked by the cluster');
    } finally {
      this.#applyingRevocation = false;
    }
  }

  // ---- caller credentials: node tokens and admin tokens -------------------------------------

  /**
   * Node tokens travel as `nodeTokens` records (digest, node id, expiry, revoked), admin tokens as
   * `adminTokens` records (a node's digest, written by that node only). A node-token record heard
   * is merged into the store (`NodeTokenStore.merge`: revoked and the earlier expiry win), which
   * journals it; when the bus then holds less than the store (a stale node wrote the unrevoked
   * record again), the merged record is written back, so the revocation wins everywhere.
   */
  #watchCredentials(on: <K extends RecordKind>(kind: K, h: (c: Change<K>) => void) => void): void {
    on('nodeTokens', (c) => c.entry && this.#adoptNodeToken(c.entry.record));
    on('adminTokens', (c) => this.#adoptAdminToken(c.key));
    this.#unsubscribe.push(this.#o.nodeTokens.onChange((r) => this.#shareNodeToken(r.sha256)));
  }

  /** At start: take in what the bus holds, then share what only this node holds. */
  #syncCredentials(): void {
    for (const e of this.bus.list('nodeTokens')) this.#adoptNodeToken(e.record);
    for (const r of this.#o.nodeTokens.records()) this.#shareNodeToken(r.sha256);
    for (const e of this.bus.list('adminTokens')) this.#adoptAdminToken(e.key);
    this.#shareAdminToken();
  }

  #adoptNodeToken(record: NodeTokenRecord): void {
    const before = this.#o.nodeTokens.get(record.sha256);
    // A revocation merged here reaches the store's revocation listeners (SDS ends the token's
    // streams); it is not announced again as a `revocations` record.
    this.#applyingRevocation = true;
    let merged: NodeTokenRecord | undefined;
    try {
      merged = this.#o.nodeTokens.merge(record).record;
    } finally {
      this.#applyingRevocation = false;
    }
    const tokenId = tokenIdOf(record.sha256);
    // Expired for longer than the retention: not taken (back) in, and not written to the bus again.
    if (!merged) return this.#log.debug({ nodeId: record.nodeId, tokenId }, 'a node token record past its retention ignored');
    if (merged.revoked && before && !before.revoked) this.#log.info({ nodeId: merged.nodeId, tokenId }, 'a node token was revoked by the cluster');
    else if (!before) this.#log.debug({ nodeId: merged.nodeId, tokenId }, 'a node token issued by the cluster');
    this.#shareNodeToken(record.sha256);
  }

  /** Write the store's record of `sha256` to the bus unless the bus holds the same, or the record is past its retention. */
  #shareNodeToken(sha256: string): void {
    const differs = () => {
      const mine = this.#o.nodeTokens.get(sha256);
      if (!mine || this.#o.nodeTokens.pastRetention(mine)) return undefined;
      const cur = this.bus.get('nodeTokens', sha256)?.record;
      return !cur || !sameNodeTokenRecord(cur, mine) ? mine : undefined;
    };
    if (!differs()) return;
    this.#serially(async () => {
      const mine = differs();
      if (mine) await this.bus.put('nodeTokens', sha256, { ...mine });
    });
  }

  /** Accept node `node`'s admin token as its record says, none when it has none or was forgotten. */
  #adoptAdminToken(node: string): void {
    // This node's own record: an older run's digest, or none, is replaced by the current one.
    if (node === this.#o.name) return this.#shareAdminToken();
    const sha256 = visibleRecord(this.bus, 'adminTokens', node)?.record.sha256;
    if (this.#o.adminTokens.setPeer(node, sha256)) this.#log.info({ node, accepted: sha256 !== undefined }, 'admin token of another node');
  }

  /** Write this node's admin-token record unless the bus holds it, current and not forgotten. */
  #shareAdminToken(): void {
    const sha256 = this.#o.adminTokens.ownDigest;
    const cur = this.bus.get('adminTokens', this.#o.name);
    const forgot = this.bus.get('forgottenNodes', this.#o.name);
    // Stored before a forget of this node: the other nodes disregard it (forgotten.ts).
    const forgotten = cur !== undefined && forgot !== undefined && cur.revision > 0 && cur.revision < forgot.revision;
    if (cur?.record.sha256 === sha256 && !forgotten) return;
    if (forgotten)
      this.#log.warn(
        { by: forgot.origin, forgottenAt: new Date(forgot.record.forgottenAt).toISOString() },
        'this node was forgotten by an operator (wimsectl cluster forget): it joins again, writing its heartbeat and admin token anew. Remove its NATS credentials to keep it out',
      );
    this.#serially(() => this.bus.put('adminTokens', this.#o.name, { node: this.#o.name, sha256 }));
  }

  // ---- forgetting a node that is gone --------------------------------------------------------

  /**
   * A `forgottenNodes` record heard: the named node's admin token is no longer accepted, and the
   * gate no longer waits for it (`presence` hides its heartbeat). When it names this node (its
   * partition healed, or it restarted after being forgotten), this node writes its records again.
   */
  #onForgotten(node: string, entry: Entry<'forgottenNodes'> | undefined): void {
    if (node === this.#o.name) {
      if (!entry) return;
      this.#shareAdminToken();
      void this.#heartbeat.beat().catch(() => undefined);
      return;
    }
    if (entry) this.#log.info({ node, by: entry.origin }, 'a node was forgotten: its admin token is no longer accepted and activations no longer wait for it');
    this.#adoptAdminToken(node);
  }

  /** A node stays live this long after its last heartbeat: the liveness window of presence and the gate. */
  get livenessWindowMs(): number {
    return this.presence.timeoutMs;
  }

  /** Every node this node knows of: by a heartbeat, an admin token, journaled keys or a forget; and itself. */
  #knownNodes(): Set<string> {
    const names = new Set<string>([this.#o.name]);
    for (const kind of ['nodes', 'adminTokens', 'forgottenNodes'] as const) for (const e of this.bus.list(kind)) names.add(e.key);
    for (const k of this.#o.ca.keys()) if (k.origin !== undefined) names.add(k.origin);
    return names;
  }

  /** Every node this node knows, as `wimsectl cluster nodes` shows them, sorted by name. */
  nodes(now = this.#o.clock.now()): ClusterNodeView[] {
    const me = this.#o.name;
    const atGate = new Set(this.clustered ? this.knownPeers(now) : []);
    const accepted = new Set(this.#o.adminTokens.peers());
    const keys = new Map<string, number>();
    for (const k of this.#o.ca.keys()) keys.set(k.origin ?? me, (keys.get(k.origin ?? me) ?? 0) + 1);
    return [...this.#knownNodes()].sort().map((node) => {
      const self = node === me;
      const heartbeat = this.bus.get('nodes', node);
      const visible = visibleRecord(this.bus, 'nodes', node);
      const forgot = self ? undefined : this.bus.get('forgottenNodes', node);
      const forgotten = forgot !== undefined && visible === undefined && visibleRecord(this.bus, 'adminTokens', node) === undefined;
      return {
        node,
        self,
        ...(heartbeat ? { lastHeartbeat: heartbeat.record.lastSeen } : {}),
        live: visible !== undefined && isLive(visible.record, now, this.livenessWindowMs),
        countsAtGate: atGate.has(node),
        adminToken: self || accepted.has(node),
        journaledKeys: keys.get(node) ?? 0,
        ...(forgotten ? { forgotten: { at: forgot.record.forgottenAt, by: forgot.origin } } : {}),
      };
    });
  }

  /**
   * Forget `node`, a node that is gone: every node stops accepting its admin token and stops
   * waiting for it at the activation gate; its public keys stay trusted until they expire
   * (workloads may hold credentials it signed). Refused for this node itself, while this node
   * cannot confirm the cluster's state (bus not connected, stale, or the store not answering a
   * catch-up made for this call), for a node not known here, and for a node that is alive (its
   * heartbeat younger than the liveness window). Forgetting a forgotten node changes nothing.
   */
  async forget(node: string): Promise<ForgetOutcome> {
    const me = this.#o.name;
    const refuse = (reason: 'self' | 'unconfirmed' | 'unknown' | 'alive', message: string): ForgetOutcome => ({ ok: false, reason, message });
    const unconfirmed = (why: string) =>
      refuse(
        'unconfirmed',
        `${me} cannot confirm the cluster's state (${why}) and forgets nothing it cannot confirm. Run it on a node whose /readyz is ready, or again once the bus is back`,
      );
    if (node === me)
      return refuse(
        'self',
        `"${node}" is this node, the one serving the call: a node cannot forget itself. Run it on another node once ${node} is gone (a node that stops cleanly leaves the activation gate by itself)`,
      );
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) return unconfirmed('the node is stopping');
      if (!this.bus.connected) return unconfirmed('the cluster bus is not connected');
      const stale = this.staleness();
      if (stale.stale) return unconfirmed(stale.reason);
      // A catch-up from the store now: the verdict rests on what the store holds, not on what
      // announcements brought so far.
      try {
        await this.bus.reconcile();
      } catch (e) {
        return unconfirmed(`the shared store did not answer a catch-up: ${(e as Error).message}`);
      }
      if (!this.bus.connected) return unconfirmed('the cluster bus is not connected');
      if (!this.#knownNodes().has(node))
        return refuse('unknown', `no node named "${node}" is known to ${me}: no heartbeat, admin token or journaled public key of it. List the nodes with wimsectl cluster nodes`);
      const now = this.#o.clock.now();
      const heartbeat = visibleRecord(this.bus, 'nodes', node);
      const windowMs = this.livenessWindowMs;
      if (heartbeat && isLive(heartbeat.record, now, windowMs))
        return refuse(
          'alive',
          `"${node}" is alive: its last heartbeat is ${seconds(now - heartbeat.record.lastSeen)} old, within the ${seconds(windowMs)} liveness window of the activation gate. Only a node that is gone can be forgotten: stop it (a clean stop leaves the gate by itself), or wait until its last heartbeat is older than ${seconds(windowMs)}`,
        );
      if (!heartbeat && !visibleRecord(this.bus, 'adminTokens', node)) return { ok: true, changed: false };
      const previous = this.bus.get('forgottenNodes', node);
      const record = { node, forgottenAt: now, ...(heartbeat ? { lastSeen: heartbeat.record.lastSeen } : {}) };
      try {
        // Compare-and-set: a forget of the same node made elsewhere meanwhile is seen, not overwritten.
        await this.bus.update('forgottenNodes', node, record, previous?.revision ?? 0);
      } catch (e) {
        if (isClusterError(e, 'ERR_CLUSTER_REVISION_MISMATCH') && attempt === 0) continue;
        return unconfirmed(`the shared store did not take the record: ${(e as Error).message}`);
      }
      this.#adoptAdminToken(node);
      return { ok: true, changed: true, ...(heartbeat ? { lastHeartbeat: heartbeat.record.lastSeen } : {}) };
    }
  }
}

const seconds = (ms: number): string => `${Math.max(0, Math.round(ms / 1000))} s`;

/** Key ids in this node's current trust bundle (own and peers'), for the heartbeat. */
export function trustedKids(ca: Pick<IdentityServer, 'keys'>): string[] {
  return ca.keys().filter((k) => k.status !== 'revoked').map((k) => k.kid);
}
