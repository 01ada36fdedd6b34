/**
 * The NATS bus (the `nats` npm package, v2 API). Every change is stored in a JetStream KV bucket
 * (`wimse_<td>`, history 1: revisions and compare-and-set) and then announced with core NATS
 * publish on `wimse.<td>.<kind>.<origin>`, the fast path. Core NATS is at most once and JetStream
 * acknowledges before fsync (Jepsen, NATS 2.12.1: https://jepsen.io/analyses/nats-2.12.1), so the
 * store is a convergence aid and never the only copy of key state: see replicated-bus.ts and
 * convergence.ts for catch-up.
 *
 * Security: per-node credentials (`credsFile`) and TLS (`tlsCaFile`) come from the configuration.
 * Because the origin node is part of the subject, NATS permissions can restrict each node to
 * publishing under its own name (`wimse.<td>.*.<node>`), and receivers refuse a record whose origin
 * differs from its subject.
 */
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, Events, type ConnectionOptions, type JetStreamManager, type KV, type NatsConnection, type Subscription } from 'nats';
import type { BackendEvents, BusBackend, StoredValue, StoreSnapshot } from './backend.ts';
import { MAX_MESSAGE_BYTES } from './envelope.ts';
import { ClusterError } from './errors.ts';
import { bucketName, subjectPrefix } from './naming.ts';
import { ReplicatedBus } from './replicated-bus.ts';
import { noopLogger, type BusLogger, type BusOptions } from './types.ts';

