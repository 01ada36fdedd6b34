/**
 * The gRPC channel to the Workload API: address (`host:port` or `unix:/path`), transport
 * credentials (plaintext on loopback/UDS, or TLS with a CA file) and the node token sent as
 * `authorization: Bearer <token>` metadata on every call.
 */
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { workloadClientConstructor } from '../workload-api/server.ts';

export interface ConnectionOptions {
  /** `host:port` or `unix:/path/to/socket`. */
  address: string;
  /** The node token, or a function returning the current one (rotated tokens). */
  nodeToken?: string | (() => string | Promise<string>);
  /** A file holding the node token; read on every call, so a rotated file is picked up. */
  nodeTokenFile?: string;
  /** TLS to the Workload API. Omit for plaintext (loopback or a Unix socket only). */
  tls?: { caFile?: string; ca?: string | Uint8Array; serverNameOverride?: string };
}

export interface WorkloadApiStub extends grpc.Client {
  FetchWIT(req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: unknown) => void): grpc.ClientUnaryCall;
  WatchBundles(req: unknown, md: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientReadableStream<unknown>;
}

export async function openChannel(opts: ConnectionOptions): Promise<WorkloadApiStub> {
  if (typeof opts.address !== 'string' || opts.address === '') throw new TypeError('"address" must be host:port or unix:/path');
  let creds = grpc.credentials.createInsecure();
  const channelOpts: grpc.ChannelOptions = {};
  if (opts.tls) {
    const ca = opts.tls.ca !== undefined ? Buffer.from(opts.tls.ca) : opts.tls.caFile ? await readFile(opts.tls.caFile) : undefined;
    creds = grpc.credentials.createSsl(ca ?? null);
    if (opts.tls.serverNameOverride) channelOpts['grpc.ssl_target_name_override'] = opts.tls.serverNameOverride;
  }
  const Ctor = workloadClientConstructor();
  return new Ctor(opts.address, creds, channelOpts) as unknown as WorkloadApiStub;
}

export function checkTokenOptions(opts: ConnectionOptions): void {
  if (opts.nodeToken !== undefined && typeof opts.nodeToken !== 'string' && typeof opts.nodeToken !== 'function')
    throw new TypeError('"nodeToken" must be a string or a function');
  if (opts.nodeTokenFile !== undefined && typeof opts.nodeTokenFile !== 'string') throw new TypeError('"nodeTokenFile" must be a path');
}

/** The call metadata: the node token, when one is configured. Never logged. */
export async function callMetadata(opts: ConnectionOptions): Promise<grpc.Metadata> {
  const md = new grpc.Metadata();
  let token: string | undefined;
  if (typeof opts.nodeToken === 'function') token = await opts.nodeToken();
  else if (typeof opts.nodeToken === 'string') token = opts.nodeToken;
  else if (opts.nodeTokenFile) token = (await readFile(opts.nodeTokenFile, 'utf8')).trim();
  if (token) md.set('authorization', `Bearer ${token}`);
  return md;
}
