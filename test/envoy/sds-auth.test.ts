import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ManualClock } from '../../src/identity/clock.ts';
import { NodeTokenStore, hashToken } from '../../src/identity/node-tokens.ts';
import { nodeIdFromCertificate } from '../../src/identity/node-certificate.ts';
import { SdsServer } from '../../src/envoy/sds.ts';
import { listenTcpTls, listenUds } from '../../src/envoy/sds-listen.ts';
import { TYPE_URL } from '../../src/envoy/protos.ts';
import { TestAuthority, TestSecretSource } from './helpers/test-source.ts';
import { FakeEnvoy, secretsOf } from './helpers/fake-envoy.ts';
import { FRONTEND, ORDERS, sdsFixture } from './helpers/fixture.ts';
import { tlsCertificateOf } from './helpers/verify.ts';


async function setup(t: ExecutionContext) {
  const f = await sdsFixture(t);
  const token = f.tokens.issue('sidecar-orders-0');
  /** An Envoy; by default node sidecar-orders-0 with its (one) token. */
  const envoy = (o: { nodeId?: string; token?: string } = {}): FakeEnvoy =>
    f.envoy(o.nodeId ?? 'sidecar-orders-0', 'token' in o ? o.token : token);
  return { ...f, token, envoy };
}

test('sds auth - a stream without node credentials is refused with UNAUTHENTICATED', async (t) => {
  const { envoy, h } = await setup(t);
  const st = await envoy({ token: '' }).open(['default']).status;
  t.is(st.code, grpc.status.UNAUTHENTICATED);
  t.is(h.sds.stats().rejectedStreams, 1);
});

test('sds auth - an unknown token is refused with UNAUTHENTICATED', async (t) => {
  const { envoy } = await setup(t);
  const st = await envoy({ token: 'wnt_forged' }).open(['default']).status;
  t.is(st.code, grpc.status.UNAUTHENTICATED);
  t.false(st.details.includes('wnt_forged'), 'the token is not echoed');
});

test('sds auth - a node id other than the token is bound to is refused with PERMISSION_DENIED', async (t) => {
  const { envoy } = await setup(t);
  const st = await envoy({ nodeId: 'sidecar-frontend-0' }).open(['default']).status;
  t.is(st.code, grpc.status.PERMISSION_DENIED);
});

test('sds auth - an unentitled or unknown name fails the stream alike with INVALID_ARGUMENT', async (t) => {
  const { envoy } = await setup(t);
  const other = await envoy().open([FRONTEND]).status;
  const unknown = await envoy().open(['spiffe://example.org/ns/shop/sa/nobody']).status;
  const junk = await envoy().open(['file-root:system']).status;
  for (const st of [other, unknown, junk]) t.is(st.code, grpc.status.INVALID_ARGUMENT);
  // Same words whether the identity exists elsewhere or not: nothing about other workloads leaks.
  t.is(other.details.replace(FRONTEND, 'X'), unknown.details.replace('spiffe://example.org/ns/shop/sa/nobody', 'X'));
});

test('sds auth - a name added later that the node may not have also fails the stream', async (t) => {
  const { envoy } = await setup(t);
  const s = envoy().open(['default']);
  const r = await s.next();
  s.send({ resource_names: ['default', FRONTEND], type_url: TYPE_URL.secret, version_info: r.version_info, response_nonce: r.nonce });
  t.is((await s.status).code, grpc.status.INVALID_ARGUMENT);
});

test('sds auth - revoking a token ends its live streams and refuses new ones', async (t) => {
  const { envoy, tokens } = await setup(t);
  const s = envoy().open(['default']);
  await s.next();
  t.is(tokens.revokeNode('sidecar-orders-0'), 1);
  t.is((await s.status).code, grpc.status.UNAUTHENTICATED);
  t.is((await envoy().open(['default']).status).code, grpc.status.UNAUTHENTICATED);
});

test('sds auth - a stream opened with a token ends when the token expires, at the next tick', async (t) => {
  const { envoy, tokens, clock, h } = await setup(t);
  const expiring = tokens.issue('sidecar-orders-0', { expiresAt: clock.now() + 60_000 });
  const lasting = envoy().open(['default']);
  const s = envoy({ token: expiring }).open(['default']);
  await Promise.all([s.next(), lasting.next()]);
  await h.sds.tick();
  clock.advance(59_000);
  await h.sds.tick();
  t.true(tokens.isLive(hashToken(expiring)), 'still live a second before it expires');
  clock.advance(1_000);
  await h.sds.tick();
  const st = await s.status;
  t.is(st.code, grpc.status.UNAUTHENTICATED);
  t.is(st.details, 'node credentials expired');
  t.false(tokens.isLive(hashToken(expiring)));
  t.is((await envoy({ token: expiring }).open(['default']).status).code, grpc.status.UNAUTHENTICATED, 'and cannot open a new one');
  // The stream on a token without expiry is untouched: it still gets pushes.
  t.is(h.sds.stats().streams, 1);
  lasting.end();
});

