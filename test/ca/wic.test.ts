import test from 'ava';
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, webcrypto } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { CaRequestError, NoActiveKeyError, type IssuedWic } from '../../src/ca/index.ts';
import { ManualClock, rootsPem, systemClock } from '../../src/identity/index.ts';
import { issuingRoot, openCa, tempDir, workloadKey, TD } from './helpers.ts';

const run = promisify(execFile);
const ID = `spiffe://${TD}/ns/prod/sa/api`;
const OID = { bc: '2.5.29.19', ku: '2.5.29.15', eku: '2.5.29.37', ski: '2.5.29.14', aki: '2.5.29.35', san: '2.5.29.17' };

async function opensslVerify(t: Parameters<typeof tempDir>[0], roots: string, leafPem: string, attime?: number) {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'roots.pem'), roots);
  await writeFile(join(dir, 'leaf.pem'), leafPem);
  const args = ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(dir, 'roots.pem')];
  if (attime !== undefined) args.push('-attime', String(Math.floor(attime / 1000)));
  return run('openssl', [...args, join(dir, 'leaf.pem')]);
}

function checkLeafProfile(t: any, wic: IssuedWic, id: string, dns: string[] = []) {
  const c = new x509.X509Certificate(wic.certPem);
  const ext = (oid: string) => [...c.extensions].filter((e) => e.type === oid);
  t.deepEqual([...c.extensions].map((e) => e.type).sort(), Object.values(OID).sort(), 'exactly these six extensions');
  const bc = c.getExtension(x509.BasicConstraintsExtension)!;
  t.true(bc.critical);
  t.false(bc.ca);
  const ku = c.getExtension(x509.KeyUsagesExtension)!;
  t.true(ku.critical);
  t.is(ku.usages, x509.KeyUsageFlags.digitalSignature, 'digitalSignature only');
  const eku = c.getExtension(x509.ExtendedKeyUsageExtension)!;
  t.deepEqual([...eku.usages].sort(), [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth].sort());
  const san = c.getExtension(x509.SubjectAlternativeNameExtension)!;
  t.true(san.critical, 'SAN critical because the subject is empty');
  const names = san.names.toJSON();
  t.deepEqual(names.filter((n) => n.type === 'url').map((n) => n.value), [id], 'exactly one URI SAN');
  t.deepEqual(names.filter((n) => n.type === 'dns').map((n) => n.value), dns);
  t.is(names.length, 1 + dns.length);
  t.is(c.subject, '', 'empty subject');
  t.is(ext(OID.ski).length, 1);
  t.is(ext(OID.aki).length, 1);
  // Node's view agrees.
  const n = new X509Certificate(wic.certPem);
  t.false(n.ca);
  t.is(n.serialNumber, wic.serial);
  t.true(/^[0-9A-F]{30,34}$/.test(n.serialNumber), '128-bit serial');
  t.false(Buffer.from(n.raw).includes(Buffer.from('keyCertSign')));
  t.is(Date.parse(n.validFrom), wic.notBefore);
  t.is(Date.parse(n.validTo), wic.notAfter);
  t.is(c.serialNumber.length % 2, 0);
}

