/**
 * A stand-in for a callee's Envoy sidecar (the PEP), for tests and benchmarks: no Envoy binary
 * runs on the test machines, so this front does what Envoy's HTTP ext_authz filter
 * does with envoy/sidecar-callee.yaml, over real sockets and real gRPC:
 *
 * - it builds the `CheckRequest` as check_request_utils.cc does: lower-cased
 *   header names, pseudo-headers (`:authority`, `:method`, `:path`, `:scheme`) in the map, `Host`
 *   turned into `:authority`, repeated fields joined with `,`, `x-request-id` and
 *   `x-forwarded-proto` added by the connection manager, `path` with its query and undecoded,
 *   the body as `raw_body` (`with_request_body.pack_as_bytes`) plus
 *   `x-envoy-auth-partial-body: false`, a body over `max_request_bytes` answered 413 without a
 *   check (`allow_partial_message: false`);
 * - over TLS with a required client certificate: `source.principal` = the peer leaf's first URI
 *   SAN (then DNS SAN, then subject), `source.certificate` = the leaf as URL-encoded PEM
 *   (`include_peer_certificate`), `destination.principal` = its own certificate's URI SAN;
 * - `context_extensions` from the route (`destination_workload`, `audience`);
 * - its node token on every Check (`grpc_service.initial_metadata`: `authorization: Bearer <token>`);
 * - OK: the `ok_response` header mutations (`append` false = overwrite) and `headers_to_remove`
 *   are applied and the request goes to the application; denied: `denied_response` status,
 *   headers and body go back to the client; a gRPC error or timeout is answered
 *   `status_on_error` (503), never forwarded (`failure_mode_allow: false`).
 */
import { randomUUID, X509Certificate } from 'node:crypto';
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { envoyProtos } from '../../src/envoy/protos.ts';
import { derToPem } from '../../src/identity/trust-bundle.ts';

export type AuthzClient = grpc.Client & {
  Check(req: unknown, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: any) => void): void;
  Check(req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: any) => void): void;
};

/** A client interceptor that sends `authorization: Bearer <token>` on every call, as Envoy's `initial_metadata` does. */
export function bearerInterceptor(token: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        metadata.set('authorization', `Bearer ${token}`);
        next(metadata, listener);
      },
    });
}

/** An ext_authz client; with `token` (the proxy's node token) every Check carries it, as the callee sidecar's config does. */
export function authzClient(address: string, token?: string, options: grpc.ClientOptions = {}): AuthzClient {
  const Ctor = grpc.makeGenericClientConstructor(envoyProtos().Authorization, 'Authorization');
  const interceptors = [...(options.interceptors ?? []), ...(token ? [bearerInterceptor(token)] : [])];
  return new Ctor(address, grpc.credentials.createInsecure(), { ...options, interceptors }) as unknown as AuthzClient;
}

/**
 * How long a test waits for a Check. Envoy's deadline (`grpc_service.timeout`) is 0.5 s in our
 * sidecar config; tests use a safety net instead, so that a busy machine cannot turn a slow
 * answer into DEADLINE_EXCEEDED (or a PEP's 503).
 */
export const CHECK_DEADLINE_MS = 30_000;

