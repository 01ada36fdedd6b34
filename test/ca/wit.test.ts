import test from 'ava';
import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import { CaRequestError, NoActiveKeyError } from '../../src/ca/index.ts';
import { openCa, workloadKey, TD } from './helpers.ts';

const SUB = `spiffe://${TD}/ns/prod/sa/web`;

for (const alg of ['ES256', 'EdDSA'] as const) {
  test(`wit - header and claims as workload-creds-02 §3, verifies with the bundle key (${alg})`, async (t) => {
    const { ca, clock } = await openCa(t, { alg, witIssuer: `https://${TD}` });
    const wk = workloadKey('ES256');
    const wit = await ca.mintWit({ sub: SUB, cnf: wk.jwk });
    const h = decodeProtectedHeader(wit.token);
    t.deepEqual(h, { alg, typ: 'wit+jwt', kid: ca.slot('wit').current!.kid });
    const c = decodeJwt(wit.token);
    t.deepEqual(Object.keys(c).sort(), ['cnf', 'exp', 'iat', 'iss', 'jti', 'sub']);
    t.is(c.sub, SUB);
    t.is(c.iss, `https://${TD}`);
    t.is(c.iat, Math.floor(clock.now() / 1000));
    t.is(c.exp! - c.iat!, 3600, 'default 1 h');
    t.regex(c.jti!, /^[A-Za-z0-9_-]{22}$/, '128-bit jti, base64url');
    const { kty, crv, x, y } = wk.jwk;
    t.deepEqual(c.cnf, { jwk: { kty, crv, x, y, alg: 'ES256' } }, 'cnf.jwk reduced to public members + alg');
    const key = ca.bundle().witKeys.find((k) => k.kid === h.kid)!;
    t.is(key.alg, alg);
    const { payload } = await jwtVerify(wit.token, await importJWK(key, key.alg), { currentDate: new Date(clock.now()), typ: 'wit+jwt' });
    t.is(payload.sub, SUB);
    const other = await ca.mintWit({ sub: SUB, cnf: wk.jwk });
    t.not(other.jti, wit.jti);
  });
}

test('wit - cnf.jwk must be public, carry alg, and be consistent with it', async (t) => {
  const { ca } = await openCa(t);
  const wk = workloadKey('EdDSA');
  const { alg: _a, ...noAlg } = wk.jwk;
  const bad = [
    noAlg,
    { ...wk.jwk, alg: 'HS256' },
    { ...wk.jwk, alg: 'none' },
    { ...wk.jwk, alg: 'ES256' },
    { ...wk.jwk, d: 'AAAA' },
    { ...wk.jwk, kty: 'EC' },
  ];
  for (const cnf of bad)
    t.is((await t.throwsAsync<CaRequestError>(ca.mintWit({ sub: SUB, cnf: cnf as any }), { instanceOf: CaRequestError }))!.code, 'ca.invalid_public_key');
});

test('wit - sub must be a canonical identifier of our trust domain', async (t) => {
  const { ca } = await openCa(t);
  const { jwk } = workloadKey();
  t.is((await t.throwsAsync<CaRequestError>(ca.mintWit({ sub: 'spiffe://other.org/a', cnf: jwk })))!.code, 'ca.wrong_trust_domain');
  t.is((await t.throwsAsync<CaRequestError>(ca.mintWit({ sub: 'spiffe://example.org/a/', cnf: jwk })))!.code, 'ca.invalid_workload_id');
});

test('wit - exp is capped by the signing key, and an expired key never signs', async (t) => {
  const { ca, clock } = await openCa(t, { timing: { keyTtlSec: 7200 } });
  const { jwk } = workloadKey();
  const k = ca.keys().find((x) => x.kind === 'wit' && x.status === 'active')!;
  clock.set(k.notAfter - 60_000);
  const wit = await ca.mintWit({ sub: SUB, cnf: jwk, ttlSec: 3600 });
  t.is(wit.exp, Math.floor(k.notAfter / 1000));
  clock.set(k.notAfter);
  await t.throwsAsync(ca.mintWit({ sub: SUB, cnf: jwk }), { instanceOf: NoActiveKeyError });
});

test('wit - a tainted key stops signing at once', async (t) => {
  const { ca } = await openCa(t);
  const { jwk } = workloadKey();
  const before = await ca.mintWit({ sub: SUB, cnf: jwk });
  await ca.taint('wit', before.kid);
  const after = await ca.mintWit({ sub: SUB, cnf: jwk });
  t.not(after.kid, before.kid);
  t.true(ca.bundle().witKeys.some((k) => k.kid === before.kid), 'tainted key still verifies what is in flight');
});

test('issuance - every WIC and WIT signed is reported once to onIssued; a refused request is not', async (t) => {
  const { ca } = await openCa(t);
  const seen: string[] = [];
  const off = ca.onIssued((e) => seen.push(e.kind));
  await ca.mintWit({ sub: SUB, cnf: workloadKey('ES256').jwk });
  await ca.issueWic({ id: SUB });
  await t.throwsAsync(ca.mintWit({ sub: 'spiffe://other.org/x', cnf: workloadKey('ES256').jwk }), { instanceOf: CaRequestError });
  await t.throwsAsync(ca.issueWic({ id: SUB, dnsNames: ['not a name'] }), { instanceOf: CaRequestError });
  t.deepEqual(seen, ['wit', 'wic']);
  // A failing listener does not fail issuance.
  ca.onIssued(() => {
    throw new Error('listener bug');
  });
  await t.notThrowsAsync(ca.mintWit({ sub: SUB, cnf: workloadKey('ES256').jwk }));
  off();
  await ca.mintWit({ sub: SUB, cnf: workloadKey('ES256').jwk });
  t.deepEqual(seen, ['wit', 'wic', 'wit']);
});
