import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { jwtVerify, decodeProtectedHeader, importJWK } from 'jose';
import type { CaEvent } from '../../src/ca/index.ts';
import { issuingRoot, openCa, validAt, workloadKey, TD } from './helpers.ts';

const ID = `spiffe://${TD}/ns/prod/sa/web`;

for (const alg of ['ES256', 'EdDSA'] as const) {
  test(`rotation - at every step through 3+ key lifetimes, fresh credentials verify with that moment's bundle (${alg})`, async (t) => {
    const keyTtlSec = 60;
    const { ca, clock } = await openCa(t, { alg, timing: { keyTtlSec, pruneGraceSec: 5 }, wicTtlSec: 20, witTtlSec: 20 });
    const events: CaEvent[] = [];
    ca.onChange((e) => events.push(e));
    const wk = workloadKey('EdDSA');
    const x509Kids = new Set<string>();
    const witKids = new Set<string>();
    let lastSeq = ca.bundle().sequence!;
    const start = clock.now();
    const issued: { leaf: X509Certificate; at: number }[] = [];
    for (let step = 0; clock.now() - start <= 3.5 * keyTtlSec * 1000; step++) {
      await ca.rotator.tick();
      const now = clock.now();
      const bundle = ca.bundle();
      t.true(bundle.sequence! >= lastSeq, 'sequence never goes back');
      lastSeq = bundle.sequence!;

      const wic = await ca.issueWic({ id: ID });
      const leaf = new X509Certificate(wic.certPem);
      const root = issuingRoot(leaf, bundle);
      t.truthy(root, `step ${step}: WIC chains to a root of the current bundle`);
      t.true(validAt(leaf, now) && validAt(root!, now), `step ${step}: leaf and root valid now`);
      t.true(Date.parse(leaf.validTo) <= Date.parse(root!.validTo), 'leaf never outlives its CA');
      x509Kids.add(wic.caKid);
      issued.push({ leaf, at: now });

      const wit = await ca.mintWit({ sub: ID, cnf: wk.jwk });
      const { kid } = decodeProtectedHeader(wit.token);
      const jwk = bundle.witKeys.find((k) => k.kid === kid);
      t.truthy(jwk, `step ${step}: WIT kid is in the current bundle`);
      const { payload } = await jwtVerify(wit.token, await importJWK(jwk!, jwk!.alg), {
        currentDate: new Date(now),
        typ: 'wit+jwt',
        algorithms: [alg],
      });
      t.is(payload.sub, ID);
      witKids.add(kid!);

      // Everything issued earlier and still valid still chains to today's bundle.
      for (const p of issued) if (validAt(p.leaf, now)) t.truthy(issuingRoot(p.leaf, bundle), 'a live WIC keeps its root in the bundle');

      // Only prepared/active/old keys are published: at most 3 per kind with these timings.
      t.true(bundle.x509Authorities.length <= 3 && bundle.witKeys.length <= 3);
      clock.advance(2_000);
    }
    t.true(x509Kids.size >= 4, `signed with ${x509Kids.size} X.509 CA keys`);
    t.true(witKids.size >= 4, `signed with ${witKids.size} WIT keys`);
    t.true(events.some((e) => e.type === 'key-removed'), 'expired keys are pruned');
    t.is(ca.rotator.stats.errors, 0);
  });
}

test('rotation - the next key is published before it signs, and signs only once active', async (t) => {
  const { ca, clock } = await openCa(t, { timing: { keyTtlSec: 60 } });
  const first = ca.slot('x509').current!.kid;
  clock.advance(30_000);
  await ca.rotator.tick();
  const next = ca.slot('x509').next!.kid;
  t.not(next, first);
  t.is(ca.bundle().x509Authorities.length, 2, 'prepared key already in the bundle');
  t.is((await ca.issueWic({ id: ID })).caKid, first, 'prepared key does not sign');
  clock.advance(20_000);
  await ca.rotator.tick();
  t.is((await ca.issueWic({ id: ID })).caKid, next);
  t.is(ca.keys().find((k) => k.kid === first)!.status, 'old');
  t.is(ca.bundle().x509Authorities.length, 2, 'old key still trusted');
  // The old key's CA certificate expires with the key; it leaves the bundle after notAfter + grace.
  const old = ca.keys().find((k) => k.kid === first)!;
  const root = new X509Certificate(ca.bundle().x509Authorities[0]!);
  t.is(Date.parse(root.validTo), Math.floor(old.notAfter / 1000) * 1000);
  clock.set(old.notAfter + ca.timing.pruneGraceSec * 1000);
  await ca.prune();
  t.false(ca.keys().some((k) => k.kid === first));
  t.is(ca.bundle().x509Authorities.length, 1);
});
