/**
 * Envoy SDS v3 server: `envoy.service.secret.v3.SecretDiscoveryService` on grpc-js.
 *
 * StreamSecrets follows Envoy's xDS protocol
 * (https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol): one loop per stream (a
 * promise queue, so requests and pushes are handled one at a time and in order), the bookkeeping in
 * sds-stream-state.ts, the secrets from sds-catalog.ts. FetchSecrets answers once; DeltaSecrets is
 * UNIMPLEMENTED (as in SPIRE and Istio).
 *
 * Failure statuses (docs/sds.md; those of the caller's credentials are shared with the Workload
 * API: src/caller-streams.ts):
 * - no or bad credentials, revoked or expired token, expired certificate -> UNAUTHENTICATED
 * - node tokens cannot be confirmed right now -> UNAVAILABLE (a stale cluster node: Envoy retries,
 *   reaching a node that can confirm them)
 * - first request's node.id != authenticated -> PERMISSION_DENIED
 * - a name the node may not have (or unknown)-> INVALID_ARGUMENT, naming only the requested name
 * - issuance failed (CA outage)              -> UNAVAILABLE (Envoy retries with backoff)
 * - wrong type_url                           -> INVALID_ARGUMENT
 * - more than maxStreamsPerNode open streams -> RESOURCE_EXHAUSTED
 */
import { randomBytes, createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../identity/clock.ts';
import { envoyProtos, TYPE_URL } from './protos.ts';
import type { SecretSource, SecretSourceEvent } from './sds-source.ts';
import type { CallerAuthOptions } from '../identity/node-tokens.ts';
import { authenticateCall, INVALID_CREDENTIALS, lapsed, revokedBy, SHUTTING_DOWN, unconfirmed, type AuthenticatedCaller } from '../caller-streams.ts';
import { SecretCatalog, SecretUnavailable } from './sds-catalog.ts';
import { applyRequest, newStreamState, type SdsRequest, type SdsStreamState } from './sds-stream-state.ts';
import type { BuiltSecret } from './sds-secrets.ts';
import { ResponseEncoder } from './sds-response.ts';

/** The subset of a pino logger we use. Never given keys or tokens. */
export interface SdsLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}
const quiet: SdsLogger = { debug: () => {}, info: () => {}, warn: () => {} };

/**
 * Hooks for metrics (the composition root maps them to Prometheus: wimse_sds_streams,
 * wimse_sds_pushes_total{resource}, wimse_sds_nacks_total). All optional, called synchronously.
 */
export interface SdsHooks {
  streamOpened?(): void;
  streamClosed?(): void;
  /** Once per Secret sent; `resource` is the name class, never an identifier. */
  pushed?(resource: 'default' | 'ROOTCA' | 'ALL' | 'identity'): void;
  nack?(): void;
}

export interface SdsServerOptions {
  readonly source: SecretSource;
  readonly auth: CallerAuthOptions;
  readonly clock: Clock;
  readonly logger?: SdsLogger;
  /** Uniform in [0, 1); rotation jitter. */
  readonly random?: () => number;
  /** How often `start()` checks for leaves due for rotation. Default 1 s. */
  readonly rotationCheckMs?: number;
  /** Sent as `control_plane.identifier`. */
  readonly controlPlaneId?: string;
  readonly hooks?: SdsHooks;
  /**
   * Why node tokens cannot be confirmed right now (this node may have missed revocations: a
   * stale cluster node), or undefined. While it gives a reason, calls authenticated by a node
   * token are refused with UNAVAILABLE and that reason, and open ones end at the next tick.
   * Certificate-authenticated calls are not affected.
   */
  readonly tokensUnconfirmed?: () => string | undefined;
  /**
   * Open streams allowed per node id (Envoy opens one per secret name and provider; Kuma counted
   * about 2,000 for a large proxy). Beyond it: RESOURCE_EXHAUSTED. Default 20,000.
   */
  readonly maxStreamsPerNode?: number;
}

