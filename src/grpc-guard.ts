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
 * The one grpc-js internal relied on: its servers are the keys of `Server.http2Servers`. If
 * that ever changes, installing the guard throws and the node does not start, rather than serve
 * unguarded (test/node/repeated-authorization.test.ts).
 */
import type { EventEmitter } from 'node:events';
import type { ServerHttp2Stream } from 'node:http2';
import * as grpc from '@grpc/grpc-js';

const GUARDED = Symbol('wimse.repeatedAuthorizationGuard');

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
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map) || servers.size === 0)
    throw new Error('the gRPC server has no listener to guard (grpc-js keeps them in Server.http2Servers): refusing to serve calls whose repeated authorization cannot be seen');
  for (const h2 of servers.keys() as IterableIterator<EventEmitter & { [GUARDED]?: true }>) {
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
