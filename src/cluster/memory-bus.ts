/**
 * The in-process bus: the embedded default for a single node, and a way to run several nodes in
 * one process (tests, benchmarks). Nodes that share a `MemoryHub` share one store per trust domain
 * and see each other's broadcasts. Messages travel as the same bytes as over NATS and are checked
 * the same way on receipt, asynchronously, like a network would deliver them.
 */
import type { BackendEvents, BusBackend, StoredValue, StoreSnapshot } from './backend.ts';
import { ClusterError } from './errors.ts';
import { bucketName } from './naming.ts';
import { ReplicatedBus } from './replicated-bus.ts';
import type { BusOptions } from './types.ts';

interface Bucket {
  values: Map<string, StoredValue>;
  lastRevision: number;
}

export class MemoryHub {
  readonly #buckets = new Map<string, Bucket>();
  readonly #members = new Set<MemoryBackend>();
  #online = true;
  /** Test hook: return true to drop a broadcast (the store write still happens). */
  dropAnnounce?: (subject: string, bytes: Uint8Array) => boolean;

  get online(): boolean {
    return this.#online;
  }

  /** Simulate the whole bus going away (false) and coming back (true). */
  setOnline(online: boolean): void {
    if (online === this.#online) return;
    this.#online = online;
    for (const m of this.#members) m.notifyConnection(online);
  }

  /** Deliver raw bytes on a subject to every member, as a foreign publisher would. */
  inject(subject: string, bytes: Uint8Array): void {
    if (!this.#online) return;
    for (const m of this.#members) m.deliver(subject, bytes);
  }

  bucket(trustDomain: string): Bucket {
    const name = bucketName(trustDomain);
    let b = this.#buckets.get(name);
    if (!b) this.#buckets.set(name, (b = { values: new Map(), lastRevision: 0 }));
    return b;
  }

  /** Write to the store directly (test hook: a write that was never announced). */
  storeRaw(trustDomain: string, kvKey: string, bytes: Uint8Array, expectedRevision?: number): number {
    if (!this.#online) throw new ClusterError('ERR_CLUSTER_UNAVAILABLE', 'the in-process bus is offline');
    const b = this.bucket(trustDomain);
    if (expectedRevision !== undefined) {
      const current = b.values.get(kvKey)?.revision ?? 0;
      if (current !== expectedRevision)
        throw new ClusterError('ERR_CLUSTER_REVISION_MISMATCH', `"${kvKey}" is at revision ${current}, not ${expectedRevision}`, { expectedRevision });
    }
    b.lastRevision += 1;
    b.values.set(kvKey, { kvKey, bytes: Uint8Array.from(bytes), revision: b.lastRevision });
    return b.lastRevision;
  }

  /** Remove a key's value when it is at `revision` or older (no marker remains). */
  purgeRaw(trustDomain: string, kvKey: string, revision: number): void {
    if (!this.#online) throw new ClusterError('ERR_CLUSTER_UNAVAILABLE', 'the in-process bus is offline');
    const b = this.bucket(trustDomain);
    const cur = b.values.get(kvKey);
    if (cur && cur.revision <= revision) b.values.delete(kvKey);
  }

  join(m: MemoryBackend): void {
    this.#members.add(m);
  }

  leave(m: MemoryBackend): void {
    this.#members.delete(m);
  }

  announce(subject: string, bytes: Uint8Array): void {
    if (!this.#online) throw new ClusterError('ERR_CLUSTER_UNAVAILABLE', 'the in-process bus is offline');
    if (this.dropAnnounce?.(subject, bytes)) return;
    this.inject(subject, bytes);
  }
}

export class MemoryBackend implements BusBackend {
  readonly #hub: MemoryHub;
  readonly #trustDomain: string;
  #events?: BackendEvents;
  #closed = false;

  constructor(hub: MemoryHub, trustDomain: string) {
    this.#hub = hub;
    this.#trustDomain = trustDomain;
  }

  get connected(): boolean {
    return !this.#closed && this.#events !== undefined && this.#hub.online;
  }

  async open(events: BackendEvents): Promise<void> {
    this.#events = events;
    this.#hub.join(this);
    if (this.#hub.online) events.connection(true);
  }

  notifyConnection(online: boolean): void {
    if (!this.#closed) setImmediate(() => this.#events?.connection(online && this.#hub.online));
  }

  deliver(subject: string, bytes: Uint8Array): void {
    const copy = Uint8Array.from(bytes);
    setImmediate(() => {
      if (!this.#closed && this.#hub.online) this.#events?.message(subject, copy);
    });
  }

  #check(): void {
    if (!this.connected) throw new ClusterError('ERR_CLUSTER_UNAVAILABLE', 'the in-process bus is offline');
  }

  async kvPut(kvKey: string, bytes: Uint8Array): Promise<number> {
    this.#check();
    return this.#hub.storeRaw(this.#trustDomain, kvKey, bytes);
  }

  async kvUpdate(kvKey: string, bytes: Uint8Array, expectedRevision: number): Promise<number> {
    this.#check();
    return this.#hub.storeRaw(this.#trustDomain, kvKey, bytes, expectedRevision);
  }

  async kvGet(kvKey: string): Promise<StoredValue | undefined> {
    this.#check();
    return this.#hub.bucket(this.#trustDomain).values.get(kvKey);
  }

  async kvPurge(kvKey: string, revision: number): Promise<void> {
    this.#check();
    this.#hub.purgeRaw(this.#trustDomain, kvKey, revision);
  }

  async lastRevision(): Promise<number> {
    this.#check();
    return this.#hub.bucket(this.#trustDomain).lastRevision;
  }

  async snapshot(): Promise<StoreSnapshot> {
    this.#check();
    const b = this.#hub.bucket(this.#trustDomain);
    return { entries: [...b.values.values()], markers: new Map(), lastRevision: b.lastRevision };
  }

  announce(subject: string, bytes: Uint8Array): void {
    this.#check();
    this.#hub.announce(subject, bytes);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#hub.leave(this);
  }
}

export interface MemoryBusOptions extends BusOptions {
  /** Share one hub between the nodes that should see each other; a private hub otherwise. */
  hub?: MemoryHub;
}

export class MemoryBus extends ReplicatedBus {
  readonly hub: MemoryHub;
  constructor(opts: MemoryBusOptions) {
    const hub = opts.hub ?? new MemoryHub();
    super(new MemoryBackend(hub, opts.trustDomain), opts);
    this.hub = hub;
  }
}