export interface SdsStats {
  streams: number;
  responses: number;
  nacks: number;
  staleDropped: number;
  serializationErrors: number;
  rejectedStreams: number;
}

interface StreamCtx {
  readonly call: grpc.ServerDuplexStream<SdsRequest, unknown>;
  readonly caller: AuthenticatedCaller;
  readonly state: SdsStreamState;
  queue: Promise<void>;
  closed: boolean;
}

type ServiceError = Partial<grpc.StatusObject> & Error;
const statusError = (code: grpc.status, details: string): ServiceError =>
  Object.assign(new Error(details), { code, details });

export class SdsServer {
  readonly catalog: SecretCatalog;
  readonly #opts: SdsServerOptions;
  readonly #log: SdsLogger;
  readonly #streams = new Set<StreamCtx>();
  readonly #byNode = new Map<string, Set<StreamCtx>>();
  readonly #stats: SdsStats = { streams: 0, responses: 0, nacks: 0, staleDropped: 0, serializationErrors: 0, rejectedStreams: 0 };
  #unsubscribe: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> = Promise.resolve();
  readonly #encoder: ResponseEncoder;

  constructor(opts: SdsServerOptions) {
    this.#opts = opts;
    this.#log = opts.logger ?? quiet;
    this.#encoder = new ResponseEncoder(opts.controlPlaneId);
    this.catalog = new SecretCatalog(opts.source, { clock: opts.clock, ...(opts.random ? { random: opts.random } : {}) });
    this.#unsubscribe.push(opts.source.subscribe((e) => this.#onSourceEvent(e)));
    if (opts.auth.tokens)
      this.#unsubscribe.push(opts.auth.tokens.onRevoke((hash, nodeId) => this.#onRevoke(hash, nodeId)));
  }

  /** The grpc-js handlers, keyed as the service definition expects. */
  get implementation(): grpc.UntypedServiceImplementation {
    return {
      StreamSecrets: (call: grpc.ServerDuplexStream<SdsRequest, unknown>) => this.#stream(call),
      FetchSecrets: (call: grpc.ServerUnaryCall<SdsRequest, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        void this.#fetch(call, cb),
      DeltaSecrets: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
        call.emit('error', statusError(grpc.status.UNIMPLEMENTED, 'DeltaSecrets is not implemented; use StreamSecrets'));
      },
    };
  }

  /** Add the service to a grpc-js server (TCP+TLS and/or UDS listeners: sds-listen.ts). */
  register(server: grpc.Server): void {
    server.addService(sdsServiceDefinition(), this.implementation);
  }

  /** Check for due rotations and expired node tokens every `rotationCheckMs`. */
  start(): void {
    this.#timer ??= setInterval(() => void this.tick(), this.#opts.rotationCheckMs ?? 1000);
    this.#timer.unref();
  }

