/**
 * What a bus implementation must provide underneath the shared replication logic
 * (replicated-bus.ts): a revisioned key-value store with compare-and-set, a fire-and-forget
 * broadcast, and connection events. `MemoryHub` and NATS (JetStream KV + core publish) provide it.
 *
 * Store and announce methods throw `ClusterError` with `ERR_CLUSTER_UNAVAILABLE` when the
 * store cannot be reached and `ERR_CLUSTER_REVISION_MISMATCH` when a compare-and-set loses.
 */

export interface StoredValue {
  kvKey: string;
  bytes: Uint8Array;
  revision: number;
}

export interface StoreSnapshot {
  /** The latest value of every key. */
  entries: StoredValue[];
  /** Keys whose latest entry is a store-level delete or purge marker, with its revision (for compare-and-set). */
  markers: Map<string, number>;
  /** The store's last revision, read after the entries: no valid revision is higher. */
  lastRevision: number;
}

export interface BackendEvents {
  message(subject: string, bytes: Uint8Array): void;
  connection(connected: boolean): void;
}

export interface BusBackend {
  readonly connected: boolean;
  /** Start connecting; resolves once connected, or after the backend's start timeout while still trying. */
  open(events: BackendEvents): Promise<void>;
  kvPut(kvKey: string, bytes: Uint8Array): Promise<number>;
  /** Compare-and-set against the key's current revision (0: the key must not exist). */
  kvUpdate(kvKey: string, bytes: Uint8Array, expectedRevision: number): Promise<number>;
  kvGet(kvKey: string): Promise<StoredValue | undefined>;
  /**
   * Remove the key's value stored at `revision`, and anything older, from the store, leaving no
   * deletion marker; a newer value stays. Removing what is already gone is not an error.
   */
  kvPurge(kvKey: string, revision: number): Promise<void>;
  lastRevision(): Promise<number>;
  snapshot(): Promise<StoreSnapshot>;
  announce(subject: string, bytes: Uint8Array): void;
  close(): Promise<void>;
}
