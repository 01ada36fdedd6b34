/**
 * Contracts of the cluster bus (STYLE §8: the consumer owns the interface; implementations live in
 * memory-bus.ts and nats-bus.ts).
 *
 * What travels is public state only: public keys and their lifecycle, federated bundles, policy,
 * registration entries, node-token revocations, the digests of node tokens and admin tokens,
 * node presence, and the nodes an operator forgot. Private keys and tokens never travel.
 * Each node's own journal stays the source of truth for its own keys (DESIGN.md, SPIRE's HA
 * model); the bus is a fast notification path plus a convergence aid
 * (JetStream KV and a periodic reconcile).
 */

/** The closed set of things the bus carries. */
export const RECORD_KINDS = ['keys', 'bundles', 'policy', 'registrations', 'revocations', 'nodeTokens', 'adminTokens', 'nodes', 'forgottenNodes'] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

/** Kinds whose records belong to one node: their key starts with the node name, and only that node writes them. */
export const NODE_OWNED_KINDS: ReadonlySet<RecordKind> = new Set<RecordKind>(['keys', 'nodes', 'adminTokens']);

export const isRecordKind = (k: unknown): k is RecordKind => typeof k === 'string' && (RECORD_KINDS as readonly string[]).includes(k);

/** SPIRE's slot lifecycle (its server CA manager): prepared -> active -> old, plus operator taint and revoke. */
export const KEY_STATES = ['prepared', 'active', 'old', 'tainted', 'revoked'] as const;
export type KeyState = (typeof KEY_STATES)[number];

/** What a published key signs: X.509 WICs (a CA root) or WITs/JWTs (a JWK). */
export const KEY_USES = ['x509', 'wit', 'jwt'] as const;
export type KeyUse = (typeof KEY_USES)[number];

/**
 * One public key of one node. Key: `<node>/<kid>`. Exactly one of `publicJwk` (WIT/JWT keys) and
 * `x509RootDer` (base64 DER of the CA certificate) is present.
 */
export interface KeyRecord {
  node: string;
  kid: string;
  alg: string;
  use: KeyUse;
  state: KeyState;
  publicJwk?: Record<string, unknown>;
  x509RootDer?: string;
  /** Milliseconds since the epoch. */
  notBefore: number;
  notAfter: number;
  /** The node's own monotonically increasing revision of its key set (its journal sequence). */
  keySeq: number;
}

/** A federated trust domain's bundle. Key: the trust domain. */
export interface BundleRecord {
  trustDomain: string;
  /** SPIFFE bundle (JWKS) JSON text, as served by the federated domain. */
  spiffeBundle: string;
  sequence: number;
}

/** The route policy document. `digest` is `sha256:<hex>` of `text` and is checked on receipt. */
export interface PolicyRecord {
  version: string;
  digest: string;
  text: string;
}

/** A registration entry: which workload identifier a set of selectors earns. Key: `id`. */
export interface RegistrationRecord {
  id: string;
  workloadId: string;
  selectors: string[];
  x509TtlMs?: number;
  witTtlMs?: number;
  dnsNames?: string[];
}

/**
 * A revoked node token. Key: `tokenId` -- a token identifier (jti or digest), never the token.
 * The revocation can be forgotten after `expiresAt` (the token's own expiry plus the retention of
 * expired tokens; a year after the revocation for a token that does not expire).
 */
export interface RevocationRecord {
  tokenId: string;
  node?: string;
  reason?: string;
  revokedAt: number;
  expiresAt: number;
}

/**
 * A node token as every node holds it: the Envoy node id it is bound to and its SHA-256 digest
 * (base64url), never the token. Key: `sha256`. Written by any node; nodes merge what they hear
 * (`revoked` only ever goes from false to true, `expiresAt` only ever earlier), so a revocation
 * wins over any later write of the unrevoked record.
 */
export interface NodeTokenRecord {
  nodeId: string;
  sha256: string;
  /** Milliseconds since the epoch; absent: no expiry. */
  expiresAt?: number;
  revoked?: boolean;
}

/**
 * A node's admin token, as its SHA-256 digest (base64url). Key: the node name; only that node
 * writes it. Every node accepts the admin token of every node it has heard from.
 */
export interface AdminTokenRecord {
  node: string;
  sha256: string;
}

/** A node's heartbeat. Key: the node name. `trustedKids` are the key ids in its current bundle. */
export interface NodeRecord {
  node: string;
  /** The sender's clock, milliseconds since the epoch. */
  lastSeen: number;
  trustedKids: string[];
  startedAt?: number;
  version?: string;
}

/**
 * A node forgotten by an operator (`wimsectl cluster forget`). Key: the forgotten node's name;
 * written by the node that served the call (any node). It hides that node's `nodes` and
 * `adminTokens` records stored before it (a lower store revision): its heartbeat no longer counts
 * at the activation gate and its admin token is no longer accepted. Whatever the node writes
 * later (it restarts) is newer and counts again (forgotten.ts).
 */
export interface ForgottenNodeRecord {
  node: string;
  /** The forgetting node's clock, milliseconds since the epoch. */
  forgottenAt: number;
  /** The `lastSeen` of the forgotten node's heartbeat, when there was one. */
  lastSeen?: number;
}

export interface RecordOf {
  keys: KeyRecord;
  bundles: BundleRecord;
  policy: PolicyRecord;
  registrations: RegistrationRecord;
  revocations: RevocationRecord;
  nodeTokens: NodeTokenRecord;
  adminTokens: AdminTokenRecord;
  nodes: NodeRecord;
  forgottenNodes: ForgottenNodeRecord;
}

