/** Typed errors of the cluster bus, each with a stable code (STYLE §4). */

export type ClusterErrorCode =
  | 'ERR_CLUSTER_REVISION_MISMATCH'
  | 'ERR_CLUSTER_UNAVAILABLE'
  | 'ERR_CLUSTER_INVALID_RECORD'
  | 'ERR_CLUSTER_NOT_OWNER'
  | 'ERR_CLUSTER_TOO_LARGE'
  | 'ERR_CLUSTER_CLOSED';

export class ClusterError extends Error {
  override readonly name = 'ClusterError';
  readonly code: ClusterErrorCode;
  /** Field-path problems for ERR_CLUSTER_INVALID_RECORD. */
  readonly errors: string[];
  /** For ERR_CLUSTER_REVISION_MISMATCH: the revision the caller expected. */
  readonly expectedRevision?: number;

  constructor(code: ClusterErrorCode, message: string, extra: { errors?: string[]; expectedRevision?: number; cause?: unknown } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.code = code;
    this.errors = extra.errors ?? [];
    if (extra.expectedRevision !== undefined) this.expectedRevision = extra.expectedRevision;
  }
}

export const isClusterError = (e: unknown, code?: ClusterErrorCode): e is ClusterError =>
  e instanceof ClusterError && (code === undefined || e.code === code);
