/**
 * The federated trust domains a node serves: those read from its own federation files and those
 * received from other nodes of the cluster. For each trust domain the bundle with the higher
 * `sequence` wins (the cluster's on a tie: it is the most recently shared one). The merged view
 * is rebuilt only on change, so each bundle object stays the same between changes (verifier
 * caches key on bundle identity).
 */
import type { TrustDomainBundle } from '../identity/index.ts';

export class FederatedBundles {
  #files: ReadonlyMap<string, TrustDomainBundle>;
  readonly #cluster = new Map<string, TrustDomainBundle>();
  #view: ReadonlyMap<string, TrustDomainBundle>;

  constructor(files: ReadonlyMap<string, TrustDomainBundle>) {
    this.#files = files;
    this.#view = files;
  }

  get view(): ReadonlyMap<string, TrustDomainBundle> {
    return this.#view;
  }

  get files(): ReadonlyMap<string, TrustDomainBundle> {
    return this.#files;
  }

  setFiles(files: ReadonlyMap<string, TrustDomainBundle>): void {
    this.#files = files;
    this.#merge();
  }

  /** Set (or with undefined, forget) a bundle from the cluster; true when the served one changed. */
  setFromCluster(trustDomain: string, bundle: TrustDomainBundle | undefined): boolean {
    const before = this.#view.get(trustDomain);
    if (bundle) this.#cluster.set(trustDomain, bundle);
    else this.#cluster.delete(trustDomain);
    this.#merge();
    return this.#view.get(trustDomain) !== before;
  }

  #merge(): void {
    const view = new Map(this.#files);
    for (const [td, b] of this.#cluster) {
      const file = view.get(td);
      if (!file || (b.sequence ?? 0) >= (file.sequence ?? 0)) view.set(td, b);
    }
    this.#view = view;
  }
}
