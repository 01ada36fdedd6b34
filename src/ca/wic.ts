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
 *
 * The certificate is encoded directly (der.ts, RFC 5280 §4.1) and signed with node:crypto.
 */
import { sign, type KeyObject } from 'node:crypto';
import { derToPem } from '../identity/index.ts';
import { bitString, extension, OID, octets, seq, time, tlv, uint } from './der.ts';
import type { CaAlg } from './key-record.ts';
import { keyIdentifier, randomSerial } from './x509-ca.ts';

/** What the WIC builder needs of the active X.509 CA key. */
export interface WicSigner {
  readonly kid: string;
  readonly alg: CaAlg;
  readonly privateKey: KeyObject;
  /** DER of the CA certificate's subject Name, used verbatim as the leaf's issuer. */
  readonly issuerDer: Uint8Array;
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
  /** Hex, without a leading 00. */
  readonly serial: string;
}

const VERSION_V3 = Buffer.from('a003020102', 'hex'); // [0] EXPLICIT INTEGER 2
const EMPTY_NAME = Buffer.from('3000', 'hex');
const BC_LEAF = extension(OID.basicConstraints, true, seq()); // cA DEFAULT FALSE is omitted (DER)
const KU_DIGITAL_SIGNATURE = extension(OID.keyUsage, true, bitString(Buffer.from([0x80]), 7));
const EKU_SERVER_CLIENT = extension(OID.extKeyUsage, false, seq(OID.serverAuth, OID.clientAuth));

const sigAlg = (alg: CaAlg): Buffer => (alg === 'ES256' ? seq(OID.ecdsaWithSha256) : seq(OID.ed25519));

export function buildWic(p: WicParams): BuiltWic {
  const serial = randomSerial().replace(/^00/, '');
  const algId = sigAlg(p.signer.alg);
  const san = seq(
    tlv(0x86, Buffer.from(p.id, 'ascii')), // [6] uniformResourceIdentifier
    ...p.dnsNames.map((d) => tlv(0x82, Buffer.from(d, 'ascii'))), // [2] dNSName
  );
  const extensions = seq(
    BC_LEAF,
    KU_DIGITAL_SIGNATURE,
    EKU_SERVER_CLIENT,
    extension(OID.subjectKeyId, false, octets(Buffer.from(keyIdentifier(p.publicKey), 'hex'))),
    extension(OID.authorityKeyId, false, seq(tlv(0x80, Buffer.from(p.signer.keyId, 'hex')))),
    extension(OID.subjectAltName, true, san),
  );
  const tbs = seq(
    VERSION_V3,
    uint(Buffer.from(serial, 'hex')),
    algId,
    p.signer.issuerDer,
    seq(time(p.notBefore), time(p.notAfter)),
    EMPTY_NAME,
    p.publicKey.export({ format: 'der', type: 'spki' }),
    tlv(0xa3, extensions), // [3] EXPLICIT Extensions
  );
  // ECDSA: DER Ecdsa-Sig-Value (RFC 5758 §3.2), node's default encoding; Ed25519: 64 raw bytes (RFC 8410 §6).
  const signature = sign(p.signer.alg === 'ES256' ? 'sha256' : null, tbs, p.signer.privateKey);
  const der = seq(tbs, algId, bitString(signature));
  return { der, pem: derToPem(der), serial };
}
