import test from 'ava';
import { join } from 'node:path';
import { startAdminNode, newDir } from '../admin/helpers.ts';
import { against, wimsectl } from '../admin/cli.ts';
import { hashToken, tokenIdOf } from '../../src/identity/node-tokens.ts';

const CONFIG_ENTRY = 'sds:\n  registrations:\n    - {nodeId: from-config, workloads: [wimse://example.org/svc/config]}\n';

test('wimsectl entry - create, list (table and -o json), show, delete', async (t) => {
  const n = await startAdminNode(t, newDir(), CONFIG_ENTRY);
  const w = against(n);
  const created = await w(['entry', 'create', '--node-id', 'sidecar-a', '--workload', 'wimse://example.org/svc/a', '--workload', 'wimse://example.org/svc/a2', '--dns', 'a.example.org']);
  t.is(created.code, 0, created.stderr);
  t.regex(created.stdout, /created entry for sidecar-a: wimse:\/\/example\.org\/svc\/a, wimse:\/\/example\.org\/svc\/a2/);
  t.deepEqual(n.node.registrations.identitiesFor('sidecar-a'), ['wimse://example.org/svc/a', 'wimse://example.org/svc/a2']);
  const [table, asJson, show] = await Promise.all([w(['entry', 'list']), w(['-o', 'json', 'entry', 'list']), w(['entry', 'show', 'sidecar-a', '-o', 'json'])]);
  t.regex(table.stdout, /^NODE ID\s+WORKLOADS\s+DNS NAMES\s+SOURCE\n/);
  t.regex(table.stdout, /from-config\s+wimse:\/\/example\.org\/svc\/config\s+-\s+config/);
  t.regex(table.stdout, /sidecar-a\s+wimse:\/\/example\.org\/svc\/a,wimse:\/\/example\.org\/svc\/a2\s+a\.example\.org\s+api/);
  t.deepEqual(JSON.parse(asJson.stdout), [
    { nodeId: 'from-config', workloads: ['wimse://example.org/svc/config'], dnsNames: [], source: 'config' },
    { nodeId: 'sidecar-a', workloads: ['wimse://example.org/svc/a', 'wimse://example.org/svc/a2'], dnsNames: ['a.example.org'], source: 'api' },
  ]);
  t.is(JSON.parse(show.stdout).nodeId, 'sidecar-a');
  const del = await w(['entry', 'delete', 'sidecar-a']);
  t.is(del.code, 0, del.stderr);
  t.deepEqual(n.node.registrations.identitiesFor('sidecar-a'), []);
});

test('wimsectl entry - the node saying no exits 1 with its reason and fix', async (t) => {
  const n = await startAdminNode(t, newDir(), CONFIG_ENTRY);
  const w = against(n);
  const [bad, cfg, missing] = await Promise.all([
    w(['entry', 'create', '--node-id', 'x', '--workload', 'wimse://other.org/svc/b']),
    w(['entry', 'delete', 'from-config']),
    w(['entry', 'show', 'nope']),
  ]);
  t.is(bad.code, 1);
  t.is(bad.stderr, 'wimsectl: workloads[0]: is in trust domain "other.org"; this node issues for "example.org"\n');
  t.is(cfg.code, 1);
  t.regex(cfg.stderr, /^wimsectl: the entry for node id "from-config" comes from the config file and cannot be deleted through the API\. Remove it from sds\.registrations/);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^wimsectl: no entry for node id "nope"\. List them with wimsectl entry list/);
});

