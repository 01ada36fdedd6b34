/**
 * A gRPC connection does not outlive the client certificate of its handshake: at the
 * certificate's notAfter the node's listener sends a GOAWAY and, after a grace, destroys the
 * connection with whatever streams are still open on it (src/grpc-guard.ts
 * closeSessionsAtCertificateExpiry). Real TLS over loopback, real certificates with a notAfter a
 * few seconds ahead, raw node:http2 clients that see the GOAWAY; a real grpc-js server with the
 * guard, and a real node.
 */
import test, { type ExecutionContext } from 'ava';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { PassThrough } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { certificateNodeGrpcYaml, makeNodePki, type NodePki } from '../helpers/node-pki.ts';
import { startTestNode } from '../helpers/node.ts';
import { FakeEnvoy, secretsOf } from '../envoy/helpers/fake-envoy.ts';
import { closeSessionsAtCertificateExpiry } from '../../src/grpc-guard.ts';
import { createLogger } from '../../src/log.ts';

/** Long enough for the handshake and a stream to open first on a loaded machine. */
const SHORT_MS = 6_000;
const GRACE_MS = 1_000;
const HOLD = '/test.Hold/Watch';

/** A service whose one server-streaming method sends one message and then holds the stream open. */
const holdService: grpc.ServiceDefinition = {
  Watch: {
    path: HOLD,
    requestStream: false,
    responseStream: true,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
};

async function pkiIn(t: ExecutionContext): Promise<NodePki> {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-certexp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return makeNodePki(dir);
}

/** A grpc-js server on loopback TLS (client certificates required when `clientCerts`), guarded. */
async function holdServer(t: ExecutionContext, pki: NodePki, clientCerts: boolean, closed: string[] = [], now?: () => number): Promise<number> {
  const server = new grpc.Server();
  server.addService(holdService, {
    Watch: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      call.on('error', () => {});
      call.write(Buffer.from('hello'));
    },
  });
  const creds = grpc.ServerCredentials.createSsl(
    clientCerts ? readFileSync(pki.clientCaFile) : null,
    [{ cert_chain: readFileSync(pki.certFile), private_key: readFileSync(pki.keyFile) }],
    clientCerts,
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', creds, (err, p) => {
      if (err) return reject(err);
      closeSessionsAtCertificateExpiry(server, { graceMs: GRACE_MS, onClose: (s) => closed.push(`${s.serialNumber}${s.atStart ? ' at start' : ''}`), ...(now ? { now } : {}) });
      resolve(p);
    }),
  );
  t.teardown(() => server.forceShutdown());
  return port;
}

interface Conn {
  session: ClientHttp2Session;
  /** Resolves with the GOAWAY's error code when one arrives. */
  goaway: Promise<number>;
  closed: Promise<void>;
}

function connect(t: ExecutionContext, port: number, pki: NodePki, cert?: { certPem: string; keyPem: string }): Conn {
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca: pki.serverCaPem, servername: 'localhost', ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}) });
  session.on('error', () => {});
  t.teardown(() => session.destroy());
  const goaway = once(session, 'goaway').then(([code]) => code as number);
  goaway.catch(() => {});
  return { session, goaway, closed: once(session, 'close').then(() => undefined) };
}

interface Held {
  stream: ClientHttp2Stream;
  /** The first message arrived. */
  first: Promise<void>;
  /** The stream closed: with its grpc-status trailer, or without (reset or its connection gone). */
  ended: Promise<{ grpcStatus: string | undefined }>;
}

/** Open a gRPC server-streaming call on a raw HTTP/2 session. */
function hold(session: ClientHttp2Session, path = HOLD, headers: Record<string, string> = {}, body = Buffer.alloc(5)): Held {
  const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
  stream.on('error', () => {});
  let grpcStatus: string | undefined;
  stream.on('response', (h) => (grpcStatus = (h['grpc-status'] as string | undefined) ?? grpcStatus));
  stream.on('trailers', (h) => (grpcStatus = h['grpc-status'] as string | undefined));
  stream.end(body);
  return { stream, first: once(stream, 'data').then(() => undefined), ended: once(stream, 'close').then(() => ({ grpcStatus })) };
}

/** A certificate expiring SHORT_MS from now has a GOAWAY sent, then its open stream reset; returns once the session is gone. */
async function expireOne(t: ExecutionContext, port: number, pki: NodePki): Promise<void> {
  const c = connect(t, port, pki, await pki.client([], SHORT_MS));
  const h = hold(c.session);
  await h.first;
  t.is(await c.goaway, http2.constants.NGHTTP2_NO_ERROR);
  t.false(h.stream.closed, 'the open stream outlives the GOAWAY (the grace)');
  const end = await h.ended;
  t.is(end.grpcStatus, undefined, 'reset with its connection, no status trailer');
  await c.closed;
}

