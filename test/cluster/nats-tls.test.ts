/** The NATS security options against a real TLS-only nats-server: the CA file is what lets a node in. */
import 'reflect-metadata';
import test from 'ava';
import { webcrypto } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { NatsBus } from '../../src/cluster/index.ts';
import { startNatsServer } from '../helpers/nats-server.ts';
import { policyRecord, sleep } from './fixtures.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
type Keys = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'];

async function keyPair(): Promise<Keys> {
  return (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as unknown as Keys;
}

async function makePki(dir: string): Promise<{ caFile: string; otherCaFile: string; certFile: string; keyFile: string }> {
  const now = Date.now();
  const mkCa = async (cn: string) => {
    const keys = await keyPair();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: `CN=${cn}`,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 3_600_000),
      keys,
      signingAlgorithm: alg,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
    });
    return { keys, cert };
  };
  const ca = await mkCa('nats test ca');
  const other = await mkCa('some other ca');
  const leafKeys = await keyPair();
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: '02',
    subject: 'CN=127.0.0.1',
    issuer: ca.cert.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3_600_000),
    signingKey: ca.keys.privateKey,
    publicKey: leafKeys.publicKey,
    signingAlgorithm: alg,
    extensions: [
      // The client checks the name "localhost" for loopback IP URLs, so both are listed.
      new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }, { type: 'dns', value: 'localhost' }]),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', leafKeys.privateKey as unknown as webcrypto.CryptoKey)).toString('base64');
  const files = { caFile: join(dir, 'ca.pem'), otherCaFile: join(dir, 'other.pem'), certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server.key') };
  await writeFile(files.caFile, ca.cert.toString('pem'));
  await writeFile(files.otherCaFile, other.cert.toString('pem'));
  await writeFile(files.certFile, leaf.toString('pem'));
  await writeFile(files.keyFile, `-----BEGIN PRIVATE KEY-----\n${pkcs8.match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`);
  return files;
}

test('cluster nats tls - nodes that trust the server CA connect and share state; a node with another CA never connects', async (t) => {
  t.timeout(30_000);
  const dir = await mkdtemp(join(tmpdir(), 'wimse-nats-tls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pki = await makePki(dir);
  const server = await startNatsServer(t, 'tls', ['--tls', '--tlscert', pki.certFile, '--tlskey', pki.keyFile]);
  t.true(server.url.startsWith('tls://'));
  const mk = (nodeName: string, tlsCaFile: string, startTimeoutMs = 10_000) =>
    new NatsBus({ servers: [server.url], trustDomain: 'tls.example.org', nodeName, tlsCaFile, startTimeoutMs, reconnectWaitMs: 100 });
  const a = mk('a', pki.caFile);
  const b = mk('b', pki.caFile);
  const mallory = mk('mallory', pki.otherCaFile, 500);
  for (const x of [a, b, mallory]) t.teardown(() => x.close());
  await Promise.all([a.start(), b.start(), mallory.start()]);
  t.true(a.connected && b.connected);
  t.false(mallory.connected);
  await a.put('policy', 'current', policyRecord('over-tls'));
  const end = Date.now() + 5_000;
  while (b.get('policy', 'current') === undefined && Date.now() < end) await sleep(10);
  t.is(b.get('policy', 'current')?.record.version, 'over-tls');
  await sleep(300);
  t.false(mallory.connected);
  t.is(mallory.get('policy', 'current'), undefined);
});
