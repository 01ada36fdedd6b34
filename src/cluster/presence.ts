/**
 * Node presence and key-activation gating.
 *
 * Every node publishes a heartbeat (`nodes` kind, key = its name) carrying the key ids of its
 * current trust bundle. A node is live while its last heartbeat is younger than a timeout. A
 * prepared key may become active once every live node trusts it, so that nothing it signs is
 * refused by a peer that has not yet received it (SPIRE publishes at prepare time and activates
 * later for the same reason). The answer also feeds `wimsectl bundle status`
 * ("is the new key everywhere yet?").
 *
 * Heartbeat times are the sender's clock: node clocks must agree to well within the timeout.
 * The heartbeat of a node an operator forgot (forgotten.ts) is not seen here until it beats again.
 */
import { isForgotten } from './forgotten.ts';
import type { Bus, NodeRecord } from './types.ts';

export interface NodeTrust {
  node: string;
  lastSeen: number;
  live: boolean;
  trusts: boolean;
}

export interface TrustReport {
  kid: string;
  /** True when at least one node is live and every live node trusts `kid`. */
  everywhere: boolean;
  nodes: NodeTrust[];
  /** Live nodes that do not trust `kid` yet. */
  missing: string[];
}

export const isLive = (n: NodeRecord, now: number, timeoutMs: number): boolean => now - n.lastSeen <= timeoutMs;

export function liveNodes(nodes: readonly NodeRecord[], now: number, timeoutMs: number): NodeRecord[] {
  return nodes.filter((n) => isLive(n, now, timeoutMs));
}

/**
 * Does every live node trust `kid`? With no live node at all the answer is false: an empty set
 * proves nothing, and activation then waits for its timeout (fail closed).
 */
export function allNodesTrust(kid: string, nodes: readonly NodeRecord[], now: number, timeoutMs: number): boolean {
  const live = liveNodes(nodes, now, timeoutMs);
  return live.length > 0 && live.every((n) => n.trustedKids.includes(kid));
}

/**
 * The peers among `peers` whose latest heartbeat (of any age) does not list `kid`, or who have
 * none, sorted. A peer that is down or cut off keeps its last word: it is waited for, not
 * forgotten because it fell silent.
 */
export function peersMissing(kid: string, peers: Iterable<string>, nodes: readonly NodeRecord[]): string[] {
  const latest = new Map(nodes.map((n) => [n.node, n]));
  return [...new Set(peers)].filter((p) => !latest.get(p)?.trustedKids.includes(kid)).sort();
}

export function trustReport(kid: string, nodes: readonly NodeRecord[], now: number, timeoutMs: number): TrustReport {
  const rows = nodes
    .map((n) => ({ node: n.node, lastSeen: n.lastSeen, live: isLive(n, now, timeoutMs), trusts: n.trustedKids.includes(kid) }))
    .sort((a, b) => (a.node < b.node ? -1 : 1));
  const live = rows.filter((r) => r.live);
  return { kid, everywhere: live.length > 0 && live.every((r) => r.trusts), nodes: rows, missing: live.filter((r) => !r.trusts).map((r) => r.node) };
}

export interface PresenceOptions {
  clock: { now(): number };
  /** A node whose last heartbeat is older than this is not live. Default 15 000 ms. */
  heartbeatTimeoutMs?: number;
  /** How often a waiting gate re-checks liveness (nodes can die while it waits). Default 500 ms. */
  recheckMs?: number;
}

/** Presence as seen through a bus: the node table, reports, and the activation gate. */
export class Presence {
  readonly #bus: Bus;
  readonly #clock: { now(): number };
  readonly timeoutMs: number;
  readonly #recheckMs: number;

  constructor(bus: Bus, opts: PresenceOptions) {
    for (const f of ['heartbeatTimeoutMs', 'recheckMs'] as const) {
      const v = opts[f];
      if (v !== undefined && (!Number.isSafeInteger(v) || v <= 0)) throw new TypeError(`"${f}" must be a positive integer`);
    }
    this.#bus = bus;
    this.#clock = opts.clock;
    this.timeoutMs = opts.heartbeatTimeoutMs ?? 15_000;
    this.#recheckMs = opts.recheckMs ?? 500;
  }

