/**
 * Transport security around the SDK: the Workload API over TLS (a CA file), and the middleware
 * on an HTTPS server that terminates mutual TLS itself (the client certificate is the caller).
 */
import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/identity/clock.ts';
import { derToPem } from '../../src/identity/trust-bundle.ts';
import { WorkloadClient, WorkloadApiError, wimseMiddleware, type WimseIncomingMessage } from '../../src/sdk/index.ts';
import { CLIENT_ID, NODE_TOKEN, ManualTimers, SERVER_ID, TRUST_DOMAIN, startWorkloadApi } from './helpers.ts';

test('sdk tls - the client reaches the Workload API over TLS with a CA file, and refuses an unknown CA', async (t) => {
  const clock = new ManualClock(Date.now());
  const api = await startWorkloadApi({ clock, tls: true });
  const dir = await mkdtemp(join(tmpdir(), 'sdk-tls-'));
  await writeFile(join(dir, 'ca.pem'), derToPem(api.bundles().get(TRUST_DOMAIN)!.x509Authorities[0]!));
  t.teardown(async () => {
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });
  const client = new WorkloadClient({ address: api.address, tls: { caFile: join(dir, 'ca.pem') }, nodeToken: NODE_TOKEN, workloadId: CLIENT_ID, clock, timers: new ManualTimers(clock), watchBundles: false });
  t.teardown(() => client.close());
  const cred = await client.start();
  t.is(cred.workloadId, CLIENT_ID);

  // Another CA: the handshake fails, reported as unavailable (retryable), never as a WIT.
  const other = await startWorkloadApi({ clock });
  t.teardown(() => other.close());
  await writeFile(join(dir, 'other.pem'), derToPem(other.bundles().get(TRUST_DOMAIN)!.x509Authorities[0]!));
  const wrong = new WorkloadClient({ address: api.address, tls: { caFile: join(dir, 'other.pem') }, nodeToken: NODE_TOKEN, workloadId: CLIENT_ID, clock, timers: new ManualTimers(clock), watchBundles: false, callTimeoutMs: 3000 });
  t.teardown(() => wrong.close());
  const err = (await t.throwsAsync(wrong.start())) as WorkloadApiError;
  t.is(err.code, 'workload_api.unavailable');
  t.true(err.retryable);
  // And plaintext to a TLS endpoint gets nothing either.
  const plaintext = new WorkloadClient({ address: api.address, nodeToken: NODE_TOKEN, workloadId: CLIENT_ID, clock, timers: new ManualTimers(clock), watchBundles: false, callTimeoutMs: 3000 });
  t.teardown(() => plaintext.close());
  t.is(((await t.throwsAsync(plaintext.start())) as WorkloadApiError).code, 'workload_api.unavailable');
});

test('sdk tls - on an HTTPS server with client certificates, the middleware authenticates the mTLS peer', async (t) => {
  const clock = new ManualClock(Date.now());
  const api = await startWorkloadApi({ clock });
  const serverId = new WorkloadClient({ address: api.address, nodeToken: NODE_TOKEN, workloadId: SERVER_ID, clock, timers: new ManualTimers(clock) });
  await serverId.start();
  await serverId.waitForBundles();
  const rootPem = derToPem(api.bundles().get(TRUST_DOMAIN)!.x509Authorities[0]!);
  const serverCert = await api.ca.issueWic({ id: SERVER_ID, dnsNames: ['localhost'] });
  const clientCert = await api.ca.issueWic({ id: CLIENT_ID });
  const mw = wimseMiddleware({ bundles: () => serverId.bundles(), audiences: ['https://localhost/'], clock });
  const server = createHttpsServer({ cert: serverCert.certPem, key: serverCert.privateKeyPem!, ca: rootPem, requestCert: true, rejectUnauthorized: true }, (req, res) =>
    mw(req, res, () => res.end(JSON.stringify((req as WimseIncomingMessage).wimse))),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await serverId.close();
    await api.close();
  });
  const port = (server.address() as AddressInfo).port;
  const body = await new Promise<string>((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', servername: 'localhost', port, path: '/x', ca: rootPem, cert: clientCert.certPem, key: clientCert.privateKeyPem!, agent: false }, (res) => {
      let s = '';
      res.on('data', (d: Buffer) => (s += d));
      res.on('end', () => resolve(s));
    });
    req.on('error', reject);
    req.end();
  });
  const caller = JSON.parse(body) as { caller: string; via: string };
  t.is(caller.caller, CLIENT_ID);
  t.is(caller.via, 'mtls');
});
