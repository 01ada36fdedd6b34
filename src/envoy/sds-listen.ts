/**
 * Listeners for the SDS service (docs/sds.md, "Trust model of the listeners").
 *
 * - TCP with TLS: the server presents a certificate Envoy checks against a CA file it was
 *   installed with (SDS cannot deliver the credentials of its own connection). Envoy proves who
 *   it is with its node token, or with a client certificate when `clientCaPem` is given.
 * - Unix domain socket: no TLS; whoever can open the socket file can talk to the service, so its
 *   mode (0600, or 0660 for a shared group) and its directory are the access control. Node
 *   tokens are still required, so one local Envoy cannot fetch another node's secrets.
 */
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';

export interface TcpListen {
  readonly host: string;
  /** 0 picks a free port. The control plane's default gRPC port is 8443. */
  readonly port: number;
  readonly certChainPem: string | Buffer;
  readonly keyPem: string | Buffer;
  /**
   * When set, every client must present a certificate that verifies against it (mTLS), and the
   * caller may be authenticated by that certificate. grpc-js cannot request a certificate
   * without also requiring it, which is what makes a certificate in the auth context a
   * verified one (src/identity/node-tokens.ts relies on that).
   */
  readonly clientCaPem?: string | Buffer;
}

export interface UdsListen {
  readonly path: string;
  /** 0o600 (owner only, default) or 0o660 (owner and group). */
  readonly mode?: 0o600 | 0o660;
}

export const DEFAULT_GRPC_PORT = 8443;

/** Bind a TCP+TLS listener; resolves with the bound port. */
export function listenTcpTls(server: grpc.Server, o: TcpListen): Promise<number> {
  const creds = grpc.ServerCredentials.createSsl(
    o.clientCaPem ? Buffer.from(o.clientCaPem) : null,
    [{ cert_chain: Buffer.from(o.certChainPem), private_key: Buffer.from(o.keyPem) }],
    Boolean(o.clientCaPem),
  );
  return bind(server, `${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`, creds);
}

/**
 * Bind a Unix-socket listener. The directory is created 0700 (0750 for mode 0660) so the socket
 * is never reachable with looser permissions, even before its own chmod.
 */
export async function listenUds(server: grpc.Server, o: UdsListen): Promise<string> {
  const mode = o.mode ?? 0o600;
  if (mode !== 0o600 && mode !== 0o660) throw new TypeError('"mode" must be 0o600 or 0o660');
  const dir = dirname(o.path);
  await mkdir(dir, { recursive: true, mode: mode === 0o600 ? 0o700 : 0o750 });
  const st = await stat(o.path).catch(() => undefined);
  if (st?.isSocket()) await rm(o.path);
  await bind(server, `unix:${o.path}`, grpc.ServerCredentials.createInsecure());
  await chmod(o.path, mode);
  return o.path;
}

function bind(server: grpc.Server, address: string, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port))));
}
