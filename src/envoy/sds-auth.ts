/**
 * Who is asking for secrets: authentication of an Envoy on the SDS connection.
 *
 * grpc-js exposes no Unix-socket peer credentials (spec/envoy.md §1.10), and `node.id` is chosen
 * by the caller, so it is only an assertion. Two credentials bind a call to a node id:
 * - a node token, sent as gRPC metadata `authorization: Bearer <token>` (Envoy:
 *   `grpc_services[].initial_metadata`), issued for one node id and stored only as its SHA-256
 *   digest, revocable;
 * - a TLS client certificate on the SDS connection (TCP listener with client-certificate
 *   verification), mapped to a node id by a configured function.
 * The first request's `node.id` must then equal the authenticated node id (sds.ts).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import type { Checked } from '../identity/result.ts';

export interface NodeTokenRecord {
  readonly nodeId: string;
  /** base64url SHA-256 of the token. */
  readonly sha256: string;
  readonly revoked?: boolean;
}

export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('base64url');

const TOKEN_PREFIX = 'wnt_';
const NODE_ID = /^[\x21-\x7e]{1,256}$/;

/** Node tokens, stored hashed. The token itself exists only in the issue() result. */
export class NodeTokenStore {
  readonly #byHash = new Map<string, NodeTokenRecord>();
  readonly #revokeListeners = new Set<(hash: string, nodeId: string) => void>();

  constructor(records: readonly NodeTokenRecord[] = []) {
    for (const r of records) this.#byHash.set(r.sha256, r);
  }

  /** Parse the node-token file (`{"tokens": [{nodeId, sha256, revoked?}]}`). */
  static parse(doc: unknown): Checked<NodeTokenStore> {
    const errors: string[] = [];
    const tokens = (doc as { tokens?: unknown } | null)?.tokens;
    if (!Array.isArray(tokens)) return { ok: false, errors: ['tokens: must be a list'] };
    const records: NodeTokenRecord[] = [];
    tokens.forEach((t: unknown, i) => {
      const r = t as Record<string, unknown> | null;
      if (!r || typeof r !== 'object') return void errors.push(`tokens[${i}]: must be an object`);
      if (typeof r.nodeId !== 'string' || !NODE_ID.test(r.nodeId)) errors.push(`tokens[${i}].nodeId: must be 1-256 printable ASCII characters`);
      if (typeof r.sha256 !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(r.sha256)) errors.push(`tokens[${i}].sha256: must be a base64url SHA-256 digest`);
      if (r.revoked !== undefined && typeof r.revoked !== 'boolean') errors.push(`tokens[${i}].revoked: must be a boolean`);
      if (errors.length === 0) records.push({ nodeId: r.nodeId as string, sha256: r.sha256 as string, ...(r.revoked ? { revoked: true } : {}) });
    });
    return errors.length ? { ok: false, errors } : { ok: true, value: new NodeTokenStore(records) };
  }

  toJSON(): { tokens: NodeTokenRecord[] } {
    return { tokens: [...this.#byHash.values()] };
  }

  /** Issue a token bound to `nodeId`; the caller shows it once and it is never stored. */
  issue(nodeId: string): string {
    if (!NODE_ID.test(nodeId)) throw new TypeError('"nodeId" must be 1-256 printable ASCII characters');
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    this.#byHash.set(hashToken(token), { nodeId, sha256: hashToken(token) });
    return token;
  }

  /** Revoke every token of `nodeId`; live streams authenticated by them are ended. Returns the count. */
  revokeNode(nodeId: string): number {
    let n = 0;
    for (const [h, r] of this.#byHash)
      if (r.nodeId === nodeId && !r.revoked) {
        this.#byHash.set(h, { ...r, revoked: true });
        n++;
        for (const l of this.#revokeListeners) l(h, nodeId);
      }
    return n;
  }

  /** The node id a presented token is bound to, or undefined (unknown or revoked). */
  verify(token: string): { nodeId: string; sha256: string } | undefined {
    const h = hashToken(token);
    const r = this.#byHash.get(h);
    if (!r || r.revoked) return undefined;
    // The map lookup already matched; compare again in constant time for good measure.
    if (!timingSafeEqual(Buffer.from(r.sha256), Buffer.from(h))) return undefined;
    return { nodeId: r.nodeId, sha256: h };
  }

  onRevoke(listener: (sha256: string, nodeId: string) => void): () => void {
    this.#revokeListeners.add(listener);
    return () => this.#revokeListeners.delete(listener);
  }
}

export type CallerIdentity =
  | { readonly ok: true; readonly nodeId: string; readonly via: 'token'; readonly tokenHash: string }
  | { readonly ok: true; readonly nodeId: string; readonly via: 'certificate' }
  | { readonly ok: false; readonly reason: 'no_credentials' | 'bad_token' | 'unknown_certificate' };

export interface CallerAuthOptions {
  readonly tokens?: NodeTokenStore;
  /** Maps a verified TLS client certificate of the SDS connection to a node id. */
  readonly nodeIdFromCertificate?: (cert: PeerCertificate) => string | undefined;
}

/**
 * Authenticate a call from its `authorization` metadata values and its TLS peer certificate
 * (present only when the listener verified one). A token, when sent, must be valid: a bad
 * token is never rescued by a certificate.
 */
export function authenticateCaller(
  authorization: readonly string[],
  peerCertificate: PeerCertificate | undefined,
  opts: CallerAuthOptions,
): CallerIdentity {
  if (authorization.length > 0) {
    if (authorization.length !== 1 || !opts.tokens) return { ok: false, reason: 'bad_token' };
    const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(authorization[0]!);
    const v = m ? opts.tokens.verify(m[1]!) : undefined;
    return v ? { ok: true, nodeId: v.nodeId, via: 'token', tokenHash: v.sha256 } : { ok: false, reason: 'bad_token' };
  }
  if (peerCertificate && opts.nodeIdFromCertificate && Object.keys(peerCertificate).length > 0) {
    const nodeId = opts.nodeIdFromCertificate(peerCertificate);
    return nodeId ? { ok: true, nodeId, via: 'certificate' } : { ok: false, reason: 'unknown_certificate' };
  }
  return { ok: false, reason: 'no_credentials' };
}
