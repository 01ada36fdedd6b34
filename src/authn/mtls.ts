/**
 * The mTLS peer as a workload identity (draft-ietf-wimse-mutual-tls-02, workload-creds-02 §6.1).
 * The leaf's single URI SAN names the workload; its trust domain names the
 * only anchors the chain may lead to: a CA of domain A cannot vouch for an identifier of domain B.
 *
 * Profile (X509-SVID compatible,
 * https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md): leaf CA:false, keyUsage
 * present with digitalSignature and without keyCertSign, exactly one URI SAN, EKU (if present)
 * includes clientAuth; every certificate valid at `now`; each certificate signed by the next,
 * issuers are CAs (with keyCertSign when they carry keyUsage), and the last one is a root of that
 * trust domain or signed by one. Path length constraints are applied along the whole path, the
 * root's included. Name constraints, like any other critical extension this code does not process,
 * make the chain unusable rather than being ignored (RFC 5280 §4.2). All failures are 401 without a
 * challenge.
 */
import { X509Certificate } from 'node:crypto';
import { throwAuthnError, type FailureMode } from './errors.ts';
import type { MtlsChainCache, VerifiedChain } from './mtls-cache.ts';
import type { TransportPeer } from './request.ts';
import { OID_CLIENT_AUTH, PROCESSED_EXTENSIONS, readCertExtensions, type CertExtensions } from './x509-extensions.ts';
import { parseWorkloadId, type WorkloadId } from '../identity/workload-id.ts';
import { pemToDers, type TrustBundleSet, type TrustDomainBundle } from '../identity/trust-bundle.ts';

export const MAX_CHAIN_PEM_BYTES = 64 * 1024;
export const MAX_CHAIN_LENGTH = 8;

const MTLS_FAILURE: FailureMode = { area: 'mtls', status: 401 };

function fail(reason: string, detail: string): never {
  return throwAuthnError(MTLS_FAILURE, reason, detail);
}

/**
 * Verify the transport peer; returns its workload identifier. Throws AuthnError `mtls.*`.
 * With a cache, a chain verified earlier is not parsed again while it stays valid and its trust
 * domain's bundle object is unchanged (mtls-cache.ts).
 */
export function verifyMtlsPeer(peer: TransportPeer, bundles: TrustBundleSet, nowSec: number, cache?: MtlsChainCache): WorkloadId {
  if (peer.certificateChainPem === undefined) {
    // Envoy already validated the chain against the same bundles (its SPIFFE validator).
    if (peer.verifiedPrincipal === undefined) return fail('no_certificate', 'no client certificate');
    const known = cache?.principal(peer.verifiedPrincipal);
    if (known !== undefined) {
      if (!bundles.has(known.trustDomain)) fail('unknown_trust_domain', 'the trust domain is not configured');
      return known;
    }
    const parsed = identifierOf(peer.verifiedPrincipal, bundles);
    cache?.setPrincipal(peer.verifiedPrincipal, parsed);
    return parsed;
  }
  const pem = peer.certificateChainPem;
  const nowMs = nowSec * 1000;
  let id = cache?.get(pem, (td) => bundles.get(td), nowMs)?.id;
  if (id === undefined) {
    const verified = verifyChain(pem, bundles, nowMs);
    cache?.set(pem, verified);
    id = verified.id;
  }
  if (peer.verifiedPrincipal !== undefined && peer.verifiedPrincipal !== id.uri)
    fail('principal_mismatch', 'the proxy-verified principal differs from the certificate');
  return id;
}

function identifierOf(uri: string, bundles: TrustBundleSet): WorkloadId {
  const r = parseWorkloadId(uri);
  if (!r.ok) return fail('bad_identifier', `the URI SAN is not a workload identifier (${r.reason})`);
  if (!bundles.has(r.value.trustDomain)) fail('unknown_trust_domain', 'the trust domain is not configured');
  return r.value;
}

