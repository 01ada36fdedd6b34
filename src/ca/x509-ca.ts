/**
 * X.509 for the Identity Server: the self-signed CA certificate of each X.509 CA key generation,
 * and the shared plumbing (@peculiar/x509 on Node's webcrypto, signer cache, key identifiers,
 * serial numbers).
 *
 * CA profile (docs/ca.md "CA certificates"): subject `CN=<trust domain> WIMSE CA <kid prefix>,
 * O=wimse-control-plane` (distinct per generation, so verifiers never try several roots with one
 * name: spiffe/spire#4415); basicConstraints CA:true critical; keyUsage keyCertSign+cRLSign
 * critical; SKI and AKI (same key id); URI SAN = the trust domain ID `spiffe://<td>` (as SPIRE);
 * validity = the key's lifetime, back-dated by the 10 s cushion.
 */
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import type { CaAlg } from './key-record.ts';
import type { KeyMaterial } from './keys.ts';
import { pkiCrypto, x509, type PkiKey } from './pki.ts';


/** notBefore is back-dated by this much (SPIRE `NotBeforeCushion`): verifiers' clocks differ. */
export const NOT_BEFORE_CUSHION_MS = 10_000;
export const CA_ORGANIZATION = 'wimse-control-plane';
/** The last instant an X.509 validity can name (GeneralizedTime 99991231235959Z, RFC 5280 §4.1.2.5). */
export const X509_LAST_TIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59);

const importParams = (alg: CaAlg) => (alg === 'ES256' ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'Ed25519' });
export const signingAlgorithm = (alg: CaAlg) => (alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'Ed25519' });

const signers = new WeakMap<KeyObject, Promise<PkiKey>>();

/** The webcrypto handle of a private KeyObject, imported once. */
export function cryptoSigner(alg: CaAlg, privateKey: KeyObject): Promise<PkiKey> {
  let p = signers.get(privateKey);
  if (!p) {
    const der = privateKey.export({ format: 'der', type: 'pkcs8' });
    p = pkiCrypto.subtle.importKey('pkcs8', der, importParams(alg), false, ['sign']) as Promise<PkiKey>;
    signers.set(privateKey, p);
  }
  return p;
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value, hex. */
export function keyIdentifier(publicKey: KeyObject): string {
  const j = publicKey.export({ format: 'jwk' }) as Record<string, string>;
  const raw =
    j.kty === 'EC'
      ? Buffer.concat([Buffer.from([4]), Buffer.from(j.x!, 'base64url'), Buffer.from(j.y!, 'base64url')])
      : Buffer.from(j.x!, 'base64url');
  return createHash('sha1').update(raw).digest('hex');
}

/**
 * A random positive 128-bit serial (RFC 5280 §4.1.2.2: positive, at most 20 octets; CA/B BR:
 * at least 64 random bits). A leading 00 keeps the DER INTEGER positive when the top bit is set.
 */
export function randomSerial(): string {
  let b = randomBytes(16);
  while (b.every((x) => x === 0)) b = randomBytes(16);
  const hex = b.toString('hex');
  return b[0]! >= 0x80 ? `00${hex}` : hex;
}

export const caSubject = (trustDomain: string, kid: string): string =>
  `CN=${trustDomain} WIMSE CA ${kid.slice(0, 16)}, O=${CA_ORGANIZATION}`;

/** The trust domain ID carried in the CA's URI SAN. */
export const trustDomainId = (trustDomain: string): string => `spiffe://${trustDomain}`;

export async function createCaCertificate(opts: {
  trustDomain: string;
  material: KeyMaterial;
  notBefore: number;
  notAfter: number;
}): Promise<string> {
  const { material: m } = opts;
  const signingKey = await cryptoSigner(m.alg, m.privateKey);
  const spki = m.publicKey.export({ format: 'der', type: 'spki' });
  const keyId = keyIdentifier(m.publicKey);
  const name = caSubject(opts.trustDomain, m.kid);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: name,
      issuer: name,
      notBefore: new Date(opts.notBefore - NOT_BEFORE_CUSHION_MS),
      notAfter: new Date(opts.notAfter),
      publicKey: spki,
      signingKey,
      signingAlgorithm: signingAlgorithm(m.alg),
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        new x509.SubjectKeyIdentifierExtension(keyId),
        new x509.AuthorityKeyIdentifierExtension(keyId),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: trustDomainId(opts.trustDomain) }]),
      ],
    },
    pkiCrypto,
  );
  return cert.toString('pem');
}
