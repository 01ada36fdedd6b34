/**
 * The port the SDS server consumes: where certificates, keys and trust bundles come from.
 *
 * The SDS server owns this interface (STYLE.md §3, "the consumer owns the interface"); the CA
 * adapter (sds-ca-source.ts) and test sources implement it. Nothing here knows about gRPC or
 * Envoy messages.
 */
import type { TrustBundleSet } from '../identity/trust-bundle.ts';

/** A freshly issued WIC (workload identity certificate) with its private key. */
export interface IssuedLeaf {
  /** PEM: the leaf first, then any intermediates (not the root). */
  readonly chainPem: string;
  /** PEM, PKCS#8 ("PRIVATE KEY"). Never logged. */
  readonly keyPem: string;
  /** Validity of the leaf, milliseconds since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** Identifies the signing key that issued it (e.g. its key id); matched against taint events. */
  readonly authorityId: string;
}

/** What changed at the source. */
export type SecretSourceEvent =
  /** Trust bundles changed (own roots rolled, a federated bundle updated, added or removed). */
  | { readonly kind: 'bundles' }
  /** Registration entries changed: which node may receive which identifiers. */
  | { readonly kind: 'registrations' }
  /** These signing keys are tainted: every leaf they signed is re-issued and pushed now. */
  | { readonly kind: 'taint'; readonly authorityIds: readonly string[] };

export interface SecretSource {
  /** The trust domain this control plane issues for (served as `ROOTCA`). */
  readonly trustDomain: string;
  /**
   * Workload identifiers the Envoy node `nodeId` may receive, in registration order; the first
   * one is served as `default`. Empty when the node has no registration entry.
   */
  identitiesFor(nodeId: string): readonly string[];
  /** Issue a new leaf (with a new key pair) for `workloadId` on behalf of node `nodeId`. */
  issueLeaf(nodeId: string, workloadId: string): Promise<IssuedLeaf>;
  /** Every trust domain we trust, our own included, keyed by trust domain name. */
  bundles(): TrustBundleSet;
  /** Be told about changes; returns the unsubscribe function. */
  subscribe(listener: (event: SecretSourceEvent) => void): () => void;
}
