/**
 * The SDS server's shared cache of built secrets, and the leaf rotation schedule.
 *
 * - Bundle secrets (`ROOTCA`, `ALL`) are built once per bundle change and shared by every stream.
 * - Leaves are issued per (node id, workload identifier), checked (sds-leaf-check.ts), and
 *   re-issued at half their lifetime with ±10% jitter, or at once when their signing key is
 *   tainted. `default` and the identifier's own name share one leaf.
 * The trust bundles used to check leaves are the ones currently *served*, so a leaf from a new
 * signing key is refused until its root has been published.
 */
import type { Clock } from '../identity/clock.ts';
import type { TrustBundleSet } from '../identity/trust-bundle.ts';
import type { Checked } from '../identity/result.ts';
import type { IssuedLeaf, SecretSource } from './sds-source.ts';
import { checkLeaf } from './sds-leaf-check.ts';
import {
  SECRET_ALL,
  SECRET_DEFAULT,
  SECRET_ROOTCA,
  rootCaSecret,
  spiffeValidatorSecret,
  tlsCertificateSecret,
  type BuiltSecret,
} from './sds-secrets.ts';

/** Fraction of a leaf's lifetime after which it is re-issued, and the jitter around it. */
export const ROTATE_AT_FRACTION = 0.5;
export const ROTATE_JITTER = 0.1;
/** After a failed re-issue, wait this long before trying again. */
export const REISSUE_RETRY_MS = 5_000;

export class SecretUnavailable extends Error {
  readonly code = 'ERR_SDS_SECRET_UNAVAILABLE' as const;
  constructor(readonly reasons: readonly string[]) {
    super('secret is not available');
  }
}

interface LeafEntry {
  readonly nodeId: string;
  readonly workloadId: string;
  leaf: IssuedLeaf;
  rotateAt: number;
  retryAt: number;
  /** Built per served name (`default` and/or the identifier). */
  readonly built: Map<string, BuiltSecret>;
}

export interface CatalogOptions {
  readonly clock: Clock;
  /** Uniform in [0, 1); drives the rotation jitter. */
  readonly random?: () => number;
}

const leafKey = (nodeId: string, workloadId: string): string => `${nodeId}\u0000${workloadId}`;

export class SecretCatalog {
  readonly #source: SecretSource;
  readonly #clock: Clock;
  readonly #random: () => number;
  #served: TrustBundleSet | undefined;
  #bundleSecrets = new Map<string, Checked<BuiltSecret>>();
  readonly #leaves = new Map<string, LeafEntry>();
  readonly #inflight = new Map<string, Promise<LeafEntry>>();
  issuanceErrors = 0;
  reissued = 0;

  constructor(source: SecretSource, opts: CatalogOptions) {
    this.#source = source;
    this.#clock = opts.clock;
    this.#random = opts.random ?? Math.random;
  }

  /** The bundles currently served (a snapshot taken at the last bundle change). */
  servedBundles(): TrustBundleSet {
    this.#served ??= this.#source.bundles();
    return this.#served;
  }

