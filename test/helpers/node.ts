/** Start a real control-plane node for a test, on free ports and a temporary state directory. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { parseConfig } from '../../src/config/config.ts';
import { startNode, type RunningNode } from '../../src/node.ts';
import { silentLogger } from '../../src/log.ts';
import { authzClient, callCheck, type AuthzClient } from './envoy-pep.ts';
import type { Clock } from '../../src/identity/clock.ts';
import type { Logger } from '../../src/log.ts';
import type { NodeClusterTuning } from '../../src/node-cluster.ts';

export interface TestNode {
  node: RunningNode;
  dir: string;
  /** A grpc-js client for envoy.service.auth.v3.Authorization on this node (no node token of its own). */
  authz: AuthzClient;
  /** The node token `check` sends, issued for `sidecar-callee`. */
  proxyToken: string;
  /** One Check, as the callee's sidecar makes it (with its node token). */
  check(req: unknown): Promise<any>;
}

export async function startTestNode(
  t: ExecutionContext,
  opts: { yaml?: string; policy?: string; clock?: Clock; logger?: Logger; cluster?: NodeClusterTuning } = {},
): Promise<TestNode> {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-node-'));
  // A `grpc:` section in `opts.yaml` (a TLS listener) replaces the plaintext default.
  const grpcSection = /^grpc:/m.test(opts.yaml ?? '') ? '' : 'grpc:\n  listen: 127.0.0.1:0\n';
  let yaml = `nodeName: test-node\n${grpcSection}admin:\n  listen: 127.0.0.1:0\n${opts.yaml ?? ''}`;
  if (opts.policy !== undefined) {
    writeFileSync(join(dir, 'policy.yaml'), opts.policy);
    yaml += 'policy:\n  file: policy.yaml\n';
  }
  const cfg = parseConfig(yaml, dir);
  if (!cfg.ok) throw new Error(cfg.errors.join('; '));
  const node = await startNode(cfg.value, { logger: opts.logger ?? silentLogger(), ...(opts.clock ? { clock: opts.clock } : {}), ...(opts.cluster ? { cluster: opts.cluster } : {}) });
  const proxyToken = node.nodeTokens.issue('sidecar-callee');
  const authz = authzClient(node.grpcAddress);
  const sidecar = authzClient(node.grpcAddress, proxyToken);
  t.teardown(async () => {
    authz.close();
    sidecar.close();
    await node.close();
  });
  return { node, dir, authz, proxyToken, check: (req: unknown) => callCheck(sidecar, req) };
}

/**
 * A GET CheckRequest as Envoy fills it for a callee at `destination` (lower-cased headers with
 * pseudo-headers, path with query, `context_extensions` from the route).
 */
export function getCheckRequest(destination: string, audience: string, headers: Record<string, string>, path = '/orders/1') {
  return {
    attributes: {
      source: { address: { socket_address: { address: '10.0.0.1', port_value: 5555 } } },
      request: {
        time: { seconds: Math.floor(Date.now() / 1000) },
        http: {
          id: '1234',
          method: 'GET',
          path,
          host: 'b.example.org',
          scheme: 'https',
          protocol: 'HTTP/1.1',
          headers: { ':authority': 'b.example.org', ':method': 'GET', ':path': path, ':scheme': 'https', ...headers },
        },
      },
      context_extensions: { destination_workload: destination, audience },
    },
  };
}
