/**
 * Our decisions -> Envoy `CheckResponse`
 * (https://www.envoyproxy.io/docs/envoy/latest/api-v3/service/auth/v3/external_auth.proto). Field
 * names are the wire names (keepCase); `google.protobuf.Struct` values use camelCase keys
 * (protobufjs's bundled well-known types) and wrappers are objects.
 */

/** gRPC status codes used in `CheckResponse.status`. */
export const GRPC = { OK: 0, INVALID_ARGUMENT: 3, PERMISSION_DENIED: 7, UNAUTHENTICATED: 16, INTERNAL: 13 } as const;

/** `envoy.type.v3.StatusCode` names for the statuses we send. */
const HTTP_STATUS_NAME: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  500: 'InternalServerError',
  503: 'ServiceUnavailable',
};
const HTTP_TITLE: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** Request headers we set for the application; any copy the client sent is replaced or removed. */
export const CALLER_HEADER = 'x-wimse-caller';
export const METHOD_HEADER = 'x-wimse-auth';
export const PEER_HEADER = 'x-wimse-transport-peer';
export const DECISION_HEADER = 'x-wimse-decision-id';

const header = (key: string, value: string) => ({ header: { key, value }, append: { value: false } });

const struct = (fields: Record<string, string | undefined>) => ({
  fields: Object.fromEntries(
    Object.entries(fields)
      .filter((e): e is [string, string] => e[1] !== undefined)
      .map(([k, v]) => [k, { stringValue: v }]),
  ),
});

export interface Allowed {
  caller: string;
  via: string;
  transportPeer?: string;
  decisionId: string;
  rule?: string;
  /** Names of the request's own `x-wimse-*` fields (lower case): none may reach the app as sent. */
  clientWimseHeaders?: readonly string[];
}

/** Prefix of the request headers this PEP owns. */
export const WIMSE_HEADER_PREFIX = 'x-wimse-';

export function okResponse(a: Allowed): Record<string, unknown> {
  const headers = [header(CALLER_HEADER, a.caller), header(METHOD_HEADER, a.via), header(DECISION_HEADER, a.decisionId)];
  // Overwriting (append: false) replaces whatever the client sent under these names; the one we
  // may not set is removed explicitly, so a client can never forge it.
  if (a.transportPeer) headers.push(header(PEER_HEADER, a.transportPeer));
  // Every other x-wimse-* field the client sent is removed (Envoy removes by exact name only, so
  // the names present are listed); none of them is one we set, so the order Envoy applies
  // set and remove in does not matter.
  const set = new Set(headers.map((h) => h.header.key));
  const remove = new Set<string>(a.transportPeer ? [] : [PEER_HEADER]);
  for (const name of a.clientWimseHeaders ?? []) if (!set.has(name)) remove.add(name);
  return {
    status: { code: GRPC.OK, message: '' },
    ok_response: { headers, headers_to_remove: [...remove] },
    dynamic_metadata: struct({
      caller: a.caller,
      via: a.via,
      transport_peer: a.transportPeer,
      decision_id: a.decisionId,
      rule: a.rule,
    }),
  };
}

export interface Denied {
  /** HTTP status for the client: 400, 401, 403, or 503 for our own failure. */
  status: number;
  /** Stable machine-readable code, e.g. `wpt.expired`, `policy.denied`. */
  code: string;
  /** Short, safe for the client. */
  detail: string;
  challenge?: string;
  decisionId: string;
  caller?: string;
  via?: string;
  transportPeer?: string;
}

/** An RFC 9457 problem document; it names the code, never token contents or policy internals. */
export function problemBody(d: Pick<Denied, 'status' | 'code' | 'detail' | 'decisionId'>): string {
  return JSON.stringify({
    type: 'about:blank',
    title: HTTP_TITLE[d.status] ?? 'Error',
    status: d.status,
    code: d.code,
    detail: d.detail,
    decision_id: d.decisionId,
  });
}

export function deniedResponse(d: Denied): Record<string, unknown> {
  const grpcCode =
    d.status === 401 ? GRPC.UNAUTHENTICATED : d.status === 403 ? GRPC.PERMISSION_DENIED : d.status >= 500 ? GRPC.INTERNAL : GRPC.INVALID_ARGUMENT;
  const headers = [header('content-type', 'application/problem+json'), header('cache-control', 'no-store')];
  if (d.challenge) headers.push(header('www-authenticate', d.challenge));
  return {
    status: { code: grpcCode, message: d.code },
    denied_response: {
      status: { code: HTTP_STATUS_NAME[d.status] ?? 'Forbidden' },
      headers,
      body: problemBody(d),
    },
    dynamic_metadata: struct({
      decision_id: d.decisionId,
      code: d.code,
      caller: d.caller,
      via: d.via,
      transport_peer: d.transportPeer,
    }),
  };
}
