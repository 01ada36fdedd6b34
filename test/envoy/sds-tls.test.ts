import test, { type ExecutionContext } from 'ava';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { ManualClock } from '../../src/identity/clock.ts';
import { NodeTokenStore } from '../../src/envoy/sds-auth.ts';
import { TestAuthority, TestSecretSource } from './helpers/test-source.ts';
import { FakeEnvoy, secretsOf, startSds } from './helpers/fake-envoy.ts';
import { spiffeBundlesOf, tlsCertificateOf, trustedCaOf } from './helpers/verify.ts';

const ORDERS = 'spiffe://example.org/ns/shop/sa/orders';
const FRONTEND = 'spiffe://example.org/ns/shop/sa/frontend';

/** What one sidecar got over SDS: its key and chain, and the CA PEMs it trusts. */
interface Served {
  key: string;
  cert: string;
  ca: string[];
}

async function setup(t: ExecutionContext) {
  const clock = new ManualClock(Date.now());
  const source = await TestSecretSource.create({
    trustDomain: 'example.org',
    clock,
    registrations: { 'sidecar-orders-0': [ORDERS], 'sidecar-frontend-0': [FRONTEND] },
  });
  const tokens = new NodeTokenStore();
  const h = await startSds({ source, clock, auth: { tokens } });
  const clients: FakeEnvoy[] = [];
  /** Fetch `default` plus a trust secret over a real SDS stream, as the node's Envoy would. */
  const served = async (nodeId: string, trust: 'ROOTCA' | 'ALL'): Promise<Served> => {
    const envoy = new FakeEnvoy(h.address, { nodeId, token: tokens.issue(nodeId) });
    clients.push(envoy);
    const r = await envoy.open(['default', trust]).next();
    const secrets = secretsOf(r);
    const leaf = tlsCertificateOf(secrets.get('default')!);
    const roots =
      trust === 'ROOTCA' ? trustedCaOf(secrets.get('ROOTCA')!) : [...spiffeBundlesOf(secrets.get('ALL')!).values()].flat();
    return { key: leaf.keyPem, cert: leaf.chainPem, ca: roots.map((c) => c.toString()) };
  };
  t.teardown(async () => {
    clients.forEach((c) => c.close());
    await h.close();
  });
  return { clock, source, served };
}

/** An mTLS server (requestCert + rejectUnauthorized) and a client; resolves with the peer's URI SAN or the error. */
async function handshake(server: Served, client: Served): Promise<{ ok: true; peer: string } | { ok: false; error: string }> {
  const srv = tls.createServer({ key: server.key, cert: server.cert, ca: server.ca, requestCert: true, rejectUnauthorized: true });
  let peer = '';
  srv.on('secureConnection', (s) => {
    peer = s.getPeerCertificate().subjectaltname ?? '';
    s.end('ok');
  });
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as AddressInfo).port;
  try {
    return await new Promise((res) => {
      const sock = tls.connect({
        host: '127.0.0.1',
        port,
        key: client.key,
        cert: client.cert,
        ca: client.ca,
        // Identity is the URI SAN, checked below; there is no DNS name to match.
        checkServerIdentity: (_host, cert) =>
          cert.subjectaltname === `URI:${ORDERS}` ? undefined : new Error(`unexpected server ${cert.subjectaltname}`),
      });
      sock.on('data', () => {
        res({ ok: true, peer });
        sock.end();
      });
      sock.on('error', (e) => res({ ok: false, error: e.message }));
      // TLS 1.3: a refused client certificate may surface only as a closed connection.
      sock.on('close', () => res({ ok: false, error: 'connection closed before any data' }));
    });
  } finally {
    srv.close();
  }
}

test('sds tls - two sidecars configured only from SDS (default + ROOTCA) complete mTLS', async (t) => {
  const { served } = await setup(t);
  const orders = await served('sidecar-orders-0', 'ROOTCA');
  const frontend = await served('sidecar-frontend-0', 'ROOTCA');
  const r = await handshake(orders, frontend);
  t.deepEqual(r, { ok: true, peer: `URI:${FRONTEND}` });
});

test('sds tls - a peer from an untrusted trust domain is refused', async (t) => {
  const { served, clock } = await setup(t);
  const orders = await served('sidecar-orders-0', 'ALL');
  const evilCa = await TestAuthority.create('evil.example', 'evil', clock.now());
  const evilLeaf = await evilCa.issue('spiffe://evil.example/ns/shop/sa/frontend', clock.now(), 3_600_000);
  const evil: Served = { key: evilLeaf.keyPem, cert: evilLeaf.chainPem, ca: orders.ca };
  const r = await handshake(orders, evil);
  t.false(r.ok);
});

test('sds tls - a federated peer is accepted once its trust domain is served in ALL', async (t) => {
  const { served, source, clock } = await setup(t);
  const partnerCa = await source.federate('partner.example');
  const partnerLeaf = await partnerCa.issue('spiffe://partner.example/billing', clock.now(), 3_600_000);
  const orders = await served('sidecar-orders-0', 'ALL');
  const partner: Served = { key: partnerLeaf.keyPem, cert: partnerLeaf.chainPem, ca: orders.ca };
  const r = await handshake(orders, partner);
  t.deepEqual(r, { ok: true, peer: 'URI:spiffe://partner.example/billing' });
  // The same partner against a sidecar that trusts only ROOTCA is refused.
  const ordersOwnOnly = await served('sidecar-orders-0', 'ROOTCA');
  t.false((await handshake(ordersOwnOnly, partner)).ok);
});
