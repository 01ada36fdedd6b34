/**
 * Per-stream SotW bookkeeping for StreamSecrets, and the classification of each request.
 *
 * The rules are those of the xDS protocol as Envoy, go-control-plane, Istio and SPIRE apply them
 * (https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol). This file
 * is pure: no gRPC, no secrets, no clock.
 */

/** The Envoy `Node` fields we keep (first message only; later messages need not carry it). */
export interface EnvoyNode {
  readonly id: string;
  readonly cluster: string;
  readonly userAgentName: string;
  readonly userAgentVersion: string;
}

export interface SdsStreamState {
  /** The node id the caller authenticated as (token or certificate). */
  readonly authenticatedNodeId: string;
  /** From the first request (§2.3 rule 1). */
  node: EnvoyNode | undefined;
  /** True once the first request was handled. */
  initialized: boolean;
  /** Subscribed secret names, byte-exact. */
  readonly subscribed: Set<string>;
  /** Nonce of our last response on this stream, '' before any. */
  lastNonceSent: string;
  lastVersionSent: string;
  lastAckedVersion: string;
  /** Name -> digest of the content last sent for it on this stream. */
  readonly sent: Map<string, string>;
  nacks: number;
}

export const newStreamState = (authenticatedNodeId: string): SdsStreamState => ({
  authenticatedNodeId,
  node: undefined,
  initialized: false,
  subscribed: new Set(),
  lastNonceSent: '',
  lastVersionSent: '',
  lastAckedVersion: '',
  sent: new Map(),
  nacks: 0,
});

/** The parts of a DiscoveryRequest the state machine reads. */
export interface SdsRequest {
  readonly version_info?: string;
  readonly node?: {
    id?: string;
    cluster?: string;
    user_agent_name?: string;
    user_agent_build_version?: { version?: { major_number?: number; minor_number?: number; patch?: number } };
  } | null;
  readonly resource_names?: readonly string[];
  readonly type_url?: string;
  readonly response_nonce?: string;
  readonly error_detail?: { code?: number; message?: string } | null;
}

export type RequestVerdict =
  /** First request on the stream: respond with every named secret, whatever version it names. */
  | { readonly kind: 'init'; readonly send: readonly string[] }
  /** Nonce is not our last one: ignore the request entirely. */
  | { readonly kind: 'stale' }
  /** Rejected our last response: log, count, do not resend; send only newly added names. */
  | { readonly kind: 'nack'; readonly send: readonly string[]; readonly removed: readonly string[]; readonly message: string }
  /** Accepted: send only newly added names (an empty list unsubscribes everything). */
  | { readonly kind: 'ack'; readonly send: readonly string[]; readonly removed: readonly string[] };

/** Classify `req` and update `state` accordingly. */
export function applyRequest(state: SdsStreamState, req: SdsRequest): RequestVerdict {
  const names = [...new Set(req.resource_names ?? [])];
  if (!state.initialized) {
    // xds_protocol "Resource warming"/reconnect: the first request on any stream may carry an
    // old version and even an old nonce; it is always answered with current data.
    state.initialized = true;
    state.node = nodeOf(req.node);
    for (const n of names) state.subscribed.add(n);
    return { kind: 'init', send: names };
  }
  // xds_protocol: a response_nonce that is not the latest nonce we sent is stale; ignore it.
  if ((req.response_nonce ?? '') !== state.lastNonceSent) return { kind: 'stale' };

  const wanted = new Set(names);
  const added = names.filter((n) => !state.subscribed.has(n));
  const removed = [...state.subscribed].filter((n) => !wanted.has(n));
  for (const n of removed) {
    state.subscribed.delete(n);
    state.sent.delete(n);
  }
  for (const n of added) {
    state.subscribed.add(n);
    // A newly (re)subscribed name is sent even if this stream had it before.
    state.sent.delete(n);
  }
  if (req.error_detail) {
    // A NACK: version_info is the last version the client accepted. Keep `sent` as is, so the
    // rejected content is not sent again; the next real change is.
    state.nacks++;
    return { kind: 'nack', send: added, removed, message: String(req.error_detail.message ?? '') };
  }
  state.lastAckedVersion = req.version_info ?? '';
  return { kind: 'ack', send: added, removed };
}

function nodeOf(node: SdsRequest['node']): EnvoyNode | undefined {
  if (!node) return undefined;
  const v = node.user_agent_build_version?.version;
  return {
    id: node.id ?? '',
    cluster: node.cluster ?? '',
    userAgentName: node.user_agent_name ?? '',
    userAgentVersion: v ? `${v.major_number ?? 0}.${v.minor_number ?? 0}.${v.patch ?? 0}` : '',
  };
}
