/** `wimsectl cluster ...`: the nodes of the cluster, and forgetting one that is gone. */
import { flag, flagOrPositional, noPositionals, value, type Command } from './wimsectl-args.ts';
import { rfc3339, table } from './wimsectl-format.ts';

interface ClusterNode {
  node: string;
  self: boolean;
  last_heartbeat_ms: number;
  heartbeat_age_ms: number;
  live: boolean;
  counts_at_gate: boolean;
  admin_token: boolean;
  journaled_keys: number;
  forgotten_at_ms: number;
  forgotten_by: string;
}

/** `-o json|yaml`: a node (times RFC 3339, null where there is none). */
const nodeView = (n: ClusterNode) => ({
  node: n.node,
  self: n.self,
  lastHeartbeatAt: n.last_heartbeat_ms ? rfc3339(n.last_heartbeat_ms) : null,
  heartbeatAgeSeconds: n.last_heartbeat_ms ? Math.floor(n.heartbeat_age_ms / 1000) : null,
  live: n.live,
  countsAtGate: n.counts_at_gate,
  adminToken: n.admin_token,
  journaledKeys: n.journaled_keys,
  forgottenAt: n.forgotten_at_ms ? rfc3339(n.forgotten_at_ms) : null,
  forgottenBy: n.forgotten_by || null,
});

/** An age for people: 42s, 5m3s, 2h7m, 3d4h. */
export function ageText(ms: number): string {
  const s = Math.floor(Math.max(0, ms) / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${Math.floor(s / 60) % 60}m`;
  return `${Math.floor(s / 86_400)}d${Math.floor(s / 3600) % 24}h`;
}

const yesNo = (b: boolean) => (b ? 'yes' : 'no');

export const clusterCommands: Record<string, Command> = {
  nodes: {
    usage: 'cluster nodes',
    summary: 'every node this node knows: last heartbeat, whether activations wait for it, whether its admin token is accepted, its journaled keys',
    flags: {},
    async run(c) {
      noPositionals(c.args);
      const r = (await c.call('ListClusterNodes')) as { nodes: ClusterNode[]; clustered: boolean; liveness_window_ms: number };
      c.show({ clustered: r.clustered, livenessWindowSeconds: r.liveness_window_ms / 1000, nodes: r.nodes.map(nodeView) }, () =>
        table(
          ['NODE', 'LAST HEARTBEAT', 'AGE', 'LIVE', 'GATE WAITS', 'ADMIN TOKEN', 'KEYS', 'FORGOTTEN'],
          r.nodes.map((n) => [
            n.self ? `${n.node} (this node)` : n.node,
            n.last_heartbeat_ms ? rfc3339(n.last_heartbeat_ms) : '-',
            n.last_heartbeat_ms ? ageText(n.heartbeat_age_ms) : '-',
            yesNo(n.live),
            n.self ? '-' : yesNo(n.counts_at_gate),
            n.admin_token ? 'accepted' : 'no',
            String(n.journaled_keys),
            n.forgotten_at_ms ? `${rfc3339(n.forgotten_at_ms)} by ${n.forgotten_by}` : '-',
          ]),
        ),
      );
      return 0;
    },
  },
  forget: {
    usage: 'cluster forget NODE',
    summary: 'forget a node that is gone: every node refuses its admin token and stops waiting for it at key activation (its public keys stay trusted until they expire)',
    flags: { '--node': value('NODE', 'the name of the node to forget (or as an argument)') },
    async run(c) {
      const node = flagOrPositional(c.args, '--node', 'the node name');
      noPositionals(c.args, flag(c.args, '--node') !== undefined ? 0 : 1);
      const r = (await c.call('ForgetClusterNode', { node })) as { node: string; changed: boolean; last_heartbeat_ms: number };
      c.show({ forgotten: { node: r.node, changed: r.changed, lastHeartbeatAt: r.last_heartbeat_ms ? rfc3339(r.last_heartbeat_ms) : null } }, () =>
        r.changed
          ? `forgot ${r.node}: no node accepts its admin token or waits for it at key activation any more; its public keys stay trusted until they expire. Remove its NATS credentials to keep it from joining again\n`
          : `${r.node} was forgotten already; nothing changed\n`,
      );
      return 0;
    },
  },
};
