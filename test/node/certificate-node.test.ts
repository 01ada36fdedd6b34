/**
 * A real node whose gRPC listener requires client certificates and lets them name the calling
 * node (grpc.tls.nodeIdFromCertificate): real TLS over loopback, real certificates from a test
 * CA (test/helpers/node-pki.ts), an Envoy-like SDS client, ext_authz Checks and Workload API
 * calls without node tokens; and with node tokens that agree or disagree with the certificate.
 */
import test, { type ExecutionContext } from 'ava';
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CompactSign, decodeJwt } from 'jose';
import { getCheckRequest, startTestNode } from '../helpers/node.ts';
import { certificateNodeGrpcYaml, makeNodePki, type NodePki } from '../helpers/node-pki.ts';
import { startNatsServer } from '../helpers/nats-server.ts';
import { callCheck, type AuthzClient } from '../helpers/envoy-pep.ts';
import { FakeEnvoy, secretsOf } from '../envoy/helpers/fake-envoy.ts';
import { tlsCertificateOf } from '../envoy/helpers/verify.ts';
import { envoyProtos } from '../../src/envoy/protos.ts';
import { createWpt } from '../../src/authn/wpt.ts';
import { workloadClientConstructor } from '../../src/workload-api/server.ts';
import { PROOF_AUDIENCE, PROOF_TYP } from '../../src/workload-api/proof.ts';
import { parseSpiffeBundleMap } from '../../src/identity/trust-bundle.ts';
import { hashToken, tokenIdOf } from '../../src/identity/node-tokens.ts';
import { createLogger } from '../../src/log.ts';
import { ManualClock } from '../../src/identity/clock.ts';
import { TUNING } from '../mesh/helpers.ts';

const PREFIX = 'spiffe://nodes.example.org/envoy/';
const A = 'spiffe://example.org/ns/shop/sa/a';
const B = 'spiffe://example.org/ns/shop/sa/b';
const CALLER = 'wimse://example.org/svc/caller';
const AUD = 'https://b.example.org';
const REG = `sds:
  registrations:
    - nodeId: sidecar-a
      workloads: [${A}]
    - nodeId: sidecar-b
      workloads: [${B}]
`;
const POLICY = `version: 1
destinations:
  - workload: ${B}
    audiences: [${AUD}]
    rules:
      - name: caller-reads
        paths: [{prefix: /orders/}]
        methods: [GET]
        callers: [${CALLER}]
        authn: [wpt]
`;
const INVALID = 'missing or invalid node credentials';

/** A logger that keeps every line (parsed JSON). */
function recordingLogger() {
  const sink = new PassThrough();
  let out = '';
  sink.on('data', (d: Buffer) => (out += d));
  return {
    logger: createLogger({ level: 'info', destination: sink }),
    text: () => out,
    lines: () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>),
  };
}

interface Client {
  certPem: string;
  keyPem: string;
}

/** A node with a TLS listener that requires client certificates and maps them to node ids under PREFIX. */
async function setup(t: ExecutionContext, o: { extraYaml?: string; policy?: string; cluster?: typeof TUNING; clock?: ManualClock } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-certid-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pki: NodePki = await makeNodePki(dir);
  const log = recordingLogger();
  const yaml = `${certificateNodeGrpcYaml(pki, PREFIX)}${REG}${o.extraYaml ?? ''}`;
  const { node } = await startTestNode(t, { yaml, logger: log.logger, ...(o.policy ? { policy: o.policy } : {}), ...(o.cluster ? { cluster: o.cluster } : {}), ...(o.clock ? { clock: o.clock } : {}) });
  const closers: Array<{ close(): void }> = [];
  t.teardown(() => {
    for (const c of closers) c.close();
  });
  // Every client its own credentials object: grpc-js shares connections only between equal ones.
  // The serving certificate's DNS name, so that no IP address is sent as SNI.
  const channelOptions = { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' };
  const envoy = (nodeId: string, cert: Client, token?: string): FakeEnvoy => {
    const e = new FakeEnvoy(node.grpcAddress, { nodeId, credentials: pki.credentials(cert), channelOptions, ...(token ? { token } : {}) });
    closers.push(e);
    return e;
  };
  const authz = (cert: Client, token?: string): AuthzClient => {
    const Ctor = grpc.makeGenericClientConstructor(envoyProtos().Authorization, 'Authorization');
    const interceptors: grpc.Interceptor[] = token
      ? [(opts, next) => new grpc.InterceptingCall(next(opts), { start: (md, l, n) => (md.set('authorization', `Bearer ${token}`), n(md, l)) })]
      : [];
    const c = new Ctor(node.grpcAddress, pki.credentials(cert), { ...channelOptions, interceptors }) as unknown as AuthzClient;
    closers.push(c);
    return c;
  };
  const workload = (cert: Client) => {
    const c = new (workloadClientConstructor())(node.grpcAddress, pki.credentials(cert), channelOptions) as grpc.Client & Record<string, any>;
    closers.push(c);
    return c;
  };
  return { node, pki, log, envoy, authz, workload };
}

const md = (token?: string) => {
  const m = new grpc.Metadata();
  if (token) m.set('authorization', `Bearer ${token}`);
  return m;
};

async function proofFor(sub: string) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk: Record<string, string> = { ...(publicKey.export({ format: 'jwk' }) as Record<string, string>), alg: 'ES256' };
  const claims = { sub, aud: PROOF_AUDIENCE, iat: Math.floor(Date.now() / 1000), jti: randomBytes(16).toString('base64url') };
  return new CompactSign(Buffer.from(JSON.stringify(claims))).setProtectedHeader({ alg: 'ES256', typ: PROOF_TYP, jwk }).sign(privateKey);
}
const fetchWit = (c: any, workloadId: string, proof: string, token?: string) =>
  new Promise<any>((resolve, reject) => c.FetchWIT({ workload_id: workloadId, proof }, md(token), (e: any, r: any) => (e ? reject(e) : resolve(r))));

