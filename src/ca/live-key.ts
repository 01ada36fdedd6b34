/**
 * A key record with its key material loaded and checked: the journal's PEM must parse as a key
 * of the record's `alg`, its thumbprint must equal the `kid`, and an X.509 key's certificate
 * must carry that very public key. Anything else means the journal cannot be trusted.
 */

import { createPublicKey } from 'node:crypto';
import type { KeyRecord } from './key-record.ts';
import { materialFromPem, type KeyMaterial } from './keys.ts';
import type { WicSigner } from './wic.ts';
import { x509 } from './pki.ts';
import { keyIdentifier } from './x509-ca.ts';

export interface LiveKey {
  readonly record: KeyRecord;
  readonly material: KeyMaterial;
  /** X.509 keys only. */
  readonly wicSigner?: WicSigner;
}

/** Throws an Error whose message says what does not check out (never the key itself). */
export function loadLiveKey(record: KeyRecord): LiveKey {
  if (record.privateKeyPem === undefined) throw new Error('no private key');
  let material: KeyMaterial;
  try {
    material = materialFromPem(record.alg, record.privateKeyPem);
  } catch {
    throw new Error(`privateKeyPem is not a usable ${record.alg} private key`);
  }
  if (material.kid !== record.kid) throw new Error('kid does not match the key thumbprint');
  if (JSON.stringify(material.publicJwk) !== JSON.stringify(record.publicJwk)) throw new Error('publicJwk does not match the key');
  return withMaterial(record, material);
}

export function withMaterial(record: KeyRecord, material: KeyMaterial): LiveKey {
  if (record.kind !== 'x509') return { record, material };
  if (record.certPem === undefined) throw new Error('certPem missing');
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(record.certPem);
  } catch {
    throw new Error('certPem is not a certificate');
  }
  const certKey = createPublicKey({ key: Buffer.from(cert.publicKey.rawData), format: 'der', type: 'spki' });
  if (!certKey.equals(material.publicKey)) throw new Error('certificate does not carry this key');
  return {
    record,
    material,
    wicSigner: {
      kid: record.kid,
      alg: record.alg,
      privateKey: material.privateKey,
      issuerDer: new Uint8Array(cert.subjectName.toArrayBuffer()),
      keyId: keyIdentifier(material.publicKey),
    },
  };
}
