/**
 * Forgotten nodes: an operator's decision that a node which is gone (killed, lost, stopped for
 * good) no longer takes part, as `spire-server agent evict` or removing an etcd member is.
 *
 * A node's heartbeat (`nodes`) and admin token (`adminTokens`) are node-owned records: only that
 * node writes them (receivers refuse them from any other origin, and NATS permissions can confine
 * each node to its own keys), so another node cannot delete them. Instead the node that serves
 * the operator's call writes a `forgottenNodes` record under the forgotten node's name, and every
 * node disregards that node's heartbeat and admin token records **stored before it** (a lower
 * store revision):
 *
 * - the rule uses store revisions only, which every node sees alike, so every node gives the same
 *   answer whatever order the messages reached it in; a node that missed the announcement learns
 *   it at its next catch-up from the store (the record is stored like any other);
 * - no node writes another node's records, and a forget hides records by their revision, so
 *   nothing another node re-announces can bring a forgotten record back;
 * - whatever the forgotten node writes later (it restarts, or its partition heals) is stored
 *   after the forget and counts again: it re-joins (node-cluster.ts writes its records again when
 *   it hears that it was forgotten). Removing its NATS credentials keeps it out.
 *
 * A node never disregards its own records.
 */
import type { Bus, Entry } from './types.ts';

/**
 * Is `entry`, a heartbeat or admin-token record (keyed by its node's name), hidden by a forget
 * of that node: another node's record stored before the `forgottenNodes` record naming it?
 */
export function isForgotten(bus: Pick<Bus, 'get' | 'nodeName'>, entry: Entry<'nodes'> | Entry<'adminTokens'>): boolean {
  if (entry.key === bus.nodeName) return false;
  const forgot = bus.get('forgottenNodes', entry.key);
  return forgot !== undefined && entry.revision < forgot.revision;
}

/** The record of `kind` of node `node`, unless a forget hides it. */
export function visibleRecord<K extends 'nodes' | 'adminTokens'>(bus: Pick<Bus, 'get' | 'nodeName'>, kind: K, node: string): Entry<K> | undefined {
  const e = bus.get(kind, node);
  return e && !isForgotten(bus, e as Entry<'nodes'> | Entry<'adminTokens'>) ? e : undefined;
}