test('node certificate identity - an Envoy whose client certificate names its node gets that node\'s secrets without a token; node.id must be the mapped id', async (t) => {
  const { node, pki, envoy } = await setup(t);
  // Other URI SANs (here a workload identity) do not matter; the one under the prefix names the node.
  const certA = await pki.client([A, `${PREFIX}sidecar-a`]);
  const e = envoy('sidecar-a', certA);
  const r = await e.open(['default', 'ALL']).next();
  const leaf = tlsCertificateOf(secretsOf(r).get('default')!);
  t.deepEqual(leaf.uriSans, [A]);
  t.truthy(secretsOf(r).get('ALL'));
  t.is(secretsOf(await e.fetch(['default'])).size, 1);
  // The first request's node.id must be the id the certificate names.
  const claimed = await envoy('sidecar-b', certA).open(['default']).status;
  t.deepEqual([claimed.code, claimed.details], [grpc.status.PERMISSION_DENIED, 'node id does not match the node credentials']);
  await t.throwsAsync(e.fetch(['default'], 'sidecar-b'), { message: /PERMISSION_DENIED/ });
  // The mapped id picks the registration entry: another node's identity is not available.
  const other = await e.open([B]).status;
  t.deepEqual([other.code, other.details], [grpc.status.INVALID_ARGUMENT, `secret ${JSON.stringify(B)} is not available to this node`]);
  t.is(node.sds.stats().rejectedStreams, 0, 'authenticated every time');
});

test('node certificate identity - a certificate that names no node validly is UNAUTHENTICATED, logged at warn with the problem and without the certificate', async (t) => {
  const { pki, envoy, log } = await setup(t);
  const cases: Array<[string, string[], string]> = [
    ['no URI SAN at all', [], 'no_node_uri'],
    ['a URI SAN under another prefix', ['spiffe://nodes.example.org/hosts/sidecar-a', `${PREFIX.toUpperCase()}sidecar-a`, 'spiffe://nodes.example.org/envoysidecar-a'], 'no_node_uri'],
    ['two URI SANs under the prefix', [`${PREFIX}sidecar-a`, `${PREFIX}sidecar-b`], 'several_node_uris'],
    ['the prefix alone', [PREFIX], 'bad_node_id'],
    ['a node id too long', [`${PREFIX}${'a'.repeat(400)}`], 'bad_node_id'],
  ];
  const certs = await Promise.all(cases.map(([, uris]) => pki.client(uris)));
  for (const [i, [what]] of cases.entries()) {
    const st = await envoy('sidecar-a', certs[i]!).open(['default']).status;
    t.deepEqual([st.code, st.details], [grpc.status.UNAUTHENTICATED, INVALID], what);
  }
  const refusals = log.lines().filter((l) => l.msg === 'client certificate refused: it names no node');
  t.deepEqual(
    refusals.map((l) => [l.level, l.component, l.problem]),
    cases.map(([, , problem]) => [40, 'caller-auth', problem]),
  );
  t.deepEqual(refusals[2]!.uris, [`${PREFIX}sidecar-a`, `${PREFIX}sidecar-b`]);
  t.is(refusals[4]!.uris[0].length, 300, 'a long SAN is cut');
  for (const [i, l] of refusals.entries()) t.is(l.fingerprint256, new X509Certificate(certs[i]!.certPem).fingerprint256);
  const der = new X509Certificate(certs[2]!.certPem).raw.toString('base64');
  t.false(log.text().includes('BEGIN CERTIFICATE') || log.text().includes(der.slice(0, 60)), 'the certificate is not logged');
});

