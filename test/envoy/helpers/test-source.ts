/**
 * A SecretSource backed by real crypto (@peculiar/x509 over WebCrypto): root CAs per trust
 * domain, leaves with a URI SAN and a fresh P-256 key each, rollover and taint. Only for tests
 * of the SDS server; the real CA adapter is src/envoy/sds-ca-source.ts.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { Clock } from '../../../src/identity/clock.ts';
import type { TrustBundleSet, TrustDomainBundle } from '../../../src/identity/trust-bundle.ts';
import type { IssuedLeaf, SecretSource, SecretSourceEvent } from '../../../src/envoy/sds-source.ts';

x509.cryptoProvider.set(webcrypto as any);
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const HOUR = 3_600_000;

const pem = (label: string, der: ArrayBuffer): string =>
  `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END ${label}-----\n`;

export class TestAuthority {
  private constructor(
    readonly trustDomain: string,
    readonly id: string,
    readonly cert: x509.X509Certificate,
    private readonly keys: CryptoKeyPair,
  ) {}

  static async create(trustDomain: string, id: string, now: number): Promise<TestAuthority> {
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      name: `CN=${id}, O=${trustDomain}`,
      keys,
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + 24 * 365 * HOUR),
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return new TestAuthority(trustDomain, id, cert, keys);
  }

  get der(): Uint8Array {
    return new Uint8Array(this.cert.rawData);
  }

  get pem(): string {
    return this.cert.toString('pem') + '\n';
  }

  async issue(workloadId: string, now: number, lifetimeMs: number, dnsNames: string[] = []): Promise<IssuedLeaf> {
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.create({
      subject: 'O=workload',
      issuer: this.cert.subject,
      publicKey: keys.publicKey,
      signingKey: this.keys.privateKey,
      notBefore: new Date(now),
      notAfter: new Date(now + lifetimeMs),
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([
          { type: 'url', value: workloadId },
          ...dnsNames.map((d) => ({ type: 'dns' as const, value: d })),
        ]),
        await x509.AuthorityKeyIdentifierExtension.create(this.keys.publicKey),
      ],
    });
    const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
    return {
      chainPem: cert.toString('pem') + '\n',
      keyPem: pem('PRIVATE KEY', pkcs8),
      notBefore: now,
      notAfter: now + lifetimeMs,
      authorityId: this.id,
    };
  }
}

export interface TestSourceOptions {
  readonly trustDomain: string;
  readonly clock: Clock;
  readonly registrations: Record<string, string[]>;
  readonly leafLifetimeMs?: number;
}

/** Published roots per trust domain; leaves signed by `active` of our own domain. */
export class TestSecretSource implements SecretSource {
  readonly trustDomain: string;
  readonly registrations: Map<string, string[]>;
  readonly published = new Map<string, TestAuthority[]>();
  active!: TestAuthority;
  leafLifetimeMs: number;
  issuedCount = 0;
  failIssuance = false;
  /** Issue with this authority even though it is not published (to test the rollover guard). */
  issueWith: TestAuthority | undefined;
  readonly #listeners = new Set<(e: SecretSourceEvent) => void>();
  readonly #clock: Clock;

  private constructor(o: TestSourceOptions) {
    this.trustDomain = o.trustDomain;
    this.#clock = o.clock;
    this.registrations = new Map(Object.entries(o.registrations));
    this.leafLifetimeMs = o.leafLifetimeMs ?? HOUR;
  }

  static async create(o: TestSourceOptions): Promise<TestSecretSource> {
    const s = new TestSecretSource(o);
    s.active = await TestAuthority.create(o.trustDomain, 'key-1', o.clock.now());
    s.published.set(o.trustDomain, [s.active]);
    return s;
  }

  identitiesFor(nodeId: string): readonly string[] {
    return this.registrations.get(nodeId) ?? [];
  }

  async issueLeaf(_nodeId: string, workloadId: string): Promise<IssuedLeaf> {
    if (this.failIssuance) throw new Error('CA unavailable');
    this.issuedCount++;
    return (this.issueWith ?? this.active).issue(workloadId, this.#clock.now(), this.leafLifetimeMs);
  }

  bundles(): TrustBundleSet {
    const m = new Map<string, TrustDomainBundle>();
    for (const [td, cas] of this.published) m.set(td, { trustDomain: td, x509Authorities: cas.map((c) => c.der), witKeys: [] });
    return m;
  }

  subscribe(listener: (e: SecretSourceEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(e: SecretSourceEvent): void {
    for (const l of this.#listeners) l(e);
  }

  /** Add a federated trust domain with its own root; returns its authority. */
  async federate(trustDomain: string): Promise<TestAuthority> {
    const ca = await TestAuthority.create(trustDomain, `${trustDomain}-key`, this.#clock.now());
    this.published.set(trustDomain, [ca]);
    this.emit({ kind: 'bundles' });
    return ca;
  }

  /** Step 1 of a rollover: publish a new root beside the old one (not signing yet). */
  async prepareNext(id: string): Promise<TestAuthority> {
    const next = await TestAuthority.create(this.trustDomain, id, this.#clock.now());
    this.published.get(this.trustDomain)!.push(next);
    this.emit({ kind: 'bundles' });
    return next;
  }

  /** Step 2: sign with the new key; every leaf of the old one is re-issued (a taint does that). */
  activate(next: TestAuthority): void {
    const old = this.active;
    this.active = next;
    this.emit({ kind: 'taint', authorityIds: [old.id] });
  }
}