for (const alg of ['ES256', 'EdDSA'] as const) {
  test(`wic - profile is exact and openssl -x509_strict verifies it (${alg} CA, real clock)`, async (t) => {
    const { ca } = await openCa(t, { alg, clock: systemClock as any });
    const wic = await ca.issueWic({ id: ID, dnsNames: ['api.example.org'] });
    checkLeafProfile(t, wic, ID, ['api.example.org']);
    const leaf = new X509Certificate(wic.certPem);
    t.is(wic.notAfter - wic.notBefore, 3600_000 + 10_000, 'default 1 h, back-dated 10 s');
    const root = issuingRoot(leaf, ca.bundle())!;
    t.truthy(root);
    t.is(wic.chainPem, wic.certPem, 'chain is the leaf only');
    const { stdout } = await opensslVerify(t, rootsPem(ca.bundle()), wic.certPem);
    t.regex(stdout, /leaf\.pem: OK/);
    // The generated key (default ES256) matches the certificate.
    const priv = createPrivateKey(wic.privateKeyPem!);
    t.true(createPublicKey(priv).equals(leaf.publicKey));
    t.is(priv.asymmetricKeyType, 'ec');
  });

  test(`wic - CA certificate profile (${alg})`, async (t) => {
    const { ca } = await openCa(t, { alg, clock: systemClock as any });
    const der = ca.bundle().x509Authorities[0]!;
    const c = new x509.X509Certificate(der);
    t.true(c.getExtension(x509.BasicConstraintsExtension)!.ca);
    t.true(c.getExtension(x509.BasicConstraintsExtension)!.critical);
    const ku = c.getExtension(x509.KeyUsagesExtension)!;
    t.true(ku.critical);
    t.is(ku.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    t.deepEqual(c.getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON(), [{ type: 'url', value: `spiffe://${TD}` }]);
    t.is(c.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId, c.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId ?? '');
    t.regex(c.subject, new RegExp(`CN=${TD.replace('.', '\\.')} WIMSE CA `));
    t.true(await c.verify({ signatureOnly: true }, webcrypto as any), 'self-signed');
    t.is(new X509Certificate(der).publicKey.asymmetricKeyType, alg === 'ES256' ? 'ec' : 'ed25519');
  });
}

test('wic - each CA generation has a distinct subject', async (t) => {
  const { ca } = await openCa(t);
  await ca.prepare('x509');
  const subjects = ca.bundle().x509Authorities.map((d) => new X509Certificate(d).subject);
  t.is(new Set(subjects).size, 2);
});

test('wic - issued over a CSR (self-signature checked; its names ignored)', async (t) => {
  const { ca, clock } = await openCa(t);
  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as any;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    { name: 'CN=evil', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' }, extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://other.org/x' }])] },
    webcrypto as any,
  );
  const wic = await ca.issueWic({ id: ID, key: { csr: csr.toString('pem') } });
  checkLeafProfile(t, wic, ID);
  t.is(wic.privateKeyPem, undefined, 'no private key when the caller holds it');
  const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey));
  t.true(new X509Certificate(wic.certPem).publicKey.equals(createPublicKey({ key: spki, format: 'der', type: 'spki' })));
  const { stdout } = await opensslVerify(t, rootsPem(ca.bundle()), wic.certPem, clock.now());
  t.regex(stdout, /OK/);

  // Same CSR with a broken signature: refused.
  const der = Buffer.from(csr.rawData);
  der[der.length - 3]! ^= 0x01;
  const e = await t.throwsAsync(ca.issueWic({ id: ID, key: { csr: der } }), { instanceOf: CaRequestError });
  t.is(e!.code, 'ca.invalid_csr');
  t.is((await t.throwsAsync<CaRequestError>(ca.issueWic({ id: ID, key: { csr: 'garbage' } })))!.code, 'ca.invalid_csr');
});

test('wic - issued over a public JWK; private or inconsistent JWKs refused', async (t) => {
  const { ca } = await openCa(t);
  const wk = workloadKey('EdDSA');
  const wic = await ca.issueWic({ id: ID, key: { jwk: wk.jwk } });
  const leaf = new X509Certificate(wic.certPem);
  t.is(leaf.publicKey.asymmetricKeyType, 'ed25519');
  const data = Buffer.from('proof');
  t.true(verify(null, data, leaf.publicKey, sign(null, data, wk.privateKey)));
  const priv = { ...(wk.privateKey.export({ format: 'jwk' }) as object), alg: 'EdDSA' } as any;
  t.is((await t.throwsAsync<CaRequestError>(ca.issueWic({ id: ID, key: { jwk: priv } })))!.code, 'ca.invalid_public_key');
  t.is((await t.throwsAsync<CaRequestError>(ca.issueWic({ id: ID, key: { jwk: { ...wk.jwk, alg: 'ES256' } } })))!.code, 'ca.invalid_public_key');
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }) as any;
  t.is((await t.throwsAsync<CaRequestError>(ca.issueWic({ id: ID, key: { jwk: rsa } })))!.code, 'ca.invalid_public_key');
});

