/**
 * Who is calling the control plane: node credentials, shared by SDS (src/envoy/sds.ts), the
 * Workload API (src/workload-api) and the admin API's token management (src/admin).
 *
 * grpc-js exposes no Unix-socket peer credentials, and `node.id` is chosen
 * by the caller, so it is only an assertion. Two credentials bind a call to a node id:
 * - a node token, sent as gRPC metadata `authorization: Bearer <token>` (Envoy:
 *   `grpc_services[].initial_metadata`), issued for one node id and stored only as its SHA-256
 *   digest, revocable;
 * - a TLS client certificate the listener verified (TCP listener that requires client
 *   certificates), mapped to a node id by `grpc.tls.nodeIdFromCertificate`: exactly one URI SAN
 *   under a configured prefix, the rest of it the node id (src/identity/node-certificate.ts).
 *   Not revocable: it authenticates until it expires.
 * A call may carry both; `authenticateCaller` says how they combine. On SDS, the first request's
 * `node.id` must then equal the authenticated node id (src/envoy/sds.ts).
 *
 * In a cluster every node holds every node token's record (src/node-cluster.ts): records heard
 * from other nodes are merged with `merge`, whose rule only ever revokes or shortens, so that
 * a revocation wins over any later copy of the unrevoked record.
 *
 * Records do not pile up: once a token has been expired for longer than the retention
 * (`sds.expiredTokenRetention`, default 24 h) its record, revoked or not, is dropped (`prune`), and
 * a copy of it heard later is not taken back (`merge`). A token's expiry is fixed when it is
 * issued and every copy of its record carries it, so every copy is as dead as the dropped one: an
 * expired token never verifies, revoked or not. A revoked token that has not expired stays until
 * it has, so its revocation is never forgotten while the token could still verify. A token
 * without expiry is never dropped.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import type { Checked } from './result.ts';
import type { CertificateNodeId } from './node-certificate.ts';

export interface NodeTokenRecord {
  readonly nodeId: string;
  /** base64url SHA-256 of the token. */
  readonly sha256: string;
  readonly revoked?: boolean;
  /** Milliseconds since the epoch; absent: the token does not expire (it stays revocable). */
  readonly expiresAt?: number;
}

/** A token's public handle: a prefix of its digest, safe to show and log. */
export const tokenIdOf = (sha256: string): string => sha256.slice(0, 16);

export interface NodeTokenInfo {
  readonly tokenId: string;
  readonly nodeId: string;
  readonly revoked: boolean;
  readonly expiresAt?: number;
}

export interface NodeTokenStoreOptions {
  /** The clock that expires tokens. Without one, a token with `expiresAt` never verifies (fail closed) and nothing is pruned. */
  readonly now?: () => number;
  /** How long a record is kept after its token expired (revoked or not). Default `NODE_TOKEN_RETENTION_MS`. */
  readonly retentionMs?: number;
}

/** The default of `sds.expiredTokenRetention`: a day of `wimsectl token list` rows of expired tokens. */
export const NODE_TOKEN_RETENTION_MS = 24 * 3600 * 1000;

/**
 * From when the record of a token may be forgotten (ms since the epoch): its expiry plus the
 * retention; undefined for a token that does not expire (its record is kept for good). Every node
 * of a cluster applies this one rule to the node-token store and to the shared store.
 */
export const nodeTokenForgetAt = (r: Pick<NodeTokenRecord, 'expiresAt'>, retentionMs: number): number | undefined =>
  r.expiresAt === undefined ? undefined : r.expiresAt + retentionMs;

/** Records counted by state (`NodeTokenStore.counts`): revoked ones, else expired ones, else live ones. */
export interface NodeTokenCounts {
  readonly live: number;
  readonly revoked: number;
  readonly expired: number;
}

export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('base64url');

const TOKEN_PREFIX = 'wnt_';
/** A node id (Envoy's `node.id`): 1-256 printable ASCII characters, no spaces. */
export const NODE_ID = /^[\x21-\x7e]{1,256}$/;

/**
 * Told of each token revoked: its digest, its node id, and whether one token (`token`: revokeToken,
 * revokeDigest, merge) or every token of the node (`node`: revokeNode) was revoked.
 */
export type RevokeListener = (sha256: string, nodeId: string, scope: 'token' | 'node') => void;