test('sds auth - while node tokens cannot be confirmed, token streams and fetches get UNAVAILABLE with the reason, open ones end at the next tick', async (t) => {
  let unconfirmed: string | undefined;
  const f = await sdsFixture(t, { tokensUnconfirmed: () => unconfirmed });
  const token = f.tokens.issue('sidecar-orders-0');
  const open = f.envoy('sidecar-orders-0', token).open(['default']);
  t.truthy(secretsOf(await open.next()).get('default'));
  unconfirmed = 'cluster state stale: test';
  const refused = await f.envoy('sidecar-orders-0', token).open(['default']).status;
  t.deepEqual([refused.code, refused.details], [grpc.status.UNAVAILABLE, 'cluster state stale: test']);
  const fetched = (await t.throwsAsync(f.envoy('sidecar-orders-0', token).fetch(['default']))) as grpc.ServiceError;
  t.is(fetched.code, grpc.status.UNAVAILABLE);
  await f.h.sds.tick();
  const ended = await open.status;
  t.deepEqual([ended.code, ended.details], [grpc.status.UNAVAILABLE, 'cluster state stale: test']);
  unconfirmed = undefined;
  t.truthy(secretsOf(await f.envoy('sidecar-orders-0', token).open(['default']).next()).get('default'));
});

test('sds auth - losing a registration ends streams holding that identity', async (t) => {
  const { envoy, source } = await setup(t);
  const s = envoy().open(['default']);
  await s.next();
  source.registrations.set('sidecar-orders-0', []);
  source.emit({ kind: 'registrations' });
  t.is((await s.status).code, grpc.status.INVALID_ARGUMENT);
});

test('sds auth - a CA outage on the first request fails the stream with UNAVAILABLE', async (t) => {
  const { envoy, source } = await setup(t);
  source.failIssuance = true;
  const st = await envoy().open(['default']).status;
  t.is(st.code, grpc.status.UNAVAILABLE);
  t.false(st.details.includes('CA unavailable'), 'internal reasons stay in the log');
});

test('sds auth - DeltaSecrets is UNIMPLEMENTED', async (t) => {
  const { envoy } = await setup(t);
  const call = envoy().client.DeltaSecrets(new grpc.Metadata());
  const st = await new Promise<grpc.StatusObject>((res) => {
    call.on('status', res);
    call.on('error', () => undefined);
    call.write({ node: { id: 'sidecar-orders-0' }, type_url: TYPE_URL.secret });
  });
  t.is(st.code, grpc.status.UNIMPLEMENTED);
});

test('sds auth - FetchSecrets authenticates and checks the node id and entitlement', async (t) => {
  const { envoy } = await setup(t);
  await t.throwsAsync(envoy({ token: '' }).fetch(['default']), { message: /UNAUTHENTICATED/ });
  await t.throwsAsync(envoy().fetch(['default'], 'sidecar-frontend-0'), { message: /PERMISSION_DENIED/ });
  await t.throwsAsync(envoy().fetch([FRONTEND]), { message: /INVALID_ARGUMENT/ });
});

test('sds auth - node tokens are stored only as SHA-256 digests and survive a save/load', (t) => {
  const store = new NodeTokenStore();
  const token = store.issue('sidecar-orders-0');
  t.regex(token, /^wnt_[A-Za-z0-9_-]{43}$/);
  const saved = JSON.stringify(store);
  t.false(saved.includes(token.slice(4)));
  t.true(saved.includes(hashToken(token)));
  const loaded = NodeTokenStore.parse(JSON.parse(saved));
  t.true(loaded.ok);
  if (!loaded.ok) return;
  t.deepEqual(loaded.value.verify(token), { nodeId: 'sidecar-orders-0', sha256: hashToken(token) });
  t.is(loaded.value.verify(token + 'x'), undefined);
  loaded.value.revokeNode('sidecar-orders-0');
  t.is(loaded.value.verify(token), undefined);
  const bad = NodeTokenStore.parse({ tokens: [{ nodeId: '', sha256: 'short' }, { nodeId: 'n', sha256: hashToken('x'), revoked: 'yes' }] });
  t.deepEqual(bad.ok ? [] : bad.errors, [
    'tokens[0].nodeId: must be 1-256 printable ASCII characters',
    'tokens[0].sha256: must be a base64url SHA-256 digest',
    'tokens[1].revoked: must be a boolean',
  ]);
});

test('sds listen - Unix socket listener is mode 0600 and serves token-authenticated streams', async (t) => {
  const clock = new ManualClock(Date.now());
  const source = await TestSecretSource.create({ trustDomain: 'example.org', clock, registrations: { 'sidecar-orders-0': [ORDERS] } });
  const tokens = new NodeTokenStore();
  const sds = new SdsServer({ source, clock, auth: { tokens } });
  const server = new grpc.Server();
  sds.register(server);
  const dir = await mkdtemp(join(tmpdir(), 'sds-'));
  const path = join(dir, 'run', 'sds.sock');
  await listenUds(server, { path, mode: 0o600 });
  const envoy = new FakeEnvoy(`unix:${path}`, { nodeId: 'sidecar-orders-0', token: tokens.issue('sidecar-orders-0') });
  t.teardown(async () => {
    envoy.close();
    sds.close();
    await new Promise<void>((r) => server.tryShutdown(() => r()));
    await rm(dir, { recursive: true, force: true });
  });
  t.is((await stat(path)).mode & 0o777, 0o600);
  t.is((await stat(join(dir, 'run'))).mode & 0o777, 0o700);
  const r = await envoy.open(['default']).next();
  t.deepEqual(tlsCertificateOf(secretsOf(r).get('default')!).uriSans, [ORDERS]);
});

