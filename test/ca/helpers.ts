import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { IdentityServer, type IdentityServerOptions } from '../../src/ca/index.ts';
import { ManualClock, type PublicJwk, type TrustDomainBundle } from '../../src/identity/index.ts';

export const TD = 'example.org';

export async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ca-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export async function openCa(
  t: { teardown(fn: () => Promise<void>): void },
  opts: Partial<IdentityServerOptions> = {},
): Promise<{ ca: IdentityServer; clock: ManualClock; dir: string }> {
  const dir = opts.stateDir ?? (await tempDir(t));
  const clock = (opts.clock as ManualClock | undefined) ?? new ManualClock();
  const ca = await IdentityServer.open({ trustDomain: TD, ...opts, stateDir: dir, clock });
  t.teardown(() => ca.close());
  return { ca, clock, dir };
}

export function workloadKey(alg: 'ES256' | 'EdDSA' = 'EdDSA'): { privateKey: KeyObject; jwk: PublicJwk } {
  const kp = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  return { privateKey: kp.privateKey, jwk: { ...(kp.publicKey.export({ format: 'jwk' }) as PublicJwk), alg } };
}

/** The bundle root that issued `leaf` and verifies its signature, if any (RFC 5280 path of length 1). */
export function issuingRoot(leaf: X509Certificate, bundle: TrustDomainBundle): X509Certificate | undefined {
  for (const der of bundle.x509Authorities) {
    const root = new X509Certificate(der);
    if (leaf.checkIssued(root) && leaf.verify(root.publicKey)) return root;
  }
  return undefined;
}

export const validAt = (c: X509Certificate, ms: number): boolean =>
  Date.parse(c.validFrom) <= ms && ms <= Date.parse(c.validTo);
