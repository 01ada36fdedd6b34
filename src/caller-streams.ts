/**
 * Calls and long-lived streams of callers authenticated by node credentials (SDS StreamSecrets
 * and FetchSecrets, the Workload API's FetchWIT and WatchBundles): one set of rules for who the
 * caller is, when a call is refused, and when an open stream must end, with the status and
 * message it ends with (docs/sds.md "Failure statuses", docs/api.md "Workload API").
 *
 * | what                                                      | status          | message                               |
 * |-----------------------------------------------------------|-----------------|---------------------------------------|
 * | no or bad credentials (a call)                            | UNAUTHENTICATED | `missing or invalid node credentials` |
 * | an open stream's token is revoked (at once)               | UNAUTHENTICATED | `node credentials revoked`            |
 * | an open stream's token or certificate expired (next tick) | UNAUTHENTICATED | `node credentials expired`            |
 * | node tokens cannot be confirmed now                       | UNAVAILABLE     | the reason (`tokensUnconfirmed`)      |
 * | the server closes                                         | UNAVAILABLE     | `control plane shutting down`         |
 *
 * UNAUTHENTICATED tells the client its credentials are no good; UNAVAILABLE that they may be fine
 * elsewhere or later (a stale cluster node, a node going down), so it retries. A caller
 * authenticated by a TLS client certificate holds no token: its streams end when the certificate
 * expires (the connection outlives the handshake that checked it) and when the server closes;
 * cluster staleness does not touch them (a certificate's validity does not rest on the bus).
 */
import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { authenticateCaller, type CallerAuthOptions, type CallerIdentity } from './identity/node-tokens.ts';

/** A caller that authenticated: by a node token (with its digest) or by a certificate. */
export type AuthenticatedCaller = Extract<CallerIdentity, { ok: true }>;

/** Why and how an open stream ends: the gRPC status and message it ends with. */
export interface StreamEnd {
  readonly why: 'revoked' | 'expired' | 'unconfirmed' | 'closing';
  readonly code: grpc.status;
  readonly details: string;
}

/** The message of a call refused for its credentials (the token is never echoed). */
export const INVALID_CREDENTIALS = 'missing or invalid node credentials';

export const SHUTTING_DOWN: StreamEnd = { why: 'closing', code: grpc.status.UNAVAILABLE, details: 'control plane shutting down' };
const REVOKED: StreamEnd = { why: 'revoked', code: grpc.status.UNAUTHENTICATED, details: 'node credentials revoked' };
const EXPIRED: StreamEnd = { why: 'expired', code: grpc.status.UNAUTHENTICATED, details: 'node credentials expired' };

/** The grpc-js call as far as authentication reads it (unary and streaming calls alike). */
export interface AuthenticatedCall {
  readonly metadata: grpc.Metadata;
  getAuthContext(): { sslPeerCertificate?: PeerCertificate };
}

/** Who calls: from the call's `authorization` metadata and the TLS client certificate its listener verified. */
export function authenticateCall(call: AuthenticatedCall, auth: CallerAuthOptions): CallerIdentity {
  const authorization = call.metadata.get('authorization').map((v: grpc.MetadataValue) => (typeof v === 'string' ? v : v.toString('utf8')));
  return authenticateCaller(authorization, call.getAuthContext().sslPeerCertificate, auth);
}

/**
 * Why this caller's credentials cannot be trusted right now (undefined: they can). Only a node
 * token can be unconfirmed: `tokensUnconfirmed` gives the reason (a stale cluster node, which may
 * have missed its revocation).
 */
export function unconfirmed(caller: AuthenticatedCaller, tokensUnconfirmed: (() => string | undefined) | undefined): string | undefined {
  return caller.via === 'token' ? tokensUnconfirmed?.() : undefined;
}

/**
 * Whether an open stream of this caller must end now: its token expired (or was revoked without
 * the revocation being seen), or cannot be confirmed; its certificate expired (by `auth.now`;
 * without a clock, at once). Servers ask on a timer.
 */
export function lapsed(
  caller: AuthenticatedCaller,
  auth: CallerAuthOptions,
  tokensUnconfirmed: (() => string | undefined) | undefined,
): StreamEnd | undefined {
  if (caller.via === 'certificate') {
    const now = auth.now?.();
    return now !== undefined && now < caller.notAfter ? undefined : EXPIRED;
  }
  if (!auth.tokens?.isLive(caller.tokenHash)) return EXPIRED;
  const reason = tokensUnconfirmed?.();
  return reason === undefined ? undefined : { why: 'unconfirmed', code: grpc.status.UNAVAILABLE, details: reason };
}

/** Whether revoking the token with this digest ends an open stream of this caller (`NodeTokenStore.onRevoke`). */
export function revokedBy(caller: AuthenticatedCaller, tokenHash: string): StreamEnd | undefined {
  return caller.via === 'token' && caller.tokenHash === tokenHash ? REVOKED : undefined;
}
