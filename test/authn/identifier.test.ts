/**
 * Adversarial identifier cases as they reach authentication: one spelling per workload,
 * whole-URI identity, trust domains bound to their own anchors. Through `authenticate`, for WIT
 * `sub` and for the mTLS URI SAN alike.
 */
import test from 'ava';
import { Authenticator, AuthnError, type AuthnRequest } from '../../src/authn/index.ts';
import { ManualClock } from '../../src/identity/clock.ts';
import { AUD, NOW, bundleOf, bundleSet, issuer, keyPair, mintWitRaw, request, wptRequest } from './helpers.ts';
import { leaf, rootCa, type Ca } from './pki.ts';

const iss = issuer('example.org');
const workload = keyPair('ES256');
let ca: Ca;
let auth: Authenticator;

test.before(async () => {
  ca = await rootCa('example.org root', NOW * 1000);
  auth = new Authenticator({ bundles: bundleSet(bundleOf('example.org', [iss.witKey], [ca.der])), clock: new ManualClock(NOW * 1000), audiences: [AUD] });
});

const witFor = (sub: string): AuthnRequest => wptRequest(mintWitRaw(iss, { workload, sub }), workload);
const certFor = async (uri: string): Promise<AuthnRequest> => request({ peer: { certificateChainPem: await leaf(ca, NOW * 1000, { uris: [uri] }) } });

function code(req: AuthnRequest): string {
  try {
    auth.authenticate(req);
    return 'authenticated';
  } catch (e) {
    return (e as AuthnError).code;
  }
}

test('identifier - /service/%70ayment (escaped unreserved) is not a second spelling of /service/payment', async (t) => {
  t.is(code(witFor('wimse://example.org/service/%70ayment')), 'wit.bad_sub');
  t.is(code(await certFor('wimse://example.org/service/%70ayment')), 'mtls.bad_identifier');
  t.is(auth.authenticate(witFor('wimse://example.org/service/payment')).caller, 'wimse://example.org/service/payment');
});

test('identifier - /pay/../admin is rejected, not resolved', async (t) => {
  t.is(code(witFor('wimse://example.org/pay/../admin')), 'wit.bad_sub');
  t.is(code(await certFor('spiffe://example.org/pay/../admin')), 'mtls.bad_identifier');
});

test('identifier - /pay/%2e%2e/admin and /pay/%2E%2E/admin are rejected', async (t) => {
  t.is(code(witFor('wimse://example.org/pay/%2e%2e/admin')), 'wit.bad_sub');
  t.is(code(witFor('wimse://example.org/pay/%2E%2E/admin')), 'wit.bad_sub');
  t.is(code(await certFor('wimse://example.org/pay/%2E%2E/admin')), 'mtls.bad_identifier');
});

test('identifier - the caller is the whole URI: /payroll-attacker is not /pay', (t) => {
  t.is(auth.authenticate(witFor('spiffe://example.org/payroll-attacker')).caller, 'spiffe://example.org/payroll-attacker');
});

test('identifier - upper-case trust domain or scheme is not a second spelling', async (t) => {
  t.is(code(witFor('spiffe://EXAMPLE.org/x')), 'wit.bad_sub');
  t.is(code(witFor('SPIFFE://example.org/x')), 'wit.bad_sub');
  t.is(code(await certFor('spiffe://Example.org/x')), 'mtls.bad_identifier');
});

test('identifier - the same path under another authority needs that authority\'s anchors', async (t) => {
  // example.org's issuer and CA cannot speak for other.example, configured or not.
  t.is(code(witFor('spiffe://other.example/service/payment')), 'wit.unknown_trust_domain');
  const other = issuer('other.example');
  const both = new Authenticator({
    bundles: bundleSet(bundleOf('example.org', [iss.witKey], [ca.der]), bundleOf('other.example', [other.witKey])),
    clock: new ManualClock(NOW * 1000),
    audiences: [AUD],
  });
  const err = t.throws(() => both.authenticate(witFor('spiffe://other.example/service/payment')), { instanceOf: AuthnError });
  t.is(err?.code, 'wit.unknown_kid');
  const pem = await leaf(ca, NOW * 1000, { uris: ['spiffe://other.example/service/payment'] });
  const certErr = t.throws(() => both.authenticate(request({ peer: { certificateChainPem: pem } })), { instanceOf: AuthnError });
  t.is(certErr?.code, 'mtls.wrong_trust_domain');
});

test('identifier - the same authority under another scheme is another origin', (t) => {
  const spiffeOnly = new Authenticator({
    bundles: bundleSet(bundleOf('example.org', [iss.witKey])),
    clock: new ManualClock(NOW * 1000),
    audiences: [AUD],
    trustDomains: { 'example.org': { schemes: ['spiffe'] } },
  });
  const err = t.throws(() => spiffeOnly.authenticate(witFor('wimse://example.org/service/payment')), { instanceOf: AuthnError });
  t.is(err?.code, 'wit.sub_scheme');
  t.is(spiffeOnly.authenticate(witFor('spiffe://example.org/service/payment')).caller, 'spiffe://example.org/service/payment');
});

test('identifier - an IP address as trust domain, or a port, is rejected', async (t) => {
  t.is(code(witFor('spiffe://10.0.0.1/x')), 'wit.bad_sub');
  t.is(code(await certFor('spiffe://example.org:443/x')), 'mtls.bad_identifier');
});
