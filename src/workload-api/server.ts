/**
 * The Workload API (proto/wimse/workload/v1/workload.proto): applications get a WIT for a key
 * they hold, and watch the trust bundle. Callers authenticate as SDS callers do; each gets only
 * the identities its registration entries allow.
 *
 * A WatchBundles stream lives as long as the credentials it was opened with, by the rules SDS
 * streams follow (src/caller-streams.ts): a revoked token ends it at once, an expired token or
 * certificate at the next check (every `streamCheckMs`), both with UNAUTHENTICATED; while node tokens cannot be
 * confirmed (a stale cluster node) token streams end with UNAVAILABLE and the reason, and
 * certificate streams stay; `close()` ends every stream with UNAVAILABLE. The SDK's bundle watch
 * reopens an ended stream with backoff (src/sdk/bundle-watch.ts).
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Clock } from '../identity/clock.ts';
import type { PublicJwk } from '../identity/jwk.ts';
import { toSpiffeBundleMap, type TrustBundleSet } from '../identity/trust-bundle.ts';
import { ReplayCache } from '../authn/replay.ts';
import type { CallerAuthOptions } from '../identity/node-tokens.ts';
import { authenticateCall, INVALID_CREDENTIALS, lapsed, revokedBy, SHUTTING_DOWN, unconfirmed, type AuthenticatedCaller, type StreamEnd } from '../caller-streams.ts';
import type { Logger } from '../log.ts';
import { ProofError, verifyProof } from './proof.ts';

const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

let definition: grpc.ServiceDefinition | undefined;
export function workloadServiceDefinition(): grpc.ServiceDefinition {
  if (!definition) {
    const pkg = protoLoader.loadSync('wimse/workload/v1/workload.proto', { includeDirs: [PROTO_DIR], keepCase: true, longs: Number, defaults: true });
    definition = pkg['wimse.workload.v1.WorkloadIdentity'] as unknown as grpc.ServiceDefinition;
  }
  return definition;
}
/** For clients (the SDK, tests). */
export function workloadClientConstructor(): grpc.ServiceClientConstructor {
  return grpc.makeGenericClientConstructor(workloadServiceDefinition(), 'WorkloadIdentity');
}

/** Who is calling, as established from the call's metadata or TLS peer (src/caller-streams.ts). */
export type WorkloadCaller = AuthenticatedCaller;

/** Entries of the proof replay cache when none is given (`workloadApi.replayCacheSize`'s default). */
export const DEFAULT_PROOF_REPLAY_ENTRIES = 100_000;

export interface WorkloadApiOptions {
  /** How callers authenticate: as on SDS (a node token, or a TLS client certificate where mapped). */
  readonly auth: CallerAuthOptions;
  /**
   * Why node tokens cannot be confirmed right now (a stale cluster node), or undefined. While it
   * gives a reason, token-authenticated calls get UNAVAILABLE with it, and open token streams end
   * at the next check. Certificate-authenticated calls are not affected.
   */
  readonly tokensUnconfirmed?: () => string | undefined;
  /** May this caller receive this identity? */
  entitled(caller: WorkloadCaller, workloadId: string): boolean;
  mintWit(sub: string, jwk: PublicJwk): Promise<{ token: string; exp: number }>;
  bundles(): TrustBundleSet;
  /** Subscribe to bundle changes; returns an unsubscribe function. */
  onBundlesChange(listener: () => void): () => void;
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * The replay cache of proof `jti`s; a full one refuses new proofs (UNAVAILABLE
   * `proof.replay_cache_full`). The node sizes it from `workloadApi.replayCacheSize` and exports
   * its stats. Default: a cache of DEFAULT_PROOF_REPLAY_ENTRIES.
   */
  readonly replay?: ReplayCache;
  /** How often `start()` ends streams whose token expired or cannot be confirmed. Default 1 s. */
  readonly streamCheckMs?: number;
}

interface WatchCtx {
  readonly call: grpc.ServerWritableStream<unknown, unknown>;
  readonly caller: WorkloadCaller;
  unsubscribe: () => void;
  closed: boolean;
}

const statusError = (code: grpc.status, details: string): grpc.ServiceError =>
  Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() }) as grpc.ServiceError;

