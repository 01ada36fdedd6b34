/**
 * Typed SDK failures with stable codes (`workload_api.*` for the Workload API, `sdk.*` for local
 * misuse of state). Authentication failures of a peer surface as AuthnError from src/authn.
 */
import * as grpc from '@grpc/grpc-js';

export type WorkloadApiErrorCode =
  | 'workload_api.unauthenticated'
  | 'workload_api.permission_denied'
  | 'workload_api.proof_rejected'
  | 'workload_api.unavailable'
  | 'workload_api.bad_response'
  | 'workload_api.internal'
  | 'workload_api.closed';

export class WorkloadApiError extends Error {
  override readonly name = 'WorkloadApiError';
  constructor(
    readonly code: WorkloadApiErrorCode,
    message: string,
    /** The gRPC status, when the error came from the server. */
    readonly grpcStatus?: grpc.status,
    /** For `workload_api.proof_rejected`: the server's proof code, e.g. `proof.replay`. */
    readonly proofCode?: string,
  ) {
    super(message);
  }

  /** Worth retrying later with the same entitlement (network, server trouble). */
  get retryable(): boolean {
    return this.code === 'workload_api.unavailable' || this.code === 'workload_api.internal';
  }
}

/** Translate a gRPC failure of the Workload API into a WorkloadApiError (the one table). */
export function fromGrpcError(err: unknown): WorkloadApiError {
  if (err instanceof WorkloadApiError) return err;
  const e = err as Partial<grpc.ServiceError>;
  const details = typeof e.details === 'string' ? e.details : String((err as Error)?.message ?? err);
  switch (e.code) {
    case grpc.status.UNAUTHENTICATED:
      return new WorkloadApiError('workload_api.unauthenticated', `the Workload API refused the node credentials: ${details}`, e.code);
    case grpc.status.PERMISSION_DENIED:
      return new WorkloadApiError('workload_api.permission_denied', `not entitled to the requested identity: ${details}`, e.code);
    case grpc.status.INVALID_ARGUMENT: {
      // The server answers `<proof code>: <detail>` (src/workload-api/server.ts).
      const m = /^(proof\.[a-z_]+):/.exec(details);
      return new WorkloadApiError('workload_api.proof_rejected', `the proof of possession was rejected: ${details}`, e.code, m?.[1]);
    }
    case grpc.status.UNAVAILABLE:
    case grpc.status.DEADLINE_EXCEEDED:
    case grpc.status.RESOURCE_EXHAUSTED:
    case grpc.status.CANCELLED:
      return new WorkloadApiError('workload_api.unavailable', `the Workload API is unavailable: ${details}`, e.code);
    default:
      return new WorkloadApiError('workload_api.internal', `the Workload API failed: ${details}`, e.code);
  }
}