test('certificate expiry sessions - a client whose certificate expires gets a GOAWAY at its notAfter, its open stream ends after the grace, and a fresh certificate connects', async (t) => {
  const pki = await pkiIn(t);
  const closed: string[] = [];
  const port = await holdServer(t, pki, true, closed);
  await expireOne(t, port, pki);
  t.is(closed.length, 1);
  // A new connection with a renewed certificate is served.
  const fresh = connect(t, port, pki, await pki.client([]));
  const h = hold(fresh.session);
  await h.first;
  t.false(fresh.session.closed);
  t.is(closed.length, 1);
});

test('certificate expiry sessions - a certificate valid for 40 days (a notAfter past setTimeout\'s limit) is not closed when another expires', async (t) => {
  const pki = await pkiIn(t);
  const port = await holdServer(t, pki, true);
  const long = connect(t, port, pki, await pki.client([], 40 * 24 * 3_600_000));
  let wentAway = false;
  void long.goaway.then(() => (wentAway = true));
  const lh = hold(long.session);
  await lh.first;
  await expireOne(t, port, pki);
  t.false(wentAway, 'no GOAWAY');
  t.false(long.session.closed || long.session.destroyed);
  t.false(lh.stream.closed, 'its stream is still open');
  await hold(long.session).first; // and it takes new calls
});

test('certificate expiry sessions - a certificate already past its notAfter by the guard\'s clock when the session starts (skew) is closed at once', async (t) => {
  const pki = await pkiIn(t);
  const closed: string[] = [];
  const port = await holdServer(t, pki, true, closed, () => Date.now() + 2 * 24 * 3_600_000);
  const cert = await pki.client([]);
  const c = connect(t, port, pki, cert);
  t.is(await c.goaway, http2.constants.NGHTTP2_NO_ERROR);
  await c.closed;
  t.is(closed.length, 1);
  t.regex(closed[0]!, / at start$/);
});

test('certificate expiry sessions - sessions without a client certificate (plain TLS) are untouched', async (t) => {
  const pki = await pkiIn(t);
  const closed: string[] = [];
  const plainPort = await holdServer(t, pki, false, closed);
  const plain = connect(t, plainPort, pki);
  let wentAway = false;
  void plain.goaway.then(() => (wentAway = true));
  const ph = hold(plain.session);
  await ph.first;
  // A certificate expiring on another listener marks the time that has passed.
  await expireOne(t, await holdServer(t, pki, true), pki);
  t.false(wentAway, 'no GOAWAY');
  t.false(ph.stream.closed);
  await hold(plain.session).first;
  t.deepEqual(closed, []);
});

test('certificate expiry sessions - the node closes a connection whose client certificate expired (GOAWAY, counted, logged without the certificate) and serves a renewed one', async (t) => {
  const PREFIX = 'spiffe://nodes.example.org/envoy/';
  const A = 'spiffe://example.org/ns/shop/sa/a';
  const dir = mkdtempSync(join(tmpdir(), 'wimse-certexp-node-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pki = await makeNodePki(dir);
  const sink = new PassThrough();
  let logged = '';
  sink.on('data', (d: Buffer) => (logged += d));
  const yaml = `${certificateNodeGrpcYaml(pki, PREFIX)}sds:
  registrations:
    - nodeId: sidecar-a
      workloads: [${A}]
`;
  const { node } = await startTestNode(t, { yaml, logger: createLogger({ level: 'info', destination: sink }) });
  const port = Number(/:(\d+)$/.exec(node.grpcAddress)![1]);
  const short = await pki.client([`${PREFIX}sidecar-a`], SHORT_MS);
  const c = connect(t, port, pki, short);
  t.is(await c.goaway, http2.constants.NGHTTP2_NO_ERROR);
  await c.closed;
  t.regex(await node.metrics.registry.metrics(), /^wimse_grpc_sessions_closed_total\{reason="client_certificate_expired"\} 1$/m);
  const line = logged
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, any>)
    .find((l) => /client certificate expired/.test(l.msg));
  t.truthy(line);
  t.is(line!.level, 30, 'info');
  t.regex(line!.serialNumber, /^[0-9A-F]+$/i);
  t.regex(line!.fingerprint256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  t.false(logged.includes('BEGIN CERTIFICATE') || logged.includes(short.certPem.split('\n')[1]!), 'never the certificate');
  // A renewed certificate gets the node's secrets on a new connection.
  const e = new FakeEnvoy(node.grpcAddress, {
    nodeId: 'sidecar-a',
    credentials: pki.credentials(await pki.client([`${PREFIX}sidecar-a`])),
    channelOptions: { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' },
  });
  t.teardown(() => e.close());
  t.truthy(secretsOf(await e.open(['default']).next()).get('default'));
});
