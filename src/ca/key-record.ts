/**
 * The data of the key lifecycle (SPIRE's slots, STYLE.md §4 and §10): a closed set of kinds and
 * statuses, stored in the journal next to each key.
 *
 * - `x509`: an X.509 CA key with its self-signed CA certificate (signs WICs);
 * - `wit`: a JWS key (signs WITs).
 *
 * Status (docs/ca.md "Key lifecycle"):
 * - `prepared`: in the trust bundle, signs nothing yet;
 * - `active`: the one key of its kind that signs;
 * - `old`: no longer signs, still in the bundle until its own notAfter (+ grace), because
 *   nothing it signed outlives it;
 * - `tainted`: an operator said it must go: no longer signs, still in the bundle (so credentials
 *   in flight keep verifying) while everything it signed is re-issued;
 * - `revoked`: out of the bundle; a tombstone without private key until it is pruned.
 */
export const KEY_KINDS = ['x509', 'wit'] as const;
export type KeyKind = (typeof KEY_KINDS)[number];

export const KEY_STATUSES = ['prepared', 'active', 'old', 'tainted', 'revoked'] as const;
export type KeyStatus = (typeof KEY_STATUSES)[number];

/** Signing algorithms of our own keys. `EdDSA` is the name the WIMSE examples use (RFC 9864 §2). */
export const CA_ALGS = ['ES256', 'EdDSA'] as const;
export type CaAlg = (typeof CA_ALGS)[number];

/** Statuses whose public key is published in the trust bundle. */
export const inBundle = (s: KeyStatus): boolean => s !== 'revoked';

export interface PublicKeyJwk {
  kty: 'EC' | 'OKP';
  crv: 'P-256' | 'Ed25519';
  x: string;
  y?: string;
}

/** One key as kept in the journal. Times are milliseconds since the epoch. */
export interface KeyRecord {
  readonly kind: KeyKind;
  /** RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key. */
  readonly kid: string;
  readonly alg: CaAlg;
  readonly status: KeyStatus;
  /** When the key was created (prepared); the start of its lifetime. */
  readonly notBefore: number;
  /** End of the key's lifetime: nothing it signs outlives this. */
  readonly notAfter: number;
  /** Thresholds fixed at creation from the timing config (see slot.ts). */
  readonly prepareNextAt: number;
  readonly activateNextAt: number;
  readonly activatedAt?: number;
  readonly taintedAt?: number;
  readonly revokedAt?: number;
  readonly publicJwk: PublicKeyJwk;
  /** PKCS#8 PEM. Absent for revoked tombstones (and, later, for other nodes' public keys). */
  readonly privateKeyPem?: string;
  /** The self-signed CA certificate (x509 keys only), PEM. */
  readonly certPem?: string;
  /**
   * The node that owns this key when it is another node's public key (src/node-cluster.ts).
   * Absent for our own keys. Such records carry no private key and never sign.
   */
  readonly origin?: string;
}
