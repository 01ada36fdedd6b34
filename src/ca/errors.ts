/**
 * Typed Identity Server failures, each with a stable machine-readable `code` (`ca.<reason>`).
 *
 * Two families, kept apart (STYLE.md §5): a caller asking for something invalid (a bad
 * identifier, a foreign trust domain, a bad key or CSR) gets a `CaRequestError`; a broken or
 * mismatched state directory gets a `JournalCorruptError` / `JournalMismatchError` and the node
 * refuses to start. Misuse of the API (bad options) throws a plain `TypeError` at construction.
 */
import type { KeyKind } from './key-record.ts';

export type CaErrorCode =
  | 'ca.journal_corrupt'
  | 'ca.journal_mismatch'
  | 'ca.journal_locked'
  | 'ca.journal_unloadable'
  | 'ca.federation_bundle_invalid'
  | 'ca.invalid_workload_id'
  | 'ca.wrong_trust_domain'
  | 'ca.invalid_public_key'
  | 'ca.invalid_dns_name'
  | 'ca.invalid_csr'
  | 'ca.no_active_key'
  | 'ca.unknown_key'
  | 'ca.key_state';

export class CaError extends Error {
  override readonly name: string = 'CaError';
  constructor(
    readonly code: CaErrorCode,
    /** Safe to show to a caller: never key material or whole tokens. */
    readonly detail: string,
  ) {
    super(`${code}: ${detail}`);
  }
}

/** Why a journal file was refused. */
export type JournalCorruptReason =
  | 'empty'
  | 'truncated'
  | 'bad_header'
  | 'wrong_format'
  | 'unsupported_version'
  | 'checksum_mismatch'
  | 'bad_body'
  | 'unreadable';

/** The journal exists but cannot be trusted. The node must not start (and must not regenerate keys). */
export class JournalCorruptError extends CaError {
  override readonly name = 'JournalCorruptError';
  constructor(
    readonly path: string,
    readonly reason: JournalCorruptReason,
    detail: string,
  ) {
    super('ca.journal_corrupt', `${path}: ${reason}: ${detail}`);
  }

  /** What an operator can do about it. */
  get remedy(): string {
    const caDir = this.path.replace(/\/[^/]*$/, '');
    return this.reason === 'unreadable'
      ? `give this process read access to ${caDir}`
      : `restore it from a copy of this node's state directory, or move ${caDir} aside to start with new keys (their roots replace the old ones in the trust bundle; SDS re-issues every certificate)`;
  }
}

/** The journal is intact but belongs to another trust domain. */
export class JournalMismatchError extends CaError {
  override readonly name = 'JournalMismatchError';
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super('ca.journal_mismatch', `${path}: ${detail}`);
  }

  /** What an operator can do about it. */
  get remedy(): string {
    return 'give this trust domain a stateDir of its own, or set trustDomain back to the journal\'s';
  }
}

/**
 * A change would have written a journal that the next start refuses to load: nothing was
 * written, the journal on disk is the previous one, and the change did not happen.
 */
export class JournalUnloadableError extends CaError {
  override readonly name = 'JournalUnloadableError';
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super('ca.journal_unloadable', `${path}: not written, it would not load: ${detail}`);
  }
}

/**
 * Another process holds the state directory, or may (src/ca/state-lock.ts): `why` says which,
 * `remedy` what to check and which file to remove.
 */
export class JournalLockedError extends CaError {
  override readonly name = 'JournalLockedError';
  constructor(
    readonly path: string,
    readonly holderPid: number | undefined,
    readonly why: string,
    readonly remedy: string,
  ) {
    super('ca.journal_locked', `${path}: ${why}. ${remedy}`);
  }
}

/** A federated SPIFFE bundle file could not be loaded; every problem carries its field path. */
export class FederationBundleError extends CaError {
  override readonly name = 'FederationBundleError';
  constructor(
    readonly path: string,
    readonly errors: readonly string[],
  ) {
    super('ca.federation_bundle_invalid', `${path}: ${errors.join('; ')}`);
  }
}

/** A request to issue was refused; `code` says why. */
export class CaRequestError extends CaError {
  override readonly name = 'CaRequestError';
}

/** No key of this kind is active: nothing may be signed (fail closed). */
export class NoActiveKeyError extends CaError {
  override readonly name = 'NoActiveKeyError';
  constructor(readonly kind: KeyKind) {
    super('ca.no_active_key', `no active ${kind} key`);
  }
}

/** An operator verb named a key that does not exist or is in the wrong state for it. */
export class KeyStateError extends CaError {
  override readonly name = 'KeyStateError';
  constructor(
    code: 'ca.unknown_key' | 'ca.key_state',
    readonly kind: KeyKind,
    readonly kid: string | undefined,
    detail: string,
  ) {
    super(code, detail);
  }
}

export const isCaError = (e: unknown): e is CaError => e instanceof CaError;