function verifyChain(pem: string, bundles: TrustBundleSet, nowMs: number): VerifiedChain {
  if (pem.length > MAX_CHAIN_PEM_BYTES) fail('malformed', 'certificate chain too large');
  // Count the markers first: the PEM scanner is linear per certificate, so bound their number.
  if (pem.split('-----BEGIN').length - 1 > MAX_CHAIN_LENGTH) fail('malformed', 'certificate chain too long');
  const ders = pemToDers(pem);
  if (ders.length === 0) fail('malformed', 'no certificate in the PEM chain');
  if (ders.length > MAX_CHAIN_LENGTH) fail('malformed', 'certificate chain too long');
  let certs: X509Certificate[] = [];
  let exts: CertExtensions[] = [];
  try {
    certs = ders.map((d) => new X509Certificate(d));
    exts = ders.map((d) => readCertExtensions(d));
  } catch {
    return fail('malformed', 'not a valid X.509 certificate');
  }
  const leaf = certs[0]!;
  const ext = exts[0];

  // The identity: exactly one URI SAN (workload-creds-02 §6.1), in a configured trust domain.
  if (ext!.uriSans.length === 0) fail('no_uri_san', 'the certificate has no URI SAN');
  if (ext!.uriSans.length > 1) fail('multiple_uri_sans', 'the certificate has more than one URI SAN');
  const id = identifierOf(ext!.uriSans[0]!, bundles);
  const bundle = bundles.get(id.trustDomain)!;

  // Leaf profile.
  if (leaf.ca || ext!.isCa) fail('leaf_is_ca', 'the leaf certificate is a CA');
  const ku = ext!.keyUsage;
  if (!ku || !ku.digitalSignature || ku.keyCertSign || ku.cRLSign)
    fail('bad_key_usage', 'the leaf keyUsage must be digitalSignature and not keyCertSign/cRLSign');
  if (ext!.extKeyUsage && !ext!.extKeyUsage.includes(OID_CLIENT_AUTH))
    fail('bad_extended_key_usage', 'the leaf extendedKeyUsage does not allow clientAuth');

  // Validity of every certificate presented.
  const window = { notBeforeMs: -Infinity, notAfterMs: Infinity };
  for (const c of certs) narrow(window, checkValidity(c, nowMs));

  // Signatures along the presented chain (RFC 5280 §6.1, without policy processing).
  for (let i = 0; i + 1 < certs.length; i++) {
    const child = certs[i]!;
    const issuer = certs[i + 1]!;
    if (!issuer.ca || !signedBy(child, issuer)) fail('untrusted', 'the certificate chain is broken');
  }
  const top = certs[certs.length - 1]!;
  const anchor = anchoredIn(top, bundle, nowMs);
  if (anchor !== undefined) {
    narrow(window, anchor.validity);
    // The whole path, leaf first, ending with the root (once, when the chain already ends there).
    checkConstraints(anchor.root ? [...exts, anchor.root.ext] : exts);
    return { id, bundle, ...window };
  }
  // Diagnose: a chain that leads to another domain's roots is the cross-domain case.
  for (const other of bundles.values())
    if (other !== bundle && anchoredIn(top, other, nowMs) !== undefined)
      fail('wrong_trust_domain', 'the certificate was issued by another trust domain');
  return fail('untrusted', "the certificate chain does not lead to the trust domain's roots");
}

interface Validity {
  notBeforeMs: number;
  notAfterMs: number;
}

const narrow = (w: Validity, v: Validity): void => {
  if (v.notBeforeMs > w.notBeforeMs) w.notBeforeMs = v.notBeforeMs;
  if (v.notAfterMs < w.notAfterMs) w.notAfterMs = v.notAfterMs;
};

function checkValidity(c: X509Certificate, nowMs: number): Validity {
  const from = Date.parse(c.validFrom);
  const to = Date.parse(c.validTo);
  if (!Number.isFinite(from) || !Number.isFinite(to)) fail('malformed', 'unreadable validity');
  if (nowMs < from) fail('not_yet_valid', 'a certificate is not valid yet');
  if (nowMs > to) fail('expired', 'a certificate has expired');
  return { notBeforeMs: from, notAfterMs: to };
}

const signedBy = (child: X509Certificate, issuer: X509Certificate): boolean => {
  try {
    return child.checkIssued(issuer) && child.verify(issuer.publicKey);
  } catch {
    return false;
  }
};

/**
 * Constraints along a path (leaf first, anchor last), RFC 5280 §6.1.4: every certificate's
 * critical extensions are ones this code processes, and no issuer (every certificate after the
 * leaf) has more CA certificates below it (the leaf not counted) than its pathLenConstraint
 * allows. An issuer's keyUsage must allow keyCertSign: `signedBy` (OpenSSL's X509_check_issued)
 * already refuses the link otherwise.
 */
function checkConstraints(path: readonly CertExtensions[]): void {
  for (let k = 0; k < path.length; k++) {
    const e = path[k]!;
    if (e.critical.some((oid) => !PROCESSED_EXTENSIONS.has(oid)))
      fail('unsupported_critical_extension', 'a certificate has a critical extension that is not processed (e.g. name constraints)');
    if (k > 0 && e.pathLen !== undefined && k - 1 > e.pathLen) fail('path_length', "the chain is longer than an issuer's path length constraint allows");
  }
}

interface Root {
  cert: X509Certificate;
  ext: CertExtensions;
}

/** Parsed roots per bundle; a bundle update is a new object, so entries never go stale. */
const parsedRoots = new WeakMap<TrustDomainBundle, Root[]>();

function rootsOf(b: TrustDomainBundle): Root[] {
  let roots = parsedRoots.get(b);
  if (!roots) {
    roots = [];
    for (const der of b.x509Authorities) {
      try {
        roots.push({ cert: new X509Certificate(der), ext: readCertExtensions(der) });
      } catch {
        // parseSpiffeBundle already rejects these; skip rather than trust.
      }
    }
    parsedRoots.set(b, roots);
  }
  return roots;
}

/**
 * `top` is one of the bundle's roots, or is signed by one that is valid now: the anchor's
 * validity window (unbounded when `top` is itself the root, already checked) and, when it is
 * not `top` itself, the root; else undefined.
 */
function anchoredIn(top: X509Certificate, b: TrustDomainBundle, nowMs: number): { validity: Validity; root?: Root } | undefined {
  for (const root of rootsOf(b)) {
    if (root.cert.raw.equals(top.raw)) return { validity: { notBeforeMs: -Infinity, notAfterMs: Infinity } };
    if (root.cert.ca && signedBy(top, root.cert)) return { validity: checkValidity(root.cert, nowMs), root };
  }
  return undefined;
}
