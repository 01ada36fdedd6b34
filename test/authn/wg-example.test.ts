import test from 'ava';
import { readFileSync } from 'node:fs';
import { compactVerify, importJWK } from 'jose';
import { Authenticator, AuthnError, createWpt, headersFrom, tokenHash, type AuthnRequest } from '../../src/authn/index.ts';
import { ManualClock } from '../../src/identity/clock.ts';
import type { WitKey } from '../../src/identity/trust-bundle.ts';
import { bundleOf, bundleSet, privateFromJwk, signRaw } from './helpers.ts';

// The WG's WIT (workload-creds-02 §5.1) and its wpt-01 WPT (§2).
const wg = JSON.parse(readFileSync(new URL('../../../shared/vectors/wimse-wg-examples.json', import.meta.url), 'utf8')).wit_wpt;
const AUD = wg.aud as string;
// Between the WIT's iat and the WPT's exp, and within 300 s (+skew) of the WPT's exp.
const NOW = 1745509800;

const issuerKey: WitKey = { ...wg.issuer.public_jwk, alg: 'ES256' };
const issuerPrivate = privateFromJwk({ ...wg.issuer.public_jwk, d: wg.issuer.d });
const workloadPrivate = privateFromJwk(wg.workload_key.jwk);

function authenticator(): Authenticator {
  return new Authenticator({
    bundles: bundleSet(bundleOf('example.com', [issuerKey])),
    clock: new ManualClock(NOW * 1000),
    audiences: [AUD],
  });
}

/** The example request rebuilt for wpt-02: the WPT moves to `Authorization: WPT`. */
function wpt02Request(wit: string, wpt: string): AuthnRequest {
  const legacy = (wg.request.headers as [string, string][]).filter(
    ([n]) => !['authorization', 'workload-identity-token', 'workload-proof-token'].includes(n.toLowerCase()),
  );
  return {
    method: 'POST',
    path: '/path',
    query: '',
    headers: headersFrom([...legacy, ['Workload-Identity-Token', wit], ['Authorization', `WPT ${wpt}`]]),
    body: Buffer.from(wg.request.body),
  };
}

test('wg example - the WG WIT and WPT authenticate under wpt-02 carriage (ath ignored)', (t) => {
  t.is(tokenHash(wg.wit), wg.wth);
  const r = authenticator().authenticate(wpt02Request(wg.wit, wg.wpt));
  t.is(r.caller, 'wimse://example.com/specific-workload');
  t.is(r.via, 'wpt');
  t.deepEqual(r.wit, { sub: 'wimse://example.com/specific-workload', exp: 1745512510, jti: 'x-_1CTL2cca3CSE4cwb_l' });
  t.is(r.wpt?.jti, '__bwc4ESC3acc2LTC1-_x');
  t.is(r.wpt?.aud, AUD);
});

test('wg example - createWpt for the WG WIT carries exactly the wpt-02 claims and authenticates', (t) => {
  const ours = createWpt({ wit: wg.wit, privateKey: workloadPrivate, alg: 'EdDSA', aud: AUD, nowSec: 1745510016 - 60, jti: '__bwc4ESC3acc2LTC1-_x' });
  t.notThrows(() => authenticator().authenticate(wpt02Request(wg.wit, ours)));
  const payload = JSON.parse(Buffer.from(ours.split('.')[1]!, 'base64url').toString());
  t.deepEqual(payload, { aud: AUD, exp: 1745510016, jti: '__bwc4ESC3acc2LTC1-_x', wth: wg.wth });
});

test('wg example - a createWpt token verifies with jose using the WIT cnf.jwk', async (t) => {
  const ours = createWpt({ wit: wg.wit, privateKey: workloadPrivate, alg: 'EdDSA', aud: AUD, nowSec: NOW });
  const key = await importJWK(wg.wit_claims.cnf.jwk, 'EdDSA');
  const { protectedHeader } = await compactVerify(ours, key as never, { algorithms: ['EdDSA'] });
  t.deepEqual(protectedHeader, { alg: 'EdDSA', typ: 'wpt+jwt' });
});

test('wg example - the same request in wpt-01 form (Workload-Proof-Token) is rejected as legacy', (t) => {
  const req: AuthnRequest = { method: 'POST', path: '/path', query: '', headers: headersFrom(wg.request.headers) };
  const e = t.throws(() => authenticator().authenticate(req), { instanceOf: AuthnError });
  t.is(e?.code, 'wpt.legacy_header');
  t.is(e?.status, 401);
  t.is(e?.challenge, 'WPT');
});

test('wg example - an expired WG WIT is rejected at a later clock', (t) => {
  const a = new Authenticator({
    bundles: bundleSet(bundleOf('example.com', [issuerKey])),
    clock: new ManualClock((1745512510 + 61) * 1000),
    audiences: [AUD],
  });
  const wpt = createWpt({ wit: wg.wit, privateKey: workloadPrivate, alg: 'EdDSA', aud: AUD, nowSec: 1745512510 + 61 });
  const e = t.throws(() => a.authenticate(wpt02Request(wg.wit, wpt)), { instanceOf: AuthnError });
  t.is(e?.code, 'wit.expired');
});

test('wg example - a WIT minted under the "June 5" key for an unconfigured trust domain is rejected', (t) => {
  const claims = { ...wg.wit_claims, sub: 'wimse://other.example/specific-workload' };
  const wit = signRaw(wg.wit_header, claims, issuerPrivate, 'ES256');
  const wpt = createWpt({ wit, privateKey: workloadPrivate, alg: 'EdDSA', aud: AUD, nowSec: NOW });
  const e = t.throws(() => authenticator().authenticate(wpt02Request(wit, wpt)), { instanceOf: AuthnError });
  t.is(e?.code, 'wit.unknown_trust_domain');
});

test('wg example - a WIT re-minted under the "June 5" key with cnf.jwk.alg Ed25519 needs a WPT alg of Ed25519', (t) => {
  const claims = { ...wg.wit_claims, cnf: { jwk: { ...wg.wit_claims.cnf.jwk, alg: 'Ed25519' } } };
  const wit = signRaw(wg.wit_header, claims, issuerPrivate, 'ES256');
  // A WPT saying EdDSA does not string-equal Ed25519 (wpt-02 §3, RFC 9864 naming).
  const wpt = createWpt({ wit, privateKey: workloadPrivate, alg: 'EdDSA', aud: AUD, nowSec: NOW });
  const e = t.throws(() => authenticator().authenticate(wpt02Request(wit, wpt)), { instanceOf: AuthnError });
  t.is(e?.code, 'wpt.alg_mismatch');
  const good = createWpt({ wit, privateKey: workloadPrivate, alg: 'Ed25519', aud: AUD, nowSec: NOW });
  t.is(authenticator().authenticate(wpt02Request(wit, good)).caller, 'wimse://example.com/specific-workload');
});