test('wimsectl entry update - replaces workloads or DNS names of an API entry; refusals exit 1 and change nothing', async (t) => {
  const n = await startAdminNode(t, newDir(), CONFIG_ENTRY);
  const w = against(n);
  t.is((await w(['entry', 'create', '--node-id', 'sidecar-a', '--workload', 'wimse://example.org/svc/a', '--dns', 'a.example.org'])).code, 0);
  const dnsOf = () => n.node.registrations.registrations().find((r) => r.nodeId === 'sidecar-a')?.dnsNames;
  const moved = await w(['entry', 'update', 'sidecar-a', '--workload', 'wimse://example.org/svc/b', '--workload', 'wimse://example.org/svc/a']);
  t.is(moved.code, 0, moved.stderr);
  t.is(moved.stdout, 'updated entry for sidecar-a: wimse://example.org/svc/b, wimse://example.org/svc/a (DNS: a.example.org)\n');
  t.deepEqual(n.node.registrations.identitiesFor('sidecar-a'), ['wimse://example.org/svc/b', 'wimse://example.org/svc/a']);
  const dns = await w(['entry', 'update', '--node-id', 'sidecar-a', '--dns', 'b.example.org', '-o', 'json']);
  t.deepEqual(JSON.parse(dns.stdout), { nodeId: 'sidecar-a', workloads: ['wimse://example.org/svc/b', 'wimse://example.org/svc/a'], dnsNames: ['b.example.org'], source: 'api' });
  t.is((await w(['entry', 'update', 'sidecar-a', '--no-dns'])).code, 0);
  t.deepEqual(dnsOf(), []);

  const [missing, config, bad, nothing, both] = await Promise.all([
    w(['entry', 'update', 'nope', '--workload', 'wimse://example.org/svc/x']),
    w(['entry', 'update', 'from-config', '--workload', 'wimse://example.org/svc/x']),
    w(['entry', 'update', 'sidecar-a', '--workload', 'wimse://other.org/svc/x']),
    w(['entry', 'update', 'sidecar-a']),
    w(['entry', 'update', 'sidecar-a', '--dns', 'c.example.org', '--no-dns']),
  ]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^wimsectl: no entry for node id "nope"\. Create it with wimsectl entry create/);
  t.is(config.code, 1);
  t.regex(config.stderr, /cannot be changed through the API\. Edit it in sds\.registrations/);
  t.is(bad.code, 1);
  t.is(bad.stderr, 'wimsectl: workloads[0]: is in trust domain "other.org"; this node issues for "example.org"\n');
  t.is(nothing.code, 2);
  t.regex(nothing.stderr, /nothing to change: give --workload, --dns or --no-dns/);
  t.is(both.code, 2);
  t.deepEqual(n.node.registrations.identitiesFor('sidecar-a'), ['wimse://example.org/svc/b', 'wimse://example.org/svc/a']);
  t.deepEqual(dnsOf(), []);
});

