import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { MESSAGE } from '../../src/envoy/protos.ts';
import { validateBootstrap, validateMessage } from '../../src/envoy/validate-config.ts';
import { makeNodePki } from '../helpers/node-pki.ts';
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

const SDS_CERT = ['--control-plane', 'cp.example.org:8443', '--control-plane-cert', '/etc/wimse/node-cert/tls.crt', '--control-plane-key', '/etc/wimse/node-cert/tls.key'];

test('wimsectl envoy bootstrap --control-plane-cert-sds - writes the bootstrap and the SDS file it names, both strictly valid, as YAML and as JSON', async (t) => {
  const dir = scratch(t);
  for (const [format, ext] of [['yaml', 'yaml'], ['json', 'json']] as const) {
    const out = join(dir, `envoy.${format}`);
    const sdsFile = join(dir, `control-plane-cert.${ext}`);
    const r = await wimsectl([...CALLEE, ...SDS_CERT, '--control-plane-cert-sds', sdsFile, '--format', format, '--out', out], { cwd: dir });
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, `wrote ${out} (mode 0600) and ${sdsFile} (mode 0644)\n`);
    // The SDS file holds paths only: readable by Envoy's user. The bootstrap keeps its mode.
    t.is(statSync(sdsFile).mode & 0o777, 0o644);
    t.is(statSync(out).mode & 0o777, 0o600);
    const read = (f: string): Doc => (f.endsWith('.json') ? JSON.parse(readFileSync(f, 'utf8')) : parse(readFileSync(f, 'utf8'), { maxAliasCount: 100 }));
    const d = read(out);
    const v = validateBootstrap(d);
    t.deepEqual(v.ok ? [] : v.errors, [], format);
    const s = read(sdsFile);
    const sv = validateMessage(MESSAGE.discoveryResponse, s);
    t.deepEqual(sv.ok ? [] : sv.errors, [], format);
    const ref = d.static_resources.clusters.find((c: Doc) => c.name === 'control_plane').transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0];
    t.deepEqual(ref.sds_config.path_config_source, { path: sdsFile, watched_directory: { path: dir } });
    t.is(s.resources[0].name, ref.name);
    t.deepEqual(s.resources[0].tls_certificate, {
      certificate_chain: { filename: '/etc/wimse/node-cert/tls.crt' },
      private_key: { filename: '/etc/wimse/node-cert/tls.key' },
      watched_directory: { path: '/etc/wimse/node-cert' },
    });
    const text = readFileSync(out, 'utf8');
    t.false(text.includes('initial_metadata') || text.includes('REPLACE_WITH_NODE_TOKEN'));
    if (format === 'yaml') t.regex(text, /# Envoy reloads \/etc\/wimse\/node-cert\/tls\.crt and \/etc\/wimse\/node-cert\/tls\.key without a restart when an entry of \/etc\/wimse\/node-cert is moved/);
  }
});

