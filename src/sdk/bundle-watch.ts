/**
 * Keeps the current trust bundle set from the Workload API's WatchBundles stream. A malformed
 * update is reported and ignored (the last good set stays); a broken stream, or one the server
 * ended (a revoked or expired node token, a stale cluster node, a node shutting down), is
 * reopened with backoff, with the node token read again; the backoff starts over once a stream
 * answers.
 */
import type * as grpc from '@grpc/grpc-js';
import { parseSpiffeBundleMap, type TrustBundleSet } from '../identity/trust-bundle.ts';
import { fromGrpcError, WorkloadApiError } from './errors.ts';
import { backoffDelay } from './renewal.ts';
import type { Timers } from './timers.ts';

export interface BundleWatchOptions {
  open(): Promise<grpc.ClientReadableStream<unknown>>;
  timers: Timers;
  random: () => number;
  retry?: { baseMs?: number; maxMs?: number };
  onBundles(set: TrustBundleSet): void;
  onError(e: Error): void;
}

export class BundleWatch {
  current: TrustBundleSet | undefined;
  readonly ready: Promise<TrustBundleSet>;
  readonly #opts: BundleWatchOptions;
  #resolveReady!: (s: TrustBundleSet) => void;
  #stream: grpc.ClientReadableStream<unknown> | undefined;
  #timer: unknown;
  #failures = 0;
  #stopped = false;
  #version = '';

  constructor(opts: BundleWatchOptions) {
    this.#opts = opts;
    this.ready = new Promise((resolve) => (this.#resolveReady = resolve));
  }

  start(): void {
    this.#open().catch((e) => this.#retry(e));
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#opts.timers.clear(this.#timer);
    this.#stream?.cancel();
  }

  async #open(): Promise<void> {
    if (this.#stopped) return;
    const stream = await this.#opts.open();
    this.#stream = stream;
    let ended = false;
    const end = (e: unknown) => {
      if (ended) return;
      ended = true;
      this.#retry(e);
    };
    stream.on('data', (msg: { bundle_map_json?: string; version?: string }) => this.#update(msg));
    stream.on('error', end);
    stream.on('end', () => end(new WorkloadApiError('workload_api.unavailable', 'the bundle stream ended')));
  }

  #update(msg: { bundle_map_json?: string; version?: string }): void {
    if (msg.version && msg.version === this.#version) {
      // A reopened stream answers with the bundles already held: it works, so the next break
      // starts the backoff over.
      this.#failures = 0;
      return;
    }
    const parsed = parseSpiffeBundleMap(msg.bundle_map_json ?? '');
    if (!parsed.ok) {
      this.#opts.onError(new WorkloadApiError('workload_api.bad_response', `ignored a malformed bundle update: ${parsed.errors.join('; ')}`));
      return;
    }
    this.#version = msg.version ?? '';
    this.#failures = 0;
    this.current = parsed.value;
    this.#resolveReady(parsed.value);
    this.#opts.onBundles(parsed.value);
  }

  #retry(e: unknown): void {
    if (this.#stopped) return;
    this.#opts.onError(fromGrpcError(e));
    const delay = backoffDelay(this.#failures++, this.#opts.random(), this.#opts.retry?.baseMs, this.#opts.retry?.maxMs);
    this.#timer = this.#opts.timers.set(() => {
      this.#timer = undefined;
      this.#open().catch((err) => this.#retry(err));
    }, delay);
  }
}