/** One Check over gRPC, bounded by `timeoutMs`. */
export function callCheck(client: AuthzClient, req: unknown, timeoutMs = CHECK_DEADLINE_MS): Promise<any> {
  return new Promise((resolve, reject) =>
    client.Check(req, { deadline: new Date(Date.now() + timeoutMs) }, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

/** What Envoy knows about one downstream request. */
export interface DownstreamRequest {
  method: string;
  /** Path and query exactly as on the request line. */
  path: string;
  /** Field lines as received, in order (`IncomingMessage.rawHeaders` pairs). */
  headers: Array<[string, string]>;
  body?: Uint8Array;
  scheme?: 'http' | 'https';
  protocol?: string;
  source?: { address: string; port: number; principal?: string; certificatePem?: string };
  destination?: { address: string; port: number; principal?: string };
  contextExtensions?: Record<string, string>;
  /** Envoy's stream id. */
  id?: string;
  requestId?: string;
  nowMs?: number;
  /**
   * The filter's `encode_raw_headers` (our sidecar configs set it): every field line, pseudo-headers
   * included, goes to `header_map` as its own entry with `raw_value` bytes, and `headers` is empty.
   * Without it, repeated fields are joined with ',' in `headers`.
   */
  encodeRawHeaders?: boolean;
}

/** The CheckRequest Envoy's HTTP ext_authz filter sends for `r` (proto-loader field names). */
export function envoyCheckRequest(r: DownstreamRequest): Record<string, unknown> {
  const scheme = r.scheme ?? 'http';
  const headers: Record<string, string> = {};
  let authority = '';
  for (const [name, value] of r.headers) {
    const k = name.toLowerCase();
    if (k === 'host') {
      authority = value;
      continue;
    }
    // Envoy's HeaderMap keeps repeated fields; the CheckRequest map joins them with ','.
    headers[k] = headers[k] === undefined ? value : `${headers[k]},${value}`;
  }
  if (headers['x-request-id'] === undefined) headers['x-request-id'] = r.requestId ?? randomUUID();
  headers['x-forwarded-proto'] = scheme;
  const hasBody = r.body !== undefined && r.body.length > 0;
  if (hasBody) headers['x-envoy-auth-partial-body'] = 'false';
  const pseudo = { ':authority': authority, ':method': r.method, ':path': r.path, ':scheme': scheme };
  const lines: Array<[string, string]> = [
    ...Object.entries(pseudo),
    ...r.headers.filter(([n]) => n.toLowerCase() !== 'host').map(([n, v]): [string, string] => [n.toLowerCase(), v]),
    ...Object.entries(headers).filter(([k]) => !r.headers.some(([n]) => n.toLowerCase() === k)),
  ];
  const nowMs = r.nowMs ?? Date.now();
  const src = r.source ?? { address: '127.0.0.1', port: 40000 };
  const dst = r.destination ?? { address: '127.0.0.1', port: 15006 };
  return {
    attributes: {
      source: {
        address: { socket_address: { address: src.address, port_value: src.port } },
        ...(src.principal !== undefined ? { principal: src.principal } : {}),
        ...(src.certificatePem !== undefined ? { certificate: encodeURIComponent(src.certificatePem) } : {}),
      },
      destination: {
        address: { socket_address: { address: dst.address, port_value: dst.port } },
        ...(dst.principal !== undefined ? { principal: dst.principal } : {}),
      },
      request: {
        time: { seconds: Math.floor(nowMs / 1000), nanos: (nowMs % 1000) * 1e6 },
        http: {
          id: r.id ?? String(Math.floor(Math.random() * 2 ** 48)),
          method: r.method,
          ...(r.encodeRawHeaders
            ? { header_map: { headers: lines.map(([key, value]) => ({ key, raw_value: Buffer.from(value, 'latin1') })) } }
            : { headers: { ...pseudo, ...headers } }),
          path: r.path,
          host: authority,
          scheme,
          protocol: r.protocol ?? 'HTTP/1.1',
          size: hasBody ? r.body!.length : headers['content-length'] !== undefined ? Number(headers['content-length']) : -1,
          ...(hasBody ? { raw_body: Buffer.from(r.body!) } : {}),
        },
      },
      context_extensions: { ...(r.contextExtensions ?? {}) },
    },
  };
}

/** Envoy's principal for a certificate: first URI SAN, else first DNS SAN, else the subject. */
export function principalOf(cert: X509Certificate): string {
  const sans = (cert.subjectAltName ?? '').split(/,\s*/);
  const uri = sans.find((s) => s.startsWith('URI:'));
  if (uri) return uri.slice(4);
  const dns = sans.find((s) => s.startsWith('DNS:'));
  if (dns) return dns.slice(4);
  return cert.subject.replace(/\n/g, ',');
}

export interface PepOptions {
  /** The control-plane node's gRPC address. */
  authzAddress: string;
  /** This sidecar's node token, sent on every Check (`grpc_service.initial_metadata`). */
  nodeToken: string;
  /** The application this sidecar fronts. */
  upstream: { host: string; port: number };
  contextExtensions: Record<string, string>;
  /** Downstream mTLS (`require_client_certificate: true`): our WIC and key, and the trusted roots. */
  tls?: { certPem: string; keyPem: string; caPem: string };
  /** `with_request_body.max_request_bytes`. Default 1 MiB. */
  maxRequestBytes?: number;
  /** `grpc_service.timeout`. Default CHECK_DEADLINE_MS (Envoy's sidecar config says 0.5 s). */
  timeoutMs?: number;
  /** `status_on_error`. Default 503. */
  statusOnError?: number;
  /** `encode_raw_headers`. Default true, as envoy/sidecar-callee.yaml sets it. */
  encodeRawHeaders?: boolean;
}

export interface Pep {
  readonly url: string;
  readonly port: number;
  /** Every CheckResponse, in order (for assertions). */
  readonly responses: any[];
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host']);

let statusNumbers: Map<string, number> | undefined;
/** `envoy.type.v3.StatusCode` enum name -> HTTP status. */
function httpStatusOf(name: unknown): number {
  if (typeof name === 'number') return name;
  statusNumbers ??= new Map(Object.entries(envoyProtos().root.lookupEnum('envoy.type.v3.StatusCode').values));
  return statusNumbers.get(String(name)) ?? 403;
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) over = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(over ? 'too-large' : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * The request headers Envoy sends upstream after an OK: `headers` with `append` false (the
 * default) replace every line of that name, `append` true adds a line, then `headers_to_remove`
 * (pseudo-headers and `host` are ignored, as Envoy does). Names are lower-cased.
 */
export function applyOkResponse(pairs: ReadonlyArray<readonly [string, string]>, ok: any): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (k: string, v: string) => out.set(k, [...(out.get(k) ?? []), v]);
  for (const [k, v] of pairs) add(k.toLowerCase(), v);
  for (const h of ok?.headers ?? []) {
    const k = String(h.header.key).toLowerCase();
    if (h.append?.value === true) add(k, h.header.value);
    else out.set(k, [h.header.value]);
  }
  for (const k of ok?.headers_to_remove ?? []) {
    const name = String(k).toLowerCase();
    if (!name.startsWith(':') && name !== 'host') out.delete(name);
  }
  return out;
}

/** Start the front on a free loopback port. */
export async function startEnvoyPep(opts: PepOptions): Promise<Pep> {
  const client = authzClient(opts.authzAddress, opts.nodeToken);
  const responses: any[] = [];
  const maxBytes = opts.maxRequestBytes ?? 1024 * 1024;
  let ownPrincipal: string | undefined;
  if (opts.tls) ownPrincipal = principalOf(new X509Certificate(opts.tls.certPem));

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req, maxBytes);
    if (body === 'too-large') {
      res.writeHead(413, { 'content-type': 'text/plain' }).end('Payload Too Large');
      return;
    }
    const pairs: Array<[string, string]> = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) pairs.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
    // forward_client_cert_details: SANITIZE.
    const kept = pairs.filter(([k]) => k.toLowerCase() !== 'x-forwarded-client-cert');
    const sock = req.socket as TLSSocket;
    let source: DownstreamRequest['source'] = { address: sock.remoteAddress ?? '127.0.0.1', port: sock.remotePort ?? 0 };
    if (opts.tls) {
      const peer = sock.getPeerCertificate();
      if (peer && peer.raw) {
        const leaf = new X509Certificate(peer.raw);
        source = { ...source, principal: principalOf(leaf), certificatePem: derToPem(peer.raw) };
      }
    }
    const requestId = randomUUID();
    const checkReq = envoyCheckRequest({
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: kept,
      ...(body.length > 0 ? { body } : {}),
      scheme: opts.tls ? 'https' : 'http',
      protocol: `HTTP/${req.httpVersion}`,
      source,
      destination: { address: sock.localAddress ?? '127.0.0.1', port: sock.localPort ?? 0, ...(ownPrincipal ? { principal: ownPrincipal } : {}) },
      contextExtensions: opts.contextExtensions,
      requestId,
      encodeRawHeaders: opts.encodeRawHeaders ?? true,
    });
    let check: any;
    try {
      check = await callCheck(client, checkReq, opts.timeoutMs ?? CHECK_DEADLINE_MS);
    } catch {
      res.writeHead(opts.statusOnError ?? 503).end();
      return;
    }
    responses.push(check);
    if (check.status?.code !== 0 || !check.ok_response) {
      const d = check.denied_response ?? {};
      const headers: Record<string, string> = {};
      for (const h of d.headers ?? []) headers[h.header.key] = h.header.value;
      res.writeHead(httpStatusOf(d.status?.code ?? 'Forbidden'), headers).end(d.body ?? '');
      return;
    }
    // The upstream request: the downstream fields (minus hop-by-hop), Envoy's own, then the
    // ext_authz mutations.
    const upstream = applyOkResponse(
      [...kept.filter(([k]) => !HOP_BY_HOP.has(k.toLowerCase())), ['x-request-id', requestId], ['x-forwarded-proto', opts.tls ? 'https' : 'http']],
      check.ok_response,
    );
    upstream.set('content-length', [String(body.length)]);
    // Envoy keeps the downstream :authority as the upstream Host.
    const outHeaders: Array<string> = ['host', req.headers.host ?? `${opts.upstream.host}:${opts.upstream.port}`];
    for (const [k, vs] of upstream) for (const v of vs) outHeaders.push(k, v);
    const up = httpRequest(
      { host: opts.upstream.host, port: opts.upstream.port, method: req.method, path: req.url, headers: outHeaders },
      (ur) => {
        const rh: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(ur.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) rh[k] = v;
        for (const h of check.ok_response.response_headers_to_add ?? []) rh[h.header.key] = h.header.value;
        res.writeHead(ur.statusCode ?? 502, rh);
        ur.pipe(res);
      },
    );
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(503).end('upstream connect error');
    });
    up.end(body);
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  };
  const server: Server = opts.tls
    ? createHttpsServer(
        { cert: opts.tls.certPem, key: opts.tls.keyPem, ca: opts.tls.caPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
        listener,
      )
    : createHttpServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    responses,
    async close() {
      client.close();
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