test('wimsectl envoy bootstrap --control-plane-cert-sds - a second run replaces the SDS file by a move (what Envoy watches for); --control-plane-cert-sds-out writes it elsewhere', async (t) => {
  const dir = scratch(t);
  const out = join(dir, 'envoy.yaml');
  const sdsFile = join(dir, 'cp.yaml');
  const first = await wimsectl([...CALLEE, ...SDS_CERT, '--control-plane-cert-sds', sdsFile, '--out', out], { cwd: dir });
  t.is(first.code, 0, first.stderr);
  const before = statSync(sdsFile).ino;
  const again = await wimsectl([...CALLEE, ...SDS_CERT, '--control-plane-cert-sds', sdsFile, '--control-plane-max-connection-duration', '20m', '--out', out], { cwd: dir });
  t.is(again.code, 0, again.stderr);
  t.not(statSync(sdsFile).ino, before, 'a new file renamed over the old one, not rewritten in place');
  t.deepEqual(readdirSync(dir).sort(), ['cp.yaml', 'envoy.yaml'], 'no temporary file left behind');
  const d = parse(readFileSync(out, 'utf8'), { maxAliasCount: 100 }) as Doc;
  t.is(d.static_resources.clusters[1].typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].common_http_protocol_options.max_connection_duration, '1200s');
  // Written here for an Envoy that reads it elsewhere (a ConfigMap, another host).
  const here = join(dir, 'for-configmap.yaml');
  const elsewhere = await wimsectl([...CALLEE, ...SDS_CERT, '--control-plane-cert-sds', '/etc/envoy/cp-cert.yaml', '--control-plane-cert-sds-out', here, '--out', out], { cwd: dir });
  t.is(elsewhere.code, 0, elsewhere.stderr);
  t.is(elsewhere.stdout, `wrote ${out} (mode 0600) and ${here} (mode 0644, for Envoy at /etc/envoy/cp-cert.yaml)\n`);
  t.true(validateMessage(MESSAGE.discoveryResponse, parse(readFileSync(here, 'utf8'))).ok);
  const d2 = parse(readFileSync(out, 'utf8'), { maxAliasCount: 100 }) as Doc;
  t.deepEqual(d2.static_resources.clusters[1].transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0].sds_config.path_config_source, {
    path: '/etc/envoy/cp-cert.yaml',
    watched_directory: { path: '/etc/envoy' },
  });
});

test('wimsectl envoy bootstrap --control-plane-cert-sds - the renewal docs/envoy.md describes (new directory, symlink swap) is a move in the watched directory, after which the named files are the new pair', async (t) => {
  const dir = scratch(t);
  const pki = await makeNodePki(dir);
  const certDir = join(dir, 'node-cert');
  // A Kubernetes Secret volume's layout: the files are symlinks through ..data to a versioned directory.
  const install = (version: string, pair: { certPem: string; keyPem: string }): void => {
    mkdirSync(join(certDir, version));
    writeFileSync(join(certDir, version, 'tls.crt'), pair.certPem);
    writeFileSync(join(certDir, version, 'tls.key'), pair.keyPem, { mode: 0o600 });
  };
  mkdirSync(certDir);
  const first = await pki.client(['spiffe://nodes.example.org/envoy/sidecar-orders-0']);
  install('..v1', first);
  symlinkSync('..v1', join(certDir, '..data'));
  symlinkSync('..data/tls.crt', join(certDir, 'tls.crt'));
  symlinkSync('..data/tls.key', join(certDir, 'tls.key'));
  const sdsFile = join(dir, 'cp-cert.yaml');
  const r = await wimsectl(
    [...CALLEE, '--control-plane', 'cp.example.org:8443', '--control-plane-cert', join(certDir, 'tls.crt'), '--control-plane-key', join(certDir, 'tls.key'), '--control-plane-cert-sds', sdsFile, '--out', join(dir, 'envoy.yaml')],
    { cwd: dir },
  );
  t.is(r.code, 0, r.stderr);
  const { tls_certificate: named } = (parse(readFileSync(sdsFile, 'utf8')) as Doc).resources[0];
  t.is(readFileSync(named.certificate_chain.filename, 'utf8'), first.certPem);
  // Watch what Envoy watches, then renew: new files in a new directory, one atomic rename.
  const watcher = watch(named.watched_directory.path);
  t.teardown(() => watcher.close());
  const moved = new Promise<string>((resolve) => watcher.on('change', (_kind, name) => name === '..data' && resolve(String(name))));
  const second = await pki.client(['spiffe://nodes.example.org/envoy/sidecar-orders-0']);
  install('..v2', second);
  symlinkSync('..v2', join(certDir, '..data_tmp'));
  renameSync(join(certDir, '..data_tmp'), join(certDir, '..data'));
  t.is(await moved, '..data');
  t.is(readFileSync(named.certificate_chain.filename, 'utf8'), second.certPem);
  t.is(readFileSync(named.private_key.filename, 'utf8'), second.keyPem);
});

