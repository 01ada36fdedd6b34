/**
 * A minimal DER encoder (ITU-T X.690 §10) for the one certificate shape we issue per request,
 * the WIC. Building its TBSCertificate directly and signing it with node:crypto is ~20x faster
 * than a general ASN.1 library; the tests check every field of the result with two independent
 * parsers (node:crypto, @peculiar/x509) and `openssl verify -x509_strict`.
 */

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Tag-length-value. */
export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

export const seq = (...c: Uint8Array[]): Buffer => tlv(0x30, ...c);
export const octets = (b: Uint8Array): Buffer => tlv(0x04, b);
export const bitString = (b: Uint8Array, unusedBits = 0): Buffer => tlv(0x03, Buffer.from([unusedBits]), b);
export const TRUE = Buffer.from([0x01, 0x01, 0xff]);

/** A non-negative INTEGER from big-endian magnitude bytes (minimal, with a 00 when the top bit is set). */
export function uint(bytes: Uint8Array): Buffer {
  let b = Buffer.from(bytes);
  let i = 0;
  while (i < b.length - 1 && b[i] === 0 && b[i + 1]! < 0x80) i++;
  b = b.subarray(i);
  if (b.length === 0) b = Buffer.from([0]);
  if (b[0]! >= 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, Zulu. */
export function time(ms: number): Buffer {
  const iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  const year = Number(iso.slice(0, 4));
  return year >= 1950 && year < 2050 ? tlv(0x17, Buffer.from(`${digits.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${digits}Z`));
}

/** Pre-encoded object identifiers (full TLV). */
export const OID = {
  ecdsaWithSha256: Buffer.from('06082a8648ce3d040302', 'hex'), // 1.2.840.10045.4.3.2
  ed25519: Buffer.from('06032b6570', 'hex'), // 1.3.101.112
  basicConstraints: Buffer.from('0603551d13', 'hex'), // 2.5.29.19
  keyUsage: Buffer.from('0603551d0f', 'hex'), // 2.5.29.15
  extKeyUsage: Buffer.from('0603551d25', 'hex'), // 2.5.29.37
  subjectKeyId: Buffer.from('0603551d0e', 'hex'), // 2.5.29.14
  authorityKeyId: Buffer.from('0603551d23', 'hex'), // 2.5.29.35
  subjectAltName: Buffer.from('0603551d11', 'hex'), // 2.5.29.17
  serverAuth: Buffer.from('06082b06010505070301', 'hex'), // 1.3.6.1.5.5.7.3.1
  clientAuth: Buffer.from('06082b06010505070302', 'hex'), // 1.3.6.1.5.5.7.3.2
};

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }. */
export const extension = (oid: Buffer, critical: boolean, value: Uint8Array): Buffer =>
  critical ? seq(oid, TRUE, octets(value)) : seq(oid, octets(value));
