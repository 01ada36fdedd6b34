/**
 * Trust bundles: our own trust domain's bundle built from the key records, and federated trust
 * domains loaded from SPIFFE bundle files.
 *
 * Own bundle: every key whose status is prepared, active, old or tainted (`inBundle`): X.509 CA
 * certificates as roots, WIT keys as public JWKs with `kid` and `alg`. Revoked keys are out.
 *
 * Federation files (docs/ca.md "Federation"): each entry is either a path to a SPIFFE bundle map
 * (`{"trust_domains": {"<td>": <JWKS>}}`) or `{trustDomain, path}` naming a single SPIFFE bundle
 * (a JWKS). Any problem fails the load with every error and its field path; a file may not
 * speak for our own trust domain, and two files may not speak for the same one.
 */
import { readFile } from 'node:fs/promises';
import {
  parseSpiffeBundle,
  parseSpiffeBundleMap,
  pemToDers,
  MAX_BUNDLE_BYTES,
  type TrustBundleSet,
  type TrustDomainBundle,
  type WitKey,
} from '../identity/index.ts';
import { FederationBundleError } from './errors.ts';
import { inBundle, type KeyRecord } from './key-record.ts';

export function buildOwnBundle(
  trustDomain: string,
  records: readonly KeyRecord[],
  sequence: number,
  refreshHintSec?: number,
): TrustDomainBundle {
  const live = records.filter((r) => inBundle(r.status)).sort((a, b) => a.notBefore - b.notBefore || (a.kid < b.kid ? -1 : 1));
  const x509Authorities: Uint8Array[] = [];
  const witKeys: WitKey[] = [];
  for (const r of live) {
    if (r.kind === 'x509' && r.certPem) x509Authorities.push(...pemToDers(r.certPem));
    if (r.kind === 'wit') witKeys.push({ ...r.publicJwk, kid: r.kid, alg: r.alg });
  }
  return Object.freeze({
    trustDomain,
    x509Authorities,
    witKeys,
    sequence,
    ...(refreshHintSec !== undefined ? { refreshHint: refreshHintSec } : {}),
  });
}

export type FederatedBundleFile = string | { readonly trustDomain: string; readonly path: string };

export async function loadFederatedBundles(
  files: readonly FederatedBundleFile[],
  ownTrustDomain: string,
): Promise<Map<string, TrustDomainBundle>> {
  const out = new Map<string, TrustDomainBundle>();
  for (const f of files) {
    const path = typeof f === 'string' ? f : f.path;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw new FederationBundleError(path, [`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
    }
    if (text.length > MAX_BUNDLE_BYTES) throw new FederationBundleError(path, [`exceeds ${MAX_BUNDLE_BYTES} bytes`]);
    let got: Map<string, TrustDomainBundle>;
    if (typeof f === 'string') {
      const r = parseSpiffeBundleMap(text);
      if (!r.ok) throw new FederationBundleError(path, r.errors);
      got = r.value;
    } else {
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch (e) {
        throw new FederationBundleError(path, [`not JSON: ${(e as Error).message}`]);
      }
      const r = parseSpiffeBundle(f.trustDomain, doc);
      if (!r.ok) throw new FederationBundleError(path, r.errors);
      got = new Map([[f.trustDomain, r.value]]);
    }
    for (const [td, b] of got) {
      if (td === ownTrustDomain)
        throw new FederationBundleError(path, [`trust_domains["${td}"]: a federated bundle cannot replace our own trust domain`]);
      if (out.has(td)) throw new FederationBundleError(path, [`trust_domains["${td}"]: given by more than one federation file`]);
      out.set(td, b);
    }
  }
  return out;
}

/** Own + federated, own first. */
export function bundleSet(own: TrustDomainBundle, federated: ReadonlyMap<string, TrustDomainBundle>): TrustBundleSet {
  return new Map([[own.trustDomain, own], ...federated]);
}
