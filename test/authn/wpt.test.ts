/**
 * WPT (wpt-02) verification through `authenticate`: every adversarial WPT case.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { AuthnError, ReplayCache, createWpt, tokenHash, type AuthnRequest } from '../../src/authn/index.ts';
import { AUD, NOW, env, keyPair, mintWitRaw, request, signRaw, type Env, type KeyPair } from './helpers.ts';

function rejects(t: ExecutionContext, e: Env, req: AuthnRequest, code: string): AuthnError {
  const err = t.throws(() => e.auth.authenticate(req), { instanceOf: AuthnError })!;
  t.is(err.code, code);
  t.is(err.status, 401);
  t.is(err.challenge, 'WPT');
  return err;
}

interface WptSpec {
  claims?: Record<string, unknown>;
  header?: Record<string, unknown>;
  omit?: string[];
  signer?: KeyPair;
}

/** A WPT for `wit` signed by the workload, with overrides. */
function wpt(e: Env, wit: string, spec: WptSpec = {}): string {
  const claims: Record<string, unknown> = {
    aud: AUD,
    exp: NOW + 60,
    jti: randomBytes(16).toString('base64url'),
    wth: tokenHash(wit),
    ...spec.claims,
  };
  for (const k of spec.omit ?? []) delete claims[k];
  const signer = spec.signer ?? e.workload;
  return signRaw({ alg: e.workload.alg, typ: 'wpt+jwt', ...spec.header }, claims, signer.privateKey, signer.alg);
}

function setup(opts: Parameters<typeof env>[0] = {}) {
  const e = env(opts);
  const wit = mintWitRaw(e.iss, { workload: e.workload });
  const req = (token: string, extra: [string, string][] = [], scheme = 'WPT'): AuthnRequest =>
    request({ headers: [['Workload-Identity-Token', wit], ['Authorization', `${scheme} ${token}`], ...extra] });
  return { e, wit, req };
}

test('wpt - a good WPT authenticates and reports its claims', (t) => {
  const { e, wit, req } = setup();
  const r = e.auth.authenticate(req(wpt(e, wit, { claims: { jti: 'j1' } })));
  t.is(r.via, 'wpt');
  t.is(r.wpt?.jti, 'j1');
  t.is(r.wpt?.aud, AUD);
  t.deepEqual(r.wpt?.boundFields, []);
});

test('wpt - alg different from cnf.jwk.alg is rejected', (t) => {
  const { e, wit, req } = setup();
  rejects(t, e, req(wpt(e, wit, { header: { alg: 'ES384' } })), 'wpt.alg_mismatch');
});

test('wpt - alg EdDSA against a cnf.jwk.alg of Ed25519 is rejected (string equality)', (t) => {
  const e = env({}, 'ES256', 'Ed25519');
  const wit = mintWitRaw(e.iss, { workload: e.workload });
  const token = signRaw({ alg: 'EdDSA', typ: 'wpt+jwt' }, { aud: AUD, exp: NOW + 60, jti: 'x', wth: tokenHash(wit) }, e.workload.privateKey, 'EdDSA');
  rejects(t, e, request({ headers: [['Workload-Identity-Token', wit], ['Authorization', `WPT ${token}`]] }), 'wpt.alg_mismatch');
});

test('wpt - typ wrong (a WIT or a plain JWT) is rejected', (t) => {
  const { e, wit, req } = setup();
  rejects(t, e, req(wpt(e, wit, { header: { typ: 'wit+jwt' } })), 'wpt.typ');
  rejects(t, e, req(wpt(e, wit, { header: { typ: 'jwt' } })), 'wpt.typ');
});

test('wpt - typ missing is rejected', (t) => {
  const { e, wit, req } = setup();
  rejects(t, e, req(wpt(e, wit, { header: { typ: undefined } })), 'wpt.typ');
});

test('wpt - typ application/wpt+jwt in any case is accepted', (t) => {
  const { e, wit, req } = setup();
  t.is(e.auth.authenticate(req(wpt(e, wit, { header: { typ: 'application/WPT+jwt' } }))).via, 'wpt');
});

test('wpt - a signature by a key other than cnf.jwk is rejected', (t) => {
  const { e, wit, req } = setup();
  rejects(t, e, req(wpt(e, wit, { signer: keyPair('ES256') })), 'wpt.bad_signature');
});

test('wpt - signature before claims: wrong key and expired reports bad signature', (t) => {
  const { e, wit, req } = setup();
  rejects(t, e, req(wpt(e, wit, { signer: keyPair('ES256'), claims: { exp: NOW - 3600 } })), 'wpt.bad_signature');
});

test('wpt - aud for another service is rejected', (t) => {
  const { e, wit, req } = setup();
  rejects(t, e, req(wpt(e, wit, { claims: { aud: 'https://svc-c.example.org/api' } })), 'wpt.aud_mismatch');
});

test('wpt - aud matching only Host or X-Forwarded-Host is rejected', (t) => {
  const { e, wit, req } = setup();
  const aud = 'https://attacker-chosen.example/api';
  const extra: [string, string][] = [['Host', 'attacker-chosen.example'], ['X-Forwarded-Host', 'attacker-chosen.example']];
  rejects(t, e, req(wpt(e, wit, { claims: { aud } }), extra), 'wpt.aud_mismatch');
});

