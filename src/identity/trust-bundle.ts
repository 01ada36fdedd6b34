/**
 * Trust bundles: what a verifier trusts for each trust domain.
 *
 * Per trust domain: X.509 roots (to validate WICs / mTLS peers) and WIT-verification keys (JWKs
 * with `kid`). Prepared and old keys are included: a bundle lists everything that may legitimately
 * have signed a live credential.
 *
 * Wire form: the SPIFFE trust bundle format (a JWKS). Roots are keys with `use: "x509-svid"` and
 * a one-element `x5c`; WIT keys are keys with `use: "wit-svid"` and a `kid`. Several trust domains
 * travel together as a SPIFFE bundle map, `{"trust_domains": {"<td>": <JWKS>}}`.
 *
 * Envoy's SPIFFE certificate validator (`trust_bundles`, spiffe_validator.cc `parseTrustBundles`)
 * reads a stricter subset: every key MUST have `use: "x509-svid"` and a non-empty `x5c` (any
 * other `use`, e.g. `wit-svid`, fails the whole map), every trust domain MUST have at least one
 * key, and the map at least one trust domain. `toEnvoyBundleMap` produces exactly that subset.
 *
 * Parsing skips keys whose `use` it does not know and rejects malformed keys, naming the trust
 * domain and the key index.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { checkPublicJwk, type PublicJwk } from './jwk.ts';
import { parseTrustDomain } from './workload-id.ts';
import type { Checked } from './result.ts';

export interface WitKey extends PublicJwk {
  kid: string;
  alg: string;
}

export interface TrustDomainBundle {
  readonly trustDomain: string;
  /** DER-encoded CA certificates. */
  readonly x509Authorities: readonly Uint8Array[];
  /** Public keys that verify WITs of this trust domain, each with a `kid` and `alg`. */
  readonly witKeys: readonly WitKey[];
  /** Monotonic per trust domain; bumped on every change by the issuer. */
  readonly sequence?: number;
  /** Seconds, a hint for how often to refresh. */
  readonly refreshHint?: number;
}

/** Trust domain name -> bundle. */
export type TrustBundleSet = ReadonlyMap<string, TrustDomainBundle>;

export const MAX_BUNDLE_BYTES = 1 << 20;

export function derToPem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

