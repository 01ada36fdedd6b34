/**
 * A throwaway PKI for nodes with a TLS gRPC listener that requires client certificates: a CA for
 * the control plane's serving certificate (loopback names), a CA for the Envoys' client
 * certificates, and client certificates with whatever URI SANs a test needs. Real keys and
 * certificates (@peculiar/x509 over WebCrypto), written to files as a node reads them.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
type Keys = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'];
const HOUR = 3_600_000;

const keyPair = async (): Promise<Keys> => (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as unknown as Keys;
const pkcs8Pem = async (keys: Keys): Promise<string> => {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as unknown as webcrypto.CryptoKey)).toString('base64');
  return `-----BEGIN PRIVATE KEY-----\n${der.match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
};

interface Ca {
  keys: Keys;
  cert: x509.X509Certificate;
}

async function makeCa(cn: string, now: number): Promise<Ca> {
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${cn}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 24 * HOUR),
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  return { keys, cert };
}

let serial = 0x100;

async function issue(ca: Ca, names: x509.JsonGeneralNames, usage: x509.ExtendedKeyUsageType, now: number, lifetimeMs = HOUR): Promise<{ certPem: string; keyPem: string }> {
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: (serial++).toString(16),
    subject: 'CN=test',
    issuer: ca.cert.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + lifetimeMs),
    signingKey: ca.keys.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([usage]),
      ...(names.length ? [new x509.SubjectAlternativeNameExtension(names)] : []),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await pkcs8Pem(keys) };
}

export interface NodePki {
  /** The node's `grpc.tls` files: serving certificate and key, and the roots of client certificates. */
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientCaFile: string;
  /** The roots a client verifies the node with. */
  readonly serverCaPem: string;
  /** A client certificate from the client CA with these URI SANs (none: no SAN extension), valid from a minute ago for `lifetimeMs` (an hour) from now. */
  client(uris: readonly string[], lifetimeMs?: number): Promise<{ certPem: string; keyPem: string }>;
  /** gRPC channel credentials presenting `client` to the node. */
  credentials(client: { certPem: string; keyPem: string }): grpc.ChannelCredentials;
}

/** Make the CAs and the node's serving certificate (DNS localhost, IP 127.0.0.1) in `dir`. */
export async function makeNodePki(dir: string, now = Date.now()): Promise<NodePki> {
  const serverCa = await makeCa('control plane test ca', now);
  const clientCa = await makeCa('node test ca', now);
  const serving = await issue(
    serverCa,
    [
      { type: 'ip', value: '127.0.0.1' },
      { type: 'dns', value: 'localhost' },
    ],
    x509.ExtendedKeyUsage.serverAuth,
    now,
  );
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), clientCaFile: join(dir, 'client-ca.pem') };
  await writeFile(files.certFile, serving.certPem);
  await writeFile(files.keyFile, serving.keyPem);
  await writeFile(files.clientCaFile, clientCa.cert.toString('pem') + '\n');
  const serverCaPem = serverCa.cert.toString('pem') + '\n';
  return {
    ...files,
    serverCaPem,
    client: (uris, lifetimeMs) => issue(clientCa, uris.map((value) => ({ type: 'url' as const, value })), x509.ExtendedKeyUsage.clientAuth, now, lifetimeMs),
    credentials: (c) => grpc.credentials.createSsl(Buffer.from(serverCaPem), Buffer.from(c.keyPem), Buffer.from(c.certPem)),
  };
}

/**
 * The `grpc` section of a node config whose TLS listener requires client certificates signed by
 * `pki`'s client CA and maps them to node ids under `uriPrefix`.
 */
export function certificateNodeGrpcYaml(pki: NodePki, uriPrefix: string): string {
  return `grpc:
  listen: 127.0.0.1:0
  tls:
    certFile: ${pki.certFile}
    keyFile: ${pki.keyFile}
    clientCaFile: ${pki.clientCaFile}
    requireClientCert: true
    nodeIdFromCertificate:
      uriPrefix: ${uriPrefix}
`;
}
