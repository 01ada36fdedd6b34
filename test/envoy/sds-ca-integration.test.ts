import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { IdentityServer } from '../../src/ca/index.ts';
import { ManualClock } from '../../src/identity/clock.ts';
import { NodeTokenStore } from '../../src/identity/node-tokens.ts';
import { CaSecretSource } from '../../src/envoy/sds-ca-source.ts';
import { FakeEnvoy, secretsOf, startSds } from './helpers/fake-envoy.ts';
import { keyMatches, spiffeBundlesOf, tlsCertificateOf, trustedCaOf, verifiesTo } from './helpers/verify.ts';

const ORDERS = 'spiffe://example.org/ns/shop/sa/orders';
const FRONTEND = 'spiffe://example.org/ns/shop/sa/frontend';

/** The real CA (journal in a temp dir) behind the SDS server, with two registered nodes. */
async function setup(t: ExecutionContext) {
  const dir = await mkdtemp(join(tmpdir(), 'sds-ca-'));
  const clock = new ManualClock(Date.now());
  const ca = await IdentityServer.open({ stateDir: dir, trustDomain: 'example.org', clock });
  const source = new CaSecretSource(ca, [
    { nodeId: 'sidecar-orders-0', workloads: [ORDERS], dnsNames: ['orders.shop.example.org'] },
    { nodeId: 'sidecar-frontend-0', workloads: [FRONTEND] },
  ]);
  const tokens = new NodeTokenStore();
  const h = await startSds({ source, clock, auth: { tokens } });
  const clients: FakeEnvoy[] = [];
  const envoy = (nodeId: string): FakeEnvoy => {
    const e = new FakeEnvoy(h.address, { nodeId, token: tokens.issue(nodeId) });
    clients.push(e);
    return e;
  };
  t.teardown(async () => {
    clients.forEach((c) => c.close());
    await h.close();
    source.close();
    await ca.close();
    await rm(dir, { recursive: true, force: true });
  });
  const activeKid = (): string => ca.keys().find((k) => k.kind === 'x509' && k.status === 'active')!.kid;
  return { ca, clock, h, envoy, activeKid };
}

test('sds with the CA - served leaves chain to the served roots, match their key and carry the entitled identifier', async (t) => {
  const { envoy, activeKid } = await setup(t);
  const r = await envoy('sidecar-orders-0').open(['default', 'ROOTCA', 'ALL']).next();
  const s = secretsOf(r);
  const leaf = tlsCertificateOf(s.get('default')!);
  t.true(keyMatches(leaf));
  t.deepEqual(leaf.uriSans, [ORDERS]);
  t.true(leaf.leaf.subjectAltName!.includes('DNS:orders.shop.example.org'));
  t.true(verifiesTo(leaf, trustedCaOf(s.get('ROOTCA')!)));
  t.true(verifiesTo(leaf, spiffeBundlesOf(s.get('ALL')!).get('example.org')!));
  t.truthy(activeKid());
});

test('sds with the CA - rollover: prepare publishes the new root first, leaves move to the new key at rotation', async (t) => {
  const { ca, clock, h, envoy, activeKid } = await setup(t);
  const e = envoy('sidecar-orders-0');
  const sDefault = e.open(['default']);
  const sRoot = e.open(['ROOTCA']);
  const [rd, rr] = await Promise.all([sDefault.next(), sRoot.next()]);
  sDefault.ack(rd);
  sRoot.ack(rr);
  const oldKid = activeKid();

  await ca.prepare('x509');
  const rr2 = await sRoot.next();
  const roots = trustedCaOf(secretsOf(rr2).get('ROOTCA')!);
  t.is(roots.length, 2);
  t.true(await sDefault.silentFor(300), 'preparing a key changes no leaf');

  await ca.activate('x509');
  t.not(activeKid(), oldKid);
  // Leaves move over at their own rotation time (half-life ±10%).
  clock.advance(0.65 * 3_600_000);
  await h.sds.tick();
  const rd2 = await sDefault.next();
  const fresh = tlsCertificateOf(secretsOf(rd2).get('default')!);
  t.true(verifiesTo(fresh, roots));
  t.false(verifiesTo(fresh, trustedCaOf(secretsOf(rr).get('ROOTCA')!)), 'signed by the new key');
  t.true(keyMatches(fresh));
});

test('sds with the CA - tainting the active key pushes the new root and re-issued leaves at once', async (t) => {
  const { ca, envoy, activeKid } = await setup(t);
  const orders = envoy('sidecar-orders-0').open(['default', 'ROOTCA']);
  const frontend = envoy('sidecar-frontend-0').open(['default']);
  const [ro, rf] = await Promise.all([orders.next(), frontend.next()]);
  orders.ack(ro);
  frontend.ack(rf);
  const tainted = activeKid();
  await ca.taint('x509', tainted);
  t.not(activeKid(), tainted);

  // The multi-name stream may get the root and the leaf in one response or in two; gather both.
  const got = new Map<string, Record<string, any>>();
  while (!got.has('default') || !got.has('ROOTCA')) for (const [k, v] of secretsOf(await orders.next())) got.set(k, v);
  const roots = trustedCaOf(got.get('ROOTCA')!);
  const leaf = tlsCertificateOf(got.get('default')!);
  t.true(verifiesTo(leaf, roots));
  t.not(leaf.leaf.serialNumber, tlsCertificateOf(secretsOf(ro).get('default')!).leaf.serialNumber);
  const fLeaf = tlsCertificateOf(secretsOf(await frontend.next()).get('default')!);
  t.deepEqual(fLeaf.uriSans, [FRONTEND]);
  t.true(verifiesTo(fLeaf, roots));
});

test('sds with the CA - two sidecars configured only from SDS complete an mTLS handshake', async (t) => {
  const { envoy } = await setup(t);
  const get = async (nodeId: string) => {
    const s = secretsOf(await envoy(nodeId).open(['default', 'ROOTCA']).next());
    const leaf = tlsCertificateOf(s.get('default')!);
    return { key: leaf.keyPem, cert: leaf.chainPem, ca: trustedCaOf(s.get('ROOTCA')!).map((c) => c.toString()) };
  };
  const [server, client] = await Promise.all([get('sidecar-orders-0'), get('sidecar-frontend-0')]);
  const srv = tls.createServer({ ...server, requestCert: true, rejectUnauthorized: true }, (s) => {
    s.end(s.getPeerCertificate().subjectaltname ?? '');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => void srv.close());
  const seen = await new Promise<string>((res, rej) => {
    const sock = tls.connect({
      host: '127.0.0.1',
      port: (srv.address() as AddressInfo).port,
      ...client,
      checkServerIdentity: (_h, cert) => (cert.subjectaltname?.startsWith(`URI:${ORDERS}`) ? undefined : new Error('wrong server')),
    });
    let data = '';
    sock.on('data', (d) => (data += d));
    sock.on('end', () => res(data));
    sock.on('error', rej);
  });
  t.is(seen, `URI:${FRONTEND}`);
});
