/**
 * What the node's gRPC listener refuses before grpc-js sees a call: a call with two
 * `authorization` fields, on every service (SDS, ext_authz, the Workload API, the admin API).
 *
 * node:http2 treats `authorization` as a single-value header: of a request that carries it
 * twice, the header object handed to grpc-js keeps the first value only, so
 * `call.metadata.get('authorization')` never sees the second and a valid token followed by
 * anything would pass as the valid token. The raw header list does hold every field: the http2
 * server's `stream` event carries it (`rawHeaders`, Node 20). grpc-js handles each call from
 * that event; the guard takes the event over, answers a call with two `authorization` fields
 * with the gRPC status UNAUTHENTICATED itself, and hands every other call to grpc-js's own
 * listeners, unchanged.
 *
 * And a connection does not outlive the client certificate it was opened with
 * (`closeSessionsAtCertificateExpiry`): TLS verifies the certificate at the handshake only, and
 * an HTTP/2 connection can then live for days. Calls a certificate authenticates are refused
 * after its notAfter (src/caller-streams.ts), but a client that has since loaded a renewed
 * certificate would keep sending them on the old connection. At the notAfter the session gets a
 * GOAWAY, so the client opens a new connection (with its current certificate) for new calls,
 * and `CERTIFICATE_EXPIRY_GRACE_MS` later it is destroyed, which resets the long-lived streams
 * still on it (SDS, WatchBundles) so the client re-opens them on the new connection.
 *
 * The one grpc-js internal relied on: its servers are the keys of `Server.http2Servers`. If
 * that ever changes, installing the guard throws and the node does not start, rather than serve
 * unguarded (test/node/repeated-authorization.test.ts).
 */
import type { EventEmitter } from 'node:events';
import { constants as h2constants, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';

const GUARDED = Symbol('wimse.repeatedAuthorizationGuard');
const EXPIRY_WATCHED = Symbol('wimse.certificateExpiryWatch');

/** The node:http2 servers behind `server`'s listeners (grpc-js keeps them as the keys of `Server.http2Servers`). */
function http2ServersOf(server: grpc.Server, what: string): Array<EventEmitter & Record<symbol, true | undefined>> {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map) || servers.size === 0)
    throw new Error(`the gRPC server has no listener to guard (grpc-js keeps them in Server.http2Servers): refusing to serve ${what}`);
  return [...(servers.keys() as IterableIterator<EventEmitter & Record<symbol, true | undefined>>)];
}

/** More than one field named `authorization` in a raw header list (`[name, value, name, value, ...]`), or no list at all. */
export function repeatsAuthorization(rawHeaders: unknown): boolean {
  if (!Array.isArray(rawHeaders)) return true; // cannot tell: fail closed
  let seen = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i] === 'authorization' && ++seen > 1) return true;
  return false;
}

function refuse(stream: ServerHttp2Stream): void {
  stream.on('error', () => {});
  try {
    stream.respond(
      {
        ':status': 200,
        'content-type': 'application/grpc',
        'grpc-status': String(grpc.status.UNAUTHENTICATED),
        'grpc-message': 'two authorization values: send one',
      },
      { endStream: true },
    );
  } catch {
    stream.destroy();
    return;
  }
  // Whatever the client still sends is read and dropped.
  stream.resume();
}

/**
 * Install the guard on every listener `server` has bound (call it in the `bindAsync` callback,
 * before any connection can be served). Throws when there is none, or when grpc-js does not
 * serve calls from the http2 `stream` event as this expects.
 */
export function refuseRepeatedAuthorization(server: grpc.Server): void {
  for (const h2 of http2ServersOf(server, 'calls whose repeated authorization cannot be seen')) {
    if (h2[GUARDED]) continue;
    const handlers = h2.listeners('stream') as Array<(...args: unknown[]) => void>;
    if (handlers.length === 0) throw new Error('the gRPC listener serves no stream event: refusing to serve unguarded');
    h2.removeAllListeners('stream');
    h2.on('stream', function (this: unknown, stream: ServerHttp2Stream, headers: unknown, flags: unknown, rawHeaders: unknown) {
      if (repeatsAuthorization(rawHeaders)) return refuse(stream);
      for (const h of handlers) h.call(this, stream, headers, flags, rawHeaders);
    });
    h2[GUARDED] = true;
  }
}