/** One replicated value as a node sees it. `revision` 0 means written locally, not yet stored. */
export interface Entry<K extends RecordKind = RecordKind> {
  kind: K;
  key: string;
  record: RecordOf[K];
  origin: string;
  /** The origin node's sequence for this write (monotonic per origin, survives restarts). */
  seq: number;
  /** The store revision (JetStream KV sequence); 0 while pending. */
  revision: number;
}

export interface Change<K extends RecordKind = RecordKind> {
  kind: K;
  key: string;
  /** Absent when the key was deleted. */
  entry?: Entry<K>;
  deleted: boolean;
  origin: string;
  revision: number;
  /** True when this node made the change itself. */
  local: boolean;
}

export interface EventMeta {
  origin: string;
  seq: number;
}

/** Why a received message was refused (counted and logged, never applied). */
export const INVALID_REASONS = ['oversize', 'bad_json', 'bad_schema', 'origin_mismatch', 'key_mismatch', 'unknown_kind'] as const;
export type InvalidReason = (typeof INVALID_REASONS)[number];

export interface InvalidInfo {
  reason: InvalidReason;
  /** Where it came from: a subject or a store key. */
  source: string;
  errors: string[];
}

export interface BusStats {
  applied: number;
  /** Records past their forget time (`BusOptions.forgetAt`): refused on receipt or dropped from the replica. */
  forgotten: number;
  /** Duplicates and older sequences, ignored. */
  stale: number;
  invalid: Record<InvalidReason, number>;
  /** Pending local writes that lost to a concurrent write while this node was cut off. */
  conflicts: number;
  reconciles: number;
  /** Entries a reconcile repaired (applied from the store or re-asserted to it). */
  repaired: number;
  pending: number;
}

export interface ReconcileReport {
  /** Values newer in the store than locally, now applied. */
  applied: number;
  /** This node's own values the store had lost or held in an older version, written again. */
  reasserted: number;
  /** Pending writes of this node now stored. */
  flushed: number;
  /** Values past their forget time removed from the store (`BusOptions.forgetAt`). */
  purged: number;
}

/**
 * Kinds whose records expire: for each, when a record may be forgotten (ms since the epoch), or
 * undefined when it is kept until deleted. Every node of a trust domain must use the same rule.
 */
export type ForgetRule = { readonly [K in RecordKind]?: (record: RecordOf[K]) => number | undefined };

/** pino-compatible subset. */
export interface BusLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const noopLogger: BusLogger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * The bus and replicated store shared by the control-plane nodes of one trust domain.
 * Reads (`get`, `list`) answer from this node's local replica, which always includes its own writes.
 */
export interface Bus {
  readonly trustDomain: string;
  readonly nodeName: string;
  /** True while the node can reach the shared store. */
  readonly connected: boolean;
  /** Connect (if needed) and catch up from the store. Idempotent. */
  start(): Promise<void>;
  /**
   * Store `record` under `key` and announce it. Resolves with the store revision, or 0 when the
   * store is unreachable: the write is then kept locally and written when the bus is back.
   */
  put<K extends RecordKind>(kind: K, key: string, record: RecordOf[K]): Promise<number>;
  /**
   * Compare-and-set: store only if the key's current revision is `expectedRevision` (0: absent).
   * Throws `ClusterError` `ERR_CLUSTER_REVISION_MISMATCH`, or `ERR_CLUSTER_UNAVAILABLE` when cut off.
   */
  update<K extends RecordKind>(kind: K, key: string, record: RecordOf[K], expectedRevision: number): Promise<number>;
  /** Delete (a tombstone write, ordered like any other write). Same resolution as `put`. */
  delete(kind: RecordKind, key: string): Promise<number>;
  get<K extends RecordKind>(kind: K, key: string): Entry<K> | undefined;
  list<K extends RecordKind>(kind: K): Entry<K>[];
  /** Every applied change of `kind` (local or remote), in apply order. Returns an unsubscribe function. */
  watch<K extends RecordKind>(kind: K, handler: (change: Change<K>) => void): () => void;
  /** A one-off broadcast that is not stored (at most once; nodes that are cut off miss it). */
  publish<K extends RecordKind>(kind: K, record: RecordOf[K]): Promise<void>;
  subscribe<K extends RecordKind>(kind: K, handler: (record: RecordOf[K], meta: EventMeta) => void): () => void;
  onConnectionChange(handler: (connected: boolean) => void): () => void;
  /** Re-read the store, apply what is newer, write back pending and lost own writes. */
  reconcile(): Promise<ReconcileReport>;
  stats(): BusStats;
  close(): Promise<void>;
}

/** Options common to both implementations. */
export interface BusOptions {
  trustDomain: string;
  nodeName: string;
  /** Milliseconds since the epoch; used for per-origin sequences. */
  clock?: { now(): number };
  logger?: BusLogger;
  /** Called for every refused message (metric hook). */
  onInvalid?: (info: InvalidInfo) => void;
  /** Periodic reconcile; 0 disables it. Default 30 000 ms. */
  reconcileIntervalMs?: number;
  /** Retry delay for writes that could not reach the store. Default 1 000 ms. */
  retryMs?: number;
  /** How long a revision gap may stay open before it triggers a catch-up. Default 250 ms. */
  gapGraceMs?: number;
  /**
   * Records that expire. A record past its forget time (at `clock`) is not applied when received,
   * is dropped from the local replica (watchers see a deletion) and is removed from the shared store
   * by the next reconcile, leaving no tombstone: the rule itself keeps it dead wherever it turns up
   * again, so no node re-learns it, and this node never re-asserts it. Default: nothing expires.
   */
  forgetAt?: ForgetRule;
}
