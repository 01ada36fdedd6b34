/**
 * The one entry to @peculiar/x509: it needs the reflect-metadata polyfill loaded before it, and
 * it runs on Node's webcrypto. Every module of src/ca imports x509 from here.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

type PkiCrypto = NonNullable<Parameters<typeof x509.X509CertificateGenerator.create>[1]>;
/** The private-key handle @peculiar/x509 signs with (a webcrypto CryptoKey). */
export type PkiKey = x509.X509CertificateCreateWithKeyParams['signingKey'];
export const pkiCrypto = webcrypto as unknown as PkiCrypto;
x509.cryptoProvider.set(pkiCrypto);

export { x509 };
