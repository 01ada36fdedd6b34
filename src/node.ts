/**
 * The composition root: builds one control-plane node from a validated config. Only this file
 * (and the CLI) reads the system clock and the environment; everything below gets them injected.
 */
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import type { NodeConfig } from './config/config.ts';
import { systemClock, type Clock } from './identity/clock.ts';
import { createLogger, type Logger } from './log.ts';
import { NodeMetrics } from './admin/metrics.ts';
import { startAdminHttp, type AdminHttp, type Readiness } from './admin/http.ts';

export interface NodeOptions {
  clock?: Clock;
  logger?: Logger;
}

export interface RunningNode {
  readonly name: string;
  /** Where gRPC listens: `127.0.0.1:8443` or `unix:/path`. */
  readonly grpcAddress: string;
  readonly adminUrl: string | undefined;
  readonly metrics: NodeMetrics;
  readiness(): Readiness;
  close(): Promise<void>;
}

async function grpcCredentials(cfg: NodeConfig['grpc']): Promise<grpc.ServerCredentials> {
  if (!cfg.tls) return grpc.ServerCredentials.createInsecure();
  const [cert, key, ca] = await Promise.all([
    readFile(cfg.tls.certFile),
    readFile(cfg.tls.keyFile),
    cfg.tls.clientCaFile ? readFile(cfg.tls.clientCaFile) : Promise.resolve(null),
  ]);
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], cfg.tls.requireClientCert);
}

async function bindGrpc(server: grpc.Server, cfg: NodeConfig['grpc']): Promise<string> {
  const creds = await grpcCredentials(cfg);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(cfg.listen, creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  if (cfg.listen.startsWith('unix:')) {
    await chmod(cfg.listen.slice('unix:'.length).replace(/^\/\/+/, '/'), parseInt(cfg.socketMode, 8));
    return cfg.listen;
  }
  return cfg.listen.replace(/:\d+$/, `:${port}`);
}

function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) };
}

export async function startNode(config: NodeConfig, opts: NodeOptions = {}): Promise<RunningNode> {
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? createLogger({ level: config.logging.level });
  const name = config.nodeName ?? hostname();
  await mkdir(config.stateDir, { recursive: true, mode: 0o700 });

  const metrics = new NodeMetrics({ now: () => clock.now(), defaultMetrics: true });
  const readiness = (): Readiness => ({ ready: true, reasons: [] });

  const server = new grpc.Server({ 'grpc.max_concurrent_streams': 100_000 });
  const grpcAddress = await bindGrpc(server, config.grpc);

  let admin: AdminHttp | undefined;
  if (config.admin.listen !== '') {
    admin = await startAdminHttp({ ...splitHostPort(config.admin.listen), readiness, registry: metrics.registry });
  }
  logger.info({ node: name, trustDomain: config.trustDomain, grpc: grpcAddress, admin: admin?.url }, 'node started');

  return {
    name,
    grpcAddress,
    adminUrl: admin?.url,
    metrics,
    readiness,
    async close() {
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      await admin?.close();
      logger.info({ node: name }, 'node stopped');
    },
  };
}
