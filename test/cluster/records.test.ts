import test from 'ava';
import { checkRecord, decodeToken, encodeToken, kvKey, policyDigest } from '../../src/cluster/index.ts';
import { decodeEnvelope, encodeEnvelope } from '../../src/cluster/envelope.ts';
import { GapTracker } from '../../src/cluster/gap-tracker.ts';
import { parseKvKey, parseSubject, changeSubject, eventSubject, bucketName } from '../../src/cluster/naming.ts';
import { bundleRecord, caDerBase64, keyRecord, policyRecord, privateJwk, registration, revocation } from './fixtures.ts';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

test('cluster records - tokens round-trip, are one-to-one, and only canonical spellings decode', (t) => {
  for (const s of ['example.org', 'a_b', 'a.b', 'node-1', 'k:1/x', 'é'])
    t.is(decodeToken(encodeToken(s)), s);
  t.is(encodeToken('example.org'), 'example_2eorg');
  t.not(encodeToken('a.b'), encodeToken('a_b'));
  t.is(decodeToken('_41'), undefined); // "A" must be spelled plainly
  t.is(decodeToken('a.b'), undefined);
  t.is(decodeToken(''), undefined);
  t.is(bucketName('example.org'), 'wimse_example_2eorg');
});

test('cluster records - subjects and store keys name their kind and origin', (t) => {
  t.is(changeSubject('example.org', 'keys', 'node.1'), 'wimse.example_2eorg.keys.node_2e1');
  t.deepEqual(parseSubject('example.org', 'wimse.example_2eorg.keys.node_2e1'), { event: false, kind: 'keys', origin: 'node.1' });
  t.deepEqual(parseSubject('example.org', eventSubject('example.org', 'revocations', 'a')), { event: true, kind: 'revocations', origin: 'a' });
  t.is(parseSubject('example.org', 'wimse.example_2eorg.secrets.a'), undefined);
  t.is(parseSubject('example.org', 'wimse.other.keys.a'), undefined);
  t.is(kvKey('keys', 'node.1/kid-1'), 'keys.node_2e1.kid-1');
  t.deepEqual(parseKvKey('keys.node_2e1.kid-1'), { kind: 'keys', key: 'node.1/kid-1' });
  t.is(parseKvKey('nope.a'), undefined);
});

test('cluster records - every kind is checked with field paths', async (t) => {
  t.true(checkRecord('keys', keyRecord('a', 'k1')).ok);
  t.true(checkRecord('keys', keyRecord('a', 'r1', { publicJwk: undefined, use: 'x509', x509RootDer: await caDerBase64() })).ok);
  t.true(checkRecord('bundles', bundleRecord('partner.example', 1)).ok);
  t.true(checkRecord('policy', policyRecord('v1')).ok);
  t.true(checkRecord('registrations', registration('web')).ok);
  t.true(checkRecord('revocations', revocation('jti-1')).ok);
  t.true(checkRecord('nodes', { node: 'a', lastSeen: 1, trustedKids: ['k1'] }).ok);

  const errs = (c: { ok: boolean; errors?: string[] }) => (c.ok ? [] : c.errors!);
  t.deepEqual(errs(checkRecord('keys', { ...keyRecord('a', 'k1'), state: 'gone', extra: 1 })), [
    'record.extra: unexpected member',
    'record.state: must be one of prepared, active, old, tainted, revoked',
  ]);
  t.true(errs(checkRecord('keys', keyRecord('a', 'k1', { publicJwk: { ...privateJwk(), alg: 'ES256' } }))).includes('record.publicJwk: private_key'));
  t.true(errs(checkRecord('keys', keyRecord('a', 'k1', { x509RootDer: 'AAAA' }))).some((e) => e.includes('exactly one')));
  t.true(errs(checkRecord('keys', keyRecord('a', 'k1', { notAfter: 1 }))).includes('record.notAfter: must be after notBefore'));
  t.true(errs(checkRecord('keys', keyRecord('a', 'k1', { publicJwk: { ...keyRecord('a', 'k1').publicJwk, kid: 'other' } }))).includes('record.publicJwk.kid: must equal kid'));
  t.true(errs(checkRecord('bundles', { ...bundleRecord('partner.example', 1), trustDomain: 'Bad.Example' })).some((e) => e.startsWith('record.trustDomain')));
  t.true(errs(checkRecord('bundles', { ...bundleRecord('partner.example', 1), spiffeBundle: '{"keys": 3}' })).some((e) => e.startsWith('record.spiffeBundle')));
  t.deepEqual(errs(checkRecord('policy', { version: 'v1', digest: policyDigest('a'), text: 'b' })), ['record.digest: does not match text']);
  t.true(errs(checkRecord('registrations', { ...registration('web'), workloadId: 'http://x' })).some((e) => e.startsWith('record.workloadId')));
  t.true(errs(checkRecord('revocations', { ...revocation('x'), tokenId: 'eyJhbGciOi.eyJzdWIi.c2ln'.repeat(10) })).some((e) => e.startsWith('record.tokenId')));
  t.deepEqual(errs(checkRecord('nodes', { node: 'a', lastSeen: -1, trustedKids: [''] })), ['record.lastSeen: must be an integer >= 0', 'record.trustedKids[0]: must be a non-empty string']);
});

