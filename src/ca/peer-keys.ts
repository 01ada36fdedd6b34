/**
 * Other nodes' public keys (the cluster's trust bundle is the union of every node's keys, as in
 * SPIRE's HA model: https://spiffe.io/docs/latest/planning/scaling_spire/). They are journaled next
 * to our own keys with an `origin` (the owning node), published in the bundle while their status
 * says so (`inBundle`), and never sign: the slots, lifecycle verbs and key loading all skip records
 * with an origin.
 *
 * A peer key is checked before it is taken in: the `kid` must be the RFC 7638 thumbprint of the
 * public key (of the JWK, or of the CA certificate's key), the algorithm must match the key, and
 * a certificate must be a CA. Anything else is refused (fail closed), with the reason.
 */
import { createPublicKey, X509Certificate } from 'node:crypto';
import type { Checked } from '../identity/index.ts';
import { CA_ALGS, KEY_KINDS, KEY_STATUSES, inBundle, type CaAlg, type KeyKind, type KeyRecord, type KeyStatus, type PublicKeyJwk } from './key-record.ts';
import { algOfKey, jwkThumbprint, toPublicJwk } from './keys.ts';
import type { Transition } from './lifecycle.ts';

/** A peer's public key as it arrives from the cluster bus (no private material). */
export interface PeerKey {
  readonly kind: KeyKind;
  readonly kid: string;
  readonly alg: string;
  readonly status: KeyStatus;
  readonly notBefore: number;
  readonly notAfter: number;
  /** WIT keys. */
  readonly publicJwk?: Record<string, unknown>;
  /** X.509 keys: the CA certificate, PEM. */
  readonly certPem?: string;
}

/** Check one peer key and turn it into a journal record owned by `origin`. */
export function checkPeerKey(origin: string, k: PeerKey): Checked<KeyRecord> {
  const errors: string[] = [];
  if (!(KEY_KINDS as readonly string[]).includes(k.kind)) errors.push('kind: unknown');
  if (!(KEY_STATUSES as readonly string[]).includes(k.status)) errors.push('status: unknown');
  if (!(CA_ALGS as readonly string[]).includes(k.alg)) errors.push('alg: must be ES256 or EdDSA');
  if (!Number.isSafeInteger(k.notBefore) || !Number.isSafeInteger(k.notAfter) || k.notAfter <= k.notBefore) errors.push('notAfter: must be after notBefore');
  if (errors.length) return { ok: false, errors };
  let jwk: PublicKeyJwk;
  let certPem: string | undefined;
  try {
    if (k.kind === 'x509' && (k.status !== 'revoked' || k.certPem !== undefined)) {
      // A revoked X.509 key may travel as its public JWK alone: it is out of every bundle.
      if (typeof k.certPem !== 'string') return { ok: false, errors: ['certPem: required for an x509 key'] };
      const cert = new X509Certificate(k.certPem);
      if (!cert.ca) return { ok: false, errors: ['certPem: not a CA certificate'] };
      if (algOfKey(cert.publicKey) !== k.alg) return { ok: false, errors: ['alg: does not match the certificate key'] };
      jwk = toPublicJwk(cert.publicKey);
      certPem = cert.toString();
    } else {
      const j = k.publicJwk;
      if (!j || typeof j !== 'object' || 'd' in j) return { ok: false, errors: ['publicJwk: must be a public JWK'] };
      const key = createPublicKey({ key: { kty: j.kty, crv: j.crv, x: j.x, ...(j.y !== undefined ? { y: j.y } : {}) } as never, format: 'jwk' });
      if (algOfKey(key) !== k.alg) return { ok: false, errors: ['alg: does not match the key'] };
      jwk = toPublicJwk(key);
    }
  } catch (e) {
    return { ok: false, errors: [`public key: ${(e as Error).message}`] };
  }
  if (jwkThumbprint(jwk) !== k.kid) return { ok: false, errors: ['kid: is not the thumbprint of the public key (RFC 7638)'] };
  return {
    ok: true,
    value: {
      kind: k.kind,
      kid: k.kid,
      alg: k.alg as CaAlg,
      status: k.status,
      notBefore: k.notBefore,
      notAfter: k.notAfter,
      // Peers' keys are never in a slot; the thresholds are kept only for the record's shape.
      prepareNextAt: k.notAfter,
      activateNextAt: k.notAfter,
      publicJwk: jwk,
      ...(certPem !== undefined && k.status !== 'revoked' ? { certPem } : {}),
      origin,
    },
  };
}

const bundleView = (r: KeyRecord): string => `${r.kind}/${r.kid}/${inBundle(r.status) ? 'in' : 'out'}`;
const fullView = (r: KeyRecord): string => JSON.stringify([r.kind, r.kid, r.status, r.notBefore, r.notAfter, r.certPem ?? '']);

/**
 * Replace every record of `origin` by `incoming` (already checked). Expired peer keys (past
 * notAfter plus the prune grace) are left out. Own keys and other origins are untouched.
 * Returns undefined when nothing changed (no journal write needed).
 */
export function applyPeerKeys(records: readonly KeyRecord[], origin: string, incoming: readonly KeyRecord[], now: number, graceMs: number): Transition | undefined {
  const before = records.filter((r) => r.origin === origin);
  const after = incoming.filter((r) => r.origin === origin && now < r.notAfter + graceMs).sort((a, b) => (a.kid < b.kid ? -1 : 1));
  const same = (f: (r: KeyRecord) => string) =>
    JSON.stringify(before.map(f).sort()) === JSON.stringify(after.map(f).sort());
  if (same(fullView)) return undefined;
  const removed = before.filter((b) => !after.some((a) => a.kind === b.kind && a.kid === b.kid));
  return {
    records: [...records.filter((r) => r.origin !== origin), ...after],
    bundleChanged: !same((r) => (inBundle(r.status) ? bundleView(r) : '')),
    removed,
  };
}
