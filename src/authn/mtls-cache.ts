/**
 * A bounded cache of verified mTLS peer chains, keyed by the exact chain PEM.
 *
 * A workload presents the same certificate chain on every connection for the certificate's whole
 * lifetime, and a PEP that re-verifies it (Envoy's `source.certificate`, the SDK over TLS) would
 * otherwise parse every certificate and check every signature on every request. An entry is
 * returned only while every certificate of the verified path (the chain presented and the anchor
 * that vouched for it) is valid at `now` (RFC 5280 §6.1.3 (a)(2)), and only if the trust domain's
 * bundle is still the very object that anchored it: a bundle update (a root withdrawn or added)
 * replaces the object, so a chain under a revoked root stops matching at once, as in WitCache.
 * Least recently used entries leave first once `maxEntries` or `maxBytes` (PEM characters) is hit.
 *
 * Also holds the parsed identifiers of proxy-verified principals (`source.principal` without a
 * chain): the URI parse is independent of the bundles, which are consulted on every request.
 */
import type { TrustDomainBundle } from '../identity/trust-bundle.ts';
import type { WorkloadId } from '../identity/workload-id.ts';

export interface VerifiedChain {
  readonly id: WorkloadId;
  /** The bundle object the chain was anchored in. */
  readonly bundle: TrustDomainBundle;
  /** Latest notBefore and earliest notAfter over the verified path, milliseconds since the epoch. */
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
}

export interface MtlsCacheOptions {
  /** Default 1,000 chains. */
  maxEntries?: number;
  /** Total PEM characters held as keys. Default 8 MiB. */
  maxBytes?: number;
}

const MAX_PRINCIPALS = 1_000;

export class MtlsChainCache {
  // Map iteration order is insertion order: re-inserting on a hit keeps it LRU.
  readonly #chains = new Map<string, VerifiedChain>();
  readonly #principals = new Map<string, WorkloadId>();
  readonly maxEntries: number;
  readonly maxBytes: number;
  #bytes = 0;
  hits = 0;
  misses = 0;

  constructor(opts: MtlsCacheOptions = {}) {
    const max = opts.maxEntries ?? 1_000;
    if (!Number.isInteger(max) || max < 1) throw new TypeError('"mtlsCache.maxEntries" must be a positive integer');
    const bytes = opts.maxBytes ?? 8 * 1024 * 1024;
    if (!Number.isInteger(bytes) || bytes < 1) throw new TypeError('"mtlsCache.maxBytes" must be a positive integer');
    this.maxEntries = max;
    this.maxBytes = bytes;
  }

  get size(): number {
    return this.#chains.size;
  }

  /** The verified chain, if still valid at `nowMs` and anchored in the current bundle object. */
  get(pem: string, current: (trustDomain: string) => TrustDomainBundle | undefined, nowMs: number): VerifiedChain | undefined {
    const e = this.#chains.get(pem);
    if (e === undefined) {
      this.misses++;
      return undefined;
    }
    this.#chains.delete(pem);
    if (nowMs < e.notBeforeMs || nowMs > e.notAfterMs || current(e.id.trustDomain) !== e.bundle) {
      this.#bytes -= pem.length;
      this.misses++;
      return undefined;
    }
    this.#chains.set(pem, e);
    this.hits++;
    return e;
  }

  set(pem: string, chain: VerifiedChain): void {
    if (pem.length > this.maxBytes) return;
    if (this.#chains.delete(pem)) this.#bytes -= pem.length;
    while (this.#chains.size >= this.maxEntries || this.#bytes + pem.length > this.maxBytes) {
      const oldest = this.#chains.keys().next().value as string;
      this.#chains.delete(oldest);
      this.#bytes -= oldest.length;
    }
    this.#chains.set(pem, chain);
    this.#bytes += pem.length;
  }

  /** A parsed proxy-verified principal (bundle-independent), or undefined. */
  principal(uri: string): WorkloadId | undefined {
    return this.#principals.get(uri);
  }

  setPrincipal(uri: string, id: WorkloadId): void {
    if (this.#principals.size >= MAX_PRINCIPALS) this.#principals.delete(this.#principals.keys().next().value as string);
    this.#principals.set(uri, id);
  }

  clear(): void {
    this.#chains.clear();
    this.#principals.clear();
    this.#bytes = 0;
  }
}