export interface NatsBusOptions extends BusOptions {
  /** NATS server URLs (`nats://` or `tls://`). */
  servers: string[];
  /** A NATS `.creds` file (user JWT + NKey seed); re-read on every (re)connect. */
  credsFile?: string;
  /** PEM roots that verify the NATS servers' certificates. */
  tlsCaFile?: string;
  /** Connection name shown by the server's monitoring; default `wimse-<nodeName>`. */
  name?: string;
  /** JetStream replicas of the bucket when this node creates it (3 in production). Default 1. */
  replicas?: number;
  /** Timeout of one store request. Default 2 000 ms. */
  requestTimeoutMs?: number;
  /** How long `start()` waits for the first connection before returning disconnected. Default 5 000 ms. */
  startTimeoutMs?: number;
  /** Delay between connection attempts. Default 250 ms. */
  reconnectWaitMs?: number;
  /** Client ping interval (detects a dead server). Default 2 000 ms. */
  pingIntervalMs?: number;
  /** Try `servers` in the given order instead of a random one (pin a node to a nearby server). Default false. */
  preferListedOrder?: boolean;
  /** Connect only to `servers`, never to other servers the NATS cluster advertises. Default false. */
  onlyListedServers?: boolean;
  /** Test hooks only. */
  testHooks?: { dropAnnounce?: (subject: string) => boolean };
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class NatsBackend implements BusBackend {
  readonly #opts: NatsBusOptions;
  readonly #log: BusLogger;
  #events?: BackendEvents;
  #nc?: NatsConnection;
  #kv?: KV;
  #jsm?: Promise<JetStreamManager>;
  #sub?: Subscription;
  #linked = false;
  #closed = false;
  #loop?: Promise<void>;

  constructor(opts: NatsBusOptions) {
    if (!Array.isArray(opts.servers) || opts.servers.length === 0) throw new TypeError('"servers" must list at least one NATS URL');
    if (opts.replicas !== undefined && (!Number.isInteger(opts.replicas) || opts.replicas < 1 || opts.replicas > 5))
      throw new TypeError('"replicas" must be an integer from 1 to 5');
    this.#opts = opts;
    this.#log = opts.logger ?? noopLogger;
  }

  get connected(): boolean {
    return this.#linked && !this.#closed;
  }

  async open(events: BackendEvents): Promise<void> {
    this.#events = events;
    let ready!: () => void;
    const first = new Promise<void>((r) => (ready = r));
    this.#loop = this.#connectLoop(ready);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => (timer = setTimeout(r, this.#opts.startTimeoutMs ?? 5_000)));
    await Promise.race([first, timeout]);
    clearTimeout(timer);
  }

  #connectionOptions(): ConnectionOptions {
    const o = this.#opts;
    const opts: ConnectionOptions = {
      servers: o.servers,
      name: o.name ?? `wimse-${o.nodeName}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: o.reconnectWaitMs ?? 250,
      reconnectJitter: 100,
      pingInterval: o.pingIntervalMs ?? 2_000,
      maxPingOut: 2,
      timeout: o.requestTimeoutMs ?? 2_000,
      noRandomize: o.preferListedOrder ?? false,
      ignoreClusterUpdates: o.onlyListedServers ?? false,
    };
    if (o.credsFile) {
      const file = o.credsFile;
      opts.authenticator = credsAuthenticator(() => readFileSync(file));
    }
    if (o.tlsCaFile) opts.tls = { caFile: o.tlsCaFile };
    return opts;
  }

  /** Connect (retrying until closed), then follow the client's status events. */
  async #connectLoop(ready: () => void): Promise<void> {
    while (!this.#closed) {
      try {
        this.#nc = await connect(this.#connectionOptions());
        break;
      } catch (err) {
        this.#log.debug({ err: String(err) }, 'NATS connect failed; retrying');
        await delay(this.#opts.reconnectWaitMs ?? 250);
      }
    }
    const nc = this.#nc;
    if (!nc || this.#closed) {
      await nc?.close();
      return;
    }
    this.#sub = nc.subscribe(`${subjectPrefix(this.#opts.trustDomain)}.>`, {
      callback: (err, msg) => {
        if (!err) this.#events?.message(msg.subject, msg.data);
      },
    });
    void this.#followStatus(nc);
    // JetStream may still be electing leaders (or be disabled): back off up to 5 s between tries.
    for (let wait = this.#opts.reconnectWaitMs ?? 250; !this.#closed && !this.#kv; wait = Math.min(wait * 2, 5_000)) {
      try {
        this.#kv = await this.#openBucket(nc);
      } catch (err) {
        this.#log.warn({ err: String(err), retryInMs: wait }, 'JetStream bucket not available yet; retrying');
        await delay(wait);
      }
    }
    if (this.#closed) return;
    this.#setLinked(true);
    ready();
  }

  async #openBucket(nc: NatsConnection): Promise<KV> {
    const js = nc.jetstream({ timeout: this.#opts.requestTimeoutMs ?? 2_000 });
    const name = bucketName(this.#opts.trustDomain);
    const timeout = this.#opts.requestTimeoutMs ?? 2_000;
    try {
      return await js.views.kv(name, { history: 1, replicas: this.#opts.replicas ?? 1, maxValueSize: MAX_MESSAGE_BYTES, timeout });
    } catch (err) {
      // Created elsewhere with other settings (e.g. more replicas): use it as it is.
      if (String(err).includes('already in use')) return js.views.kv(name, { bindOnly: true, timeout });
      throw err;
    }
  }

  async #followStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === Events.Disconnect) this.#setLinked(false);
      else if (s.type === Events.Reconnect && this.#kv) this.#setLinked(true);
    }
  }

  #setLinked(linked: boolean): void {
    if (this.#linked === linked) return;
    this.#linked = linked;
    this.#events?.connection(linked);
  }

  #kvOrThrow(): KV {
    if (!this.connected || !this.#kv) throw new ClusterError('ERR_CLUSTER_UNAVAILABLE', 'NATS is unreachable');
    return this.#kv;
  }

  async #call<T>(what: string, fn: (kv: KV) => Promise<T>): Promise<T> {
    const kv = this.#kvOrThrow();
    try {
      return await fn(kv);
    } catch (err) {
      throw translate(err, what);
    }
  }

  kvPut(kvKey: string, bytes: Uint8Array): Promise<number> {
    return this.#call('put', (kv) => kv.put(kvKey, bytes));
  }

  kvUpdate(kvKey: string, bytes: Uint8Array, expectedRevision: number): Promise<number> {
    // `previousSeq: 0` means "the key must not exist" (Nats-Expected-Last-Subject-Sequence).
    return this.#call('update', (kv) => kv.put(kvKey, bytes, { previousSeq: expectedRevision })).catch((err) => {
      if (err instanceof ClusterError && err.code === 'ERR_CLUSTER_REVISION_MISMATCH')
        throw new ClusterError(err.code, `"${kvKey}" is not at revision ${expectedRevision}`, { expectedRevision, cause: err.cause });
      throw err;
    });
  }

  kvGet(kvKey: string): Promise<StoredValue | undefined> {
    return this.#call('get', async (kv) => {
      const e = await kv.get(kvKey);
      if (!e || e.operation !== 'PUT') return undefined;
      return { kvKey, bytes: e.value, revision: e.revision };
    });
  }