export class WorkloadApiServer {
  readonly replay: ReplayCache;
  readonly #opts: WorkloadApiOptions;
  readonly #log: Logger;
  readonly #streams = new Set<WatchCtx>();
  #unsubscribe: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: WorkloadApiOptions) {
    this.#opts = opts;
    this.#log = opts.logger;
    this.replay = opts.replay ?? new ReplayCache({ maxEntries: DEFAULT_PROOF_REPLAY_ENTRIES });
    if (opts.auth.tokens) this.#unsubscribe.push(opts.auth.tokens.onRevoke((hash) => this.#onRevoke(hash)));
  }

  /** The grpc-js handlers, keyed as the service definition expects. */
  get implementation(): grpc.UntypedServiceImplementation {
    return {
      FetchWIT: (call: grpc.ServerUnaryCall<{ workload_id: string; proof: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => this.#fetchWit(call, cb),
      WatchBundles: (call: grpc.ServerWritableStream<unknown, unknown>) => this.#watch(call),
    };
  }

  register(server: grpc.Server): void {
    server.addService(workloadServiceDefinition(), this.implementation);
  }

  /** Check open streams every `streamCheckMs` (expired tokens, tokens that cannot be confirmed). */
  start(): void {
    if (this.#closed) return;
    this.#timer ??= setInterval(() => this.tick(), this.#opts.streamCheckMs ?? 1000);
    this.#timer.unref();
  }

  /** End the streams whose token or certificate has expired, or whose token cannot be confirmed now (revocation ends them at once). */
  tick(): void {
    for (const ctx of [...this.#streams]) {
      const end = lapsed(ctx.caller, this.#opts.auth, this.#opts.tokensUnconfirmed);
      if (end) this.#end(ctx, end);
    }
  }

  /** Open WatchBundles streams. */
  stats(): { streams: number } {
    return { streams: this.#streams.size };
  }

  /** Stop the checks and end every stream (UNAVAILABLE: the SDK reconnects, to another node if there is one). */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe = [];
    for (const ctx of [...this.#streams]) this.#end(ctx, SHUTTING_DOWN);
  }

  /** The caller of a call, or a status error (UNAUTHENTICATED, or UNAVAILABLE while its token cannot be confirmed). */
  #authenticate(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): WorkloadCaller {
    const caller = authenticateCall(call, this.#opts.auth);
    if (!caller.ok) throw statusError(grpc.status.UNAUTHENTICATED, INVALID_CREDENTIALS);
    const refused = unconfirmed(caller, this.#opts.tokensUnconfirmed);
    if (refused !== undefined) throw statusError(grpc.status.UNAVAILABLE, refused);
    return caller;
  }

  #fetchWit(call: grpc.ServerUnaryCall<{ workload_id: string; proof: string }, unknown>, cb: grpc.sendUnaryData<unknown>): void {
    const ports = this.#opts;
    (async () => {
      const caller = this.#authenticate(call);
      const id = call.request.workload_id;
      // The same answer for "not a valid identifier" and "not yours": nothing about other
      // workloads leaks.
      if (!ports.entitled(caller, id)) throw statusError(grpc.status.PERMISSION_DENIED, 'caller is not entitled to the requested identity');
      const nowSec = Math.floor(ports.clock.now() / 1000);
      let jwk: PublicJwk;
      try {
        const proof = await verifyProof(call.request.proof, { nowSec, replay: this.replay });
        if (proof.sub !== id) throw new ProofError('proof.sub', 'the proof names another workload');
        jwk = proof.jwk;
      } catch (e) {
        if (e instanceof ProofError)
          throw statusError(e.code === 'proof.replay_cache_full' ? grpc.status.UNAVAILABLE : grpc.status.INVALID_ARGUMENT, `${e.code}: ${e.message}`);
        throw e;
      }
      const wit = await ports.mintWit(id, jwk);
      this.#log.info({ node: caller.nodeId, sub: id, exp: wit.exp }, 'WIT issued');
      const life = wit.exp - nowSec;
      return { wit: wit.token, expires_at: wit.exp, refresh_at: nowSec + Math.floor(life * (0.5 + Math.random() * 0.1)) };
    })().then(
      (res) => cb(null, res),
      (err: unknown) => {
        if ((err as grpc.ServiceError).code !== undefined && (err as grpc.ServiceError).details !== undefined) cb(err as grpc.ServiceError);
        else {
          this.#log.error({ err: (err as Error).message }, 'FetchWIT failed');
          cb(statusError(grpc.status.INTERNAL, 'internal error'));
        }
      },
    );
  }

  #watch(call: grpc.ServerWritableStream<unknown, unknown>): void {
    let caller: WorkloadCaller;
    try {
      if (this.#closed) throw statusError(SHUTTING_DOWN.code, SHUTTING_DOWN.details);
      caller = this.#authenticate(call);
    } catch (err) {
      call.emit('error', err);
      return;
    }
    const ctx: WatchCtx = { call, caller, unsubscribe: () => {}, closed: false };
    let last = '';
    const send = () => {
      if (ctx.closed) return;
      const text = JSON.stringify(toSpiffeBundleMap(this.#opts.bundles()));
      if (text === last) return;
      last = text;
      call.write({ bundle_map_json: text, version: createHash('sha256').update(text).digest('base64url').slice(0, 16) });
    };
    this.#streams.add(ctx);
    ctx.unsubscribe = this.#opts.onBundlesChange(send);
    const drop = () => this.#drop(ctx);
    call.on('cancelled', drop);
    call.on('close', drop);
    call.on('error', drop);
    send();
  }

  #end(ctx: WatchCtx, end: StreamEnd): void {
    if (ctx.closed) return;
    this.#drop(ctx);
    if (end.why !== 'closing')
      this.#log.warn({ node: ctx.caller.nodeId, reason: end.details }, `bundle stream ended: node token ${end.why === 'unconfirmed' ? 'cannot be confirmed' : end.why}`);
    ctx.call.emit('error', statusError(end.code, end.details));
  }

  #drop(ctx: WatchCtx): void {
    if (ctx.closed) return;
    ctx.closed = true;
    this.#streams.delete(ctx);
    ctx.unsubscribe();
  }

  #onRevoke(tokenHash: string): void {
    for (const ctx of [...this.#streams]) {
      const end = revokedBy(ctx.caller, tokenHash);
      if (end) this.#end(ctx, end);
    }
  }
}