/**
 * Told of every record that changed (issued, revoked, merged): its new state. `merged` is true
 * when the change came from `merge` (a record heard from elsewhere).
 */
export type ChangeListener = (record: NodeTokenRecord, merged: boolean) => void;

/** Told of the records dropped at once, past their expiry plus the retention (`prune`, `merge`). */
export type PruneListener = (records: readonly NodeTokenRecord[]) => void;

/**
 * The merge of two records of one digest: revoked if either is, the earlier expiry. Two records
 * of one digest bound to different node ids cannot both be right: the token is revoked.
 */
export function mergeNodeTokenRecords(a: NodeTokenRecord, b: NodeTokenRecord): NodeTokenRecord {
  const revoked = a.revoked === true || b.revoked === true || a.nodeId !== b.nodeId;
  const expiresAt = a.expiresAt === undefined ? b.expiresAt : b.expiresAt === undefined ? a.expiresAt : Math.min(a.expiresAt, b.expiresAt);
  return { nodeId: a.nodeId, sha256: a.sha256, ...(expiresAt !== undefined ? { expiresAt } : {}), ...(revoked ? { revoked: true } : {}) };
}

/** Two records say the same (the journal and the bus compare with this). */
export const sameNodeTokenRecord = (a: NodeTokenRecord, b: NodeTokenRecord): boolean =>
  a.nodeId === b.nodeId && a.sha256 === b.sha256 && a.expiresAt === b.expiresAt && (a.revoked === true) === (b.revoked === true);

/** Node tokens, stored hashed. The token itself exists only in the issue() result. */
export class NodeTokenStore {
  readonly #byHash = new Map<string, NodeTokenRecord>();
  readonly #revokeListeners = new Set<RevokeListener>();
  readonly #changeListeners = new Set<ChangeListener>();
  readonly #pruneListeners = new Set<PruneListener>();
  readonly #now: (() => number) | undefined;
  readonly #retentionMs: number;

  /** Records are taken as they are; `prune` drops those already past their retention. */
  constructor(records: readonly NodeTokenRecord[] = [], opts: NodeTokenStoreOptions = {}) {
    for (const r of records) {
      const had = this.#byHash.get(r.sha256);
      this.#byHash.set(r.sha256, had ? mergeNodeTokenRecords(had, r) : r);
    }
    this.#now = opts.now;
    const retention = opts.retentionMs ?? NODE_TOKEN_RETENTION_MS;
    if (!Number.isSafeInteger(retention) || retention < 0) throw new TypeError('"retentionMs" must be a non-negative integer');
    this.#retentionMs = retention;
  }

  /** How long a record is kept after its token expired. */
  get retentionMs(): number {
    return this.#retentionMs;
  }

  /** Parse the node-token file (`{"tokens": [{nodeId, sha256, revoked?, expiresAt?}]}`). */
  static parse(doc: unknown, opts: NodeTokenStoreOptions = {}): Checked<NodeTokenStore> {
    const errors: string[] = [];
    const tokens = (doc as { tokens?: unknown } | null)?.tokens;
    if (!Array.isArray(tokens)) return { ok: false, errors: ['tokens: must be a list'] };
    const records: NodeTokenRecord[] = [];
    tokens.forEach((t: unknown, i) => {
      const r = t as Record<string, unknown> | null;
      if (!r || typeof r !== 'object') return void errors.push(`tokens[${i}]: must be an object`);
      if (typeof r.nodeId !== 'string' || !NODE_ID.test(r.nodeId)) errors.push(`tokens[${i}].nodeId: must be 1-256 printable ASCII characters`);
      if (typeof r.sha256 !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(r.sha256)) errors.push(`tokens[${i}].sha256: must be a base64url SHA-256 digest`);
      if (r.revoked !== undefined && typeof r.revoked !== 'boolean') errors.push(`tokens[${i}].revoked: must be a boolean`);
      if (r.expiresAt !== undefined && (typeof r.expiresAt !== 'number' || !Number.isSafeInteger(r.expiresAt) || r.expiresAt < 0))
        errors.push(`tokens[${i}].expiresAt: must be milliseconds since the epoch`);
      if (errors.length === 0)
        records.push({
          nodeId: r.nodeId as string,
          sha256: r.sha256 as string,
          ...(r.revoked ? { revoked: true } : {}),
          ...(r.expiresAt !== undefined ? { expiresAt: r.expiresAt as number } : {}),
        });
    });
    return errors.length ? { ok: false, errors } : { ok: true, value: new NodeTokenStore(records, opts) };
  }