  /**
   * A stream purge of the key's subject below `revision + 1`: unlike a KV delete or purge it leaves
   * no marker behind, and a value written after `revision` stays. JetStream API permission:
   * `$JS.API.STREAM.PURGE.KV_<bucket>`.
   */
  kvPurge(kvKey: string, revision: number): Promise<void> {
    return this.#call('purge', async () => {
      const nc = this.#nc!;
      const timeout = this.#opts.requestTimeoutMs ?? 2_000;
      const jsm = await (this.#jsm ??= nc.jetstreamManager({ timeout }).catch((e: unknown) => {
        this.#jsm = undefined;
        throw e;
      }));
      const bucket = bucketName(this.#opts.trustDomain);
      await jsm.streams.purge(`KV_${bucket}`, { filter: `$KV.${bucket}.${kvKey}`, seq: revision + 1 });
    });
  }

  lastRevision(): Promise<number> {
    return this.#call('status', async (kv) => (await kv.status()).streamInfo.state.last_seq);
  }

  snapshot(): Promise<StoreSnapshot> {
    return this.#call('snapshot', async (kv) => {
      const entries = new Map<string, StoredValue>();
      const markers = new Map<string, number>();
      let initialized = false;
      let stop: (() => void) | undefined;
      const iter = await kv.watch({
        key: '>',
        initializedFn: () => {
          initialized = true;
          stop?.();
        },
      });
      stop = () => iter.stop();
      if (initialized) iter.stop();
      const guard = setTimeout(() => iter.stop(new Error('snapshot timed out')), 2 * (this.#opts.requestTimeoutMs ?? 2_000));
      try {
        for await (const e of iter) {
          if (e.operation === 'PUT') {
            entries.set(e.key, { kvKey: e.key, bytes: e.value, revision: e.revision });
            markers.delete(e.key);
          } else {
            entries.delete(e.key);
            markers.set(e.key, e.revision);
          }
        }
      } finally {
        clearTimeout(guard);
      }
      const lastRevision = (await kv.status()).streamInfo.state.last_seq;
      return { entries: [...entries.values()], markers, lastRevision };
    });
  }

  announce(subject: string, bytes: Uint8Array): void {
    if (!this.connected || !this.#nc) throw new ClusterError('ERR_CLUSTER_UNAVAILABLE', 'NATS is unreachable');
    if (this.#opts.testHooks?.dropAnnounce?.(subject)) return;
    this.#nc.publish(subject, bytes);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#linked = false;
    this.#sub?.unsubscribe();
    await this.#nc?.close().catch(() => undefined);
    await this.#loop?.catch(() => undefined);
  }
}

/** NATS client errors -> our codes. JetStream 10071 is "wrong last sequence": a lost compare-and-set. */
function translate(err: unknown, what: string): ClusterError {
  if (err instanceof ClusterError) return err;
  const apiCode = (err as { api_error?: { err_code?: number } }).api_error?.err_code;
  if (apiCode === 10071 || /wrong last sequence/i.test(String((err as Error)?.message)))
    return new ClusterError('ERR_CLUSTER_REVISION_MISMATCH', `compare-and-set lost (${what})`, { cause: err });
  return new ClusterError('ERR_CLUSTER_UNAVAILABLE', `NATS ${what} failed: ${String((err as Error)?.message ?? err)}`, { cause: err });
}

export class NatsBus extends ReplicatedBus {
  constructor(opts: NatsBusOptions) {
    super(new NatsBackend(opts), opts);
  }
}