test('node certificate identity - with a node token too: the token must name the certificate\'s node, else UNAUTHENTICATED on SDS, ext_authz and the Workload API', async (t) => {
  const { node, pki, envoy, authz, workload, log } = await setup(t, { policy: POLICY });
  const certA = await pki.client([`${PREFIX}sidecar-a`]);
  const tokenA = node.nodeTokens.issue('sidecar-a');
  const tokenB = node.nodeTokens.issue('sidecar-b');
  // A token for another node: refused whichever node id the Envoy claims.
  for (const nodeId of ['sidecar-a', 'sidecar-b']) {
    const st = await envoy(nodeId, certA, tokenB).open(['default']).status;
    t.deepEqual([st.code, st.details], [grpc.status.UNAUTHENTICATED, INVALID], nodeId);
  }
  const check = (await t.throwsAsync(callCheck(authz(certA, tokenB), getCheckRequest(B, AUD, {})))) as grpc.ServiceError;
  t.is(check.code, grpc.status.UNAUTHENTICATED);
  const wit = (await t.throwsAsync(fetchWit(workload(certA), B, await proofFor(B), tokenB))) as grpc.ServiceError;
  t.deepEqual([wit.code, wit.details], [grpc.status.UNAUTHENTICATED, INVALID]);
  const disagree = log.lines().filter((l) => l.msg === 'call refused: the client certificate and the node token name different nodes');
  t.is(disagree.length, 4);
  t.like(disagree[0], { level: 40, certificateNode: 'sidecar-a', tokenNode: 'sidecar-b', tokenId: tokenIdOf(hashToken(tokenB)) });
  t.false(log.text().includes(tokenB.slice(4)), 'the token is not logged');

  // The same node's token: accepted, and the call is the token's: revoking the token ends it,
  // while a stream on the certificate alone stays.
  const byBoth = envoy('sidecar-a', certA, tokenA).open(['default']);
  const byCert = envoy('sidecar-a', certA).open(['default']);
  await Promise.all([byBoth.next(), byCert.next()]);
  t.true(node.nodeTokens.revokeToken(tokenIdOf(hashToken(tokenA))));
  const ended = await byBoth.status;
  t.deepEqual([ended.code, ended.details], [grpc.status.UNAUTHENTICATED, 'node credentials revoked']);
  t.is(node.sds.stats().streams, 1, 'the certificate stream stays');
  byCert.end();

  // A certificate that claims no node only admitted the connection: the token decides. One that
  // claims a node invalidly refuses the call, token or not.
  const tokenA2 = node.nodeTokens.issue('sidecar-a');
  const admission = await pki.client(['spiffe://example.org/ops/host-7']);
  t.truthy(secretsOf(await envoy('sidecar-a', admission, tokenA2).open(['default']).next()).get('default'));
  const twoNodes = await pki.client([`${PREFIX}sidecar-a`, `${PREFIX}sidecar-b`]);
  t.is((await envoy('sidecar-a', twoNodes, tokenA2).open(['default']).status).code, grpc.status.UNAUTHENTICATED);
});

test('node certificate identity - ext_authz answers a Check from a proxy whose certificate names its node, without a token', async (t) => {
  const { node, pki, authz } = await setup(t, { policy: POLICY });
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(publicKey.export({ format: 'jwk' }) as Record<string, string>), alg: 'ES256' };
  const wit = await node.ca.mintWit({ sub: CALLER, cnf: jwk as any });
  const headers = () => ({
    'workload-identity-token': wit.token,
    authorization: `WPT ${createWpt({ wit: wit.token, privateKey, alg: 'ES256', aud: AUD, nowSec: Math.floor(Date.now() / 1000) })}`,
  });
  const proxy = authz(await pki.client([`${PREFIX}sidecar-b`]));
  const allowed = await callCheck(proxy, getCheckRequest(B, AUD, headers()));
  t.is(allowed.status.code, 0);
  const set = Object.fromEntries(allowed.ok_response.headers.map((h: any) => [h.header.key, h.header.value]));
  t.is(set['x-wimse-caller'], CALLER);
  // Answered, so also denied when the request says so: a decision, not a gRPC error.
  const denied = await callCheck(proxy, getCheckRequest(B, AUD, {}));
  t.is(JSON.parse(denied.denied_response.body).code, 'request.no_credentials');
  // A proxy whose certificate names no node, and no token: not answered.
  const stranger = authz(await pki.client(['spiffe://example.org/ops/host-7']));
  const err = (await t.throwsAsync(callCheck(stranger, getCheckRequest(B, AUD, headers())))) as grpc.ServiceError;
  t.is(err.code, grpc.status.UNAUTHENTICATED);
  t.regex(err.details, /client certificate that names its node/);
});

