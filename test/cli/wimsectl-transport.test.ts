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
