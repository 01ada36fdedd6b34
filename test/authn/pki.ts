/** Test PKI: root/intermediate CAs and leaves generated with @peculiar/x509 on WebCrypto. */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export const P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
export const P384 = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' } as const;
type Alg = typeof P256 | typeof P384;

export interface Ca {
  cert: x509.X509Certificate;
  keys: webcrypto.CryptoKeyPair;
  alg: Alg;
  pem: string;
  der: Uint8Array;
}

const DAY = 86_400_000;

const gen = (alg: Alg) => webcrypto.subtle.generateKey(alg, false, ['sign', 'verify']) as Promise<webcrypto.CryptoKeyPair>;

export async function rootCa(name: string, nowMs: number, alg: Alg = P256): Promise<Ca> {
  const keys = await gen(alg);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${name}`,
    notBefore: new Date(nowMs - DAY),
    notAfter: new Date(nowMs + 365 * DAY),
    signingAlgorithm: alg,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return { cert, keys, alg, pem: cert.toString('pem'), der: new Uint8Array(cert.rawData) };
}

export async function intermediateCa(issuer: Ca, name: string, nowMs: number): Promise<Ca> {
  const keys = await gen(issuer.alg);
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${name}`,
    issuer: issuer.cert.subject,
    notBefore: new Date(nowMs - DAY),
    notAfter: new Date(nowMs + 30 * DAY),
    signingAlgorithm: issuer.alg,
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return { cert, keys, alg: issuer.alg, pem: cert.toString('pem'), der: new Uint8Array(cert.rawData) };
}

export interface LeafSpec {
  uris?: string[];
  notBefore?: number;
  notAfter?: number;
  ca?: boolean;
  keyUsage?: number | null;
  eku?: string[] | null;
}

export async function leaf(issuer: Ca, nowMs: number, spec: LeafSpec = {}): Promise<string> {
  const keys = await gen(P256);
  const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(spec.ca ?? false, undefined, true)];
  const ku = spec.keyUsage === undefined ? x509.KeyUsageFlags.digitalSignature : spec.keyUsage;
  if (ku !== null) extensions.push(new x509.KeyUsagesExtension(ku, true));
  const eku = spec.eku === undefined ? [x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth] : spec.eku;
  if (eku !== null) extensions.push(new x509.ExtendedKeyUsageExtension(eku));
  const uris = spec.uris ?? ['spiffe://example.org/ns/default/sa/client'];
  if (uris.length) extensions.push(new x509.SubjectAlternativeNameExtension(uris.map((value) => ({ type: 'url' as const, value }))));
  const cert = await x509.X509CertificateGenerator.create({
    subject: 'CN=workload',
    issuer: issuer.cert.subject,
    notBefore: new Date(spec.notBefore ?? nowMs - 60_000),
    notAfter: new Date(spec.notAfter ?? nowMs + 3_600_000),
    signingAlgorithm: issuer.alg,
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    extensions,
  });
  return cert.toString('pem');
}

export const KU = x509.KeyUsageFlags;
export const EKU = x509.ExtendedKeyUsage;
