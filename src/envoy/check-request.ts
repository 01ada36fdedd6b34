/**
 * Envoy ext_authz `CheckRequest` -> the normalized `AuthnRequest` of src/authn, exactly as Envoy
 * fills it (envoyproxy/envoy, check_request_utils.cc):
 * - `attributes.request.http.headers`: lower-cased keys, pseudo-headers included, repeated
 *   headers joined with `,` (a comma inside a WIT or Authorization value therefore means the
 *   field was repeated; src/authn rejects it). With `encode_raw_headers`, `header_map` carries
 *   each field line separately and is preferred.
 * - `path` holds path and query, not decoded: split at the first `?`.
 * - `raw_body` (with `pack_as_bytes`) or `body`; `x-envoy-auth-partial-body: true` means the
 *   body was cut, so it is not used (a Content-Digest cannot be checked against part of a body).
 * - mTLS: `source.principal` (set only after a verified handshake) and `source.certificate`
 *   (URL-encoded PEM, with `include_peer_certificate`).
 * - `context_extensions`: the per-route trusted configuration (destination, audiences).
 */
import { AuthnError } from '../authn/errors.ts';
import type { AuthnRequest, TransportPeer } from '../authn/request.ts';

/** The fields of `envoy.service.auth.v3.CheckRequest` we read (proto-loader, keepCase). */
export interface CheckRequestMessage {
  attributes?: {
    source?: { principal?: string; certificate?: string } | null;
    destination?: { principal?: string } | null;
    request?: {
      http?: {
        id?: string;
        method?: string;
        path?: string;
        host?: string;
        scheme?: string;
        headers?: Record<string, string> | null;
        header_map?: { headers?: Array<{ key?: string; value?: string; raw_value?: Buffer | Uint8Array }> } | null;
        body?: string;
        raw_body?: Buffer | Uint8Array;
      } | null;
    } | null;
    context_extensions?: Record<string, string> | null;
  } | null;
}

/** Envoy's route-level settings for this request, from `context_extensions`. */
export interface RouteSettings {
  /** The workload this sidecar fronts (`destination_workload`). */
  destination?: string;
  /** Accepted WPT `aud` / `wimse-aud` values (`audience`, space-separated). */
  audiences: string[];
}

export const MAX_HEADER_COUNT = 256;
export const MAX_HEADERS_BYTES = 96 * 1024;
export const MAX_PATH_BYTES = 16 * 1024;
/**
 * The largest CheckRequest the node's gRPC server receives (`grpc.max_receive_message_length`):
 * a larger one is refused by the transport (RESOURCE_EXHAUSTED) before any check, which Envoy
 * answers with its `status_on_error`.
 */
export const MAX_CHECK_REQUEST_BYTES = 4 * 1024 * 1024;
/**
 * The largest body we check a Content-Digest against. It leaves 1 MiB of the message for the
 * rest (headers counted up to MAX_HEADERS_BYTES, twice with `header_map`; path; the URL-encoded
 * peer chain; context_extensions), so a request with a body over this limit still reaches the
 * handler and is *denied* (`request.malformed`) rather than failing in the transport.
 */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

const malformed = (detail: string): AuthnError => new AuthnError('request.malformed', 400, detail);

export function routeSettings(msg: CheckRequestMessage): RouteSettings {
  const ext = msg.attributes?.context_extensions ?? {};
  const audiences = (ext.audience ?? '').split(/\s+/).filter((a) => a.length > 0);
  return { ...(ext.destination_workload ? { destination: ext.destination_workload } : {}), audiences };
}

function headerPairs(http: NonNullable<NonNullable<NonNullable<CheckRequestMessage['attributes']>['request']>['http']>): Array<[string, string]> {
  const raw = http.header_map?.headers;
  if (raw && raw.length > 0) {
    return raw.map((h) => [
      (h.key ?? '').toLowerCase(),
      h.raw_value && h.raw_value.length > 0 ? Buffer.from(h.raw_value).toString('latin1') : (h.value ?? ''),
    ]);
  }
  return Object.entries(http.headers ?? {});
}

/**
 * Recently decoded peer chains. A peer sends the same certificate on every request of every
 * connection, so the URL decoding (the largest part of translating an mTLS request) is done once
 * per chain; bounded in entries and in the size of what it keeps.
 */
const decodedPems = new Map<string, string>();
const DECODED_PEMS_MAX = 256;
const DECODED_PEM_MAX_CHARS = 16 * 1024;

function decodePeerPem(encoded: string): string {
  const known = decodedPems.get(encoded);
  if (known !== undefined) return known;
  let pem: string;
  try {
    pem = decodeURIComponent(encoded);
  } catch {
    throw malformed('peer certificate is not URL-encoded PEM');
  }
  if (encoded.length <= DECODED_PEM_MAX_CHARS) {
    if (decodedPems.size >= DECODED_PEMS_MAX) decodedPems.delete(decodedPems.keys().next().value as string);
    decodedPems.set(encoded, pem);
  }
  return pem;
}

/** Translate; throws `request.malformed` for a message no real Envoy would send. */
export function toAuthnRequest(msg: CheckRequestMessage): AuthnRequest {
  const http = msg.attributes?.request?.http;
  if (!http) throw malformed('no HTTP request attributes');
  const method = http.method ?? '';
  if (!/^[A-Z][A-Z0-9_-]{0,31}$/.test(method)) throw malformed('method missing or invalid');
  const fullPath = http.path ?? '';
  if (fullPath.length === 0 || fullPath.length > MAX_PATH_BYTES) throw malformed('path missing or too long');
  const q = fullPath.indexOf('?');
  const path = q < 0 ? fullPath : fullPath.slice(0, q);
  const query = q < 0 ? '' : fullPath.slice(q);

  const pairs = headerPairs(http);
  if (pairs.length > MAX_HEADER_COUNT) throw malformed('too many header fields');
  const headers = new Map<string, string[]>();
  let bytes = 0;
  for (const [k, v] of pairs) {
    bytes += k.length + v.length;
    if (bytes > MAX_HEADERS_BYTES) throw malformed('header fields too large');
    if (k.startsWith(':')) continue; // pseudo-headers are request attributes, not fields
    const list = headers.get(k);
    if (list) list.push(v);
    else headers.set(k, [v]);
  }

  let body: Uint8Array | undefined;
  const partial = headers.get('x-envoy-auth-partial-body')?.[0] === 'true';
  if (!partial) {
    if (http.raw_body && http.raw_body.length > 0) body = http.raw_body;
    else if (http.body) body = Buffer.from(http.body, 'utf8');
    if (body && body.length > MAX_BODY_BYTES) throw malformed('body too large');
  }

  const src = msg.attributes?.source;
  let peer: TransportPeer | undefined;
  if (src?.principal || src?.certificate) {
    const chain = src.certificate ? decodePeerPem(src.certificate) : undefined;
    peer = { ...(chain ? { certificateChainPem: chain } : {}), ...(src.principal ? { verifiedPrincipal: src.principal } : {}) };
  }
  return { method, path: path || '/', query, headers, ...(body ? { body } : {}), ...(peer ? { peer } : {}) };
}
