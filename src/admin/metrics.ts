/**
 * The node's Prometheus metrics. Each node owns its own registry (several nodes can run in one
 * process in tests). The protocol servers do not import this file: they expose hooks, and the
 * composition root (src/node.ts) turns hook calls into metric updates.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ReplayCacheStats } from '../authn/replay.ts';
import type { NodeTokenCounts } from '../identity/node-tokens.ts';

export interface KeyExpiry {
  kind: string;
  kid: string;
  state: string;
  /** Milliseconds since the epoch. */
  notAfter: number;
}

/**
 * One replay cache, named by what it holds (`wpt`: WPT `jti`s, `httpsig`: signature nonces,
 * `wit_request`: the `jti`s of the Workload API's FetchWIT proofs).
 */
export interface ReplayCacheView extends ReplayCacheStats {
  cache: string;
}

/** The cluster's freshness as the metrics show it (NodeCluster.staleness). */
export interface ClusterFreshness {
  stale: boolean;
  contactAgeMs: number;
}

export class NodeMetrics {
  readonly registry = new Registry();
  readonly checks: Counter<'result' | 'reason' | 'via'>;
  readonly checkDuration: Histogram<'result'>;
  readonly sdsStreams: Gauge;
  readonly sdsPushes: Counter<'resource'>;
  readonly sdsNacks: Counter;
  readonly issued: Counter<'kind'>;
  readonly busConnected: Gauge;
  readonly propagationLag: Histogram;
  readonly busRejected: Counter<'reason'>;
  readonly activationGateTimeouts: Counter;
  readonly activationGateWaiting: Gauge;
  readonly nodeTokensPruned: Counter;
  readonly grpcSessionsClosed: Counter<'reason'>;