test('node certificate identity - the Workload API: FetchWIT and WatchBundles with a certificate, for the identities its node is registered for only', async (t) => {
  const { pki, workload } = await setup(t);
  const c = workload(await pki.client([`${PREFIX}sidecar-a`]));
  const res = await fetchWit(c, A, await proofFor(A));
  t.is((decodeJwt(res.wit) as any).sub, A);
  const other = (await t.throwsAsync(fetchWit(c, B, await proofFor(B)))) as grpc.ServiceError;
  t.is(other.code, grpc.status.PERMISSION_DENIED);
  const call = c.WatchBundles({}, md());
  const first = await new Promise<any>((resolve, reject) => {
    call.once('data', resolve);
    call.once('error', reject);
  });
  call.cancel();
  t.true(parseSpiffeBundleMap(first.bundle_map_json).ok);
  const unnamed = workload(await pki.client([]));
  t.is(((await t.throwsAsync(fetchWit(unnamed, A, await proofFor(A)))) as grpc.ServiceError).code, grpc.status.UNAUTHENTICATED);
});

test('node certificate identity - on a stale cluster node, certificate streams stay open and new ones are served; token streams get UNAVAILABLE', async (t) => {
  const nats = await startNatsServer(t);
  const { node, pki, envoy } = await setup(t, { cluster: TUNING, extraYaml: `cluster:\n  servers: [${nats.url}]\n  maxStaleness: 2s\n` });
  const certA = await pki.client([`${PREFIX}sidecar-a`]);
  const token = node.nodeTokens.issue('sidecar-a');
  const byCert = envoy('sidecar-a', certA).open(['default']);
  const byToken = envoy('sidecar-a', await pki.client([]), token).open(['default']);
  await Promise.all([byCert.next(), byToken.next()]);
  await nats.kill();
  // The token stream ends at the node's stream check once it is stale; the same check passed the
  // certificate stream over.
  const ended = await byToken.status;
  t.is(ended.code, grpc.status.UNAVAILABLE);
  t.regex(ended.details, /^cluster state stale: .*node tokens cannot be confirmed on this node/);
  t.true(node.cluster.staleness().stale);
  t.is(node.sds.stats().streams, 1);
  // New calls: the certificate is served, the token refused.
  t.truthy(secretsOf(await envoy('sidecar-a', certA).open(['default']).next()).get('default'));
  const refused = await envoy('sidecar-a', await pki.client([]), token).open(['default']).status;
  t.is(refused.code, grpc.status.UNAVAILABLE);
  byCert.end();
});

test('node certificate identity - a certificate authenticates until its notAfter by the node\'s clock: an open stream ends then, and later calls are refused, on its connection too', async (t) => {
  const clock = new ManualClock(Date.now());
  const { pki, envoy, workload, log } = await setup(t, { clock });
  const cert = await pki.client([`${PREFIX}sidecar-a`], 600_000);
  const e = envoy('sidecar-a', cert);
  const open = e.open(['default']);
  t.truthy(secretsOf(await open.next()).get('default'));
  // Past the certificate's notAfter on the node's clock (the handshake, in real time, still passes).
  clock.advance(700_000);
  const ended = await open.status;
  t.deepEqual([ended.code, ended.details], [grpc.status.UNAUTHENTICATED, 'node credentials expired']);
  const again = await e.open(['default']).status;
  t.deepEqual([again.code, again.details], [grpc.status.UNAUTHENTICATED, INVALID]);
  const wit = (await t.throwsAsync(fetchWit(workload(cert), A, await proofFor(A)))) as grpc.ServiceError;
  t.is(wit.code, grpc.status.UNAUTHENTICATED);
  t.true(log.lines().some((l) => l.msg === 'client certificate refused: it has expired' && l.node === 'sidecar-a' && l.level === 40));
});
