/**
 * Admin handlers for the cluster's nodes: the nodes this node knows, and forgetting one that is
 * gone (docs/operations-cluster.md "Forgetting a node that is gone"). The decisions are the
 * cluster wiring's (`NodeCluster.nodes`, `NodeCluster.forget`); this maps them to the API.
 */
import { isNodeName } from '../cluster/index.ts';
import type { AdminApiDeps } from './api-deps.ts';
import { failedPrecondition, invalidArgument, notFound } from './api-errors.ts';
import type { Handler } from './api.ts';

export function clusterHandlers(deps: AdminApiDeps): Record<string, Handler> {
  const { cluster, logger } = deps;
  return {
    async ListClusterNodes() {
      const now = deps.clock.now();
      return {
        clustered: cluster.clustered,
        liveness_window_ms: cluster.livenessWindowMs,
        nodes: cluster.nodes(now).map((n) => ({
          node: n.node,
          self: n.self,
          last_heartbeat_ms: n.lastHeartbeat ?? 0,
          heartbeat_age_ms: n.lastHeartbeat === undefined ? 0 : Math.max(0, now - n.lastHeartbeat),
          live: n.live,
          counts_at_gate: n.countsAtGate,
          admin_token: n.adminToken,
          journaled_keys: n.journaledKeys,
          forgotten_at_ms: n.forgotten?.at ?? 0,
          forgotten_by: n.forgotten?.by ?? '',
        })),
      };
    },

    async ForgetClusterNode(req: { node: string }, caller) {
      const node = req.node;
      if (!node) throw invalidArgument('node', 'is required: the name of the node to forget (wimsectl cluster nodes lists them)');
      if (!isNodeName(node)) throw invalidArgument('node', 'is not a node name: 1-64 characters of A-Z, a-z, 0-9, ".", "_" and "-"');
      const r = await cluster.forget(node);
      if (!r.ok) throw r.reason === 'unknown' ? notFound(r.message) : failedPrecondition(r.message);
      logger.warn(
        {
          node,
          changed: r.changed,
          ...(r.lastHeartbeat !== undefined ? { lastHeartbeat: new Date(r.lastHeartbeat).toISOString() } : {}),
          adminTokenOf: caller.adminTokenOf,
          peer: caller.peer,
        },
        r.changed
          ? 'cluster node forgotten: every node stops accepting its admin token and stops waiting for it at the activation gate'
          : 'cluster node already forgotten: nothing changed',
      );
      return { node, changed: r.changed, last_heartbeat_ms: r.lastHeartbeat ?? 0 };
    },
  };
}
