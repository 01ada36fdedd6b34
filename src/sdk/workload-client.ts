/**
 * WorkloadClient: flow 2 of the WIMSE architecture from the application's side. It holds the
 * workload's WIT and the private key the WIT is bound to, and keeps both fresh:
 *
 * - a new key pair for every WIT (workload-creds-02 §9.4: SHOULD be regenerated), generated here;
 *   only the public key leaves the process, inside the proof of possession;
 * - renewal at the server's `refresh_at` (or half-life) with jitter, well before expiry;
 * - on failure, retries with exponential backoff while the current WIT stays in use until it
 *   expires (a WIT past `exp` is never handed out: the key MUST NOT be used after expiry);
 * - the trust bundle set, watched over WatchBundles, for verifying peers and signed responses.
 */
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type * as grpc from '@grpc/grpc-js';
import { systemClock, type Clock, nowSeconds } from '../identity/clock.ts';
import type { TrustBundleSet } from '../identity/trust-bundle.ts';
import { parseWorkloadId } from '../identity/workload-id.ts';
import type { PublicJwk } from '../identity/jwk.ts';
import { BundleWatch } from './bundle-watch.ts';
import { callMetadata, checkTokenOptions, openChannel, type ConnectionOptions, type WorkloadApiStub } from './connection.ts';
import { WorkloadApiError, fromGrpcError } from './errors.ts';
import { generateWorkloadKey, sameKey, WORKLOAD_KEY_ALGS, type WorkloadKeyAlg, type WorkloadKeyPair } from './keys.ts';
import { Listeners } from './listeners.ts';
import { wimseFetch, type WimseFetchOptions, type WimseResponse } from './fetch.ts';
import { signRequestHttpSig, type HttpSigOptions, type OutgoingRequest, type SignedRequestContext } from './outgoing.ts';
import { signRequestWpt, type WptOptions } from './sign-wpt.ts';
import { createWitRequestProof } from './proof.ts';
import { backoffDelay, planRenewal } from './renewal.ts';
import { systemTimers, type Timers } from './timers.ts';

export interface WorkloadCredential {
  readonly workloadId: string;
  /** The WIT, compact, exactly as issued (send it as `Workload-Identity-Token`). */
  readonly wit: string;
  /** Seconds since the epoch. */
  readonly expiresAt: number;
  /** The server's suggested refresh time, seconds since the epoch. */
  readonly refreshAt: number;
  /** The key pair the WIT's `cnf.jwk` names; the private half stays in this process. */
  readonly key: WorkloadKeyPair;
}

export interface WorkloadClientOptions extends ConnectionOptions {
  /** The identity to fetch; the node must entitle this process to it. */
  workloadId: string;
  /** Algorithm of the generated keys. Default ES256. */
  keyAlg?: WorkloadKeyAlg;
  clock?: Clock;
  timers?: Timers;
  /** Random source in [0, 1) for jitter. */
  random?: () => number;
  /** Watch the trust bundles (default true). */
  watchBundles?: boolean;
  /** Per-call timeout in real milliseconds. Default 10 000. */
  callTimeoutMs?: number;
  /** Backoff after failures: first delay and cap, milliseconds. Defaults 1 000 and 30 000. */
  retry?: { baseMs?: number; maxMs?: number };
  onUpdate?: (c: WorkloadCredential) => void;
  onError?: (e: Error) => void;
}

export interface WorkloadClientEvents extends Record<string, unknown> {
  /** A new WIT (and key) is in use. */
  update: WorkloadCredential;
  /** A renewal or bundle watch failed; the client keeps retrying. */
  error: Error;
  /** A new trust bundle set arrived. */
  bundles: TrustBundleSet;
}

export class WorkloadClient {
  readonly workloadId: string;
  readonly #opts: WorkloadClientOptions;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #random: () => number;
  readonly #events = new Listeners<WorkloadClientEvents>();
  #stub: WorkloadApiStub | undefined;
  #bundleWatch: BundleWatch | undefined;
  #current: WorkloadCredential | undefined;
  #inflight: Promise<WorkloadCredential> | undefined;
  #timer: unknown;
  #failures = 0;
  #closed = false;