test('cluster records - a leaf certificate is not accepted as an X.509 root', async (t) => {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const leaf = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '02',
    name: 'CN=leaf',
    notBefore: new Date(),
    notAfter: new Date(Date.now() + 3_600_000),
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    signingAlgorithm: alg,
  });
  const r = checkRecord('keys', keyRecord('a', 'r1', { publicJwk: undefined, use: 'x509', x509RootDer: Buffer.from(leaf.rawData).toString('base64') }));
  t.deepEqual(r.ok ? [] : r.errors, ['record.x509RootDer: not a CA certificate']);
});

test('cluster records - envelopes from the store carry no revision and must match their key', (t) => {
  const env = { v: 1 as const, kind: 'policy' as const, key: 'current', origin: 'a', seq: 1, record: policyRecord('v1') };
  t.true(decodeEnvelope(encodeEnvelope(env), { kind: 'policy', key: 'current', event: false, requireRevision: false }).ok);
  const withRev = decodeEnvelope(encodeEnvelope({ ...env, revision: 3 }), { kind: 'policy', key: 'current', event: false, requireRevision: false });
  t.like(withRev, { ok: false, reason: 'bad_schema' });
  t.like(decodeEnvelope(encodeEnvelope(env), { kind: 'policy', key: 'other', event: false, requireRevision: false }), { ok: false, reason: 'key_mismatch' });
  t.like(decodeEnvelope(encodeEnvelope({ ...env, kind: 'secrets' as never }), { event: false, requireRevision: false }), { ok: false, reason: 'unknown_kind' });
  t.like(decodeEnvelope(encodeEnvelope({ ...env, deleted: true }), { event: false, requireRevision: false }), { ok: false, reason: 'bad_schema' });
  const { record: _r, ...tomb } = env;
  t.true(decodeEnvelope(encodeEnvelope({ ...tomb, deleted: true }), { event: false, requireRevision: false }).ok);
});

test('cluster records - the gap tracker reports a hole until it is filled or caught up', (t) => {
  const g = new GapTracker();
  g.reset(5);
  g.see(6);
  t.is(g.missing(), undefined);
  g.see(8);
  t.is(g.missing(), 7);
  g.see(7);
  t.is(g.missing(), undefined);
  g.see(10);
  t.is(g.missing(), 9);
  g.reset(9);
  t.is(g.missing(), undefined);
  g.see(3); // old: ignored
  t.is(g.missing(), undefined);
});

test('cluster records - caller credentials travel as digests only; an admin token record belongs to its node', (t) => {
  const sha256 = 'K__h6k6gE6YSH9okgRCkoIKC6MOtvP0vgMDc08JmZ_0';
  const errs = (c: { ok: boolean; errors?: string[] }) => (c.ok ? [] : c.errors!);
  t.true(checkRecord('nodeTokens', { nodeId: 'sidecar-orders-0', sha256 }).ok);
  t.true(checkRecord('nodeTokens', { nodeId: 'router~10.0.0.1~x.ns~ns.svc.cluster.local', sha256, expiresAt: 5, revoked: true }).ok);
  t.deepEqual(errs(checkRecord('nodeTokens', { nodeId: 'sidecar', sha256, token: 'wnt_secret' })), ['record.token: unexpected member']);
  t.deepEqual(errs(checkRecord('nodeTokens', { nodeId: 'sidecar', sha256: 'wnt_0123456789' })), ['record.sha256: must match /^[A-Za-z0-9_-]{43}$/']);
  t.deepEqual(errs(checkRecord('nodeTokens', { nodeId: 'side car', sha256, revoked: 'yes' })), ['record.nodeId: must match /^[\\x21-\\x7e]+$/', 'record.revoked: must be a boolean']);
  t.true(checkRecord('adminTokens', { node: 'cp-1', sha256 }).ok);
  t.deepEqual(errs(checkRecord('adminTokens', { node: 'cp-1', sha256: 'not-a-digest' })), ['record.sha256: must match /^[A-Za-z0-9_-]{43}$/']);

  // The store key is the digest (node tokens) or the node (admin tokens); a node writes only its own admin token.
  const nodeToken = { v: 1 as const, kind: 'nodeTokens' as const, key: sha256, origin: 'cp-2', seq: 1, record: { nodeId: 'sidecar', sha256 } };
  t.true(decodeEnvelope(encodeEnvelope(nodeToken), { event: false, requireRevision: false }).ok);
  t.like(decodeEnvelope(encodeEnvelope({ ...nodeToken, key: 'other' }), { event: false, requireRevision: false }), { ok: false, reason: 'key_mismatch' });
  const admin = { v: 1 as const, kind: 'adminTokens' as const, key: 'cp-1', origin: 'cp-1', seq: 1, record: { node: 'cp-1', sha256 } };
  t.true(decodeEnvelope(encodeEnvelope(admin), { event: false, requireRevision: false }).ok);
  t.like(decodeEnvelope(encodeEnvelope({ ...admin, origin: 'cp-2' }), { event: false, requireRevision: false }), { ok: false, reason: 'origin_mismatch' });
});