/**
 * How long a connection whose client certificate has expired keeps its open streams after the
 * GOAWAY: the client has that long to move them to a new connection before the old one is
 * destroyed (and the streams still on it reset).
 */
export const CERTIFICATE_EXPIRY_GRACE_MS = 5_000;

/** setTimeout's longest delay (2^31-1 ms, about 24.8 days); a later notAfter re-arms the timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A connection closing because its client certificate expired: what identifies the certificate, never the certificate. */
export interface ExpiredCertificateSession {
  readonly fingerprint256: string;
  readonly serialNumber: string;
  /** The certificate's notAfter as TLS reports it (`valid_to`). */
  readonly validTo: string;
  readonly remoteAddress: string | undefined;
  /** The certificate had already expired by `now` when the connection was set up (clock skew): closed at once. */
  readonly atStart: boolean;
}

export interface CertificateExpiryOptions {
  /** The wall clock, ms since the epoch (Date.now). The timers run on real time, so it must be the real clock. */
  readonly now?: () => number;
  /** Milliseconds from the GOAWAY to the session's destruction (CERTIFICATE_EXPIRY_GRACE_MS). */
  readonly graceMs?: number;
  /** Called once per session, as its GOAWAY is sent. */
  readonly onClose?: (s: ExpiredCertificateSession) => void;
}

/**
 * Close every HTTP/2 session whose TLS peer presented a client certificate at that
 * certificate's notAfter: GOAWAY, then destroy after the grace. A notAfter that cannot be read
 * counts as passed (fail closed). Sessions without a client certificate (plain TLS, a Unix
 * socket) are left alone. Timers are unref'd and cleared when the session closes. Install it
 * in the `bindAsync` callback, before any connection is served; throws when there is no listener.
 */
export function closeSessionsAtCertificateExpiry(server: grpc.Server, opts: CertificateExpiryOptions = {}): void {
  for (const h2 of http2ServersOf(server, 'connections that would outlive their client certificates')) {
    if (h2[EXPIRY_WATCHED]) continue;
    h2.on('session', (session: ServerHttp2Session) => watchCertificateExpiry(session, opts));
    h2[EXPIRY_WATCHED] = true;
  }
}

function peerCertificateOf(session: ServerHttp2Session): PeerCertificate | undefined {
  const socket = session.socket as Partial<TLSSocket> | undefined;
  if (typeof socket?.getPeerCertificate !== 'function') return undefined; // not TLS
  const cert = socket.getPeerCertificate();
  // Without a client certificate TLS reports an empty object.
  return cert && Buffer.isBuffer(cert.raw) && cert.raw.length > 0 ? cert : undefined;
}

function watchCertificateExpiry(session: ServerHttp2Session, o: CertificateExpiryOptions): void {
  const cert = peerCertificateOf(session);
  if (!cert) return;
  const now = o.now ?? Date.now;
  const graceMs = o.graceMs ?? CERTIFICATE_EXPIRY_GRACE_MS;
  const notAfter = Date.parse(cert.valid_to); // NaN: never "before", so it closes at once
  const facts = { fingerprint256: cert.fingerprint256, serialNumber: cert.serialNumber, validTo: cert.valid_to, remoteAddress: session.socket?.remoteAddress };
  let timer: NodeJS.Timeout | undefined;
  const schedule = (fn: () => void, ms: number) => {
    timer = setTimeout(fn, ms);
    timer.unref();
  };
  const expire = (atStart: boolean) => {
    timer = undefined;
    if (session.closed || session.destroyed) return;
    o.onClose?.({ ...facts, atStart });
    try {
      // As grpc-js does for max_connection_age: a GOAWAY that lets every open stream finish,
      // then close() (a second GOAWAY with the last stream processed) refuses new ones.
      session.goaway(h2constants.NGHTTP2_NO_ERROR, MAX_TIMER_MS, Buffer.from('client certificate expired'));
      session.close();
    } catch {
      session.destroy(); // the GOAWAY cannot be sent: the session is going already
      return;
    }
    if (!session.destroyed) schedule(() => session.destroy(), graceMs);
  };
  const arm = (atStart: boolean) => {
    const left = notAfter - now();
    if (!(left > 0)) return expire(atStart);
    schedule(() => arm(false), Math.min(left, MAX_TIMER_MS));
  };
  session.once('close', () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  });
  arm(true);
}