test('sds listen - TCP+mTLS listener authenticates Envoy by its verified client certificate, until the certificate expires', async (t) => {
  const clock = new ManualClock(Date.now());
  const source = await TestSecretSource.create({ trustDomain: 'example.org', clock, registrations: { 'sidecar-orders-0': [ORDERS] } });
  // The control plane's own serving certificate and a CA for Envoy client certificates: both
  // file-based in a real deployment, never from SDS itself.
  const serverCa = await TestAuthority.create('cp.example', 'cp-ca', clock.now());
  const serving = await serverCa.issue('spiffe://cp.example/control-plane', clock.now(), 3_600_000, ['control-plane.example.org']);
  const nodeCa = await TestAuthority.create('nodes.example', 'node-ca', clock.now());
  const nodeCert = await nodeCa.issue('spiffe://nodes.example/envoy/sidecar-orders-0', clock.now(), 3_600_000);
  const rogueCa = await TestAuthority.create('nodes.example', 'rogue', clock.now());
  const rogueCert = await rogueCa.issue('spiffe://nodes.example/envoy/sidecar-orders-0', clock.now(), 3_600_000);

  const sds = new SdsServer({
    source,
    clock,
    auth: {
      nodeIdFromCertificate: nodeIdFromCertificate('spiffe://nodes.example/envoy/'),
      now: () => clock.now(),
    },
  });
  const server = new grpc.Server();
  sds.register(server);
  const port = await listenTcpTls(server, {
    host: '127.0.0.1',
    port: 0,
    certChainPem: serving.chainPem,
    keyPem: serving.keyPem,
    clientCaPem: nodeCa.pem,
  });
  const opts = { 'grpc.ssl_target_name_override': 'control-plane.example.org', 'grpc.default_authority': 'control-plane.example.org' };
  const withCert = new FakeEnvoy(`127.0.0.1:${port}`, {
    nodeId: 'sidecar-orders-0',
    credentials: grpc.credentials.createSsl(Buffer.from(serverCa.pem), Buffer.from(nodeCert.keyPem), Buffer.from(nodeCert.chainPem)),
    channelOptions: opts,
  });
  const noCert = new FakeEnvoy(`127.0.0.1:${port}`, {
    nodeId: 'sidecar-orders-0',
    credentials: grpc.credentials.createSsl(Buffer.from(serverCa.pem)),
    channelOptions: opts,
  });
  t.teardown(async () => {
    withCert.close();
    noCert.close();
    sds.close();
    await new Promise<void>((r) => server.tryShutdown(() => r()));
  });
  const r = await withCert.open(['default']).next();
  t.deepEqual(tlsCertificateOf(secretsOf(r).get('default')!).uriSans, [ORDERS]);
  // Without a client certificate the handshake itself fails on an mTLS listener.
  t.is((await noCert.open(['default']).status).code, grpc.status.UNAVAILABLE);
  // A certificate from a CA the listener does not trust does not even complete the handshake.
  const rogue = new FakeEnvoy(`127.0.0.1:${port}`, {
    nodeId: 'sidecar-orders-0',
    credentials: grpc.credentials.createSsl(Buffer.from(serverCa.pem), Buffer.from(rogueCert.keyPem), Buffer.from(rogueCert.chainPem)),
    channelOptions: opts,
  });
  t.teardown(() => rogue.close());
  t.not((await rogue.open(['default']).status).code, grpc.status.OK);
  // The certificate authenticates until its notAfter by the server's clock, also on the
  // connection its handshake opened: an open stream ends at the next tick, a new call is refused.
  const open = withCert.open(['default']);
  await open.next();
  clock.advance(3_600_000);
  await sds.tick();
  const ended = await open.status;
  t.deepEqual([ended.code, ended.details], [grpc.status.UNAUTHENTICATED, 'node credentials expired']);
  const again = await withCert.open(['default']).status;
  t.deepEqual([again.code, again.details], [grpc.status.UNAUTHENTICATED, 'missing or invalid node credentials']);
});

test('sds auth - streams per node id are capped with RESOURCE_EXHAUSTED', async (t) => {
  const f = await sdsFixture(t, { maxStreamsPerNode: 2 });
  const envoy = f.envoy();
  const a = envoy.open(['ALL']);
  const b = envoy.open(['ROOTCA']);
  await Promise.all([a.next(), b.next()]);
  t.is((await envoy.open(['default']).status).code, grpc.status.RESOURCE_EXHAUSTED);
  // A closed stream frees its place.
  a.end();
  await a.status;
  await new Promise((r) => setTimeout(r, 100));
  await t.notThrowsAsync(envoy.open(['default']).next());
});
