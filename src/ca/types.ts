/** The public types of the Identity Server facade (identity-server.ts). */
import type { Clock, PublicJwk } from '../identity/index.ts';
import type { FederatedBundleFile } from './bundle.ts';
import type { CaAlg, KeyKind, KeyRecord } from './key-record.ts';
import type { LeafKeySource } from './leaf-key.ts';
import type { CaLogger } from './logger.ts';
import type { Timing } from './slot.ts';

export interface IdentityServerOptions {
  readonly stateDir: string;
  readonly trustDomain: string;
  readonly clock: Clock;
  /** Algorithm of new keys of both kinds (default ES256); `x509Alg`/`witAlg` override per kind. */
  readonly alg?: CaAlg;
  readonly x509Alg?: CaAlg;
  readonly witAlg?: CaAlg;
  readonly timing?: Partial<Timing>;
  /** Default lifetime of WICs and WITs (1 h each). */
  readonly wicTtlSec?: number;
  readonly witTtlSec?: number;
  /**
   * Untouched this long, a state-directory lock whose holder cannot be checked (another host or
   * PID namespace) is stale; a start waits that out once (default 60 s: src/ca/state-lock.ts).
   */
  readonly lockStaleMs?: number;
  /** `iss` of minted WITs (creds §3: RECOMMENDED); omitted when unset. */
  readonly witIssuer?: string;
  readonly federatedBundleFiles?: readonly FederatedBundleFile[];
  readonly refreshHintSec?: number;
  readonly logger?: CaLogger;
}

/** A credential this CA signed, whoever asked (SDS, the Workload API, the admin API). */
export interface IssuedEvent {
  readonly kind: 'wic' | 'wit';
}

export type CaEvent =
  | { readonly type: 'bundle-changed'; readonly trustDomain: string; readonly sequence: number }
  | { readonly type: 'key-prepared' | 'key-activated' | 'key-tainted' | 'key-revoked' | 'key-removed'; readonly kind: KeyKind; readonly kid: string };

/** The public view of a key (no key material): what `keys()` returns. */
export type KeyInfo = Pick<
  KeyRecord,
  'kind' | 'kid' | 'alg' | 'status' | 'notBefore' | 'notAfter' | 'activatedAt' | 'taintedAt' | 'revokedAt' | 'origin'
>;

/** A key's public half, as the cluster publishes it (never any private material). */
export interface PublicKeyInfo extends KeyInfo {
  readonly publicJwk: PublicJwk;
  /** X.509 keys: the CA certificate, PEM. */
  readonly certPem?: string;
}

/**
 * Decides when a prepared key may become active (the cluster's activation gating). Called before
 * the rotator or an operator activates `kid`; resolves when activation may proceed. `signal` is
 * aborted when the wait no longer matters (the key was activated by a taint, tainted, or
 * superseded by another prepared key, or the server closes): the gate should then stop waiting.
 */
export type ActivationGate = (kind: 'x509' | 'wit', kid: string, signal: AbortSignal) => Promise<void>;

export interface WicRequest {
  /** The workload identifier: the certificate's one URI SAN. */
  readonly id: string;
  /** Default: a fresh ES256 key pair generated here. */
  readonly key?: LeafKeySource;
  readonly dnsNames?: readonly string[];
  readonly ttlSec?: number;
}

export interface IssuedWic {
  readonly id: string;
  readonly certPem: string;
  /** The leaf only: roots are self-signed and travel in the bundle. */
  readonly chainPem: string;
  /** PKCS#8 PEM, only when the key pair was generated here. */
  readonly privateKeyPem?: string;
  readonly notBefore: number;
  readonly notAfter: number;
  /** Upper-case hex, as node:crypto X509Certificate.serialNumber prints it. */
  readonly serial: string;
  readonly caKid: string;
}

export interface WitRequest {
  readonly sub: string;
  /** The workload's public key; `alg` REQUIRED. */
  readonly cnf: PublicJwk;
  readonly ttlSec?: number;
}
