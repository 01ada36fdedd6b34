/** A throwaway PKI for TLS-only nats-server tests: a CA, another CA, and a loopback server leaf. */
import { webcrypto } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
type Keys = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'];

async function keyPair(): Promise<Keys> {
  return (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as unknown as Keys;
}

export async function makeNatsPki(dir: string): Promise<{ caFile: string; otherCaFile: string; certFile: string; keyFile: string }> {
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
      // clientAuth too: NATS routes are mutual TLS with the same certificate.
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
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
