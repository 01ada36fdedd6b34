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

export interface CaSpec {
  /** basicConstraints pathLenConstraint; null for none. Roots default to none, intermediates to 0. */
  pathLen?: number | null;
  /** keyUsage flags; null to leave the extension out. Default keyCertSign | cRLSign. */
  keyUsage?: number | null;
  /** More extensions, e.g. a critical name constraints extension. */
  extensions?: x509.Extension[];
}

function caExtensions(spec: CaSpec, defaultPathLen: number | undefined): x509.Extension[] {
  const pathLen = spec.pathLen === undefined ? defaultPathLen : spec.pathLen ?? undefined;
  const ku = spec.keyUsage === undefined ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : spec.keyUsage;
  return [
    new x509.BasicConstraintsExtension(true, pathLen, true),
    ...(ku !== null ? [new x509.KeyUsagesExtension(ku, true)] : []),
    ...(spec.extensions ?? []),
  ];
}

export async function rootCa(name: string, nowMs: number, alg: Alg = P256, spec: CaSpec = {}): Promise<Ca> {
  const keys = await gen(alg);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${name}`,
    notBefore: new Date(nowMs - DAY),
    notAfter: new Date(nowMs + 365 * DAY),
    signingAlgorithm: alg,
    keys,
    extensions: caExtensions(spec, undefined),
  });
  return { cert, keys, alg, pem: cert.toString('pem'), der: new Uint8Array(cert.rawData) };
}

export async function intermediateCa(issuer: Ca, name: string, nowMs: number, spec: CaSpec = {}): Promise<Ca> {
  const keys = await gen(issuer.alg);
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${name}`,
    issuer: issuer.cert.subject,
    notBefore: new Date(nowMs - DAY),
    notAfter: new Date(nowMs + 30 * DAY),
    signingAlgorithm: issuer.alg,
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    extensions: caExtensions(spec, 0),
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
  extensions?: x509.Extension[];
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
  extensions.push(...(spec.extensions ?? []));
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

/** A critical nameConstraints extension (RFC 5280 §4.2.1.10) permitting URIs under `host`. */
export function nameConstraints(host: string): x509.Extension {
  const h = Buffer.from(host, 'latin1');
  const uri = Buffer.concat([Buffer.from([0x86, h.length]), h]);
  const subtree = Buffer.concat([Buffer.from([0x30, uri.length]), uri]);
  const permitted = Buffer.concat([Buffer.from([0xa0, subtree.length]), subtree]);
  return new x509.Extension('2.5.29.30', true, Buffer.concat([Buffer.from([0x30, permitted.length]), permitted]));
}

/** An extension this verifier does not know, marked critical (or not). */
export const unknownExtension = (critical: boolean): x509.Extension => new x509.Extension('1.3.6.1.4.1.99999.1', critical, Buffer.from([0x05, 0x00]));
export const EKU = x509.ExtendedKeyUsage;
