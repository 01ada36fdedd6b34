/**
 * The admin API client of `wimsectl`: where the node is (`--server`, `WIMSE_SERVER`, default
 * 127.0.0.1:8443), the admin token (`--token-file`, `WIMSE_ADMIN_TOKEN`, else `./state/admin-token`
 * as the embedded default writes it), TLS roots (`--ca-file`) and, for a listener that requires a
 * client certificate, the certificate and its key (`--cert-file`, `--key-file`). gRPC failures become `CliError`s
 * carrying the node's message, which says what was wrong and how to fix it.
 */
import { existsSync, readFileSync } from 'node:fs';
import type * as grpcTypes from '@grpc/grpc-js';
import { CliError } from './wimsectl-args.ts';

// Loaded on the first call: offline commands (policy test --file, authn check) start faster.
type Grpc = typeof grpcTypes;

export const DEFAULT_SERVER = '127.0.0.1:8443';
export const DEFAULT_TOKEN_FILE = 'state/admin-token';
const DEADLINE_MS = 15_000;

export interface ClientOptions {
  readonly server?: string | undefined;
  readonly tokenFile?: string | undefined;
  readonly caFile?: string | undefined;
  /** A client certificate chain (PEM) and its private key, for `grpc.tls.requireClientCert`. */
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
  readonly env: NodeJS.ProcessEnv;
}

export type Call = (rpc: string, request?: unknown) => Promise<any>;

function readToken(opts: ClientOptions): string {
  const fromFile = (path: string, flagName: string): string => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new CliError(`cannot read the admin token file ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'}). Check ${flagName}; the node writes it to <stateDir>/admin-token`, 2);
    }
    const token = text.trim();
    if (!token) throw new CliError(`the admin token file ${path} is empty. Point ${flagName} at the node's admin token`, 2);
    return token;
  };
  if (opts.tokenFile !== undefined) return fromFile(opts.tokenFile, '--token-file');
  const env = opts.env.WIMSE_ADMIN_TOKEN?.trim();
  if (env) return env;
  if (existsSync(DEFAULT_TOKEN_FILE)) return fromFile(DEFAULT_TOKEN_FILE, '--token-file');
  throw new CliError('no admin token. Pass --token-file FILE (the node\'s <stateDir>/admin-token) or set WIMSE_ADMIN_TOKEN', 2);
}

/** A lazily connected client: commands that work offline never touch the network or the token. */
export function adminCaller(opts: ClientOptions): { call: Call; close(): void } {
  let client: (grpcTypes.Client & Record<string, any>) | undefined;
  let token: string | undefined;
  let grpc: Grpc | undefined;
  const server = opts.server ?? opts.env.WIMSE_SERVER ?? DEFAULT_SERVER;
  const connect = async () => {
    token ??= readToken(opts);
    grpc ??= await import('@grpc/grpc-js');
    if (!client) {
      let creds = grpc.credentials.createInsecure();
      if ((opts.certFile === undefined) !== (opts.keyFile === undefined))
        throw new CliError('--cert-file and --key-file go together: the client certificate and its private key', 2);
      if (opts.caFile !== undefined || opts.certFile !== undefined) {
        const read = (path: string, flagName: string, what: string): Buffer => {
          try {
            return readFileSync(path);
          } catch (e) {
            throw new CliError(`cannot read ${flagName} ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'}). Pass ${what}`, 2);
          }
        };
        const ca = opts.caFile !== undefined ? read(opts.caFile, '--ca-file', "the PEM roots that sign the node's gRPC certificate") : null;
        const cert = opts.certFile !== undefined ? read(opts.certFile, '--cert-file', 'a PEM client certificate signed by the listener\'s clientCaFile roots') : null;
        const key = opts.keyFile !== undefined ? read(opts.keyFile, '--key-file', 'the PEM private key of --cert-file') : null;
        try {
          creds = grpc.credentials.createSsl(ca, key, cert);
        } catch (e) {
          throw new CliError(`the TLS files cannot be used (${(e as Error).message}). Check that --key-file is the key of --cert-file`, 2);
        }
      }
      const { adminClientConstructor } = await import('../admin/api-contract.ts');
      const Ctor = adminClientConstructor();
      client = new Ctor(server, creds) as grpcTypes.Client & Record<string, any>;
    }
    return { client, token, grpc };
  };
  return {
    async call(rpc, request = {}) {
      const { client: c, token: t, grpc: g } = await connect();
      const md = new g.Metadata();
      md.set('authorization', `Bearer ${t}`);
      return new Promise((resolve, reject) =>
        c[rpc]!(request, md, { deadline: Date.now() + DEADLINE_MS }, (err: grpcTypes.ServiceError | null, res: unknown) =>
          err ? reject(fromStatus(g, err, server)) : resolve(res),
        ),
      );
    },
    close() {
      client?.close();
    },
  };
}

function fromStatus(grpc: Grpc, err: grpcTypes.ServiceError, server: string): CliError {
  switch (err.code) {
    case grpc.status.UNAVAILABLE:
      return new CliError(`cannot reach the node at ${server} (${err.details}). Check --server or WIMSE_SERVER, --ca-file for a TLS listener (and --cert-file/--key-file when it requires a client certificate), and that wimse-server is running`, 1);
    case grpc.status.DEADLINE_EXCEEDED:
      return new CliError(`the node at ${server} did not answer within ${DEADLINE_MS / 1000}s. Check that it is healthy (/readyz)`, 1);
    case grpc.status.UNIMPLEMENTED:
      return new CliError(`the server at ${server} does not serve the admin API. Point --server at a wimse-server gRPC listener`, 1);
    default:
      return new CliError(err.details || grpc.status[err.code] || 'request failed', 1);
  }
}