  /** Every token held (revoked ones, and expired ones until they are pruned), by its public id; never the digest. */
  list(): NodeTokenInfo[] {
    return [...this.#byHash.values()].map((r) => ({
      tokenId: tokenIdOf(r.sha256),
      nodeId: r.nodeId,
      revoked: r.revoked === true,
      ...(r.expiresAt !== undefined ? { expiresAt: r.expiresAt } : {}),
    }));
  }

  /** Revoke one token by its id; live streams authenticated by it are ended. False if unknown. */
  revokeToken(tokenId: string): boolean {
    for (const h of this.#byHash.keys()) if (tokenIdOf(h) === tokenId) return this.revokeDigest(h);
    return false;
  }

  /** Revoke one token by its digest (as a revocation travels between nodes). False if unknown. */
  revokeDigest(sha256: string): boolean {
    const r = this.#byHash.get(sha256);
    if (!r) return false;
    if (!r.revoked) this.#set({ ...r, revoked: true }, false, 'token');
    return true;
  }

  /**
   * Take in a record heard from elsewhere (another node, a journal): a new digest is added, a
   * known one is merged (`mergeNodeTokenRecords`: revocation and the earlier expiry win). Returns
   * the record now held, and whether it changed.
   */
  merge(record: NodeTokenRecord): { record: NodeTokenRecord | undefined; changed: boolean } {
    const had = this.#byHash.get(record.sha256);
    const next = had ? mergeNodeTokenRecords(had, record) : { ...record };
    // Past its expiry plus the retention: not taken (back) in; a copy held is dropped.
    if (this.#pastRetention(next)) {
      if (had) this.#drop([had]);
      return { record: undefined, changed: had !== undefined };
    }
    if (had && sameNodeTokenRecord(had, next)) return { record: had, changed: false };
    this.#set(next, true, had && !had.revoked && next.revoked ? 'token' : undefined);
    return { record: next, changed: true };
  }

  /**
   * Whether `r` is past its expiry plus the retention at this store's clock: such a record is
   * dropped, and not taken in again. Never without a clock, never for a token that does not expire.
   */
  pastRetention(r: Pick<NodeTokenRecord, 'expiresAt'>): boolean {
    return this.#pastRetention(r);
  }

  #pastRetention(r: Pick<NodeTokenRecord, 'expiresAt'>): boolean {
    const at = nodeTokenForgetAt(r, this.#retentionMs);
    return at !== undefined && this.#now !== undefined && this.#now() >= at;
  }

  /**
   * Drop every record whose token expired longer than the retention ago, revoked or not; a revoked
   * token that has not expired (or does not expire) is kept. Prune listeners are told once, with
   * every record dropped. Returns those records.
   */
  prune(): NodeTokenRecord[] {
    const gone = [...this.#byHash.values()].filter((r) => this.#pastRetention(r));
    if (gone.length) this.#drop(gone);
    return gone;
  }

  #drop(records: readonly NodeTokenRecord[]): void {
    for (const r of records) this.#byHash.delete(r.sha256);
    for (const l of this.#pruneListeners) l(records);
  }

  /** The records held, by state: revoked, else expired (not yet pruned), else live. */
  counts(): NodeTokenCounts {
    const now = this.#now?.();
    let live = 0;
    let revoked = 0;
    let expired = 0;
    for (const r of this.#byHash.values()) {
      if (r.revoked) revoked++;
      else if (r.expiresAt !== undefined && (now === undefined || now >= r.expiresAt)) expired++;
      else live++;
    }
    return { live, revoked, expired };
  }

  /** The record of one digest (digests are not secret; tokens are). */
  get(sha256: string): NodeTokenRecord | undefined {
    return this.#byHash.get(sha256);
  }

  /** Every record, for the journal and for sharing with other nodes. */
  records(): NodeTokenRecord[] {
    return [...this.#byHash.values()];
  }

  toJSON(): { tokens: NodeTokenRecord[] } {
    return { tokens: this.records() };
  }

  #set(r: NodeTokenRecord, merged: boolean, revokedScope?: 'token' | 'node'): void {
    this.#byHash.set(r.sha256, r);
    // Revocation listeners first: live streams of a revoked token end before anything else happens.
    if (revokedScope) for (const l of this.#revokeListeners) l(r.sha256, r.nodeId, revokedScope);
    for (const l of this.#changeListeners) l(r, merged);
  }

  /** Issue a token bound to `nodeId`; the caller shows it once and it is never stored. */
  issue(nodeId: string, opts: { expiresAt?: number } = {}): string {
    if (!NODE_ID.test(nodeId)) throw new TypeError('"nodeId" must be 1-256 printable ASCII characters');
    if (opts.expiresAt !== undefined && (!Number.isSafeInteger(opts.expiresAt) || !this.#now))
      throw new TypeError('"expiresAt" needs an integer time and a store with a clock');
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const sha256 = hashToken(token);
    this.#set({ nodeId, sha256, ...(opts.expiresAt !== undefined ? { expiresAt: opts.expiresAt } : {}) }, false);
    return token;
  }

  /** Revoke every token of `nodeId`; live streams authenticated by them are ended. Returns the count. */
  revokeNode(nodeId: string): number {
    let n = 0;
    for (const r of [...this.#byHash.values()])
      if (r.nodeId === nodeId && !r.revoked) {
        this.#set({ ...r, revoked: true }, false, 'node');
        n++;
      }
    return n;
  }

  /** The node id a presented token is bound to, or undefined (unknown, revoked or expired). */
  verify(token: string): { nodeId: string; sha256: string } | undefined {
    const h = hashToken(token);
    const r = this.#live(h);
    if (!r) return undefined;
    // The map lookup already matched; compare again in constant time for good measure.
    if (!timingSafeEqual(Buffer.from(r.sha256), Buffer.from(h))) return undefined;
    return { nodeId: r.nodeId, sha256: h };
  }

  /**
   * Whether the token with this digest still authenticates (known, not revoked, not expired):
   * SDS asks on every rotation tick, so a stream opened with a token ends when the token expires.
   */
  isLive(sha256: string): boolean {
    return this.#live(sha256) !== undefined;
  }

  /**
   * The one place where a node token is judged: `verify` (every call that presents a token:
   * SDS, ext_authz, the Workload API) and `isLive` (streams already open) both come here.
   */
  #live(sha256: string): NodeTokenRecord | undefined {
    const r = this.#byHash.get(sha256);
    if (!r || r.revoked) return undefined;
    // Without a clock an expiring token never verifies (fail closed).
    if (r.expiresAt !== undefined && (this.#now === undefined || this.#now() >= r.expiresAt)) return undefined;
    return r;
  }

  onRevoke(listener: RevokeListener): () => void {
    this.#revokeListeners.add(listener);
    return () => this.#revokeListeners.delete(listener);
  }

  /** Every change of a record (issued, revoked, merged): for the journal and for other nodes. */
  onChange(listener: ChangeListener): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  /** Records dropped past their retention (`prune`, or a `merge` of a copy past it): for the journal. */
  onPrune(listener: PruneListener): () => void {
    this.#pruneListeners.add(listener);
    return () => this.#pruneListeners.delete(listener);
  }
}

export type CallerIdentity =
  | { readonly ok: true; readonly nodeId: string; readonly via: 'token'; readonly tokenHash: string }
  /** `notAfter`: the certificate's expiry (ms since the epoch); an open stream ends then (src/caller-streams.ts `lapsed`). */
  | { readonly ok: true; readonly nodeId: string; readonly via: 'certificate'; readonly notAfter: number }
  | { readonly ok: false; readonly reason: 'no_credentials' | 'bad_token' | 'unknown_certificate' | 'expired_certificate' | 'credentials_disagree' };

/** Where `authenticateCaller` says why a client certificate did not authenticate a call. Never given a token or a whole certificate. */
export interface CallerAuthLogger {
  warn(obj: object, msg: string): void;
}

export interface CallerAuthOptions {
  readonly tokens?: NodeTokenStore;
  /**
   * Maps a TLS client certificate the listener verified to a node id, or says why it names none
   * (`nodeIdFromCertificate(uriPrefix)` in node-certificate.ts: `grpc.tls.nodeIdFromCertificate`).
   * Without it a certificate authenticates nothing (it only admitted the connection).
   */
  readonly nodeIdFromCertificate?: (cert: PeerCertificate) => CertificateNodeId;
  /**
   * The clock a certificate's expiry is judged by, at every call and on every stream check: a
   * connection outlives the handshake that verified its certificate. Without one, no certificate
   * authenticates (fail closed).
   */
  readonly now?: () => number;
  /** Told (at warn) why a certificate refused a call: it names no node validly, another node than the token, or it has expired. */
  readonly logger?: CallerAuthLogger;
}

/** At most this many URI SANs, each cut to this length, go into a log line. */
const LOGGED_URIS = 4;
const LOGGED_URI_CHARS = 300;

/** What a log line says about a certificate: never the whole certificate, only what identifies it. */
function certificateFacts(cert: PeerCertificate): object {
  return { fingerprint256: cert.fingerprint256, serialNumber: cert.serialNumber };
}

/** A certificate's notAfter in ms since the epoch (NaN when it cannot be read). */
const certificateNotAfter = (cert: PeerCertificate): number => Date.parse(cert.valid_to);

/**
 * Authenticate a call from its `authorization` metadata values and its TLS peer certificate
 * (present only when the listener verified one; mapped only when `nodeIdFromCertificate` is set).
 *
 * - A token alone authenticates its node (`via: 'token'`); a bad token is never rescued by a
 *   certificate (`bad_token`).
 * - A certificate alone authenticates the node it names (`via: 'certificate'`) until its
 *   notAfter by `opts.now` (`expired_certificate` after it: a gRPC connection outlives its
 *   handshake); one that names none validly is refused (`unknown_certificate`).
 * - Both: the token must be valid, and the certificate must either name no node at all (no URI
 *   SAN under the prefix: it only admitted the connection) or name the token's node. A
 *   certificate naming another node (`credentials_disagree`), or naming one invalidly (two URI
 *   SANs under the prefix, a bad node id: `unknown_certificate`), refuses the call. An accepted
 *   call is authenticated by the token (`via: 'token'`): its revocation, expiry and staleness
 *   rules apply, as they would without the certificate.
 */
export function authenticateCaller(
  authorization: readonly string[],
  peerCertificate: PeerCertificate | undefined,
  opts: CallerAuthOptions,
): CallerIdentity {
  const cert = peerCertificate && opts.nodeIdFromCertificate && Object.keys(peerCertificate).length > 0 ? peerCertificate : undefined;
  const named = cert ? opts.nodeIdFromCertificate!(cert) : undefined;
  const refuseCertificate = (msg: string, facts: object): CallerIdentity => {
    opts.logger?.warn({ ...certificateFacts(cert!), ...facts }, msg);
    return { ok: false, reason: 'unknown_certificate' };
  };
  const unnamed = (n: Extract<CertificateNodeId, { ok: false }>, withToken: boolean): CallerIdentity =>
    refuseCertificate(`client certificate refused: it names no node${withToken ? ' validly; the node token is not used' : ''}`, {
      problem: n.problem,
      uris: n.uris.slice(0, LOGGED_URIS).map((u) => u.slice(0, LOGGED_URI_CHARS)),
    });
  if (authorization.length > 0) {
    if (authorization.length !== 1 || !opts.tokens) return { ok: false, reason: 'bad_token' };
    const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(authorization[0]!);
    const v = m ? opts.tokens.verify(m[1]!) : undefined;
    if (!v) return { ok: false, reason: 'bad_token' };
    if (named && !named.ok && named.problem !== 'no_node_uri') return unnamed(named, true);
    if (named?.ok && named.nodeId !== v.nodeId) {
      opts.logger?.warn(
        { ...certificateFacts(cert!), certificateNode: named.nodeId, tokenNode: v.nodeId, tokenId: tokenIdOf(v.sha256) },
        'call refused: the client certificate and the node token name different nodes',
      );
      return { ok: false, reason: 'credentials_disagree' };
    }
    return { ok: true, nodeId: v.nodeId, via: 'token', tokenHash: v.sha256 };
  }
  if (!named) return { ok: false, reason: 'no_credentials' };
  if (!named.ok) return unnamed(named, false);
  const notAfter = certificateNotAfter(cert!);
  const now = opts.now?.();
  if (now === undefined || !(now < notAfter)) {
    opts.logger?.warn({ ...certificateFacts(cert!), node: named.nodeId, validTo: cert!.valid_to }, 'client certificate refused: it has expired');
    return { ok: false, reason: 'expired_certificate' };
  }
  return { ok: true, nodeId: named.nodeId, via: 'certificate', notAfter };
}