test('wic - fresh EdDSA key pair for a caller that cannot make one', async (t) => {
  const { ca } = await openCa(t);
  const wic = await ca.issueWic({ id: ID, key: { generate: 'EdDSA' } });
  const priv = createPrivateKey(wic.privateKeyPem!);
  t.is(priv.asymmetricKeyType, 'ed25519');
  t.true(createPublicKey(priv).equals(new X509Certificate(wic.certPem).publicKey));
  t.regex(wic.privateKeyPem!, /^-----BEGIN PRIVATE KEY-----/);
});

test('wic - wrong trust domain and invalid identifiers are typed errors', async (t) => {
  const { ca } = await openCa(t);
  const e1 = await t.throwsAsync(ca.issueWic({ id: 'spiffe://other.org/ns/a' }), { instanceOf: CaRequestError });
  t.is(e1!.code, 'ca.wrong_trust_domain');
  for (const bad of ['spiffe://example.org', 'spiffe://example.org/a/../b', 'SPIFFE://example.org/a', 'spiffe://example.org:443/a', 'https://example.org/a', 'spiffe://example.org/a?x=1'] as const)
    t.is((await t.throwsAsync<CaRequestError>(ca.issueWic({ id: bad }), { instanceOf: CaRequestError }))!.code, 'ca.invalid_workload_id', bad);
  t.is((await t.throwsAsync<CaRequestError>(ca.issueWic({ id: ID, dnsNames: ['bad name'] })))!.code, 'ca.invalid_dns_name');
  await t.throwsAsync(ca.issueWic({ id: ID, ttlSec: 0 }), { instanceOf: TypeError });
  t.is((await ca.issueWic({ id: `wimse://${TD}/svc/a` })).id, `wimse://${TD}/svc/a`, 'wimse scheme accepted');
});

test('wic - lifetime is capped by the signing key, and nothing signs without an active key', async (t) => {
  const { ca, clock } = await openCa(t, { timing: { keyTtlSec: 7200 } });
  const active = ca.keys().find((k) => k.kind === 'x509' && k.status === 'active')!;
  clock.set(active.notAfter - 600_000);
  const wic = await ca.issueWic({ id: ID, ttlSec: 3600 });
  t.is(wic.notAfter, Math.floor(active.notAfter / 1000) * 1000, 'capped at the CA key notAfter');
  clock.set(active.notAfter);
  await t.throwsAsync(ca.issueWic({ id: ID }), { instanceOf: NoActiveKeyError });
  await ca.rotator.tick();
  t.not((await ca.issueWic({ id: ID })).caKid, active.kid, 'a new key after rotation');
});

test('wic - long identifiers and many DNS names (multi-byte DER lengths) still verify strictly', async (t) => {
  const { ca } = await openCa(t, { clock: systemClock as any });
  const id = `spiffe://${TD}/${'seg-0123456789/'.repeat(130)}end`;
  t.true(id.length > 1900 && id.length <= 2048);
  const dns = Array.from({ length: 30 }, (_, i) => `host-${i}.svc.example.org`);
  const wic = await ca.issueWic({ id, dnsNames: dns });
  checkLeafProfile(t, wic, id, dns);
  const { stdout } = await opensslVerify(t, rootsPem(ca.bundle()), wic.certPem);
  t.regex(stdout, /OK/);
});

test('wic - certificate times switch to GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)', async (t) => {
  const clock = new ManualClock(Date.UTC(2049, 11, 31, 23, 30));
  const { ca } = await openCa(t, { clock });
  const wic = await ca.issueWic({ id: ID });
  const leaf = new X509Certificate(wic.certPem);
  t.is(Date.parse(leaf.validFrom), Date.UTC(2049, 11, 31, 23, 29, 50));
  t.is(Date.parse(leaf.validTo), Date.UTC(2050, 0, 1, 0, 30));
  t.true(Buffer.from(leaf.raw).includes(Buffer.from('20500101003000Z')), 'GeneralizedTime');
  t.true(Buffer.from(leaf.raw).includes(Buffer.from('491231232950Z')), 'UTCTime');
  const { stdout } = await opensslVerify(t, rootsPem(ca.bundle()), wic.certPem, clock.now());
  t.regex(stdout, /OK/);
});