  constructor(
    opts: {
      keyExpiries?: () => KeyExpiry[];
      /** The soonest expiry (ms since the epoch) of the WICs served over SDS, if any. */
      servedWicExpiry?: () => number | undefined;
      replayCaches?: () => readonly ReplayCacheView[];
      clusterFreshness?: () => ClusterFreshness | undefined;
      /** The node-token records held, by state (NodeTokenStore.counts). */
      nodeTokens?: () => NodeTokenCounts;
      /** Open Workload API WatchBundles streams (WorkloadApiServer.stats). */
      workloadApiStreams?: () => number;
      defaultMetrics?: boolean;
    } = {},
  ) {
    const registers = [this.registry];
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry });
    this.checks = new Counter({ name: 'wimse_authz_checks_total', help: 'ext_authz checks by result, reason code and authentication method.', labelNames: ['result', 'reason', 'via'], registers });
    this.checkDuration = new Histogram({
      name: 'wimse_authz_check_duration_seconds',
      help: 'Server-side time to answer one ext_authz check.',
      labelNames: ['result'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1],
      registers,
    });
    this.sdsStreams = new Gauge({ name: 'wimse_sds_streams', help: 'Open SDS streams.', registers });
    this.sdsPushes = new Counter({ name: 'wimse_sds_pushes_total', help: 'SDS responses sent, by resource name class.', labelNames: ['resource'], registers });
    this.sdsNacks = new Counter({ name: 'wimse_sds_nacks_total', help: 'SDS responses rejected by Envoy (NACK).', registers });
    this.issued = new Counter({ name: 'wimse_issued_total', help: 'Credentials issued, by kind (wic, wit).', labelNames: ['kind'], registers });
    this.busConnected = new Gauge({ name: 'wimse_bus_connected', help: '1 when the cluster bus is connected or embedded.', registers });
    this.propagationLag = new Histogram({
      name: 'wimse_bus_propagation_lag_seconds',
      help: 'Time from a change on its origin node to its application here.',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    this.busRejected = new Counter({ name: 'wimse_bus_rejected_messages_total', help: 'Bus messages ignored as malformed or unexpected.', labelNames: ['reason'], registers });
    this.activationGateTimeouts = new Counter({
      name: 'wimse_activation_gate_timeouts_total',
      help: 'Prepared keys activated after cluster.activationTimeout without every known node trusting them.',
      registers,
    });
    // Replay caches (src/authn/replay.ts) are read at scrape time: the hot path only counts.
    const replay = opts.replayCaches ?? (() => []);
    this.activationGateWaiting = new Gauge({
      name: 'wimse_activation_gate_waiting',
      help: 'Prepared keys waiting at the activation gate for every known node to trust them.',
      registers,
    });
    this.nodeTokensPruned = new Counter({
      name: 'wimse_node_tokens_pruned_total',
      help: 'Node-token records dropped because their token expired longer than sds.expiredTokenRetention ago.',
      registers,
    });
    this.grpcSessionsClosed = new Counter({
      name: 'wimse_grpc_sessions_closed_total',
      help: 'gRPC connections the node closed (GOAWAY, then reset after a grace), by reason (client_certificate_expired: the client certificate of its handshake reached its notAfter).',
      labelNames: ['reason'],
      registers,
    });
    const tokenCounts = opts.nodeTokens;
    new Gauge({
      name: 'wimse_node_tokens',
      help: 'Node-token records held (and journaled), by state: live, revoked, or expired and not yet pruned.',
      labelNames: ['state'],
      registers,
      collect() {
        const c = tokenCounts?.();
        if (!c) return;
        for (const state of ['live', 'revoked', 'expired'] as const) this.set({ state }, c[state]);
      },
    });
    const watchStreams = opts.workloadApiStreams;
    new Gauge({
      name: 'wimse_workload_api_streams',
      help: 'Open Workload API WatchBundles streams.',
      registers,
      collect() {
        this.set(watchStreams?.() ?? 0);
      },
    });
    const freshness = opts.clusterFreshness;
    new Gauge({
      name: 'wimse_cluster_stale',
      help: '1 while the cluster state is stale (no confirmed contact with the shared store for longer than cluster.maxStaleness), else 0.',
      registers,
      collect() {
        this.set(freshness?.()?.stale ? 1 : 0);
      },
    });
    new Gauge({
      name: 'wimse_cluster_contact_age_seconds',
      help: 'Seconds since the last confirmed contact with the shared store; 0 while in contact.',
      registers,
      collect() {
        this.set((freshness?.()?.contactAgeMs ?? 0) / 1000);
      },
    });
    new Gauge({
      name: 'wimse_replay_cache_entries',
      help: 'Tokens held by each replay cache (WPT jti, HTTP-signature nonce, Workload API proof jti) until they can no longer be accepted.',
      labelNames: ['cache'],
      registers,
      collect() {
        for (const c of replay()) this.set({ cache: c.cache }, c.entries);
      },
    });
    new Gauge({
      name: 'wimse_replay_cache_capacity',
      help: 'Entries each replay cache may hold (authn.replayCacheSize, workloadApi.replayCacheSize).',
      labelNames: ['cache'],
      registers,
      collect() {
        for (const c of replay()) this.set({ cache: c.cache }, c.capacity);
      },
    });
    new Counter({
      name: 'wimse_replay_cache_rejections_total',
      help: 'Requests refused (ext_authz 503, Workload API UNAVAILABLE) because a replay cache was full of tokens that are still valid.',
      labelNames: ['cache'],
      registers,
      collect() {
        this.reset();
        for (const c of replay()) this.inc({ cache: c.cache }, c.refusedFull);
      },
    });
    // Expiries are absolute Unix timestamps in seconds (the Prometheus convention): alert on
    // `wimse_key_expiration_timestamp_seconds - time() < 7200`. No clock is read here.
    const expiries = opts.keyExpiries;
    new Gauge({
      name: 'wimse_key_expiration_timestamp_seconds',
      help: 'When each trusted signing key (the X.509 CA certificate, or the WIT key) expires, Unix seconds.',
      labelNames: ['kind', 'kid', 'state'],
      registers,
      collect() {
        this.reset();
        for (const k of expiries?.() ?? []) this.set({ kind: k.kind, kid: k.kid, state: k.state }, k.notAfter / 1000);
      },
    });
    const servedWic = opts.servedWicExpiry;
    new Gauge({
      name: 'wimse_credential_earliest_expiration_timestamp_seconds',
      help: 'When the first of the credentials this node serves expires (kind="wic": the certificates held for Envoys over SDS), Unix seconds; absent when it serves none.',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        const t = servedWic?.();
        if (t !== undefined) this.set({ kind: 'wic' }, t / 1000);
      },
    });
  }
}
