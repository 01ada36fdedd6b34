/**
 * The wire form of a record: a small JSON envelope. The same bytes are stored in the KV bucket
 * (without `revision`, which the store assigns) and published on the change subject (with it).
 *
 * `decodeEnvelope` is the receipt check: size, JSON, schema, then consistency with where the
 * bytes came from (a record must not claim another origin than its subject, nor another key
 * than its store key; a node-owned key must belong to its origin). Anything that fails is
 * refused with a reason, never applied.
 */
import { checkKeySyntax, checkRecord, expectedKey, isNodeName, ownerOfKey } from './records.ts';
import { NODE_OWNED_KINDS, isRecordKind, type InvalidReason, type RecordKind, type RecordOf } from './types.ts';

export const MAX_MESSAGE_BYTES = 64 * 1024;

export interface Envelope<K extends RecordKind = RecordKind> {
  v: 1;
  kind: K;
  /** Absent on events. */
  key?: string;
  origin: string;
  seq: number;
  /** Present unless `deleted`. */
  record?: RecordOf[K];
  deleted?: true;
  /** The store revision, on change messages only. */
  revision?: number;
}

export type Decoded = { ok: true; env: Envelope } | { ok: false; reason: InvalidReason; errors: string[] };

export interface Expect {
  kind?: RecordKind;
  origin?: string;
  key?: string;
  event: boolean;
  requireRevision: boolean;
}

const enc = new TextEncoder();

export function encodeEnvelope(env: Envelope): Uint8Array {
  return enc.encode(JSON.stringify(env));
}

const refuse = (reason: InvalidReason, ...errors: string[]): Decoded => ({ ok: false, reason, errors });

const ENVELOPE_MEMBERS = ['v', 'kind', 'key', 'origin', 'seq', 'record', 'deleted', 'revision'];

export function decodeEnvelope(bytes: Uint8Array, expect: Expect): Decoded {
  if (bytes.byteLength > MAX_MESSAGE_BYTES) return refuse('oversize', `message is ${bytes.byteLength} bytes, limit ${MAX_MESSAGE_BYTES}`);
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    return refuse('bad_json', 'not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return refuse('bad_schema', 'envelope: must be an object');
  const e = doc as Record<string, unknown>;
  const unexpected = Object.keys(e).filter((k) => !ENVELOPE_MEMBERS.includes(k));
  if (unexpected.length) return refuse('bad_schema', ...unexpected.map((k) => `${k}: unexpected member`));
  if (e.v !== 1) return refuse('bad_schema', 'v: must be 1');
  if (!isRecordKind(e.kind)) return refuse('unknown_kind', `kind: unknown "${String(e.kind)}"`);
  const kind = e.kind;
  if (expect.kind !== undefined && kind !== expect.kind) return refuse('key_mismatch', `kind: "${kind}" on a "${expect.kind}" subject or key`);
  if (!isNodeName(e.origin)) return refuse('bad_schema', 'origin: must be a node name');
  if (expect.origin !== undefined && e.origin !== expect.origin)
    return refuse('origin_mismatch', `origin: "${e.origin}" published on the subject of "${expect.origin}"`);
  if (typeof e.seq !== 'number' || !Number.isSafeInteger(e.seq) || e.seq < 1) return refuse('bad_schema', 'seq: must be a positive integer');
  if (expect.requireRevision) {
    if (typeof e.revision !== 'number' || !Number.isSafeInteger(e.revision) || e.revision < 1)
      return refuse('bad_schema', 'revision: must be a positive integer');
  } else if (e.revision !== undefined) return refuse('bad_schema', 'revision: not expected here');
  if (e.deleted !== undefined && e.deleted !== true) return refuse('bad_schema', 'deleted: must be true when present');
  if (expect.event) {
    if (e.key !== undefined || e.deleted !== undefined) return refuse('bad_schema', 'an event carries neither key nor deleted');
  } else {
    const bad = checkKeySyntax(e.key);
    if (bad) return refuse('bad_schema', bad);
    if (expect.key !== undefined && e.key !== expect.key) return refuse('key_mismatch', `key: "${String(e.key)}" stored under "${expect.key}"`);
    if (NODE_OWNED_KINDS.has(kind) && ownerOfKey(e.key as string) !== e.origin)
      return refuse('origin_mismatch', `key: "${String(e.key)}" belongs to another node than origin "${e.origin}"`);
  }
  if (e.deleted) {
    if (e.record !== undefined) return refuse('bad_schema', 'record: a deletion carries no record');
  } else {
    const checked = checkRecord(kind, e.record);
    if (!checked.ok) return refuse('bad_schema', ...checked.errors);
    const want = expectedKey(kind, checked.value);
    if (expect.event) {
      if (NODE_OWNED_KINDS.has(kind) && want !== undefined && ownerOfKey(want) !== e.origin)
        return refuse('origin_mismatch', `record belongs to another node than origin "${e.origin}"`);
    } else if (want !== undefined && want !== e.key) {
      return NODE_OWNED_KINDS.has(kind) && ownerOfKey(want) !== e.origin
        ? refuse('origin_mismatch', `record belongs to another node than origin "${e.origin}"`)
        : refuse('key_mismatch', `key: "${String(e.key)}" does not match the record ("${want}")`);
    }
  }
  return { ok: true, env: e as unknown as Envelope };
}
