/**
 * Conversions between a node's own state and the records the bus carries, for the node's cluster
 * wiring (src/node-cluster.ts). The node's types are described structurally here (the bus knows
 * neither the CA nor the SDS adapter): a key's public half, a peer key as the CA takes it in,
 * and a registration entry (Envoy node id -> workload identifiers).
 */
import { createHash } from 'node:crypto';
import { derToPem, pemToDers } from '../identity/index.ts';
import type { KeyRecord, KeyState, RegistrationRecord } from './types.ts';

/** A peer's key as the CA takes it in (`IdentityServer.setPeerKeys`). */
export interface PeerPublicKey {
  readonly kind: 'x509' | 'wit';
  readonly kid: string;
  readonly alg: string;
  readonly status: KeyState;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly publicJwk?: Record<string, unknown>;
  /** X.509 keys: the CA certificate, PEM (absent once revoked). */
  readonly certPem?: string;
}

/** A key's public half as the CA gives it (`IdentityServer.publicKeys()`): always its JWK, and its lifecycle times. */
export interface OwnPublicKey extends Omit<PeerPublicKey, 'publicJwk'> {
  readonly activatedAt?: number;
  readonly taintedAt?: number;
  readonly revokedAt?: number;
  readonly publicJwk: object;
}

/** A registration entry as the SDS adapter holds it. */
export interface RegistrationEntry {
  readonly nodeId: string;
  /** The first is served as `default`. */
  readonly workloads: readonly string[];
  readonly dnsNames?: readonly string[];
}

/**
 * The node's key-set revision: the latest lifecycle time among its own keys, so that it grows
 * with every change of the set and stays put when only peers' keys change.
 */
export const ownKeySeq = (own: readonly OwnPublicKey[]): number =>
  Math.max(0, ...own.map((k) => Math.max(k.notBefore, k.activatedAt ?? 0, k.taintedAt ?? 0, k.revokedAt ?? 0)));

/** One of our keys as the bus carries it: a CA certificate (DER) or a public JWK, never private material. */
export function toBusKey(node: string, k: OwnPublicKey, keySeq: number): KeyRecord {
  const der = k.kind === 'x509' && k.certPem ? pemToDers(k.certPem)[0] : undefined;
  return {
    node,
    kid: k.kid,
    alg: k.alg,
    use: k.kind,
    state: k.status,
    ...(der ? { x509RootDer: Buffer.from(der).toString('base64') } : { publicJwk: { ...(k.publicJwk as Record<string, unknown>) } }),
    notBefore: k.notBefore,
    notAfter: k.notAfter,
    keySeq,
  };
}

/** A peer's bus record as the CA takes it in; undefined for a use our CA has no bundle slot for (`jwt`). */
export function toPeerKey(r: KeyRecord): PeerPublicKey | undefined {
  if (r.use !== 'x509' && r.use !== 'wit') return undefined;
  return {
    kind: r.use,
    kid: r.kid,
    alg: r.alg,
    status: r.state,
    notBefore: r.notBefore,
    notAfter: r.notAfter,
    ...(r.publicJwk ? { publicJwk: r.publicJwk } : {}),
    ...(r.x509RootDer ? { certPem: derToPem(Buffer.from(r.x509RootDer, 'base64')) } : {}),
  };
}

const REG_SELECTOR = 'envoy-node:';

const regId = (nodeId: string, i: number): string => `${createHash('sha256').update(nodeId, 'utf8').digest('base64url').slice(0, 22)}-${i}`;

/**
 * Registration entries as bus records: one per workload identifier, keyed by a digest of the
 * Envoy node id and the identifier's position, selected by `envoy-node:<node id>`.
 */
export function toRegistrationRecords(regs: readonly RegistrationEntry[]): RegistrationRecord[] {
  return regs.flatMap((r) =>
    r.workloads.map((w, i) => ({
      id: regId(r.nodeId, i),
      workloadId: w,
      selectors: [REG_SELECTOR + r.nodeId],
      ...(r.dnsNames?.length ? { dnsNames: [...r.dnsNames] } : {}),
    })),
  );
}

/** The inverse of `toRegistrationRecords` (sorted by node id); a node's first workload stays its default. */
export function fromRegistrationRecords(records: readonly RegistrationRecord[]): RegistrationEntry[] {
  const byNode = new Map<string, { i: number; r: RegistrationRecord }[]>();
  for (const r of records) {
    const sel = r.selectors.find((s) => s.startsWith(REG_SELECTOR));
    if (!sel) continue;
    const nodeId = sel.slice(REG_SELECTOR.length);
    const list = byNode.get(nodeId) ?? [];
    list.push({ i: Number(r.id.slice(r.id.lastIndexOf('-') + 1)), r });
    byNode.set(nodeId, list);
  }
  return [...byNode].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([nodeId, list]) => {
    list.sort((a, b) => a.i - b.i);
    const dnsNames = list[0]?.r.dnsNames ?? [];
    return { nodeId, workloads: list.map((x) => x.r.workloadId), ...(dnsNames.length ? { dnsNames } : {}) };
  });
}