  /**
   * End streams whose node token or certificate has expired, or whose token cannot be confirmed
   * now (revocation ends them at once, #onRevoke), then
   * re-issue due (and tainted) leaves and push them. Resolves when pushes are queued and sent.
   */
  tick(tainted: ReadonlySet<string> = new Set()): Promise<void> {
    this.#ticking = this.#ticking.then(async () => {
      this.#endExpired();
      const changed = await this.catalog.rotateDue(tainted, (n) => (this.#byNode.get(n)?.size ?? 0) > 0);
      await Promise.all([...changed].flatMap((n) => [...(this.#byNode.get(n) ?? [])].map((ctx) => this.#enqueuePush(ctx))));
    });
    return this.#ticking;
  }

  stats(): Readonly<SdsStats> {
    return { ...this.#stats, streams: this.#streams.size };
  }

  /** Stop timers and end every stream (UNAVAILABLE: Envoy reconnects elsewhere). */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe = [];
    for (const ctx of [...this.#streams]) this.#fail(ctx, SHUTTING_DOWN.code, SHUTTING_DOWN.details);
  }

  // ---- StreamSecrets ----------------------------------------------------------------------

  #stream(call: grpc.ServerDuplexStream<SdsRequest, unknown>): void {
    const caller = authenticateCall(call, this.#opts.auth);
    if (!caller.ok) {
      this.#stats.rejectedStreams++;
      this.#log.warn({ reason: caller.reason, peer: call.getPeer() }, 'sds stream rejected: unauthenticated');
      call.emit('error', statusError(grpc.status.UNAUTHENTICATED, INVALID_CREDENTIALS));
      return;
    }
    const refused = unconfirmed(caller, this.#opts.tokensUnconfirmed);
    if (refused !== undefined) {
      this.#stats.rejectedStreams++;
      this.#log.warn({ node: caller.nodeId, reason: refused }, 'sds stream refused: node token cannot be confirmed');
      call.emit('error', statusError(grpc.status.UNAVAILABLE, refused));
      return;
    }
    let set = this.#byNode.get(caller.nodeId);
    if ((set?.size ?? 0) >= (this.#opts.maxStreamsPerNode ?? 20_000)) {
      this.#stats.rejectedStreams++;
      this.#log.warn({ node: caller.nodeId }, 'sds stream rejected: too many streams for this node');
      call.emit('error', statusError(grpc.status.RESOURCE_EXHAUSTED, 'too many open secret streams for this node'));
      return;
    }
    const ctx: StreamCtx = { call, caller, state: newStreamState(caller.nodeId), queue: Promise.resolve(), closed: false };
    this.#streams.add(ctx);
    if (!set) this.#byNode.set(caller.nodeId, (set = new Set()));
    set.add(ctx);
    this.#opts.hooks?.streamOpened?.();
    call.on('data', (req: SdsRequest) => this.#enqueue(ctx, () => this.#onRequest(ctx, req)));
    call.on('end', () => {
      this.#drop(ctx);
      call.end();
    });
    call.on('cancelled', () => this.#drop(ctx));
    call.on('error', () => this.#drop(ctx));
  }

  async #onRequest(ctx: StreamCtx, req: SdsRequest): Promise<void> {
    const { state } = ctx;
    if (req.type_url && req.type_url !== TYPE_URL.secret)
      return this.#fail(ctx, grpc.status.INVALID_ARGUMENT, `unsupported type_url on the secret service`);
    if (!state.initialized && req.node?.id !== state.authenticatedNodeId) {
      this.#log.warn({ authenticated: state.authenticatedNodeId, claimed: req.node?.id }, 'sds node id mismatch');
      return this.#fail(ctx, grpc.status.PERMISSION_DENIED, 'node id does not match the node credentials');
    }
    const verdict = applyRequest(state, req);
    const nodeId = state.authenticatedNodeId;
    switch (verdict.kind) {
      case 'stale':
        this.#stats.staleDropped++;
        return;
      case 'nack':
        this.#stats.nacks++;
        this.#opts.hooks?.nack?.();
        this.#log.warn(
          { node: nodeId, nonce: req.response_nonce, version: req.version_info, error: verdict.message.slice(0, 512) },
          'sds update rejected by envoy (NACK); not resending',
        );
        break;
      case 'ack':
        if (verdict.removed.length) this.#log.debug({ node: nodeId, removed: verdict.removed }, 'sds unsubscribe');
        break;
      case 'init':
        this.#log.debug({ node: nodeId, names: verdict.send, version: req.version_info }, 'sds stream opened');
        break;
    }
    for (const name of verdict.send)
      if (!this.catalog.entitled(nodeId, name))
        // SPIRE-style: fail the stream. The message repeats only what the caller asked for.
        return this.#fail(ctx, grpc.status.INVALID_ARGUMENT, `secret ${JSON.stringify(name)} is not available to this node`);
    await this.#send(ctx, verdict.send, true);
  }

  /** Re-check every subscribed name; send those whose content differs from what was sent. */
  #enqueuePush(ctx: StreamCtx): Promise<void> {
    return this.#enqueue(ctx, () => this.#send(ctx, [...ctx.state.subscribed], false));
  }

  async #send(ctx: StreamCtx, names: readonly string[], force: boolean): Promise<void> {
    if (ctx.closed || names.length === 0) return;
    const nodeId = ctx.state.authenticatedNodeId;
    const out: BuiltSecret[] = [];
    for (const name of new Set(names)) {
      let built: BuiltSecret | undefined;
      try {
        built = await this.catalog.secret(nodeId, name);
      } catch (e) {
        if (!(e instanceof SecretUnavailable)) throw e;
        this.#log.warn({ node: nodeId, name, reasons: e.reasons }, 'sds secret unavailable');
        // On a push the old secret stays in place; a first answer cannot be given.
        if (force) return this.#fail(ctx, grpc.status.UNAVAILABLE, `secret ${JSON.stringify(name)} is temporarily unavailable`);
        continue;
      }
      // Not there yet (e.g. no roots): remembered as subscribed, answered when it appears.
      if (!built) continue;
      if (!force && ctx.state.sent.get(name) === built.digest) continue;
      out.push(built);
    }
    if (out.length === 0 || ctx.closed) return;
    const version = versionOf(out);
    const nonce = randomBytes(16).toString('hex');
    // Encode first: a throw inside call.write would kill the stream.
    // The bytes are written as they are (see sdsServiceDefinition).
    let bytes: Buffer;
    try {
      bytes = this.#encoder.encode(out, version, nonce);
    } catch (e) {
      this.#stats.serializationErrors++;
      this.#log.warn({ node: nodeId, error: (e as Error).message }, 'sds response failed to serialize; not sent');
      return;
    }
    ctx.state.lastNonceSent = nonce;
    ctx.state.lastVersionSent = version;
    for (const b of out) ctx.state.sent.set(b.name, b.digest);
    this.#stats.responses++;
    const pushed = this.#opts.hooks?.pushed;
    if (pushed) for (const b of out) pushed(b.name === 'default' || b.name === 'ROOTCA' || b.name === 'ALL' ? b.name : 'identity');
    ctx.call.write(bytes);
  }

  #enqueue(ctx: StreamCtx, fn: () => Promise<void>): Promise<void> {
    ctx.queue = ctx.queue.then(() => (ctx.closed ? undefined : fn())).catch((e: unknown) => {
      this.#log.warn({ node: ctx.state.authenticatedNodeId, error: (e as Error).message }, 'sds stream handler failed');
      this.#fail(ctx, grpc.status.INTERNAL, 'internal error');
    });
    return ctx.queue;
  }

  #fail(ctx: StreamCtx, code: grpc.status, details: string): void {
    if (ctx.closed) return;
    this.#drop(ctx);
    ctx.call.emit('error', statusError(code, details));
  }

  #drop(ctx: StreamCtx): void {
    if (ctx.closed) return;
    ctx.closed = true;
    this.#streams.delete(ctx);
    this.#opts.hooks?.streamClosed?.();
    const set = this.#byNode.get(ctx.state.authenticatedNodeId);
    set?.delete(ctx);
    if (set?.size === 0) this.#byNode.delete(ctx.state.authenticatedNodeId);
  }

  // ---- events -----------------------------------------------------------------------------

  #onSourceEvent(e: SecretSourceEvent): void {
    switch (e.kind) {
      case 'bundles':
        this.catalog.bundlesChanged();
        for (const ctx of this.#streams) void this.#enqueuePush(ctx);
        // Leaves whose re-issue waited for these roots go out now.
        void this.tick();
        return;
      case 'registrations':
        this.catalog.pruneRegistrations();
        for (const ctx of [...this.#streams]) {
          const lost = [...ctx.state.subscribed].find((n) => !this.catalog.entitled(ctx.state.authenticatedNodeId, n));
          if (lost !== undefined)
            this.#fail(ctx, grpc.status.INVALID_ARGUMENT, `secret ${JSON.stringify(lost)} is not available to this node`);
          else void this.#enqueuePush(ctx);
        }
        return;
      case 'taint':
        void this.tick(new Set(e.authorityIds));
        return;
    }
  }

  #endExpired(): void {
    for (const ctx of [...this.#streams]) {
      const end = lapsed(ctx.caller, this.#opts.auth, this.#opts.tokensUnconfirmed);
      if (!end) continue;
      if (end.why === 'expired') this.#log.warn({ node: ctx.state.authenticatedNodeId, via: ctx.caller.via }, `sds stream ended: node ${ctx.caller.via} expired`);
      else this.#log.warn({ node: ctx.state.authenticatedNodeId, reason: end.details }, 'sds stream ended: node token cannot be confirmed');
      this.#fail(ctx, end.code, end.details);
    }
  }

  #onRevoke(tokenHash: string, nodeId: string): void {
    for (const ctx of [...(this.#byNode.get(nodeId) ?? [])]) {
      const end = revokedBy(ctx.caller, tokenHash);
      if (end) this.#fail(ctx, end.code, end.details);
    }
    if (!this.#byNode.has(nodeId)) this.catalog.forgetNode(nodeId);
  }

  // ---- FetchSecrets -----------------------------------------------------------------------

  async #fetch(call: grpc.ServerUnaryCall<SdsRequest, unknown>, cb: grpc.sendUnaryData<unknown>): Promise<void> {
    const caller = authenticateCall(call, this.#opts.auth);
    if (!caller.ok) return cb(statusError(grpc.status.UNAUTHENTICATED, INVALID_CREDENTIALS));
    const refused = unconfirmed(caller, this.#opts.tokensUnconfirmed);
    if (refused !== undefined) return cb(statusError(grpc.status.UNAVAILABLE, refused));
    const req = call.request;
    if (req.node?.id !== caller.nodeId)
      return cb(statusError(grpc.status.PERMISSION_DENIED, 'node id does not match the node credentials'));
    if (req.type_url && req.type_url !== TYPE_URL.secret)
      return cb(statusError(grpc.status.INVALID_ARGUMENT, 'unsupported type_url on the secret service'));
    const names = [...new Set(req.resource_names ?? [])];
    const out: BuiltSecret[] = [];
    for (const name of names) {
      if (!this.catalog.entitled(caller.nodeId, name))
        return cb(statusError(grpc.status.INVALID_ARGUMENT, `secret ${JSON.stringify(name)} is not available to this node`));
      try {
        const b = await this.catalog.secret(caller.nodeId, name);
        if (!b) return cb(statusError(grpc.status.UNAVAILABLE, `secret ${JSON.stringify(name)} is temporarily unavailable`));
        out.push(b);
      } catch {
        return cb(statusError(grpc.status.UNAVAILABLE, `secret ${JSON.stringify(name)} is temporarily unavailable`));
      }
    }
    // Unary: no nonce (xds_protocol REST semantics).
    cb(null, { version_info: versionOf(out), resources: out.map((b) => b.any), type_url: TYPE_URL.secret });
  }
}

/**
 * The SDS service definition with a StreamSecrets response serializer that passes bytes through:
 * responses are serialized once, inside a try, before they are written.
 */
let sdsDefinition: grpc.ServiceDefinition | undefined;
export function sdsServiceDefinition(): grpc.ServiceDefinition {
  if (sdsDefinition) return sdsDefinition;
  const base = envoyProtos().SecretDiscoveryService;
  const stream = base.StreamSecrets!;
  sdsDefinition = {
    ...base,
    StreamSecrets: {
      ...stream,
      responseSerialize: (v: unknown) => (Buffer.isBuffer(v) ? v : stream.responseSerialize(v)),
    },
  };
  return sdsDefinition;
}

/** Opaque version: a digest of the names and contents sent, so it changes exactly with content. */
export function versionOf(secrets: readonly BuiltSecret[]): string {
  const h = createHash('sha256');
  for (const s of secrets) h.update(s.name).update('\0').update(s.digest).update('\0');
  return h.digest('base64url').slice(0, 16);
}