  /** Take a new bundle snapshot; bundle secrets are rebuilt on next use. */
  bundlesChanged(): void {
    this.#served = this.#source.bundles();
    this.#bundleSecrets.clear();
    // New roots may make a leaf acceptable that was refused before: retry at the next tick.
    for (const e of this.#leaves.values()) e.retryAt = 0;
  }

  /** Whether `nodeId` may receive `name` at all (unknown names are simply not entitled). */
  entitled(nodeId: string, name: string): boolean {
    if (name === SECRET_ROOTCA || name === SECRET_ALL) return true;
    const ids = this.#source.identitiesFor(nodeId);
    return name === SECRET_DEFAULT ? ids.length > 0 : ids.includes(name);
  }

  /** The workload identifier a name stands for, for `nodeId` (after `entitled`). */
  workloadFor(nodeId: string, name: string): string | undefined {
    if (name === SECRET_ROOTCA || name === SECRET_ALL) return undefined;
    const ids = this.#source.identitiesFor(nodeId);
    return name === SECRET_DEFAULT ? ids[0] : ids.includes(name) ? name : undefined;
  }

  /**
   * The secret `name` for `nodeId`: a bundle secret (undefined while there is nothing to serve
   * yet), or a leaf, issued on first use. Throws SecretUnavailable if issuance fails.
   */
  async secret(nodeId: string, name: string): Promise<BuiltSecret | undefined> {
    if (name === SECRET_ROOTCA || name === SECRET_ALL) {
      const b = this.bundleSecret(name);
      return b.ok ? b.value : undefined;
    }
    const workloadId = this.workloadFor(nodeId, name);
    if (!workloadId) throw new SecretUnavailable([`${name}: not registered for this node`]);
    const entry = await this.#leafEntry(nodeId, workloadId);
    let built = entry.built.get(name);
    if (!built) {
      const b = tlsCertificateSecret(name, entry.leaf);
      if (!b.ok) throw new SecretUnavailable(b.errors);
      built = b.value;
      entry.built.set(name, built);
    }
    return built;
  }

  bundleSecret(name: string): Checked<BuiltSecret> {
    let b = this.#bundleSecrets.get(name);
    if (!b) {
      const served = this.servedBundles();
      b = name === SECRET_ROOTCA ? rootCaSecret(name, served.get(this.#source.trustDomain)) : spiffeValidatorSecret(name, served);
      this.#bundleSecrets.set(name, b);
    }
    return b;
  }

  /**
   * Re-issue leaves that are due (past their rotation time) or signed by a tainted key, for
   * nodes that are `active` (have a stream); due leaves of inactive nodes are dropped instead.
   * Returns the node ids whose leaves changed.
   */
  async rotateDue(tainted: ReadonlySet<string>, active: (nodeId: string) => boolean): Promise<Set<string>> {
    const now = this.#clock.now();
    const changed = new Set<string>();
    const due: LeafEntry[] = [];
    for (const [k, e] of this.#leaves) {
      const isTainted = tainted.has(e.leaf.authorityId);
      // A tainted leaf stays due until a re-issue succeeds.
      if (isTainted) e.rotateAt = Math.min(e.rotateAt, now);
      if (now < e.rotateAt || (!isTainted && now < e.retryAt)) continue;
      if (!active(e.nodeId)) this.#leaves.delete(k);
      else due.push(e);
    }
    await Promise.all(
      due.map(async (e) => {
        try {
          const fresh = await this.#issue(e.nodeId, e.workloadId);
          this.#leaves.set(leafKey(e.nodeId, e.workloadId), fresh);
          this.reissued++;
          changed.add(e.nodeId);
        } catch {
          e.retryAt = now + REISSUE_RETRY_MS;
        }
      }),
    );
    return changed;
  }

  /** Forget leaves of identities a node is no longer registered for. */
  pruneRegistrations(): void {
    for (const [k, e] of this.#leaves) if (!this.#source.identitiesFor(e.nodeId).includes(e.workloadId)) this.#leaves.delete(k);
  }

  /** Drop every cached leaf of `nodeId` (e.g. its credentials were revoked). */
  forgetNode(nodeId: string): void {
    for (const [k, e] of this.#leaves) if (e.nodeId === nodeId) this.#leaves.delete(k);
  }

  get leafCount(): number {
    return this.#leaves.size;
  }

  async #leafEntry(nodeId: string, workloadId: string): Promise<LeafEntry> {
    const key = leafKey(nodeId, workloadId);
    const have = this.#leaves.get(key);
    if (have && this.#clock.now() < have.leaf.notAfter) return have;
    let p = this.#inflight.get(key);
    if (!p) {
      p = this.#issue(nodeId, workloadId).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
      p.then((e) => this.#leaves.set(key, e)).catch(() => undefined);
    }
    return p;
  }

  async #issue(nodeId: string, workloadId: string): Promise<LeafEntry> {
    let leaf: IssuedLeaf;
    try {
      leaf = await this.#source.issueLeaf(nodeId, workloadId);
    } catch (e) {
      this.issuanceErrors++;
      throw new SecretUnavailable([`issuance failed: ${(e as Error).message}`]);
    }
    const now = this.#clock.now();
    const checked = checkLeaf(leaf, workloadId, this.servedBundles(), now);
    if (!checked.ok) {
      this.issuanceErrors++;
      throw new SecretUnavailable(checked.errors);
    }
    return { nodeId, workloadId, leaf, rotateAt: rotationTime(leaf, this.#random()), retryAt: 0, built: new Map() };
  }
}

/** When to re-issue: at 50% of the lifetime, ±10% of the lifetime, from `u` uniform in [0, 1). */
export function rotationTime(leaf: Pick<IssuedLeaf, 'notBefore' | 'notAfter'>, u: number): number {
  const life = leaf.notAfter - leaf.notBefore;
  const fraction = ROTATE_AT_FRACTION + (2 * u - 1) * ROTATE_JITTER;
  return leaf.notBefore + Math.floor(life * fraction);
}