  /** Every node's latest heartbeat, except those of nodes forgotten since (forgotten.ts). */
  nodes(): NodeRecord[] {
    return this.#bus
      .list('nodes')
      .filter((e) => !isForgotten(this.#bus, e))
      .map((e) => e.record);
  }

  liveNodes(now = this.#clock.now()): NodeRecord[] {
    return liveNodes(this.nodes(), now, this.timeoutMs);
  }

  allNodesTrust(kid: string, now = this.#clock.now()): boolean {
    return allNodesTrust(kid, this.nodes(), now, this.timeoutMs);
  }

  report(kid: string, now = this.#clock.now()): TrustReport {
    return trustReport(kid, this.nodes(), now, this.timeoutMs);
  }

  /**
   * Resolve true as soon as every live node reports `kid` in its bundle, or false after
   * `timeoutMs` (the caller then logs a loud warning and counts it before activating anyway).
   */
  waitUntilTrustedEverywhere(kid: string, opts: { timeoutMs: number }): Promise<boolean> {
    if (!Number.isSafeInteger(opts.timeoutMs) || opts.timeoutMs < 0) throw new TypeError('"timeoutMs" must be a non-negative integer');
    if (this.allNodesTrust(kid)) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const finish = (result: boolean): void => {
        unwatch();
        clearInterval(recheck);
        clearTimeout(deadline);
        resolve(result);
      };
      const check = (): void => {
        if (this.allNodesTrust(kid)) finish(true);
      };
      const unwatch = this.#bus.watch('nodes', check);
      const recheck = setInterval(check, this.#recheckMs);
      const deadline = setTimeout(() => finish(this.allNodesTrust(kid)), opts.timeoutMs);
    });
  }
}

export interface HeartbeatOptions {
  clock: { now(): number };
  /** Default 5 000 ms (a third of the default liveness timeout). */
  intervalMs?: number;
  /** The key ids this node's current bundle holds, read at every beat. */
  trustedKids: () => readonly string[];
  version?: string;
  /** Told the store revision of every beat (0: not stored, the store is unreachable). */
  onBeat?: (revision: number) => void;
}

/** Publishes this node's heartbeat periodically, and at once on `beat()` (e.g. after a bundle change). */
export class NodeHeartbeat {
  readonly #bus: Bus;
  readonly #opts: HeartbeatOptions;
  readonly #startedAt: number;
  #timer?: NodeJS.Timeout;

  constructor(bus: Bus, opts: HeartbeatOptions) {
    if (opts.intervalMs !== undefined && (!Number.isSafeInteger(opts.intervalMs) || opts.intervalMs <= 0))
      throw new TypeError('"intervalMs" must be a positive integer');
    this.#bus = bus;
    this.#opts = opts;
    this.#startedAt = opts.clock.now();
  }

  /** Publish now. Resolves with the store revision (0 while the store is unreachable). */
  beat(): Promise<number> {
    const record: NodeRecord = {
      node: this.#bus.nodeName,
      lastSeen: this.#opts.clock.now(),
      trustedKids: [...new Set(this.#opts.trustedKids())].sort(),
      startedAt: this.#startedAt,
      ...(this.#opts.version ? { version: this.#opts.version } : {}),
    };
    const told = this.#opts.onBeat;
    const put = this.#bus.put('nodes', this.#bus.nodeName, record);
    return told
      ? put.then(
          (revision) => {
            told(revision);
            return revision;
          },
          (err: unknown) => {
            told(0);
            throw err;
          },
        )
      : put;
  }

  /** Stop beating and delete this node's heartbeat: it leaves the cluster cleanly. */
  async leave(): Promise<void> {
    this.stop();
    if (this.#bus.connected) await this.#bus.delete('nodes', this.#bus.nodeName);
  }

  start(): Promise<number> {
    if (!this.#timer) {
      this.#timer = setInterval(() => void this.beat().catch(() => undefined), this.#opts.intervalMs ?? 5_000);
      this.#timer.unref();
    }
    return this.beat();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
