/** A real node on a state directory that survives restarts, and an admin API client for it. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { ExecutionContext } from 'ava';
import { parseConfig } from '../../src/config/config.ts';
import { startNode, type RunningNode } from '../../src/node.ts';
import { silentLogger } from '../../src/log.ts';
import { adminClientConstructor } from '../../src/admin/api.ts';
import type { Clock } from '../../src/identity/clock.ts';

export interface AdminNode {
  node: RunningNode;
  dir: string;
  token: string;
  call<T = any>(rpc: string, req?: unknown, token?: string | null): Promise<T>;
  close(): Promise<void>;
}

export const newDir = (): string => mkdtempSync(join(tmpdir(), 'wimse-admin-'));

/** Start (or restart) a node whose config is `yaml` in `dir` (state in dir/state). */
export async function startAdminNode(t: ExecutionContext, dir: string, yaml = '', opts: { clock?: Clock } = {}): Promise<AdminNode> {
  const admin = /^admin:\n/m.test(yaml) ? '' : "admin:\n  listen: ''\n";
  const grpcListen = /^grpc:\n/m.test(yaml) ? '' : 'grpc:\n  listen: 127.0.0.1:0\n';
  const cfg = parseConfig(`nodeName: admin-node\n${grpcListen}${admin}${yaml}`, dir);
  if (!cfg.ok) throw new Error(cfg.errors.join('; '));
  const node = await startNode(cfg.value, { logger: silentLogger(), ...(opts.clock ? { clock: opts.clock } : {}) });
  const token = readFileSync(cfg.value.admin.tokenFile ?? join(cfg.value.stateDir, 'admin-token'), 'utf8').trim();
  const Ctor = adminClientConstructor();
  const client = new Ctor(node.grpcAddress, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    client.close();
    await node.close();
  };
  t.teardown(close);
  const call = <T>(rpc: string, req: unknown = {}, tok: string | null = token) =>
    new Promise<T>((resolve, reject) => {
      const md = new grpc.Metadata();
      if (tok !== null) md.set('authorization', `Bearer ${tok}`);
      client[rpc]!(req, md, { deadline: Date.now() + 30_000 }, (e: grpc.ServiceError | null, r: T) => (e ? reject(e) : resolve(r)));
    });
  return { node, dir, token, call, close };
}

export const writeFile = (dir: string, name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

export const POLICY = `version: 1
destinations:
  - workload: wimse://example.org/svc/orders
    rules:
      - name: frontend-reads
        paths: [{prefix: /orders/}]
        methods: [GET]
        callers: [wimse://example.org/svc/frontend]
        authn: [mtls]
`;
