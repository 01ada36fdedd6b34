import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { startAdminNode, newDir } from './helpers.ts';

const err = (e: unknown) => e as grpc.ServiceError;

test('admin API cluster - a node without a cluster lists itself alone; it cannot forget itself and knows no other node', async (t) => {
  const n = await startAdminNode(t, newDir());
  const list = await n.call('ListClusterNodes');
  t.false(list.clustered);
  t.is(list.liveness_window_ms, 15_000);
  t.is(list.nodes.length, 1);
  t.like(list.nodes[0], { node: 'admin-node', self: true, live: true, counts_at_gate: false, admin_token: true, journaled_keys: n.node.ca.keys().length, forgotten_at_ms: 0, forgotten_by: '' });
  t.true(list.nodes[0].last_heartbeat_ms > 0);

  const self = err(await t.throwsAsync(n.call('ForgetClusterNode', { node: 'admin-node' })));
  t.is(self.code, grpc.status.FAILED_PRECONDITION);
  t.regex(self.details, /^"admin-node" is this node, the one serving the call: a node cannot forget itself/);
  const other = err(await t.throwsAsync(n.call('ForgetClusterNode', { node: 'cp-2' })));
  t.is(other.code, grpc.status.NOT_FOUND);
  t.regex(other.details, /^no node named "cp-2" is known to admin-node: .* List the nodes with wimsectl cluster nodes$/);
  t.regex(err(await t.throwsAsync(n.call('ForgetClusterNode', { node: '' }))).details, /^node: is required/);
  t.regex(err(await t.throwsAsync(n.call('ForgetClusterNode', { node: 'a/b' }))).details, /^node: is not a node name/);
});
