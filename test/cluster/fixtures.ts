/** Real keys and certificates for cluster tests, plus small waiting helpers. */
import 'reflect-metadata';
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { policyDigest } from '../../src/cluster/index.ts';
import type { KeyRecord, PolicyRecord, RegistrationRecord, RevocationRecord, BundleRecord } from '../../src/cluster/index.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export const T0 = Date.UTC(2026, 0, 1);

export function publicJwk(): Record<string, unknown> {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
}

export function privateJwk(): Record<string, unknown> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return privateKey.export({ format: 'jwk' }) as Record<string, unknown>;
}

export function keyRecord(node: string, kid: string, over: Partial<KeyRecord> = {}): KeyRecord {
  return {
    node,
    kid,
    alg: 'ES256',
    use: 'wit',
    state: 'prepared',
    publicJwk: { ...publicJwk(), alg: 'ES256', kid },
    notBefore: T0,
    notAfter: T0 + 86_400_000,
    keySeq: 1,
    ...over,
  };
}

export async function caDerBase64(cn = 'wimse test root'): Promise<string> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${cn}`,
    notBefore: new Date(T0),
    notAfter: new Date(T0 + 86_400_000),
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  return Buffer.from(cert.rawData).toString('base64');
}

export function policyRecord(version: string, text = `routes: [] # ${version}`): PolicyRecord {
  return { version, digest: policyDigest(text), text };
}

export function registration(id: string, workloadId = `spiffe://example.org/ns/default/sa/${id}`): RegistrationRecord {
  return { id, workloadId, selectors: ['k8s:ns:default', `k8s:sa:${id}`] };
}

export function revocation(tokenId: string): RevocationRecord {
  return { tokenId, reason: 'compromised', revokedAt: T0, expiresAt: T0 + 3_600_000 };
}

export function bundleRecord(trustDomain: string, sequence: number): BundleRecord {
  const jwk = { ...publicJwk(), alg: 'ES256', kid: `k${sequence}`, use: 'wit-svid' };
  return { trustDomain, spiffeBundle: JSON.stringify({ keys: [jwk], spiffe_sequence: sequence }), sequence };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * What `p` settles with, or 'still waiting' after a 30 s safety net. A wait given a far longer
 * timeout of its own that settles here was ended by an event, not by that timeout.
 */
export function settled<T>(p: Promise<T>): Promise<T | 'still waiting'> {
  let timer: NodeJS.Timeout | undefined;
  const net = new Promise<'still waiting'>((r) => (timer = setTimeout(() => r('still waiting'), 30_000)));
  return Promise.race([p, net]).finally(() => clearTimeout(timer));
}

/** Poll `cond` until it holds; throws with `what` after `timeoutMs` (a safety net only). */
export async function eventually(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await sleep(10);
  }
}
