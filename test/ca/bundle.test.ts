import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FederationBundleError, IdentityServer, type CaEvent } from '../../src/ca/index.ts';
import {
  ManualClock,
  parseSpiffeBundleMap,
  toEnvoyBundleMap,
  toSpiffeBundle,
  toSpiffeBundleMap,
  type TrustDomainBundle,
} from '../../src/identity/index.ts';
import { openCa, tempDir, TD } from './helpers.ts';

/**
 * The rules Envoy's SPIFFE validator applies to `trust_bundles` (spiffe_validator.cc
 * `parseTrustBundles`): an object `trust_domains` with at least one entry; each entry a `keys`
 * array with at least one key; every key `use: "x509-svid"` with a non-empty `x5c` of standard
 * base64 DER certificates. Anything else fails the whole map.
 */
function envoyAccepts(json: string): string[] {
  const doc = JSON.parse(json) as { trust_domains?: Record<string, { keys?: unknown }> };
  const problems: string[] = [];
  const tds = doc.trust_domains;
  if (!tds || typeof tds !== 'object' || Object.keys(tds).length === 0) return ['No trust domains found in SPIFFE bundle'];
  for (const [td, b] of Object.entries(tds)) {
    const keys = b.keys;
    if (!Array.isArray(keys) || keys.length === 0) problems.push(`No keys found in SPIFFE bundle for domain '${td}'`);
    else
      for (const k of keys as Record<string, unknown>[]) {
        if (k.use !== 'x509-svid') problems.push(`missing or invalid 'use' field found in cert for domain '${td}'`);
        else if (!Array.isArray(k.x5c) || k.x5c.length === 0) problems.push(`missing or empty 'x5c' in domain '${td}'`);
        else
          for (const c of k.x5c as string[]) {
            if (!/^[A-Za-z0-9+/]+={0,2}$/.test(c)) problems.push('x5c is not standard base64');
            try {
              new X509Certificate(Buffer.from(c, 'base64'));
            } catch {
              problems.push(`Invalid x509 object in certs for domain '${td}'`);
            }
          }
      }
  }
  return problems;
}

async function federatedFile(t: any, td: string): Promise<{ path: string; bundle: TrustDomainBundle }> {
  const dir = await tempDir(t);
  const other = await IdentityServer.open({ stateDir: dir, trustDomain: td, clock: new ManualClock() });
  const bundle = other.bundle();
  await other.close();
  const path = join(dir, `${td}.json`);
  await writeFile(path, JSON.stringify(toSpiffeBundleMap(new Map([[td, bundle]]))));
  return { path, bundle };
}

test('bundle - the full SPIFFE bundle map (roots + WIT keys) round-trips', async (t) => {
  const { ca } = await openCa(t);
  await ca.prepare('wit');
  const json = JSON.stringify(toSpiffeBundleMap(ca.bundles()));
  const back = parseSpiffeBundleMap(json);
  if (!back.ok) return t.fail(back.errors.join('; '));
  const b = back.value.get(TD)!;
  t.deepEqual(b.x509Authorities.map((d) => Buffer.from(d).toString('hex')), ca.bundle().x509Authorities.map((d) => Buffer.from(d).toString('hex')));
  t.deepEqual(b.witKeys, ca.bundle().witKeys);
  t.is(b.sequence, ca.bundle().sequence);
  const jwks = toSpiffeBundle(ca.bundle()) as { keys: { use: string; kid?: string }[] };
  t.deepEqual(jwks.keys.map((k) => k.use).sort(), ['wit-svid', 'wit-svid', 'x509-svid']);
  t.true(envoyAccepts(json).length > 0, 'Envoy would reject a map with wit-svid keys');
});

test('bundle - the Envoy bundle map has exactly the shape Envoy parses, and round-trips', async (t) => {
  const { path, bundle: fed } = await federatedFile(t, 'partner.example');
  const { ca } = await openCa(t, { federatedBundleFiles: [path] });
  await ca.prepare('x509');
  const set = new Map(ca.bundles());
  set.set('jwt-only.example', { trustDomain: 'jwt-only.example', x509Authorities: [], witKeys: fed.witKeys });
  const json = JSON.stringify(toEnvoyBundleMap(set));
  t.deepEqual(envoyAccepts(json), []);
  const doc = JSON.parse(json);
  t.deepEqual(Object.keys(doc.trust_domains), ['example.org', 'partner.example'], 'sorted; a domain without roots left out');
  const back = parseSpiffeBundleMap(json);
  if (!back.ok) return t.fail(back.errors.join('; '));
  t.is(back.value.get(TD)!.x509Authorities.length, 2);
  t.deepEqual(back.value.get(TD)!.witKeys, []);
  t.deepEqual(
    back.value.get('partner.example')!.x509Authorities.map((d) => Buffer.from(d).toString('base64')),
    fed.x509Authorities.map((d) => Buffer.from(d).toString('base64')),
  );
});

test('bundle - federated files: bundle map and single-JWKS forms load into bundles()', async (t) => {
  const a = await federatedFile(t, 'a.example');
  const dir = await tempDir(t);
  const other = await IdentityServer.open({ stateDir: dir, trustDomain: 'b.example', clock: new ManualClock() });
  const single = join(dir, 'b.jwks');
  await writeFile(single, JSON.stringify(toSpiffeBundle(other.bundle())));
  await other.close();
  const { ca } = await openCa(t, { federatedBundleFiles: [a.path, { trustDomain: 'b.example', path: single }] });
  t.deepEqual([...ca.bundles().keys()], [TD, 'a.example', 'b.example']);
  t.deepEqual(ca.bundles().get('a.example')!.witKeys, a.bundle.witKeys);
  const events: CaEvent[] = [];
  ca.onChange((e) => events.push(e));
  await ca.reloadFederation();
  t.is(events[0]!.type, 'bundle-changed');
});

test('bundle - a broken or overreaching federation file refuses the start with field paths', async (t) => {
  const dir = await tempDir(t);
  const bad = join(dir, 'bad.json');
  await writeFile(bad, JSON.stringify({ trust_domains: { 'x.example': { keys: [{ use: 'x509-svid', x5c: ['AAAA'] }] } } }));
  const e1 = await t.throwsAsync<FederationBundleError>(openCa(t, { federatedBundleFiles: [bad] }), { instanceOf: FederationBundleError });
  t.is(e1!.code, 'ca.federation_bundle_invalid');
  t.regex(e1!.errors[0]!, /trust_domains\["x\.example"\]\.keys\[0\]\.x5c/);
  const own = await federatedFile(t, TD);
  const e2 = await t.throwsAsync<FederationBundleError>(openCa(t, { federatedBundleFiles: [own.path] }), { instanceOf: FederationBundleError });
  t.regex(e2!.errors[0]!, /cannot replace our own trust domain/);
  const missing = await t.throwsAsync<FederationBundleError>(openCa(t, { federatedBundleFiles: [join(dir, 'nope.json')] }));
  t.regex(missing!.message, /ENOENT/);
});
