/**
 * The verbs of the key lifecycle as pure transitions over the list of key records
 * (STYLE.md §10: data plus verbs plus a separate driver). Each returns the new list and what
 * changed; the Identity Server journals the result before it publishes or uses it.
 *
 * Rules (docs/ca.md "Key lifecycle"):
 * - prepare: add a new `prepared` key; a previous prepared key of the kind (never used to sign)
 *   becomes `old`: published keys leave the bundle only by expiry or revocation.
 * - activate: the newest usable prepared key becomes `active`; the active one becomes `old`.
 * - taint: an active, prepared or old key becomes `tainted`. Tainting the active key activates a
 *   replacement in the same transition, so there is never a moment without a signer and the
 *   tainted key never signs again.
 * - revoke: only a `tainted` key (SPIRE's rule: re-issue first, then pull trust); it leaves the
 *   bundle and its private key is erased.
 * - prune: old/tainted/revoked keys go once `now >= notAfter + grace`; prepared keys that expired
 *   unused go at their notAfter; other nodes' keys (with an `origin`) go at notAfter + grace.
 */
import { KeyStateError } from './errors.ts';
import { inBundle, type KeyKind, type KeyRecord } from './key-record.ts';
import { hasUsableNext, slotOf } from './slot.ts';

export interface Transition {
  readonly records: KeyRecord[];
  /** The set of keys published in the bundle changed. */
  readonly bundleChanged: boolean;
  readonly activated?: string;
  readonly tainted?: string;
  readonly revoked?: string;
  readonly removed: readonly KeyRecord[];
}

const set = (r: KeyRecord, patch: Partial<KeyRecord>): KeyRecord => ({ ...r, ...patch });

export function applyPrepare(records: readonly KeyRecord[], rec: KeyRecord): Transition {
  if (rec.status !== 'prepared') throw new TypeError('a new key starts prepared');
  // A key already published stays published until it expires: a superseded prepared key
  // becomes `old` (it never signed) rather than vanishing from the bundle.
  const out = records.map((r) => (r.kind === rec.kind && r.status === 'prepared' && r.origin === undefined ? set(r, { status: 'old' }) : r));
  return { records: [...out, rec], bundleChanged: true, removed: [] };
}

export function applyActivate(records: readonly KeyRecord[], kind: KeyKind, now: number): Transition {
  const slot = slotOf(kind, records);
  if (!slot.next || !hasUsableNext(slot, now))
    throw new KeyStateError('ca.key_state', kind, undefined, `no usable prepared ${kind} key to activate`);
  const nextKid = slot.next.kid;
  const out = records.map((r) => {
    if (r.kind !== kind || r.origin !== undefined) return r;
    if (r.status === 'active') return set(r, { status: 'old' });
    if (r.kid === nextKid) return set(r, { status: 'active', activatedAt: now });
    return r;
  });
  return { records: out, bundleChanged: false, activated: nextKid, removed: [] };
}

/** `replacement`: a freshly prepared key, required when the active key is tainted and none is prepared. */
export function applyTaint(
  records: readonly KeyRecord[],
  kind: KeyKind,
  kid: string,
  now: number,
  replacement?: KeyRecord,
): Transition {
  const target = find(records, kind, kid);
  if (target.status === 'tainted' || target.status === 'revoked')
    throw new KeyStateError('ca.key_state', kind, kid, `${kind} key ${kid} is already ${target.status}`);
  let base: Transition = { records: [...records], bundleChanged: false, removed: [] };
  if (target.status === 'active') {
    const slot = slotOf(kind, records);
    if (!hasUsableNext(slot, now)) {
      if (!replacement) throw new KeyStateError('ca.key_state', kind, kid, 'a replacement key is needed to taint the active key');
      base = applyPrepare(records, replacement);
    }
    base = { ...applyActivate(base.records, kind, now), bundleChanged: base.bundleChanged, removed: base.removed };
  }
  const out = base.records.map((r) => (r.kind === kind && r.kid === kid ? set(r, { status: 'tainted', taintedAt: now }) : r));
  return { ...base, records: out, tainted: kid };
}

export function applyRevoke(records: readonly KeyRecord[], kind: KeyKind, kid: string, now: number): Transition {
  const target = find(records, kind, kid);
  if (target.status !== 'tainted')
    throw new KeyStateError('ca.key_state', kind, kid, `only a tainted key can be revoked; ${kind} key ${kid} is ${target.status}`);
  const out = records.map((r) => {
    if (r.kind !== kind || r.kid !== kid) return r;
    const { privateKeyPem: _erased, ...rest } = r;
    return { ...rest, status: 'revoked' as const, revokedAt: now };
  });
  return { records: out, bundleChanged: true, revoked: kid, removed: [] };
}

export function applyPrune(records: readonly KeyRecord[], now: number, graceMs: number): Transition {
  const removed = records.filter((r) =>
    r.origin !== undefined
      ? // Another node's key: trusted until its own notAfter plus the grace, whatever its status
        // (its owner may be gone for good and never delete it).
        now >= r.notAfter + graceMs
      : (r.status === 'prepared' && now >= r.notAfter) ||
        ((r.status === 'old' || r.status === 'tainted' || r.status === 'revoked') && now >= r.notAfter + graceMs),
  );
  return {
    records: records.filter((r) => !removed.includes(r)),
    bundleChanged: removed.some((r) => inBundle(r.status)),
    removed,
  };
}

function find(records: readonly KeyRecord[], kind: KeyKind, kid: string): KeyRecord {
  const r = records.find((x) => x.kind === kind && x.kid === kid && x.origin === undefined);
  if (!r) throw new KeyStateError('ca.unknown_key', kind, kid, `no ${kind} key with kid ${kid}`);
  return r;
}
