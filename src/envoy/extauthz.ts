/**
 * Envoy ext_authz v3 (`envoy.service.auth.v3.Authorization/Check`): the PEP on every request.
 *
 * One unary call: translate the CheckRequest (check-request.ts), authenticate the caller
 * (src/authn), decide (src/policy, through the port below), answer (check-response.ts).
 * Denials carry the status the drafts call for (400, 401 + `WWW-Authenticate: WPT`, 403 for
 * policy). Our own failures are answered as a denial with 503, never as an allow and never as a
 * gRPC error (a gRPC error would let an Envoy configured with `failure_mode_allow` through).
 *
 * Before any of that, the proxy asking is authenticated as on SDS: its node token (gRPC metadata
 * `authorization: Bearer <token>`, Envoy's `grpc_service.initial_metadata`). A call without live
 * node credentials is answered with the gRPC status UNAUTHENTICATED, not a decision: the request
 * is not looked at, no WPT is consumed, and nothing is said about the policy.
 */
import { randomUUID } from 'node:crypto';
import type { AuthenticatedCall } from '../caller-streams.ts';
import * as grpc from '@grpc/grpc-js';
import { isAuthnError } from '../authn/errors.ts';
import type { AuthnRequest } from '../authn/request.ts';
import type { Logger } from '../log.ts';
import { routeSettings, toAuthnRequest, type CheckRequestMessage, type RouteSettings } from './check-request.ts';
import { deniedResponse, okResponse, WIMSE_HEADER_PREFIX, type Denied } from './check-response.ts';

export type AuthMethod = 'mtls' | 'wpt' | 'httpsig';

/** `Retry-After` on a 503 the client may retry (a replay cache frees entries every second). */
export const RETRY_AFTER_SEC = 1;

/**
 * Thrown by a port that cannot decide now through no fault of the request (e.g. a cluster node
 * that cannot confirm the keys a credential rests on): denied with 503 and this code, so Envoy
 * or the caller can retry elsewhere.
 */
export class CheckUnavailable extends Error {
  constructor(
    readonly code: string,
    readonly detail: string,
  ) {
    super(`${code}: ${detail}`);
  }
}

export interface Authenticated {
  caller: string;
  via: AuthMethod;
  transportPeer?: string;
}

export interface AuthzInput {
  /** The id this decision is logged and answered under. */
  decisionId: string;
  caller: string;
  via: AuthMethod;
  transportPeer?: string;
  destination: string;
  method: string;
  path: string;
}

export interface AuthzDecision {
  allow: boolean;
  /** Stable code: why it was allowed or denied (e.g. `policy.no_rule`). */
  reason: string;
  rule?: string;
}

/** What ext_authz needs from the rest of the node; the composition root provides it. */
export interface CheckPorts {
  /** Throws AuthnError when the caller cannot be authenticated. */
  authenticate(req: AuthnRequest, ctx: { audiences: readonly string[] }): Authenticated | Promise<Authenticated>;
  authorize(input: AuthzInput): AuthzDecision | Promise<AuthzDecision>;
  /** Accepted audiences of a destination when the route names none. */
  audiencesFor(destination: string): readonly string[];
  logger: Logger;
  onCheck?(outcome: CheckOutcome): void;
}

/** What the gRPC service needs besides the decision: who the asking proxy is. */
export interface CheckServicePorts extends CheckPorts {
  /**
   * The node id of the proxy making this call (its `authorization` metadata and the TLS client
   * certificate the listener verified, read as SDS reads them: `authenticateCall`); undefined
   * when it is not authenticated.
   */
  authenticateProxy(call: AuthenticatedCall): string | undefined;
}

/** The code a Check refused for want of node credentials is counted under (`onCheck`). */
export const PROXY_UNAUTHENTICATED = 'proxy.unauthenticated';

export interface CheckOutcome {
  allowed: boolean;
  code: string;
  via?: AuthMethod;
  seconds: number;
}