  constructor(opts: WorkloadClientOptions) {
    if (typeof opts !== 'object' || opts === null) throw new TypeError('options must be an object');
    if (!parseWorkloadId(opts.workloadId).ok) throw new TypeError('"workloadId" must be a workload identifier');
    if (opts.keyAlg !== undefined && !WORKLOAD_KEY_ALGS.includes(opts.keyAlg)) throw new TypeError(`"keyAlg" must be one of ${WORKLOAD_KEY_ALGS.join(', ')}`);
    if (opts.callTimeoutMs !== undefined && (!Number.isInteger(opts.callTimeoutMs) || opts.callTimeoutMs < 1)) throw new TypeError('"callTimeoutMs" must be a positive integer');
    checkTokenOptions(opts);
    this.workloadId = opts.workloadId;
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#timers = opts.timers ?? systemTimers;
    this.#random = opts.random ?? Math.random;
    if (opts.onUpdate) this.#events.on('update', opts.onUpdate);
    if (opts.onError) this.#events.on('error', opts.onError);
  }

  /** Connect, fetch the first WIT and start watching bundles. Rejects with WorkloadApiError. */
  async start(): Promise<WorkloadCredential> {
    if (this.#closed) throw new WorkloadApiError('workload_api.closed', 'the client is closed');
    this.#stub ??= await openChannel(this.#opts);
    if ((this.#opts.watchBundles ?? true) && !this.#bundleWatch) {
      this.#bundleWatch = new BundleWatch({
        open: async () => this.#stub!.WatchBundles({}, await callMetadata(this.#opts)),
        timers: this.#timers,
        random: this.#random,
        ...(this.#opts.retry ? { retry: this.#opts.retry } : {}),
        onBundles: (b) => this.#events.emit('bundles', b),
        onError: (e) => this.#events.emit('error', e),
      });
      this.#bundleWatch.start();
    }
    return this.renewNow();
  }

  on<K extends keyof WorkloadClientEvents>(event: K, fn: (v: WorkloadClientEvents[K]) => void): () => void {
    return this.#events.on(event, fn);
  }

  /** The WIT in use, if it has not expired. */
  get credential(): WorkloadCredential | undefined {
    const c = this.#current;
    return c && c.expiresAt > nowSeconds(this.#clock) ? c : undefined;
  }

  /** The WIT in use; throws WorkloadApiError when there is none or it expired. */
  current(): WorkloadCredential {
    const c = this.credential;
    if (!c) throw new WorkloadApiError('workload_api.unavailable', 'no valid WIT (not started, or renewal failed until expiry)');
    return c;
  }

  /** The trust bundles as last received (empty until the first update). */
  bundles(): TrustBundleSet {
    return this.#bundleWatch?.current ?? new Map();
  }

  /** Resolves with the bundles once the first set has arrived. */
  waitForBundles(): Promise<TrustBundleSet> {
    if (!this.#bundleWatch) return Promise.reject(new TypeError('bundles are not watched (watchBundles: false, or not started)'));
    return this.#bundleWatch.ready;
  }

  /** Fetch a new WIT now (with a new key); concurrent callers share one fetch. */
  renewNow(): Promise<WorkloadCredential> {
    if (this.#closed) return Promise.reject(new WorkloadApiError('workload_api.closed', 'the client is closed'));
    if (!this.#stub) return Promise.reject(new TypeError('call start() first'));
    this.#inflight ??= this.#fetch().finally(() => (this.#inflight = undefined));
    return this.#inflight;
  }

  /** Add the WIT and `Authorization: WPT <wpt>` to `req` (draft-ietf-wimse-wpt-02). */
  signRequestWpt(req: OutgoingRequest, opts: WptOptions = {}): void {
    signRequestWpt(this, req, { clock: this.#clock, ...opts });
  }

  /** Add the WIT and a WIMSE HTTP message signature to `req` (http-signature-07). */
  signRequestHttpSig(req: OutgoingRequest, opts: HttpSigOptions = {}): SignedRequestContext {
    return signRequestHttpSig(this, req, { clock: this.#clock, ...opts });
  }

  /** fetch() with this workload's credentials; see `wimseFetch`. */
  fetch(url: string | URL, init: RequestInit | undefined, opts: WimseFetchOptions): Promise<WimseResponse> {
    return wimseFetch(this, url, init, { clock: this.#clock, ...opts });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) this.#timers.clear(this.#timer);
    this.#timer = undefined;
    this.#bundleWatch?.stop();
    this.#stub?.close();
    this.#current = undefined;
    this.#events.clear();
  }

  async #fetch(): Promise<WorkloadCredential> {
    try {
      const cred = await this.#fetchOnce();
      if (this.#closed) throw new WorkloadApiError('workload_api.closed', 'the client is closed');
      this.#current = cred;
      this.#failures = 0;
      this.#schedule(planRenewal(this.#clock.now(), cred.expiresAt, cred.refreshAt, this.#random()).renewAtMs - this.#clock.now());
      this.#events.emit('update', cred);
      return cred;
    } catch (e) {
      const err = fromGrpcError(e);
      if (!this.#closed) {
        this.#events.emit('error', err);
        // Keep trying in the background, whether or not the current WIT is still valid; the
        // first failure of start() is also reported to its caller.
        this.#schedule(backoffDelay(this.#failures++, this.#random(), this.#opts.retry?.baseMs, this.#opts.retry?.maxMs));
      }
      throw err;
    }
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) this.#timers.clear(this.#timer);
    this.#timer = this.#timers.set(() => {
      this.#timer = undefined;
      this.renewNow().catch(() => undefined); // reported through 'error'
    }, Math.max(0, delayMs));
  }

  async #fetchOnce(): Promise<WorkloadCredential> {
    // §9.4: a fresh key for every WIT. It is dropped if the fetch fails.
    const key = generateWorkloadKey(this.#opts.keyAlg ?? 'ES256');
    const proof = createWitRequestProof(key, this.workloadId, nowSeconds(this.#clock));
    const md = await callMetadata(this.#opts);
    const res = await new Promise<unknown>((resolve, reject) => {
      // Transport deadlines are real time, not the injected clock.
      const deadline = new Date(Date.now() + (this.#opts.callTimeoutMs ?? 10_000));
      this.#stub!.FetchWIT({ workload_id: this.workloadId, proof }, md, { deadline }, (err: grpc.ServiceError | null, r?: unknown) => (err ? reject(err) : resolve(r)));
    });
    return this.#accept(res, key);
  }

  /** Check the answer before using it: a WIT for us, bound to our new key, not yet expired. */
  #accept(res: unknown, key: WorkloadKeyPair): WorkloadCredential {
    const bad = (why: string) => new WorkloadApiError('workload_api.bad_response', `the Workload API returned an unusable WIT: ${why}`);
    const r = res as { wit?: unknown; expires_at?: unknown; refresh_at?: unknown };
    if (typeof r?.wit !== 'string' || r.wit === '') throw bad('no WIT');
    let header: ReturnType<typeof decodeProtectedHeader>;
    let claims: ReturnType<typeof decodeJwt>;
    try {
      header = decodeProtectedHeader(r.wit);
      claims = decodeJwt(r.wit);
    } catch {
      throw bad('not a compact JWT');
    }
    if (typeof header.typ !== 'string' || !['wit+jwt', 'application/wit+jwt'].includes(header.typ.toLowerCase())) throw bad('typ is not wit+jwt');
    if (claims.sub !== this.workloadId) throw bad('sub is another workload');
    const cnf = (claims as { cnf?: { jwk?: PublicJwk } }).cnf;
    if (!cnf?.jwk || !sameKey(cnf.jwk, key.publicJwk) || cnf.jwk.alg !== key.alg) throw bad('cnf.jwk is not the key that was sent');
    const exp = typeof claims.exp === 'number' ? claims.exp : Number(r.expires_at);
    if (!Number.isFinite(exp) || exp <= nowSeconds(this.#clock)) throw bad('already expired');
    const refresh = Number(r.refresh_at);
    return Object.freeze({ workloadId: this.workloadId, wit: r.wit, expiresAt: exp, refreshAt: Number.isFinite(refresh) ? refresh : 0, key });
  }
}
