/**
 * WatchBundles streams live as long as the credentials they were opened with, as SDS streams do
 * (src/caller-streams.ts): the Workload API service on a real mTLS gRPC listener on loopback, with
 * a real node-token store, a ManualClock and the stream checks driven by `tick()`.
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { ManualClock } from '../../src/identity/clock.ts';
import { hashToken, NodeTokenStore } from '../../src/identity/node-tokens.ts';
import { nodeIdFromCertificate } from '../../src/identity/node-certificate.ts';
import type { TrustBundleSet } from '../../src/identity/trust-bundle.ts';
import { WorkloadApiServer, workloadClientConstructor } from '../../src/workload-api/server.ts';
import { listenTcpTls } from '../../src/envoy/sds-listen.ts';
import { silentLogger } from '../../src/log.ts';
import { TestAuthority } from '../envoy/helpers/test-source.ts';

const STALE = 'cluster state stale: bus lost, last confirmed contact 45 s ago (cluster.maxStaleness 30s): node tokens cannot be confirmed on this node; retry on another node';

interface Watch {
  /** Every message received, in order. */
  readonly messages: unknown[];
  /** Resolves with the first message. */
  readonly first: Promise<unknown>;
  /** Resolves with the status the stream ended with. */
  readonly status: Promise<grpc.StatusObject>;
  cancel(): void;
}

async function setup(t: { teardown(fn: () => unknown): void }) {
  const clock = new ManualClock(Date.now());
  const tokens = new NodeTokenStore([], { now: () => clock.now() });
  // The listener's own certificate, and a CA for the hosts' client certificates.
  const serverCa = await TestAuthority.create('cp.example', 'cp-ca', clock.now());
  const serving = await serverCa.issue('spiffe://cp.example/control-plane', clock.now(), 3_600_000, ['control-plane.example.org']);
  const hostCa = await TestAuthority.create('nodes.example', 'host-ca', clock.now());
  let bundles: TrustBundleSet = new Map([['example.org', { trustDomain: 'example.org', x509Authorities: [serverCa.der], witKeys: [] }]]);
  const listeners = new Set<() => void>();
  let stale: string | undefined;
  const api = new WorkloadApiServer({
    auth: { tokens, nodeIdFromCertificate: nodeIdFromCertificate('spiffe://nodes.example/host/'), now: () => clock.now() },
    tokensUnconfirmed: () => stale,
    entitled: () => false,
    mintWit: () => Promise.reject(new Error('not used')),
    bundles: () => bundles,
    onBundlesChange: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    clock,
    logger: silentLogger(),
  });
  const server = new grpc.Server();
  api.register(server);
  const port = await listenTcpTls(server, { host: '127.0.0.1', port: 0, certChainPem: serving.chainPem, keyPem: serving.keyPem, clientCaPem: hostCa.pem });
  const clients: grpc.Client[] = [];
  t.teardown(async () => {
    for (const c of clients) c.close();
    api.close();
    await new Promise<void>((r) => server.tryShutdown(() => r()));
  });

  /** A client of the host `nodeId` (its client certificate), sending `token` when given. */
  const client = async (nodeId: string) => {
    const leaf = await hostCa.issue(`spiffe://nodes.example/host/${nodeId}`, clock.now(), 3_600_000);
    const creds = grpc.credentials.createSsl(Buffer.from(serverCa.pem), Buffer.from(leaf.keyPem), Buffer.from(leaf.chainPem));
    const c = new (workloadClientConstructor())(`127.0.0.1:${port}`, creds, {
      'grpc.ssl_target_name_override': 'control-plane.example.org',
      'grpc.default_authority': 'control-plane.example.org',
    }) as grpc.Client & Record<string, any>;
    clients.push(c);
    return {
      watch(token?: string): Watch {
        const md = new grpc.Metadata();
        if (token) md.set('authorization', `Bearer ${token}`);
        const call = c.WatchBundles({}, md) as grpc.ClientReadableStream<unknown>;
        const messages: unknown[] = [];
        call.on('data', (m) => messages.push(m));
        call.on('error', () => {}); // the status says it
        const first = new Promise<unknown>((resolve, reject) => {
          call.once('data', resolve);
          call.once('status', (s: grpc.StatusObject) => reject(new Error(`ended before its first message: ${s.code} ${s.details}`)));
        });
        first.catch(() => {}); // a refused stream is awaited by its status only
        const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
        return { messages, first, status, cancel: () => call.cancel() };
      },
    };
  };
  const changeBundles = () => {
    const td = bundles.get('example.org')!;
    bundles = new Map([['example.org', { ...td, x509Authorities: [...td.x509Authorities, hostCa.der] }]]);
    for (const l of listeners) l();
  };
  return {
    api,
    clock,
    tokens,
    client,
    changeBundles,
    setStale: (reason: string | undefined) => (stale = reason),
  };
}

