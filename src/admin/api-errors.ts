/**
 * Admin API failures as gRPC statuses. Handlers throw `AdminError` (or a CA error, mapped here
 * by its stable code); anything else is an INTERNAL "internal error" and is logged, never shown.
 * Every message says what was wrong and how to fix it.
 */
import * as grpc from '@grpc/grpc-js';
import { isCaError, type CaErrorCode } from '../ca/errors.ts';

export class AdminError extends Error {
  override readonly name = 'AdminError';
  constructor(
    readonly status: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

export const invalidArgument = (field: string, problem: string): AdminError => new AdminError(grpc.status.INVALID_ARGUMENT, `${field}: ${problem}`);
export const notFound = (message: string): AdminError => new AdminError(grpc.status.NOT_FOUND, message);
export const alreadyExists = (message: string): AdminError => new AdminError(grpc.status.ALREADY_EXISTS, message);
export const failedPrecondition = (message: string): AdminError => new AdminError(grpc.status.FAILED_PRECONDITION, message);

const CA_STATUS: Record<CaErrorCode, grpc.status> = {
  'ca.journal_corrupt': grpc.status.INTERNAL,
  'ca.journal_mismatch': grpc.status.INTERNAL,
  'ca.journal_locked': grpc.status.INTERNAL,
  'ca.journal_unloadable': grpc.status.INTERNAL,
  'ca.federation_bundle_invalid': grpc.status.INVALID_ARGUMENT,
  'ca.invalid_workload_id': grpc.status.INVALID_ARGUMENT,
  'ca.wrong_trust_domain': grpc.status.INVALID_ARGUMENT,
  'ca.invalid_public_key': grpc.status.INVALID_ARGUMENT,
  'ca.invalid_dns_name': grpc.status.INVALID_ARGUMENT,
  'ca.invalid_csr': grpc.status.INVALID_ARGUMENT,
  'ca.no_active_key': grpc.status.FAILED_PRECONDITION,
  'ca.unknown_key': grpc.status.NOT_FOUND,
  'ca.key_state': grpc.status.FAILED_PRECONDITION,
};

const CA_FIX: Partial<Record<CaErrorCode, string>> = {
  'ca.invalid_workload_id': 'Use a workload identifier such as wimse://<trust domain>/<path> or spiffe://<trust domain>/<path>',
  'ca.wrong_trust_domain': 'This node issues only for its own trust domain',
  'ca.invalid_public_key': 'Pass a public JWK with kty, crv, x (and y for EC) and alg (ES256, ES384 or EdDSA)',
  'ca.invalid_dns_name': 'Use lower-case DNS names',
  'ca.invalid_csr': 'Pass a PEM PKCS#10 CSR signed by its own key (P-256, P-384 or Ed25519)',
  'ca.no_active_key': 'Check `wimsectl authority show`; activate a prepared key or wait for the rotator',
  'ca.unknown_key': 'List the keys with `wimsectl authority show`',
  'ca.key_state': 'See the key lifecycle in docs/ca.md: only a tainted key can be revoked, and a tainted or revoked key cannot be tainted again',
};

const serviceError = (code: grpc.status, details: string): grpc.ServiceError =>
  Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() }) as grpc.ServiceError;

/** The status a failed handler answers with; `onInternal` sees unexpected errors (to log them). */
export function toServiceError(e: unknown, onInternal: (e: unknown) => void): grpc.ServiceError {
  if (e instanceof AdminError) return serviceError(e.status, e.message);
  if (isCaError(e)) {
    const fix = CA_FIX[e.code];
    return serviceError(CA_STATUS[e.code], `${e.code}: ${e.detail}${fix ? `. ${fix}` : ''}`);
  }
  onInternal(e);
  return serviceError(grpc.status.INTERNAL, 'internal error; see the node log');
}
