/**
 * The few X.509 v3 extensions mTLS verification needs, read from the DER (RFC 5280 §4.2):
 * subjectAltName URIs, keyUsage bits, extendedKeyUsage OIDs, basicConstraints cA and
 * pathLenConstraint, and which extensions are critical. Node's X509Certificate exposes SANs only
 * as a display string and keyUsage bits, path length and criticality not at all.
 *
 * A minimal DER walker: definite lengths only, bounded by the buffer; anything unexpected throws
 * (the caller maps it to `mtls.malformed`).
 */

interface Tlv {
  tag: number;
  start: number; // first content byte
  end: number; // one past the last content byte
}

function readTlv(buf: Uint8Array, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new Error('truncated');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('high tag numbers unsupported');
  let len = buf[pos + 1]!;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('bad length');
    len = 0;
    for (let i = 0; i < n; i++) {
      if (p >= limit) throw new Error('truncated');
      len = len * 256 + buf[p++]!;
    }
  }
  if (p + len > limit) throw new Error('truncated');
  return { tag, start: p, end: p + len };
}

function children(buf: Uint8Array, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = t.start; p < t.end; ) {
    const c = readTlv(buf, p, t.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

function oidString(buf: Uint8Array, t: Tlv): string {
  const parts: number[] = [];
  let v = 0;
  for (let i = t.start; i < t.end; i++) {
    v = v * 128 + (buf[i]! & 0x7f);
    if (!(buf[i]! & 0x80)) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

export interface CertExtensions {
  /** Every URI in subjectAltName, in order. */
  readonly uriSans: string[];
  /** keyUsage present, with its bits (RFC 5280 §4.2.1.3). */
  readonly keyUsage?: { digitalSignature: boolean; keyCertSign: boolean; cRLSign: boolean };
  /** extendedKeyUsage OIDs, when the extension is present. */
  readonly extKeyUsage?: string[];
  readonly isCa: boolean;
  /** basicConstraints pathLenConstraint, when present. */
  readonly pathLen?: number;
  /** OIDs of the extensions marked critical. */
  readonly critical: string[];
}

export const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const OID_SAN = '2.5.29.17';
const OID_KEY_USAGE = '2.5.29.15';
const OID_EXT_KEY_USAGE = '2.5.29.37';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_SUBJECT_KEY_ID = '2.5.29.14';
const OID_AUTHORITY_KEY_ID = '2.5.29.35';

/**
 * The extensions whose meaning verification applies (or that carry no constraint), so they may
 * be critical. Any other critical extension (name constraints, policy constraints, ...) makes the
 * certificate unusable (RFC 5280 §4.2: reject a critical extension that is not processed).
 */
export const PROCESSED_EXTENSIONS: ReadonlySet<string> = new Set([OID_SAN, OID_KEY_USAGE, OID_EXT_KEY_USAGE, OID_BASIC_CONSTRAINTS, OID_SUBJECT_KEY_ID, OID_AUTHORITY_KEY_ID]);

/** Read the extensions of a DER certificate. Throws on malformed DER or a repeated extension. */
export function readCertExtensions(der: Uint8Array): CertExtensions {
  const cert = readTlv(der, 0, der.length);
  const tbs = children(der, cert)[0];
  if (!tbs || tbs.tag !== 0x30) throw new Error('no tbsCertificate');
  const extWrapper = children(der, tbs).find((t) => t.tag === 0xa3);
  const out: { uriSans: string[]; keyUsage?: CertExtensions['keyUsage']; extKeyUsage?: string[]; isCa: boolean; pathLen?: number; critical: string[] } = {
    uriSans: [],
    isCa: false,
    critical: [],
  };
  if (!extWrapper) return out;
  const seq = children(der, extWrapper)[0];
  if (!seq) return out;
  const seen = new Set<string>();
  for (const ext of children(der, seq)) {
    const parts = children(der, ext);
    const oid = oidString(der, parts[0]!);
    // RFC 5280 §4.2: a certificate MUST NOT include more than one instance of an extension.
    if (seen.has(oid)) throw new Error('repeated extension');
    seen.add(oid);
    // Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
    if (parts.length === 3 && parts[1]!.tag === 0x01 && der[parts[1]!.start] !== 0) out.critical.push(oid);
    const value = parts[parts.length - 1]!;
    if (value.tag !== 0x04) throw new Error('extension value is not an OCTET STRING');
    const inner = readTlv(der, value.start, value.end);
    if (oid === OID_SAN) {
      for (const gn of children(der, inner))
        if (gn.tag === 0x86) out.uriSans.push(Buffer.from(der.subarray(gn.start, gn.end)).toString('latin1'));
    } else if (oid === OID_KEY_USAGE) {
      const b1 = inner.end - inner.start > 1 ? der[inner.start + 1]! : 0;
      out.keyUsage = { digitalSignature: (b1 & 0x80) !== 0, keyCertSign: (b1 & 0x04) !== 0, cRLSign: (b1 & 0x02) !== 0 };
    } else if (oid === OID_EXT_KEY_USAGE) {
      out.extKeyUsage = children(der, inner).map((t) => oidString(der, t));
    } else if (oid === OID_BASIC_CONSTRAINTS) {
      const fields = children(der, inner);
      const first = fields[0];
      out.isCa = first !== undefined && first.tag === 0x01 && der[first.start] !== 0;
      const len = fields.find((f) => f.tag === 0x02);
      if (len) {
        if (len.end - len.start > 2 || (der[len.start]! & 0x80) !== 0) throw new Error('bad pathLenConstraint');
        let v = 0;
        for (let i = len.start; i < len.end; i++) v = v * 256 + der[i]!;
        out.pathLen = v;
      }
    }
  }
  return out;
}