test('wpt - aud is checked against the per-call audiences, not the defaults', (t) => {
  const { e, wit, req } = setup();
  const r = req(wpt(e, wit, { claims: { aud: 'https://route-specific.example/x' } }));
  t.is(e.auth.authenticate(r, { audiences: ['https://route-specific.example/x'] }).via, 'wpt');
  const err = t.throws(() => e.auth.authenticate(req(wpt(e, wit)), { audiences: ['https://route-specific.example/x'] }), { instanceOf: AuthnError });
  t.is(err?.code, 'wpt.aud_mismatch');
});

test('wpt - aud missing is rejected; an aud array with one match is accepted', (t) => {
  const { e, wit, req } = setup();
  rejects(t, e, req(wpt(e, wit, { omit: ['aud'] })), 'wpt.aud_missing');
  t.is(e.auth.authenticate(req(wpt(e, wit, { claims: { aud: ['https://x.example', AUD] } }))).via, 'wpt');
});

test('wpt - exp missing is rejected', (t) => {
  const { e, wit, req } = setup();
  rejects(t, e, req(wpt(e, wit, { omit: ['exp'] })), 'wpt.exp_missing');
});

test('wpt - exp in the past beyond skew is rejected', (t) => {
  const { e, wit, req } = setup();
  rejects(t, e, req(wpt(e, wit, { claims: { exp: NOW - 61 } })), 'wpt.expired');
});

test('wpt - exp far in the future is rejected', (t) => {
  const { e, wit, req } = setup();
  rejects(t, e, req(wpt(e, wit, { claims: { exp: NOW + 3600 } })), 'wpt.exp_too_far');
  t.is(e.auth.authenticate(req(wpt(e, wit, { claims: { exp: NOW + 300 } }))).via, 'wpt');
});

test('wpt - a replayed jti is rejected', (t) => {
  const { e, wit, req } = setup();
  const token = wpt(e, wit, { claims: { jti: 'once' } });
  t.is(e.auth.authenticate(req(token)).via, 'wpt');
  rejects(t, e, req(token), 'wpt.replay');
});

test('wpt - jti replay is scoped per sender', (t) => {
  const replay = new ReplayCache();
  const a = env({ replay });
  const witA = mintWitRaw(a.iss, { workload: a.workload, sub: 'spiffe://example.org/a' });
  const witB = mintWitRaw(a.iss, { workload: a.workload, sub: 'spiffe://example.org/b' });
  const mk = (wit: string) => request({ headers: [['Workload-Identity-Token', wit], ['Authorization', `WPT ${wpt(a, wit, { claims: { jti: 'same' } })}`]] });
  t.is(a.auth.authenticate(mk(witA)).caller, 'spiffe://example.org/a');
  t.is(a.auth.authenticate(mk(witB)).caller, 'spiffe://example.org/b');
  t.is(replay.size, 2);
});

test('wpt - jti missing is rejected', (t) => {
  const { e, wit, req } = setup();
  rejects(t, e, req(wpt(e, wit, { omit: ['jti'] })), 'wpt.jti_missing');
});

test('wpt - a rejected WPT does not consume its jti', (t) => {
  const { e, wit, req } = setup();
  const token = wpt(e, wit, { claims: { jti: 'keep', tth: tokenHash('txn-1') } });
  rejects(t, e, req(token, [['Txn-Token', 'txn-2']]), 'wpt.tth_mismatch');
  t.is(e.auth.authenticate(req(token, [['Txn-Token', 'txn-1']])).via, 'wpt');
});

test('wpt - wth for another WIT is rejected, wth missing is rejected', (t) => {
  const { e, wit, req } = setup();
  rejects(t, e, req(wpt(e, wit, { claims: { wth: tokenHash(`${wit}x`) } })), 'wpt.wth_mismatch');
  rejects(t, e, req(wpt(e, wit, { omit: ['wth'] })), 'wpt.wth_missing');
});

test('wpt - tth missing while a Txn-Token is present is rejected', (t) => {
  const { e, wit, req } = setup();
  rejects(t, e, req(wpt(e, wit), [['Txn-Token', 'eyJ.txn.token']]), 'wpt.tth_missing');
});

test('wpt - tth present without a Txn-Token is rejected', (t) => {
  const { e, wit, req } = setup();
  rejects(t, e, req(wpt(e, wit, { claims: { tth: tokenHash('eyJ.txn.token') } })), 'wpt.tth_unexpected');
});

test('wpt - a matching tth binds the Txn-Token', (t) => {
  const { e, wit, req } = setup();
  const r = e.auth.authenticate(req(wpt(e, wit, { claims: { tth: tokenHash('eyJ.txn.token') } }), [['Txn-Token', 'eyJ.txn.token']]));
  t.deepEqual(r.wpt?.boundFields, ['txn-token']);
});

test('wpt - an oth entry naming an absent header is rejected', (t) => {
  const { e, wit, req } = setup();
  rejects(t, e, req(wpt(e, wit, { claims: { oth: { 'x-user-token': tokenHash('u') } } })), 'wpt.oth_unknown');
});