test('wimsectl token - create, list, revoke by id and by node id', async (t) => {
  const n = await startAdminNode(t, newDir());
  const w = against(n);
  const before = Math.floor(Date.now() / 1000);
  const made = await w(['token', 'create', '--node-id', 'sidecar-a', '--ttl', '2h', '-o', 'json']);
  const after = Math.ceil(Date.now() / 1000);
  t.is(made.code, 0, made.stderr);
  const tok = JSON.parse(made.stdout);
  t.is(n.node.nodeTokens.verify(tok.token)?.nodeId, 'sidecar-a');
  t.regex(tok.expiresAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  // Issued while the command ran (a loaded machine may take long to start it): two hours later.
  const expires = Date.parse(tok.expiresAt) / 1000;
  t.true(expires >= before + 7200 && expires <= after + 7200, `${tok.expiresAt} is 2h after the call`);
  t.is(tok.nodeId, 'sidecar-a');
  const human = await w(['token', 'create', '--node-id', 'sidecar-b']);
  t.regex(human.stdout, /^token: {4}wnt_[A-Za-z0-9_-]{43}\ntoken id: \S{16}\nexpires: {2}never\n/);
  const list = await w(['token', 'list']);
  t.regex(list.stdout, new RegExp(`${tok.tokenId}\\s+sidecar-a\\s+\\d{4}-\\d\\d-\\d\\dT\\S+Z\\s+no`));
  t.is((await w(['token', 'revoke', tok.tokenId])).code, 0);
  t.is(n.node.nodeTokens.verify(tok.token), undefined);
  t.is(n.node.nodeTokens.verify(JSON.parse((await w(['token', 'create', '--node-id', 'sidecar-c', '-o', 'json'])).stdout).token)?.nodeId, 'sidecar-c');
  t.is((await w(['token', 'revoke', '--node-id', 'sidecar-b'])).code, 0);
  const listed = JSON.parse((await w(['token', 'list', '-o', 'json'])).stdout);
  t.deepEqual(listed.map((x: any) => [x.nodeId, x.revoked]), [['sidecar-a', true], ['sidecar-b', true], ['sidecar-c', false]]);
  t.is(listed.find((x: any) => x.nodeId === 'sidecar-b').expiresAt, null);
  const none = await w(['token', 'revoke', 'no-such-token']);
  t.is(none.code, 1);
  t.regex(none.stderr, /no node token with id "no-such-token"\. List them with wimsectl token list/);
});

test('wimsectl token revoke - a token id that begins with - (base64url) is revoked, not taken for a flag', async (t) => {
  const n = await startAdminNode(t, newDir());
  // About one token id in 64 begins with '-': issue until one does.
  let token = '';
  for (let i = 0; i < 5000 && !tokenIdOf(hashToken(token)).startsWith('-'); i++) token = n.node.nodeTokens.issue('sidecar-dash');
  const id = tokenIdOf(hashToken(token));
  t.true(id.startsWith('-'), id);
  const r = await against(n)(['token', 'revoke', id]);
  t.is(r.code, 0, r.stderr);
  t.is(n.node.nodeTokens.verify(token), undefined);
});

test('wimsectl - usage errors exit 2 and say what was wrong and how to fix it', async (t) => {
  const n = await startAdminNode(t, newDir());
  const w = against(n);
  const runs = await Promise.all([
    w(['entry', 'create', '--workload', 'wimse://example.org/a']),
    w(['entry', 'frobnicate']),
    w(['nothing']),
    w(['token', 'create', '--node-id', 'a', '--ttl', 'soon']),
    w(['entry', 'list', '--bogus']),
    w(['entry', 'list', '-o', 'xml']),
    w(['token', 'revoke']),
  ]);
  for (const r of runs) t.is(r.code, 2, r.stderr);
  t.is(
    runs[0]!.stderr,
    "wimsectl: --node-id is required (the Envoy node's node.id). Usage: wimsectl entry create --node-id ID --workload ID [--workload ID]... [--dns NAME]... (wimsectl entry create --help describes its flags)\n",
  );
  t.regex(runs[1]!.stderr, /unknown command "entry frobnicate" \(entry: create, update, list, show, delete\)\. Run wimsectl --help/);
  t.regex(runs[2]!.stderr, /unknown command group "nothing"/);
  t.regex(runs[3]!.stderr, /--ttl "soon" is not a duration; use seconds or 30m, 24h, 7d/);
  t.regex(runs[4]!.stderr, /unknown flag --bogus\. Usage: wimsectl entry list/);
  t.regex(runs[5]!.stderr, /-o must be json or yaml \(or table, the default\), not "xml"/);
  const help = await wimsectl(['--help']);
  t.is(help.code, 0);
  for (const g of ['entry create', 'token revoke', 'bundle export', 'authority taint', 'federation add', 'mint cert', 'policy test', 'authn check']) t.true(help.stdout.includes(`wimsectl ${g}`), g);
});

test('wimsectl - authentication and connection: env vars, wrong token, no token, unreachable node', async (t) => {
  const n = await startAdminNode(t, newDir());
  const dir = newDir();
  const [viaEnv, wrong, noToken, down, defaultFile] = await Promise.all([
    wimsectl(['entry', 'list', '-o', 'json'], { env: { WIMSE_SERVER: n.node.grpcAddress, WIMSE_ADMIN_TOKEN: n.token } }),
    wimsectl(['entry', 'list'], { env: { WIMSE_SERVER: n.node.grpcAddress, WIMSE_ADMIN_TOKEN: 'not-the-admin-token-at-all' } }),
    wimsectl(['--server', n.node.grpcAddress, 'entry', 'list'], { cwd: dir }),
    wimsectl(['--server', '127.0.0.1:1', '--token-file', join(n.node.config.stateDir, 'admin-token'), 'entry', 'list']),
    // Run where the embedded default keeps its state: ./state/admin-token is found.
    wimsectl(['--server', n.node.grpcAddress, 'entry', 'list'], { cwd: n.dir }),
  ]);
  t.is(defaultFile.code, 0, defaultFile.stderr);
  t.is(viaEnv.code, 0, viaEnv.stderr);
  t.deepEqual(JSON.parse(viaEnv.stdout), []);
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /^wimsectl: the admin token is missing or wrong\. Pass it with --token-file FILE or WIMSE_ADMIN_TOKEN/);
  t.is(noToken.code, 2);
  t.regex(noToken.stderr, /^wimsectl: no admin token\. Pass --token-file FILE/);
  t.is(down.code, 1);
  t.regex(down.stderr, /^wimsectl: cannot reach the node at 127\.0\.0\.1:1 .*Check --server or WIMSE_SERVER/);
});