test('wimsectl envoy bootstrap --control-plane-cert-sds - bad input is a usage error that says what is wrong, and nothing is written', async (t) => {
  const dir = scratch(t);
  const out = join(dir, 'envoy.yaml');
  const sds = join(dir, 'cp.yaml');
  const KEY_ONLY = ['--control-plane', 'cp.example.org:8443', '--control-plane-key', '/etc/wimse/node-cert/tls.key'];
  const cases: [string[], RegExp][] = [
    [[...KEY_ONLY, '--control-plane-cert-sds', sds, '--out', out], /--control-plane-cert and --control-plane-key go together/],
    [['--control-plane-cert-sds', sds, '--out', out], /--control-plane-cert-sds needs --control-plane-cert and --control-plane-key \(the certificate and key files the SDS file names\)/],
    [[...SDS_CERT, '--control-plane-cert-sds', join(dir, 'missing', 'cp.yaml'), '--out', out], new RegExp(`--control-plane-cert-sds ${join(dir, 'missing', 'cp.yaml')}: directory ${join(dir, 'missing')} does not exist`)],
    [[...SDS_CERT, '--control-plane-cert-sds', '/etc/envoy/cp.yaml', '--control-plane-cert-sds-out', join(dir, 'gone', 'cp.yaml'), '--out', out], new RegExp(`--control-plane-cert-sds-out ${join(dir, 'gone', 'cp.yaml')}: directory ${join(dir, 'gone')} does not exist`)],
    [[...SDS_CERT, '--control-plane-cert-sds', sds, '--out', join(dir, 'none', 'envoy.yaml')], new RegExp(`--out ${join(dir, 'none', 'envoy.yaml')}: directory ${join(dir, 'none')} does not exist`)],
    [[...SDS_CERT, '--control-plane-cert-sds', sds], /--control-plane-cert-sds writes two files, the bootstrap and the SDS file: give --out FILE for the bootstrap/],
    [[...SDS_CERT, '--control-plane-cert-sds', 'cp.yaml', '--out', out], /control-plane certificate SDS file: must be an absolute path without spaces ending in \.yaml or \.json \(Envoy parses the file by its name\)/],
    [[...SDS_CERT, '--control-plane-cert-sds', join(dir, 'cp.txt'), '--out', out], /ending in \.yaml or \.json/],
    [
      ['--control-plane', 'cp.example.org:8443', '--control-plane-cert', '/etc/wimse/certs/tls.crt', '--control-plane-key', '/etc/wimse/keys/tls.key', '--control-plane-cert-sds', sds, '--out', out],
      /control-plane client certificate and key: must be in one directory to be reloaded \(Envoy reloads both when an entry of that directory is moved\), not \/etc\/wimse\/certs and \/etc\/wimse\/keys/,
    ],
    [[...SDS_CERT, '--control-plane-cert-sds-out', sds, '--out', out], /--control-plane-cert-sds-out goes with --control-plane-cert-sds/],
    [[...SDS_CERT, '--control-plane-max-connection-duration', '1h', '--out', out], /--control-plane-max-connection-duration goes with --control-plane-cert-sds/],
    [[...SDS_CERT, '--control-plane-cert-sds', sds, '--control-plane-max-connection-duration', 'soon', '--out', out], /--control-plane-max-connection-duration "soon" is not a duration; use seconds or 30m, 2h/],
    [[...SDS_CERT, '--control-plane-cert-sds', sds, '--control-plane-max-connection-duration', '30s', '--out', out], /control-plane max connection duration: must be whole seconds, at least 60 \(got 30\)/],
    [[...SDS_CERT, '--control-plane-cert-sds', sds, '--node-token-file', join(dir, 'token'), '--out', out], /--node-token-file: not with --control-plane-cert \(the client certificate replaces the node token\)/],
  ];
  const runs = await Promise.all(cases.map(([args]) => wimsectl([...CALLEE, ...args], { cwd: dir })));
  runs.forEach((x, i) => {
    t.is(x.code, 2, `case ${i}: ${x.stderr}`);
    t.is(x.stdout, '');
    t.regex(x.stderr, cases[i]![1], `case ${i}`);
  });
  t.deepEqual(readdirSync(dir), [], 'nothing written');
});