test('wpt - an oth entry not understood is rejected', (t) => {
  const { e, wit, req } = setup({ othHeaders: ['x-user-token'] });
  rejects(t, e, req(wpt(e, wit, { claims: { oth: { 'x-other': tokenHash('o') } } }), [['X-Other', 'o']]), 'wpt.oth_unknown');
  rejects(t, e, req(wpt(e, wit, { claims: { oth: { 'X-User-Token': tokenHash('u') } } }), [['X-User-Token', 'u']]), 'wpt.oth_unknown');
  rejects(t, e, req(wpt(e, wit, { claims: { oth: ['x-user-token'] } }), [['X-User-Token', 'u']]), 'wpt.oth_unknown');
});

test('wpt - an oth hash that does not match its header is rejected', (t) => {
  const { e, wit, req } = setup();
  rejects(t, e, req(wpt(e, wit, { claims: { oth: { 'x-user-token': tokenHash('u') } } }), [['X-User-Token', 'v']]), 'wpt.oth_mismatch');
});

test('wpt - only tokens covered by tth/oth are reported as bound (others must not inform authorization)', (t) => {
  const { e, wit, req } = setup();
  const r = e.auth.authenticate(
    req(wpt(e, wit, { claims: { oth: { 'x-user-token': tokenHash('u') } } }), [['X-User-Token', ' u '], ['X-Unbound-Token', 'z']]),
  );
  t.deepEqual(r.wpt?.boundFields, ['x-user-token']);
});

test('wpt - two Authorization fields are rejected', (t) => {
  const { e, wit } = setup();
  const token = wpt(e, wit);
  const r = request({ headers: [['Workload-Identity-Token', wit], ['Authorization', `WPT ${token}`], ['Authorization', 'Bearer abc']] });
  rejects(t, e, r, 'wpt.duplicate_authorization');
  const joined = request({ headers: [['Workload-Identity-Token', wit], ['Authorization', `Bearer abc, WPT ${token}`]] });
  rejects(t, e, joined, 'wpt.duplicate_authorization');
});

test('wpt - the scheme in lower case is accepted', (t) => {
  const { e, wit, req } = setup();
  t.is(e.auth.authenticate(req(wpt(e, wit), [], 'wpt')).via, 'wpt');
});

test('wpt - the legacy Workload-Proof-Token header is rejected', (t) => {
  const { e, wit } = setup();
  rejects(t, e, request({ headers: [['Workload-Identity-Token', wit], ['Workload-Proof-Token', wpt(e, wit)]] }), 'wpt.legacy_header');
});

test('wpt - a WPT without a WIT is rejected', (t) => {
  const { e, wit } = setup();
  const err = t.throws(() => e.auth.authenticate(request({ headers: [['Authorization', `WPT ${wpt(e, wit)}`]] })), { instanceOf: AuthnError });
  t.is(err?.code, 'wit.missing');
  t.is(err?.status, 401);
});

test('wpt - syntax: oversize, duplicate members, crit, jwk header are rejected', (t) => {
  const { e, wit, req } = setup();
  rejects(t, e, req(wpt(e, wit, { claims: { pad: 'x'.repeat(5000) } })), 'wpt.too_large');
  const dup = signRaw({ alg: 'ES256', typ: 'wpt+jwt' }, `{"aud":"${AUD}","aud":"x","exp":${NOW + 60},"jti":"d","wth":"${tokenHash(wit)}"}`, e.workload.privateKey, 'ES256');
  rejects(t, e, req(dup), 'wpt.duplicate_member');
  rejects(t, e, req(wpt(e, wit, { header: { crit: ['x'] } })), 'wpt.crit');
  rejects(t, e, req(wpt(e, wit, { header: { jwk: e.workload.publicJwk } })), 'wpt.header_param');
  rejects(t, e, req('not-a-jwt'), 'wpt.malformed');
  rejects(t, e, req(''), 'wpt.malformed');
});

test('wpt - createWpt output verifies, including tth and oth', (t) => {
  const { e, wit } = setup();
  // Reuse createWpt through the helper path that real clients use.
  const r = e.auth.authenticate(
    request({
      headers: [
        ['Workload-Identity-Token', wit],
        ['Authorization', `WPT ${createWptFor(e, wit)}`],
        ['Txn-Token', 'txn'],
        ['X-User-Token', 'user'],
      ],
    }),
  );
  t.deepEqual(r.wpt?.boundFields, ['txn-token', 'x-user-token']);
});

const createWptFor = (e: Env, wit: string): string =>
  createWpt({ wit, privateKey: e.workload.privateKey, alg: e.workload.alg, aud: AUD, nowSec: NOW, txnToken: 'txn', oth: { 'X-User-Token': 'user' } });

test('wpt - an overlong jti is rejected before it reaches the replay cache', (t) => {
  const replay = new ReplayCache();
  const { e, wit, req } = setup({ replay });
  rejects(t, e, req(wpt(e, wit, { claims: { jti: 'j'.repeat(257) } })), 'wpt.malformed');
  t.is(replay.size, 0);
});
