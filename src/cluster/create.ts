/**
 * Choosing the bus from configuration: the `cluster` section present means NATS, absent means the
 * in-process bus (the embedded single-node default, DESIGN.md). The settings mirror the
 * configuration's `cluster` section (durations already in milliseconds).
 */
import { MemoryBus, type MemoryHub } from './memory-bus.ts';
import { NatsBus, type NatsBusOptions } from './nats-bus.ts';
import type { Bus, BusOptions } from './types.ts';

export interface ClusterSettings {
  servers: string[];
  credsFile?: string;
  tlsCaFile?: string;
  /** Milliseconds. */
  reconcileInterval?: number;
  /** JetStream replicas when this node creates the bucket. */
  replicas?: number;
}

/** NATS client timings and test hooks, for tests and benchmarks (production uses the defaults). */
export type NatsTuning = Partial<Pick<NatsBusOptions, 'startTimeoutMs' | 'reconnectWaitMs' | 'pingIntervalMs' | 'requestTimeoutMs' | 'onlyListedServers' | 'testHooks'>>;

export function createBus(opts: BusOptions & { cluster?: ClusterSettings; hub?: MemoryHub; nats?: NatsTuning }): Bus {
  const { cluster, hub, nats, ...common } = opts;
  if (!cluster) return new MemoryBus({ ...common, ...(hub ? { hub } : {}) });
  return new NatsBus({
    ...common,
    servers: cluster.servers,
    ...(cluster.credsFile ? { credsFile: cluster.credsFile } : {}),
    ...(cluster.tlsCaFile ? { tlsCaFile: cluster.tlsCaFile } : {}),
    ...(cluster.replicas ? { replicas: cluster.replicas } : {}),
    ...(cluster.reconcileInterval !== undefined ? { reconcileIntervalMs: cluster.reconcileInterval } : {}),
    ...nats,
  });
}
