import test from 'ava';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { importJWK, jwtVerify } from 'jose';
import { startAdminNode, newDir, writeFile } from './helpers.ts';
import { parseSpiffeBundle, parseSpiffeBundleMap, pemToDers } from '../../src/identity/trust-bundle.ts';

const err = (e: unknown) => e as grpc.ServiceError;
const json = (d: { text: string }) => JSON.parse(d.text);

test('admin API bundles - spiffe map, one trust domain as JWKS, PEM roots; bad input is refused', async (t) => {
  const n = await startAdminNode(t, newDir());
  const map = parseSpiffeBundleMap((await n.call('GetBundle', {})).text);
  t.true(map.ok);
  if (!map.ok) return;
  const own = map.value.get('example.org')!;
  t.is(own.witKeys.length, n.node.ca.bundle().witKeys.length);
  const one = parseSpiffeBundle('example.org', json(await n.call('GetBundle', { trust_domain: 'example.org' })));
  t.true(one.ok);
  const pem = (await n.call('GetBundle', { format: 'pem', trust_domain: 'example.org' })).text;
  t.deepEqual(pemToDers(pem).map((d) => Buffer.from(d).toString('hex')), n.node.ca.bundle().x509Authorities.map((d) => Buffer.from(d).toString('hex')));
  const nf = err(await t.throwsAsync(n.call('GetBundle', { trust_domain: 'nowhere.example' })));
  t.is(nf.code, grpc.status.NOT_FOUND);
  t.regex(nf.details, /not in this node's bundles \(it has example\.org\)\. Add it with wimsectl federation add/);
  t.regex(err(await t.throwsAsync(n.call('GetBundle', { format: 'der' }))).details, /^format: must be spiffe/);
});

test('admin API bundles - status lists this node and every kid it trusts', async (t) => {
  const n = await startAdminNode(t, newDir());
  const st = json(await n.call('BundleStatus'));
  t.is(st.nodes.length, 1);
  t.is(st.nodes[0].node, 'admin-node');
  const own = st.nodes[0].trustDomains.find((d: any) => d.trustDomain === 'example.org');
  const live = n.node.ca.keys().filter((k) => k.status !== 'revoked');
  t.deepEqual([...own.x509Authorities].sort(), live.filter((k) => k.kind === 'x509').map((k) => k.kid).sort());
  t.deepEqual([...own.witKeys].sort(), live.filter((k) => k.kind === 'wit').map((k) => k.kid).sort());
});

test('admin API authorities - list, prepare, activate, taint, revoke (only a tainted key), with precise errors', async (t) => {
  const n = await startAdminNode(t, newDir());
  const before = json(await n.call('ListAuthorities'));
  t.is(before.trustDomain, 'example.org');
  const active = before.keys.find((k: any) => k.kind === 'wit' && k.status === 'active');
  const prepared = json(await n.call('PrepareAuthority', { kind: 'wit' }));
  t.is(prepared.status, 'prepared');
  const notTainted = err(await t.throwsAsync(n.call('RevokeAuthority', { kind: 'wit', kid: active.kid })));
  t.is(notTainted.code, grpc.status.FAILED_PRECONDITION);
  t.regex(notTainted.details, /only a tainted key can be revoked/);
  const activated = json(await n.call('ActivateAuthority', { kind: 'wit' }));
  t.is(activated.kid, prepared.kid);
  t.is(activated.status, 'active');
  t.is(json(await n.call('TaintAuthority', { kind: 'wit', kid: active.kid })).status, 'tainted');
  t.is(json(await n.call('RevokeAuthority', { kind: 'wit', kid: active.kid })).status, 'revoked');
  t.false(n.node.ca.bundle().witKeys.some((k) => k.kid === active.kid), 'a revoked key leaves the bundle');
  t.is(err(await t.throwsAsync(n.call('TaintAuthority', { kind: 'wit', kid: 'no-such-kid' }))).code, grpc.status.NOT_FOUND);
  t.regex(err(await t.throwsAsync(n.call('PrepareAuthority', { kind: 'jwt' }))).details, /^kind: must be one of x509, wit/);
  t.regex(err(await t.throwsAsync(n.call('TaintAuthority', { kind: 'x509' }))).details, /^kid: is required/);
});

test('admin API federation - add (validated), list, replace, remove; persisted across a restart', async (t) => {
  const partner = await startAdminNode(t, newDir(), 'trustDomain: partner.example\n');
  const exported = (await partner.call('GetBundle', { trust_domain: 'partner.example' })).text;
  const dir = newDir();
  const a = await startAdminNode(t, dir);
  await a.call('AddFederation', { trust_domain: 'partner.example', bundle_json: exported });
  t.truthy(a.node.ca.bundles().get('partner.example'));
  const listed = json(await a.call('ListFederation'));
  t.deepEqual(listed.map((f: any) => [f.trustDomain, f.source, f.x509Authorities > 0, f.witKeys > 0]), [['partner.example', 'api', true, true]]);
  // The same trust domain again replaces it.
  await a.call('AddFederation', { trust_domain: 'partner.example', bundle_json: exported });
  t.is(json(await a.call('ListFederation')).length, 1);

  const bad = err(await t.throwsAsync(a.call('AddFederation', { trust_domain: 'bad.example', bundle_json: '{"keys":[{"use":"x509-svid","x5c":["AAAA"]}]}' })));
  t.is(bad.code, grpc.status.INVALID_ARGUMENT);
  t.regex(bad.details, /^bundle_json: trust_domains\["bad\.example"\]\.keys\[0\]\.x5c: not a DER certificate/);
  t.regex(err(await t.throwsAsync(a.call('AddFederation', { trust_domain: 'example.org', bundle_json: exported }))).details, /own trust domain/);
  t.regex(err(await t.throwsAsync(a.call('AddFederation', { trust_domain: 'Bad', bundle_json: exported }))).details, /^trust_domain: not a valid trust domain/);
  t.regex(err(await t.throwsAsync(a.call('AddFederation', { trust_domain: 'x.example', bundle_json: '{' }))).details, /^bundle_json: not JSON/);
  t.false(existsSync(join(dir, 'state', 'federation', 'bad.example.json')));

  await a.close();
  const b = await startAdminNode(t, dir);
  t.truthy(b.node.ca.bundles().get('partner.example'), 'federation survives a restart');
  await b.call('RemoveFederation', { trust_domain: 'partner.example' });
  t.is(b.node.ca.bundles().get('partner.example'), undefined);
  t.false(existsSync(join(dir, 'state', 'federation', 'partner.example.json')));
  t.is(err(await t.throwsAsync(b.call('RemoveFederation', { trust_domain: 'partner.example' }))).code, grpc.status.NOT_FOUND);
});

test('admin API federation - a trust domain federated by the config file cannot be changed through the API', async (t) => {
  const partner = await startAdminNode(t, newDir(), 'trustDomain: partner.example\n');
  const exported = (await partner.call('GetBundle', { trust_domain: 'partner.example' })).text;
  const dir = newDir();
  writeFile(dir, 'partner.json', exported);
  const a = await startAdminNode(t, dir, 'federation:\n  - {trustDomain: partner.example, bundleFile: partner.json}\n');
  t.is(json(await a.call('ListFederation'))[0].source, 'config');
  const rm = err(await t.throwsAsync(a.call('RemoveFederation', { trust_domain: 'partner.example' })));
  t.is(rm.code, grpc.status.FAILED_PRECONDITION);
  t.regex(rm.details, /federated by the config file.*Remove it from federation\[\]/);
  t.is(err(await t.throwsAsync(a.call('AddFederation', { trust_domain: 'partner.example', bundle_json: exported }))).code, grpc.status.FAILED_PRECONDITION);
});

test('admin API mint - a WIT bound to the given key verifies with the node bundle; a certificate chains to its roots', async (t) => {
  const n = await startAdminNode(t, newDir());
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(publicKey.export({ format: 'jwk' }) as object), alg: 'ES256' };
  const wit = json(await n.call('MintWIT', { workload_id: 'wimse://example.org/svc/debug', public_jwk_json: JSON.stringify(jwk), ttl_seconds: 120 }));
  const key = n.node.ca.bundle().witKeys.find((k) => k.kid === wit.kid)!;
  const v = await jwtVerify(wit.token, await importJWK(key as any, key.alg), { typ: 'wit+jwt' });
  t.is(v.payload.sub, 'wimse://example.org/svc/debug');
  t.is((v.payload as any).cnf.jwk.x, (jwk as any).x);
  t.is(v.payload.exp! - v.payload.iat!, 120);

  const cert = json(await n.call('MintCertificate', { workload_id: 'wimse://example.org/svc/debug', dns_names: ['debug.example.org'] }));
  t.truthy(cert.privateKeyPem, 'a generated key is returned once');
  const leaf = new X509Certificate(cert.certPem);
  t.regex(leaf.subjectAltName ?? '', /URI:wimse:\/\/example\.org\/svc\/debug/);
  const roots = n.node.ca.bundle().x509Authorities.map((d) => new X509Certificate(d));
  t.true(roots.some((r) => leaf.verify(r.publicKey)));
  const withKey = json(await n.call('MintCertificate', { workload_id: 'wimse://example.org/svc/debug', public_jwk_json: JSON.stringify(jwk) }));
  t.is(withKey.privateKeyPem, undefined);

  t.regex(err(await t.throwsAsync(n.call('MintWIT', { workload_id: 'wimse://example.org/x' }))).details, /^public_jwk_json: is required/);
  const foreign = err(await t.throwsAsync(n.call('MintWIT', { workload_id: 'wimse://other.org/x', public_jwk_json: JSON.stringify(jwk) })));
  t.is(foreign.code, grpc.status.INVALID_ARGUMENT);
  t.regex(foreign.details, /ca\.wrong_trust_domain: .*\. This node issues only for its own trust domain/);
  t.is(err(await t.throwsAsync(n.call('MintCertificate', { workload_id: 'wimse://example.org/x', csr_pem: 'nope' }))).code, grpc.status.INVALID_ARGUMENT);
});
