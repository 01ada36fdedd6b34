import test from 'ava';
import { join } from 'node:path';
import { startAdminNode, newDir, writeFile } from '../admin/helpers.ts';
import { against, wimsectl } from '../admin/cli.ts';

test('wimsectl - --ca-file reaches a node with a TLS gRPC listener; without it the handshake fails', async (t) => {
  // An issuer node mints the TLS server certificate (DNS SAN localhost) and gives its roots.
  const issuer = await startAdminNode(t, newDir());
  const dir = newDir();
  const cert = JSON.parse((await against(issuer)(['mint', 'cert', '--id', 'wimse://example.org/control-plane', '--dns', 'localhost', '-o', 'json'])).stdout);
  writeFile(dir, 'tls.crt', cert.certPem);
  writeFile(dir, 'tls.key', cert.privateKeyPem);
  const roots = writeFile(dir, 'roots.pem', (await against(issuer)(['bundle', 'export', '--format', 'pem', '--trust-domain', 'example.org'])).stdout);
  const tls = await startAdminNode(t, dir, 'trustDomain: tls.example\ngrpc:\n  listen: 127.0.0.1:0\n  tls:\n    certFile: tls.crt\n    keyFile: tls.key\n');
  const server = tls.node.grpcAddress.replace('127.0.0.1', 'localhost');
  const tokenFile = join(tls.node.config.stateDir, 'admin-token');
  const [ok, plain] = await Promise.all([
    wimsectl(['--server', server, '--ca-file', roots, '--token-file', tokenFile, 'authority', 'show', '-o', 'json']),
    wimsectl(['--server', server, '--token-file', tokenFile, 'authority', 'show']),
  ]);
  t.is(ok.code, 0, ok.stderr);
  t.is(JSON.parse(ok.stdout).trustDomain, 'tls.example');
  t.is(plain.code, 1);
  t.regex(plain.stderr, /^wimsectl: cannot reach the node at localhost:\d+ .*--ca-file for a TLS listener/);
  const noCa = await wimsectl(['--server', server, '--ca-file', join(dir, 'missing.pem'), '--token-file', tokenFile, 'authority', 'show']);
  t.is(noCa.code, 2);
  t.regex(noCa.stderr, /cannot read --ca-file .*missing\.pem \(ENOENT\)/);
});

test('wimsectl - reaches a node on a Unix socket (--server unix:/path)', async (t) => {
  const dir = newDir();
  const n = await startAdminNode(t, dir, `grpc:\n  listen: unix:${join(dir, 'grpc.sock')}\n`);
  const r = await wimsectl(['--server', `unix:${join(dir, 'grpc.sock')}`, '--token-file', join(n.node.config.stateDir, 'admin-token'), 'bundle', 'status', '-o', 'json']);
  t.is(r.code, 0, r.stderr);
  t.is(JSON.parse(r.stdout).nodes[0].node, 'admin-node');
});

test('wimsectl - --cert-file/--key-file reach a listener that requires a client certificate; without them the handshake fails', async (t) => {
  const issuer = await startAdminNode(t, newDir());
  const dir = newDir();
  const mint = async (id: string, dns: string[] = []) =>
    JSON.parse((await against(issuer)(['mint', 'cert', '--id', id, ...dns.flatMap((d) => ['--dns', d]), '-o', 'json'])).stdout);
  const server = await mint('wimse://example.org/control-plane', ['localhost']);
  writeFile(dir, 'tls.crt', server.certPem);
  writeFile(dir, 'tls.key', server.privateKeyPem);
  const roots = writeFile(dir, 'roots.pem', (await against(issuer)(['bundle', 'export', '--format', 'pem', '--trust-domain', 'example.org'])).stdout);
  const operator = await mint('spiffe://example.org/ops/wimsectl');
  const certFile = writeFile(dir, 'operator.crt', operator.certPem);
  const keyFile = writeFile(dir, 'operator.key', operator.privateKeyPem);
  const tls = await startAdminNode(
    t,
    dir,
    'trustDomain: mtls.example\ngrpc:\n  listen: 127.0.0.1:0\n  tls:\n    certFile: tls.crt\n    keyFile: tls.key\n    clientCaFile: roots.pem\n    requireClientCert: true\n',
  );
  const addr = tls.node.grpcAddress.replace('127.0.0.1', 'localhost');
  const tokenFile = join(tls.node.config.stateDir, 'admin-token');
  const base = ['--server', addr, '--ca-file', roots, '--token-file', tokenFile];
  const [ok, noCert, half] = await Promise.all([
    wimsectl([...base, '--cert-file', certFile, '--key-file', keyFile, 'authority', 'show', '-o', 'json']),
    wimsectl([...base, 'authority', 'show']),
    wimsectl([...base, '--cert-file', certFile, 'authority', 'show']),
  ]);
  t.is(ok.code, 0, ok.stderr);
  t.is(JSON.parse(ok.stdout).trustDomain, 'mtls.example');
  t.is(noCert.code, 1);
  t.regex(noCert.stderr, /cannot reach the node[\s\S]*certificate required[\s\S]*--cert-file\/--key-file when it requires a client certificate/);
  t.is(half.code, 2);
  t.regex(half.stderr, /--cert-file and --key-file go together/);
});
