/**
 * Server-side checks on a leaf before it is ever pushed to an Envoy.
 *
 * Envoy NACKs a certificate/key pair that does not build an SSL context, and an early failed update
 * can stop later updates from reaching a listener (envoyproxy/envoy#42438,
 * `source/common/secret/sds_api.cc`), so nothing is pushed that would fail there. We also refuse a
 * leaf that does not chain to the roots we currently serve for its trust domain: during a CA
 * rollover the new root must be published (and served as ROOTCA/ALL) before leaves signed by the
 * new key go out.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { Checked } from '../identity/result.ts';
import { pemToDers, type TrustBundleSet } from '../identity/trust-bundle.ts';
import { trustDomainOf } from '../identity/workload-id.ts';
import type { IssuedLeaf } from './sds-source.ts';

const MAX_CHAIN = 5;

export function checkLeaf(leaf: IssuedLeaf, workloadId: string, bundles: TrustBundleSet, now: number): Checked<true> {
  const errors: string[] = [];
  const chain = pemToDers(leaf.chainPem);
  if (chain.length === 0) return { ok: false, errors: ['chainPem: no certificate'] };
  let certs: X509Certificate[];
  try {
    certs = chain.map((der) => new X509Certificate(der));
  } catch {
    return { ok: false, errors: ['chainPem: not a PEM certificate chain'] };
  }
  const leafCert = certs[0]!;
  try {
    if (!leafCert.checkPrivateKey(createPrivateKey(leaf.keyPem))) errors.push('keyPem: does not match the leaf certificate');
  } catch {
    errors.push('keyPem: not a PEM private key');
  }
  // The URI SAN must be exactly the identity it is served as (whole-URI comparison).
  const uris = (leafCert.subjectAltName ?? '')
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
  if (uris.length !== 1 || uris[0] !== workloadId) errors.push(`chainPem: leaf URI SAN is not exactly ${workloadId}`);
  if (leafCert.ca) errors.push('chainPem: leaf is a CA certificate');
  if (Date.parse(leafCert.validFrom) > now || Date.parse(leafCert.validTo) <= now)
    errors.push('chainPem: leaf is not valid now');
  const td = trustDomainOf(workloadId);
  const bundle = td ? bundles.get(td) : undefined;
  if (!bundle) errors.push(`bundles: no trust bundle for ${td ?? workloadId}`);
  else if (!chainsToRoots(certs, bundle.x509Authorities.map((d) => new X509Certificate(d))))
    errors.push('chainPem: does not chain to a root served for its trust domain');
  return errors.length ? { ok: false, errors } : { ok: true, value: true };
}

/** Leaf -> (intermediates from the chain) -> one of `roots`, each signature checked. */
export function chainsToRoots(chain: readonly X509Certificate[], roots: readonly X509Certificate[]): boolean {
  let current = chain[0];
  const candidates = chain.slice(1);
  for (let depth = 0; current && depth < MAX_CHAIN; depth++) {
    const cur: X509Certificate = current;
    const signedBy = (c: X509Certificate): boolean => cur.checkIssued(c) && cur.verify(c.publicKey);
    if (roots.some(signedBy)) return true;
    current = candidates.find((c) => c.ca && signedBy(c));
  }
  return false;
}
