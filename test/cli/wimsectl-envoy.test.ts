import test from 'ava';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { validateBootstrap } from '../../src/envoy/validate-config.ts';
import { startAdminNode, newDir } from '../admin/helpers.ts';
import { against, wimsectl } from '../admin/cli.ts';

type Doc = Record<string, any>;
const CALLEE = ['envoy', 'bootstrap', '--node-id', 'sidecar-orders-0', '--workload', 'spiffe://example.org/ns/shop/sa/orders', '--audience', 'https://orders.shop.example.org'];
const tokenIn = (d: Doc): string => d.static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0].sds_config.api_config_source.grpc_services[0].initial_metadata[0].value;
const scratch = (t: { teardown(fn: () => void): void }): string => {
  const d = mkdtempSync(join(tmpdir(), 'wimsectl-envoy-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
};

test('wimsectl envoy bootstrap - prints a valid callee bootstrap with the token placeholder, offline', async (t) => {
  // No node and no admin token: nothing is asked of the network.
  const r = await wimsectl(CALLEE, { cwd: scratch(t) });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^# Envoy bootstrap \(callee\) for node sidecar-orders-0/);
  t.regex(r.stdout, /# Replace REPLACE_WITH_NODE_TOKEN with the node token \(wimsectl token create --node-id sidecar-orders-0\)\./);
  const d = parse(r.stdout, { maxAliasCount: 100 }) as Doc;
  t.true(validateBootstrap(d).ok);
  t.is(tokenIn(d), 'Bearer REPLACE_WITH_NODE_TOKEN');
  const json = await wimsectl([...CALLEE, '--format', 'json', '--token-placeholder', '%NODE_TOKEN%'], { cwd: scratch(t) });
  t.is(tokenIn(JSON.parse(json.stdout)), 'Bearer %NODE_TOKEN%');
});

test('wimsectl envoy bootstrap - a caller needs its upstream; role-specific flags and bad values are usage errors', async (t) => {
  const cwd = scratch(t);
  const caller = await wimsectl(
    ['envoy', 'bootstrap', '--role', 'caller', '--node-id', 'f-0', '--workload', 'spiffe://example.org/ns/shop/sa/frontend', '--upstream-host', 'orders.shop.svc', '--upstream-workload', 'spiffe://example.org/ns/shop/sa/orders', '--control-plane', 'unix:/run/wimse/sds.sock', '-o', 'json'],
    { cwd },
  );
  t.is(caller.code, 0, caller.stderr);
  const d = JSON.parse(caller.stdout) as Doc;
  t.true(validateBootstrap(d).ok);
  t.deepEqual(d.static_resources.clusters[1].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address, { pipe: { path: '/run/wimse/sds.sock' } });
  const [noUp, audience, badRole, badPort, badCp] = await Promise.all([
    wimsectl(['envoy', 'bootstrap', '--role', 'caller', '--node-id', 'f-0', '--workload', 'spiffe://example.org/ns/shop/sa/frontend'], { cwd }),
    wimsectl([...CALLEE, '--role', 'caller', '--upstream-host', 'o', '--upstream-workload', 'spiffe://example.org/o'], { cwd }),
    wimsectl([...CALLEE, '--role', 'server'], { cwd }),
    wimsectl([...CALLEE, '--listener-port', 'http'], { cwd }),
    wimsectl([...CALLEE, '--control-plane', 'cp.example.org'], { cwd }),
  ]);
  for (const r of [noUp, audience, badRole, badPort, badCp]) {
    t.is(r.code, 2);
    t.is(r.stdout, '');
  }
  t.regex(noUp.stderr, /--role caller needs --upstream-host and --upstream-workload/);
  t.regex(audience.stderr, /^wimsectl: --audience is for --role callee/);
  t.regex(badRole.stderr, /--role must be callee or caller/);
  t.regex(badPort.stderr, /--listener-port "http" is not a port number/);
  t.regex(badCp.stderr, /control plane: must be HOST:PORT or unix:\/path\/to\/socket/);
});

test('wimsectl envoy bootstrap - a real token is never printed unasked; --out writes it mode 0600, also over an existing file', async (t) => {
  const dir = scratch(t);
  const tokenFile = join(dir, 'token');
  const token = 'wnt_Lr5gQOIqWtyS8TBqBeL90JdlZ6cemTTTQsDBoK6Eqa8';
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const refused = await wimsectl([...CALLEE, '--node-token-file', tokenFile], { cwd: dir });
  t.is(refused.code, 2);
  t.is(refused.stdout, '');
  t.regex(refused.stderr, /would carry a real node token: write it with --out FILE \(mode 0600\), or pass --token-to-stdout/);
  t.false(refused.stderr.includes(token));
  const out = join(dir, 'envoy.yaml');
  writeFileSync(out, 'old', { mode: 0o644 });
  chmodSync(out, 0o644);
  const wrote = await wimsectl([...CALLEE, '--node-token-file', tokenFile, '--out', out], { cwd: dir });
  t.is(wrote.code, 0, wrote.stderr);
  t.is(wrote.stdout, `wrote ${out} (mode 0600)\n`);
  t.is(statSync(out).mode & 0o777, 0o600);
  const d = parse(readFileSync(out, 'utf8'), { maxAliasCount: 100 }) as Doc;
  t.is(tokenIn(d), `Bearer ${token}`);
  t.true(validateBootstrap(d).ok);
  const asked = await wimsectl([...CALLEE, '--node-token-file', tokenFile, '--token-to-stdout'], { cwd: dir });
  t.is(asked.code, 0);
  t.true(asked.stdout.includes(`Bearer ${token}`));
  const both = await wimsectl([...CALLEE, '--node-token-file', tokenFile, '--token-placeholder', 'X', '--out', out], { cwd: dir });
  t.is(both.code, 2);
  t.regex(both.stderr, /--node-token-file and --token-placeholder: give one source of the node token/);
});

test('wimsectl envoy bootstrap --token-create - issues a node token for the node id through the admin API and embeds it', async (t) => {
  const n = await startAdminNode(t, newDir());
  const dir = scratch(t);
  const out = join(dir, 'envoy.yaml');
  const r = await against(n)([...CALLEE, '--token-create', '--ttl', '1h', '--out', out]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^wrote .*envoy\.yaml \(mode 0600\); node token \S{16} issued for sidecar-orders-0\n$/);
  t.is(statSync(out).mode & 0o777, 0o600);
  const d = parse(readFileSync(out, 'utf8'), { maxAliasCount: 100 }) as Doc;
  const token = tokenIn(d).replace(/^Bearer /, '');
  t.is(n.node.nodeTokens.verify(token)?.nodeId, 'sidecar-orders-0');
  t.false(r.stdout.includes(token));
  // Options are checked before a token is issued: a bad one issues none.
  const before = JSON.parse((await against(n)(['token', 'list', '-o', 'json'])).stdout).length;
  const bad = await against(n)([...CALLEE, '--app-port', '0', '--token-create', '--out', out]);
  t.is(bad.code, 2);
  t.is(JSON.parse((await against(n)(['token', 'list', '-o', 'json'])).stdout).length, before);
});

test('wimsectl envoy bootstrap --control-plane-cert/--control-plane-key - the control_plane cluster presents the client certificate and no token is written, offline', async (t) => {
  const dir = scratch(t);
  const CERT = ['--control-plane', 'cp.example.org:8443', '--control-plane-cert', '/etc/wimse/node.crt', '--control-plane-key', '/etc/wimse/node.key'];
  const r = await wimsectl([...CALLEE, ...CERT], { cwd: dir });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^# Envoy bootstrap \(callee\) for node sidecar-orders-0/);
  t.regex(r.stdout, /# It presents the client certificate \/etc\/wimse\/node\.crt to the control plane, whose grpc\.tls\.nodeIdFromCertificate must map it to sidecar-orders-0\./);
  const d = parse(r.stdout, { maxAliasCount: 100 }) as Doc;
  const v = validateBootstrap(d);
  t.deepEqual(v.ok ? [] : v.errors, []);
  const cp = d.static_resources.clusters.find((c: Doc) => c.name === 'control_plane');
  t.deepEqual(cp.transport_socket.typed_config.common_tls_context.tls_certificates, [
    { certificate_chain: { filename: '/etc/wimse/node.crt' }, private_key: { filename: '/etc/wimse/node.key' } },
  ]);
  t.false(r.stdout.includes('initial_metadata') || r.stdout.includes('REPLACE_WITH_NODE_TOKEN'));
  const out = join(dir, 'envoy.json');
  const wrote = await wimsectl([...CALLEE, ...CERT, '--format', 'json', '--out', out], { cwd: dir });
  t.is(wrote.code, 0, wrote.stderr);
  t.is(wrote.stdout, `wrote ${out} (mode 0600)\n`);
  t.deepEqual(JSON.parse(readFileSync(out, 'utf8')), JSON.parse(JSON.stringify(d)));
  // Usage errors: half a pair, a token source with it, a Unix socket (no TLS), a relative path.
  const [half, withToken, uds, relative] = await Promise.all([
    wimsectl([...CALLEE, '--control-plane-cert', '/etc/wimse/node.crt'], { cwd: dir }),
    wimsectl([...CALLEE, ...CERT, '--token-create'], { cwd: dir }),
    wimsectl([...CALLEE, '--control-plane', 'unix:/run/wimse/sds.sock', '--control-plane-cert', '/etc/wimse/node.crt', '--control-plane-key', '/etc/wimse/node.key'], { cwd: dir }),
    wimsectl([...CALLEE, '--control-plane-cert', 'node.crt', '--control-plane-key', '/etc/wimse/node.key'], { cwd: dir }),
  ]);
  for (const x of [half, withToken, uds, relative]) {
    t.is(x.code, 2);
    t.is(x.stdout, '');
  }
  t.regex(half.stderr, /--control-plane-cert and --control-plane-key go together/);
  t.regex(withToken.stderr, /--token-create: not with --control-plane-cert \(the client certificate replaces the node token\)/);
  t.regex(uds.stderr, /control-plane client certificate: needs a TCP control plane \(HOST:PORT\); a Unix socket has no TLS/);
  t.regex(relative.stderr, /control-plane client certificate file: must be an absolute path/);
});
