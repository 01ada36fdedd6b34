/**
 * Publishing a node's own key set. The CA's journal is the source of truth; after every change
 * (and on start) the node hands the bus its complete public key set, and the bus is made to hold
 * exactly that: new or changed keys are put, keys the journal no longer has are deleted, and
 * unchanged ones cause no write at all.
 */
import { ClusterError } from './errors.ts';
import type { Bus, KeyRecord } from './types.ts';

export interface OwnKeysResult {
  put: number;
  deleted: number;
  unchanged: number;
}

/** Canonical JSON (sorted members) so that member order does not count as a change. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

export async function publishOwnKeys(bus: Bus, records: readonly KeyRecord[]): Promise<OwnKeysResult> {
  const result: OwnKeysResult = { put: 0, deleted: 0, unchanged: 0 };
  const wanted = new Map<string, KeyRecord>();
  for (const r of records) {
    if (r.node !== bus.nodeName) throw new ClusterError('ERR_CLUSTER_NOT_OWNER', `key "${r.kid}" belongs to node "${r.node}", not "${bus.nodeName}"`);
    wanted.set(`${r.node}/${r.kid}`, r);
  }
  for (const [key, r] of wanted) {
    const cur = bus.get('keys', key);
    if (cur && canonical(cur.record) === canonical(r)) {
      result.unchanged += 1;
      continue;
    }
    await bus.put('keys', key, r);
    result.put += 1;
  }
  for (const e of bus.list('keys')) {
    if (e.record.node !== bus.nodeName || wanted.has(e.key)) continue;
    await bus.delete('keys', e.key);
    result.deleted += 1;
  }
  return result;
}
