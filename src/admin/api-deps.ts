/** What the admin API works over: the node's parts, and where it persists what it changes. */
import type { IdentityServer } from '../ca/identity-server.ts';
import type { Registration, CaSecretSource } from '../envoy/sds-ca-source.ts';
import type { NodeTokenStore } from '../identity/node-tokens.ts';
import type { AdminTokens } from './admin-token.ts';
import type { PolicyStore } from '../policy/store.ts';
import type { Clock } from '../identity/clock.ts';
import type { Logger } from '../log.ts';
import type { NodeCluster } from '../node-cluster.ts';

/** One node's view of the trust bundles: the trust domains and the key ids it trusts. */
export interface NodeBundleStatus {
  readonly node: string;
  readonly trustDomains: ReadonlyArray<{
    readonly trustDomain: string;
    readonly sequence?: number;
    /** JWK thumbprints (RFC 7638) of the X.509 roots' public keys: the CA kids. */
    readonly x509Authorities: readonly string[];
    readonly witKeys: readonly string[];
  }>;
}

export interface AdminApiDeps {
  readonly nodeName: string;
  readonly stateDir: string;
  /** The admin bearer tokens this node accepts: its own, and in a cluster every node's (admin-token.ts). */
  readonly adminTokens: Pick<AdminTokens, 'holder'>;
  readonly ca: IdentityServer;
  readonly policy: PolicyStore;
  /** Where applied policy is written: the configured policy file, else `<stateDir>/policy.yaml`. */
  readonly policyFile: string;
  /** Where entry changes go: the SDS source, and in a cluster every node through the bus. */
  readonly registrations: Pick<CaSecretSource, 'setRegistrations' | 'registrations'>;
  /** Entries from the config file (read-only through the API). */
  readonly configEntries: readonly Registration[];
  /** Entries created through the API earlier (loaded from `<stateDir>/entries.json`). */
  readonly apiEntries: readonly Registration[];
  /** Trust domains federated by the config file (read-only through the API). */
  readonly configFederation: readonly string[];
  readonly nodeTokens: NodeTokenStore;
  /** Write the node-token store to its file; resolves once what the store holds now is on disk. */
  readonly saveNodeTokens: () => Promise<void>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The nodes of the cluster (or this node alone, without a `cluster` section), and forgetting one that is gone. */
  readonly cluster: Pick<NodeCluster, 'clustered' | 'livenessWindowMs' | 'nodes' | 'forget'>;
  /** Every node's bundle view; default: this node's only. A cluster replaces it. */
  readonly bundleStatus?: () => Promise<NodeBundleStatus[]>;
}