/** Decide one request; never throws. */
export async function check(msg: CheckRequestMessage, ports: CheckPorts): Promise<Record<string, unknown>> {
  const started = process.hrtime.bigint();
  const decisionId = randomUUID();
  let via: AuthMethod | undefined;
  const finish = (res: Record<string, unknown>, allowed: boolean, code: string) => {
    ports.onCheck?.({ allowed, code, ...(via ? { via } : {}), seconds: Number(process.hrtime.bigint() - started) / 1e9 });
    return res;
  };
  const deny = (d: Omit<Denied, 'decisionId'>) => {
    ports.logger.info({ decisionId, code: d.code, status: d.status, caller: d.caller, via: d.via }, 'request denied');
    return finish(deniedResponse({ ...d, decisionId }), false, d.code);
  };
  try {
    const route: RouteSettings = routeSettings(msg);
    // The destination comes from trusted configuration only: the route's context_extensions,
    // else the identity in Envoy's own certificate. Never from Host / :authority.
    const destination = route.destination ?? msg.attributes?.destination?.principal ?? '';
    if (!destination) return deny({ status: 503, code: 'config.no_destination', detail: 'the route names no destination workload' });
    const audiences = route.audiences.length > 0 ? route.audiences : ports.audiencesFor(destination);

    const req = toAuthnRequest(msg);
    const who = await ports.authenticate(req, { audiences });
    via = who.via;
    const decision = await ports.authorize({
      decisionId,
      caller: who.caller,
      via: who.via,
      ...(who.transportPeer ? { transportPeer: who.transportPeer } : {}),
      destination,
      method: req.method,
      path: req.path,
    });
    if (!decision.allow) {
      return deny({
        status: 403,
        code: decision.reason,
        detail: 'the caller is not allowed to make this request',
        caller: who.caller,
        via: who.via,
        ...(who.transportPeer ? { transportPeer: who.transportPeer } : {}),
      });
    }
    ports.logger.debug({ decisionId, caller: who.caller, via: who.via, rule: decision.rule }, 'request allowed');
    return finish(
      okResponse({
        caller: who.caller,
        via: who.via,
        decisionId,
        ...(who.transportPeer ? { transportPeer: who.transportPeer } : {}),
        ...(decision.rule ? { rule: decision.rule } : {}),
        clientWimseHeaders: [...req.headers.keys()].filter((k) => k.startsWith(WIMSE_HEADER_PREFIX)),
      }),
      true,
      decision.reason,
    );
  } catch (err) {
    if (isAuthnError(err)) {
      // Temporarily unable to check (a replay cache full of live tokens): the client may retry.
      // Counted by the cache's own metric and logged by deny() like every denial.
      if (err.status === 503) return deny({ status: 503, code: err.code, detail: err.detail, retryAfterSec: RETRY_AFTER_SEC });
      if (err.status >= 500) ports.logger.error({ decisionId, code: err.code }, 'authentication failed internally');
      return deny({ status: err.status >= 500 ? 503 : err.status, code: err.code, detail: err.detail, ...(err.challenge ? { challenge: err.challenge } : {}) });
    }
    if (err instanceof CheckUnavailable) return deny({ status: 503, code: err.code, detail: err.detail });
    ports.logger.error({ decisionId, err: (err as Error)?.message }, 'check failed internally');
    return deny({ status: 503, code: 'internal.error', detail: 'the authorization service failed; the request is denied' });
  }
}

/** The grpc-js implementation of `envoy.service.auth.v3.Authorization`. */
export function extAuthzService(ports: CheckServicePorts): grpc.UntypedServiceImplementation {
  return {
    Check(call: grpc.ServerUnaryCall<CheckRequestMessage, unknown>, callback: grpc.sendUnaryData<unknown>) {
      const started = process.hrtime.bigint();
      if (ports.authenticateProxy(call) === undefined) {
        ports.onCheck?.({ allowed: false, code: PROXY_UNAUTHENTICATED, seconds: Number(process.hrtime.bigint() - started) / 1e9 });
        const details =
          'the proxy is not authenticated: send its node token as authorization: Bearer <token> (grpc_service.initial_metadata), or a client certificate that names its node (grpc.tls.nodeIdFromCertificate)';
        return callback({ code: grpc.status.UNAUTHENTICATED, details, metadata: new grpc.Metadata() } as grpc.ServiceError);
      }
      check(call.request, ports).then(
        (res) => callback(null, res),
        // check() never rejects; this is a last resort that still denies.
        () => callback(null, deniedResponse({ status: 503, code: 'internal.error', detail: 'denied', decisionId: randomUUID() })),
      );
    },
  };
}
