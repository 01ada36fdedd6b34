/**
 * Workload Identity Certificates (workload-creds-02 §6.1, mutual-tls-02; X509-SVID compatible).
 *
 * Profile (docs/ca.md "WIC profile"):
 * - exactly one URI SAN, the workload identifier (creds §4: one identifier per credential),
 *   plus optional DNS SANs (RECOMMENDED for TLS servers reached by host name);
 * - empty subject, so the SAN extension is critical (RFC 5280 §4.2.1.6);
 * - basicConstraints CA:false (critical); keyUsage digitalSignature only (critical) — never
 *   keyCertSign/cRLSign (X509-SVID §4.3, Envoy's SPIFFE validator precheck);
 * - extKeyUsage serverAuth + clientAuth (mutual-tls-02: SHOULD);
 * - SKI of the leaf key, AKI = the CA's key id; random positive 128-bit serial;
 * - notBefore back-dated 10 s; notAfter capped by the signing CA key's own notAfter.
 */
import type { KeyObject } from 'node:crypto';
import type { CaAlg } from './key-record.ts';
import { pkiCrypto, x509 } from './pki.ts';
import { cryptoSigner, keyIdentifier, randomSerial, signingAlgorithm } from './x509-ca.ts';

/** What the WIC builder needs of the active X.509 CA key. */
export interface WicSigner {
  readonly kid: string;
  readonly alg: CaAlg;
  readonly privateKey: KeyObject;
  /** The CA certificate's subject, used verbatim as the leaf's issuer. */
  readonly subject: x509.Name;
  /** Hex key identifier of the CA key (its SKI). */
  readonly keyId: string;
}

export interface WicParams {
  readonly signer: WicSigner;
  /** A canonical workload identifier, already checked against the trust domain. */
  readonly id: string;
  readonly dnsNames: readonly string[];
  readonly publicKey: KeyObject;
  readonly notBefore: number;
  readonly notAfter: number;
}

export interface BuiltWic {
  readonly der: Uint8Array;
  readonly pem: string;
  readonly serial: string;
}

export async function buildWic(p: WicParams): Promise<BuiltWic> {
  const signingKey = await cryptoSigner(p.signer.alg, p.signer.privateKey);
  const serialNumber = randomSerial();
  const names: x509.JsonGeneralName[] = [{ type: 'url', value: p.id }, ...p.dnsNames.map((d) => ({ type: 'dns' as const, value: d }))];
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber,
      subject: '',
      issuer: p.signer.subject,
      notBefore: new Date(p.notBefore),
      notAfter: new Date(p.notAfter),
      publicKey: p.publicKey.export({ format: 'der', type: 'spki' }),
      signingKey,
      signingAlgorithm: signingAlgorithm(p.signer.alg),
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
        new x509.SubjectKeyIdentifierExtension(keyIdentifier(p.publicKey)),
        new x509.AuthorityKeyIdentifierExtension(p.signer.keyId),
        new x509.SubjectAlternativeNameExtension(names, true),
      ],
    },
    pkiCrypto,
  );
  return { der: new Uint8Array(cert.rawData), pem: cert.toString('pem'), serial: serialNumber.replace(/^00/, '') };
}