/** Wait for `cond` (real time, a safety net only). */
async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 30_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('workload api streams - a revoked token ends its open WatchBundles stream at once with UNAUTHENTICATED; other streams stay', async (t) => {
  const f = await setup(t);
  const host = await f.client('host-a');
  const revoked = f.tokens.issue('host-a');
  const kept = f.tokens.issue('host-a');
  const a = host.watch(revoked);
  const b = host.watch(kept);
  const c = host.watch(); // by its certificate
  await Promise.all([a.first, b.first, c.first]);
  t.true(f.tokens.revokeDigest(hashToken(revoked)));
  const st = await a.status;
  t.is(st.code, grpc.status.UNAUTHENTICATED);
  t.is(st.details, 'node credentials revoked');
  // The others still get updates.
  f.changeBundles();
  await until(() => b.messages.length === 2 && c.messages.length === 2, 'the other streams to get the update');
  t.is(f.api.stats().streams, 2);
  // And the revoked token cannot open a new one.
  const again = await host.watch(revoked).status;
  t.is(again.code, grpc.status.UNAUTHENTICATED);
  t.is(again.details, 'missing or invalid node credentials');
});

test('workload api streams - a stream opened with a token ends with UNAUTHENTICATED when the token expires, at the next check', async (t) => {
  const f = await setup(t);
  const host = await f.client('host-a');
  const expiring = f.tokens.issue('host-a', { expiresAt: f.clock.now() + 60_000 });
  const lasting = host.watch(f.tokens.issue('host-a'));
  const s = host.watch(expiring);
  await Promise.all([s.first, lasting.first]);
  f.clock.advance(59_000);
  f.api.tick();
  t.is(f.api.stats().streams, 2, 'still open a second before the token expires');
  f.clock.advance(1_000);
  f.api.tick();
  const st = await s.status;
  t.is(st.code, grpc.status.UNAUTHENTICATED);
  t.is(st.details, 'node credentials expired');
  t.is(f.api.stats().streams, 1, 'the stream on a token without expiry stays');
  t.is((await host.watch(expiring).status).code, grpc.status.UNAUTHENTICATED, 'and the expired token cannot open a new one');
});

test('workload api streams - a stream opened with a certificate ends with UNAUTHENTICATED when the certificate expires, at the next check; new calls on its connection are refused', async (t) => {
  const f = await setup(t);
  const host = await f.client('host-a'); // a certificate valid for an hour
  const byCert = host.watch();
  const byToken = host.watch(f.tokens.issue('host-a'));
  await Promise.all([byCert.first, byToken.first]);
  f.clock.advance(3_599_000);
  f.api.tick();
  t.is(f.api.stats().streams, 2, 'still open a second before the certificate expires');
  f.clock.advance(1_000);
  f.api.tick();
  const st = await byCert.status;
  t.deepEqual([st.code, st.details], [grpc.status.UNAUTHENTICATED, 'node credentials expired']);
  t.is(f.api.stats().streams, 1, 'the token stream stays');
  const again = await host.watch().status;
  t.deepEqual([again.code, again.details], [grpc.status.UNAUTHENTICATED, 'missing or invalid node credentials']);
});

test('workload api streams - while node tokens cannot be confirmed, token streams end with UNAVAILABLE and the reason; certificate streams stay', async (t) => {
  const f = await setup(t);
  const host = await f.client('host-a');
  const token = f.tokens.issue('host-a');
  const byToken = host.watch(token);
  const byCert = host.watch();
  await Promise.all([byToken.first, byCert.first]);
  f.setStale(STALE);
  f.api.tick();
  const st = await byToken.status;
  t.is(st.code, grpc.status.UNAVAILABLE);
  t.is(st.details, STALE);
  // New token streams are refused the same way; certificate streams open and keep being served.
  const refused = await host.watch(token).status;
  t.is(refused.code, grpc.status.UNAVAILABLE);
  t.is(refused.details, STALE);
  const byCert2 = host.watch();
  await byCert2.first;
  f.changeBundles();
  await until(() => byCert.messages.length === 2 && byCert2.messages.length === 2, 'the certificate streams to get the update');
  t.is(f.api.stats().streams, 2);
  // Confirmed again: the token opens a stream.
  f.setStale(undefined);
  const back = host.watch(token);
  await back.first;
  t.is(f.api.stats().streams, 3);
});

test('workload api streams - close ends every open stream with UNAVAILABLE, and refuses new ones', async (t) => {
  const f = await setup(t);
  const host = await f.client('host-a');
  const byToken = host.watch(f.tokens.issue('host-a'));
  const byCert = host.watch();
  await Promise.all([byToken.first, byCert.first]);
  f.api.close();
  for (const s of await Promise.all([byToken.status, byCert.status])) {
    t.is(s.code, grpc.status.UNAVAILABLE);
    t.is(s.details, 'control plane shutting down');
  }
  t.is(f.api.stats().streams, 0);
  t.is((await host.watch().status).code, grpc.status.UNAVAILABLE);
});
