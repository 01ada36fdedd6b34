import test from 'ava';
import { startAdminNode, newDir } from '../admin/helpers.ts';
import { against } from '../admin/cli.ts';
import { ageText } from '../../src/cli/wimsectl-cluster.ts';

test('wimsectl cluster - nodes prints a table (this node marked) and forget says why it refuses, exit code 1', async (t) => {
  const n = await startAdminNode(t, newDir());
  const w = against(n);
  const nodes = await w(['cluster', 'nodes']);
  t.is(nodes.code, 0, nodes.stderr);
  const [header, row, ...rest] = nodes.stdout.trimEnd().split('\n');
  t.regex(header!, /^NODE\s+LAST HEARTBEAT\s+AGE\s+LIVE\s+GATE WAITS\s+ADMIN TOKEN\s+KEYS\s+FORGOTTEN$/);
  t.regex(row!, /^admin-node \(this node\)\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+\d+s\s+yes\s+-\s+accepted\s+\d+\s+-$/);
  t.deepEqual(rest, []);
  const self = await w(['cluster', 'forget', 'admin-node']);
  t.is(self.code, 1);
  t.regex(self.stderr, /^wimsectl: "admin-node" is this node, the one serving the call/);
  const unknown = await w(['cluster', 'forget', '--node', 'cp-9']);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /^wimsectl: no node named "cp-9" is known to admin-node/);
  const usage = await w(['cluster', 'forget']);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /the node name is required \(--node or as an argument\)\. Usage: wimsectl cluster forget NODE/);
});

test('wimsectl cluster - ages read as seconds, then minutes, hours and days', (t) => {
  t.deepEqual([0, 42_900, 303_000, 7_620_000, 273_600_000].map(ageText), ['0s', '42s', '5m3s', '2h7m', '3d4h']);
});