export function pemToDers(pem: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  const re = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
  for (let m = re.exec(pem); m; m = re.exec(pem)) out.push(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  return out;
}

/** PEM of every root of a bundle, concatenated (Envoy's `trusted_ca`). */
export const rootsPem = (b: TrustDomainBundle): string => b.x509Authorities.map(derToPem).join('');

/** A stable digest of a bundle's content (for versions and comparisons). */
export function bundleDigest(b: TrustDomainBundle): string {
  const h = createHash('sha256');
  h.update(b.trustDomain);
  for (const der of b.x509Authorities) h.update(der);
  for (const k of b.witKeys) h.update(JSON.stringify(k));
  return h.digest('base64url').slice(0, 16);
}

/** One trust domain as a SPIFFE bundle (JWKS). */
export function toSpiffeBundle(b: TrustDomainBundle): Record<string, unknown> {
  const keys: Record<string, unknown>[] = [];
  for (const der of b.x509Authorities) {
    const cert = new X509Certificate(der);
    const jwk = cert.publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
    keys.push({ use: 'x509-svid', ...jwk, x5c: [Buffer.from(der).toString('base64')] });
  }
  for (const k of b.witKeys) keys.push({ ...k, use: 'wit-svid' });
  const out: Record<string, unknown> = { keys };
  if (b.sequence !== undefined) out.spiffe_sequence = b.sequence;
  if (b.refreshHint !== undefined) out.spiffe_refresh_hint = b.refreshHint;
  return out;
}

/** Several trust domains as a SPIFFE bundle map, sorted by trust domain. */
export function toSpiffeBundleMap(set: TrustBundleSet): { trust_domains: Record<string, unknown> } {
  const trust_domains: Record<string, unknown> = {};
  for (const td of [...set.keys()].sort()) trust_domains[td] = toSpiffeBundle(set.get(td)!);
  return { trust_domains };
}

/**
 * The bundle map for Envoy's SPIFFE validator (`SPIFFECertValidatorConfig.trust_bundles`):
 * X.509 roots only, trust domains without roots left out (Envoy rejects a domain with no keys).
 */
export function toEnvoyBundleMap(set: TrustBundleSet): { trust_domains: Record<string, unknown> } {
  const trust_domains: Record<string, unknown> = {};
  for (const td of [...set.keys()].sort()) {
    const b = set.get(td)!;
    if (b.x509Authorities.length === 0) continue;
    trust_domains[td] = toSpiffeBundle({ ...b, witKeys: [] });
  }
  return { trust_domains };
}

/** Parse one SPIFFE bundle (JWKS) for `trustDomain`. */
export function parseSpiffeBundle(trustDomain: string, doc: unknown): Checked<TrustDomainBundle> {
  const errors: string[] = [];
  const where = `trust_domains["${trustDomain}"]`;
  const td = parseTrustDomain(trustDomain);
  if (!td.ok) return { ok: false, errors: [`${where}: invalid trust domain (${td.reason})`] };
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    return { ok: false, errors: [`${where}: must be a JWKS object`] };
  const d = doc as Record<string, unknown>;
  if (!Array.isArray(d.keys)) return { ok: false, errors: [`${where}.keys: must be an array`] };
  const x509: Uint8Array[] = [];
  const wit: WitKey[] = [];
  d.keys.forEach((key: unknown, i: number) => {
    const at = `${where}.keys[${i}]`;
    if (typeof key !== 'object' || key === null || Array.isArray(key)) {
      errors.push(`${at}: must be an object`);
      return;
    }
    const k = key as Record<string, unknown>;
    if (k.use === 'x509-svid') {
      const der = parseX5c(k.x5c);
      if (typeof der === 'string') errors.push(`${at}.x5c: ${der}`);
      else x509.push(der);
    } else if (k.use === 'wit-svid') {
      const { use: _use, ...pub } = k;
      if (typeof pub.kid !== 'string' || pub.kid.length === 0) {
        errors.push(`${at}.kid: a wit-svid key needs a kid`);
        return;
      }
      const problem = checkPublicJwk(pub, { requireAlg: true });
      if (problem) errors.push(`${at}: invalid WIT key (${problem})`);
      else if (wit.some((w) => w.kid === pub.kid)) errors.push(`${at}.kid: duplicate kid "${pub.kid}"`);
      else wit.push(pub as WitKey);
    }
    // Unknown `use` values (jwt-svid, future uses) are skipped, as the SPIFFE format requires.
  });
  for (const [f, v] of [['spiffe_sequence', d.spiffe_sequence], ['spiffe_refresh_hint', d.spiffe_refresh_hint]] as const)
    if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0))
      errors.push(`${where}.${f}: must be a non-negative integer`);
  if (errors.length) return { ok: false, errors };
  return {
    ok: true,
    value: {
      trustDomain,
      x509Authorities: x509,
      witKeys: wit,
      ...(typeof d.spiffe_sequence === 'number' ? { sequence: d.spiffe_sequence } : {}),
      ...(typeof d.spiffe_refresh_hint === 'number' ? { refreshHint: d.spiffe_refresh_hint } : {}),
    },
  };
}

function parseX5c(x5c: unknown): Uint8Array | string {
  if (!Array.isArray(x5c) || x5c.length !== 1 || typeof x5c[0] !== 'string')
    return 'an x509-svid key needs exactly one x5c certificate';
  const der = Buffer.from(x5c[0], 'base64');
  try {
    const cert = new X509Certificate(der);
    if (!cert.ca) return 'certificate is not a CA';
  } catch {
    return 'not a DER certificate';
  }
  return der;
}

/** Parse a SPIFFE bundle map (`{"trust_domains": {...}}`), as JSON text or a parsed value. */
export function parseSpiffeBundleMap(input: string | unknown): Checked<Map<string, TrustDomainBundle>> {
  let doc: unknown = input;
  if (typeof input === 'string') {
    if (input.length > MAX_BUNDLE_BYTES) return { ok: false, errors: [`bundle map exceeds ${MAX_BUNDLE_BYTES} bytes`] };
    try {
      doc = JSON.parse(input);
    } catch (e) {
      return { ok: false, errors: [`not JSON: ${(e as Error).message}`] };
    }
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    return { ok: false, errors: ['bundle map must be a JSON object'] };
  const tds = (doc as Record<string, unknown>).trust_domains;
  if (typeof tds !== 'object' || tds === null || Array.isArray(tds))
    return { ok: false, errors: ['trust_domains: must be an object of trust domain -> JWKS'] };
  const out = new Map<string, TrustDomainBundle>();
  const errors: string[] = [];
  for (const [td, b] of Object.entries(tds)) {
    const r = parseSpiffeBundle(td, b);
    if (r.ok) out.set(td, r.value);
    else errors.push(...r.errors);
  }
  return errors.length ? { ok: false, errors } : { ok: true, value: out };
}
