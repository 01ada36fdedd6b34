/** Checks on what SDS served, as Envoy would read it. */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { messageType, MESSAGE, SPIFFE_VALIDATOR_NAME, TYPE_URL } from '../../../src/envoy/protos.ts';
import { splitPemCertificates } from '../../../src/envoy/sds-leaf-check.ts';

export interface ServedLeaf {
  chainPem: string;
  keyPem: string;
  leaf: X509Certificate;
  uriSans: string[];
}

export function tlsCertificateOf(secret: Record<string, any>): ServedLeaf {
  const tc = secret.tls_certificate;
  if (!tc) throw new Error(`${secret.name} is not a tls_certificate`);
  const chainPem = Buffer.from(tc.certificate_chain.inline_bytes).toString('utf8');
  const keyPem = Buffer.from(tc.private_key.inline_bytes).toString('utf8');
  const leaf = new X509Certificate(splitPemCertificates(chainPem)[0]!);
  const uriSans = (leaf.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
  return { chainPem, keyPem, leaf, uriSans };
}

/** ROOTCA: PEM roots of `trusted_ca`. */
export function trustedCaOf(secret: Record<string, any>): X509Certificate[] {
  const pem = Buffer.from(secret.validation_context.trusted_ca.inline_bytes).toString('utf8');
  return splitPemCertificates(pem).map((p) => new X509Certificate(p));
}

/** ALL: trust domain -> roots, in the served order, from the SPIFFE validator config. */
export function spiffeBundlesOf(secret: Record<string, any>): Map<string, X509Certificate[]> {
  const cvc = secret.validation_context.custom_validator_config;
  if (cvc.name !== SPIFFE_VALIDATOR_NAME) throw new Error(`unexpected validator ${cvc.name}`);
  if (cvc.typed_config.type_url !== TYPE_URL.spiffeValidatorConfig) throw new Error('unexpected typed_config type');
  const t = messageType(MESSAGE.spiffeValidatorConfig);
  const cfg = t.toObject(t.decode(cvc.typed_config.value), { bytes: Buffer }) as any;
  const m = new Map<string, X509Certificate[]>();
  for (const td of cfg.trust_domains)
    m.set(td.name, splitPemCertificates(Buffer.from(td.trust_bundle.inline_bytes).toString('utf8')).map((p) => new X509Certificate(p)));
  return m;
}

export function keyMatches(s: ServedLeaf): boolean {
  return s.leaf.checkPrivateKey(createPrivateKey(s.keyPem));
}

/** The leaf is signed directly by one of `roots` (test chains have no intermediates). */
export function verifiesTo(s: ServedLeaf, roots: X509Certificate[]): boolean {
  return roots.some((r) => s.leaf.checkIssued(r) && s.leaf.verify(r.publicKey));
}
