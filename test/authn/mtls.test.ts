/**
 * mTLS peers through `authenticate`: the adversarial mTLS cases, with chains generated
 * here (two trust domains, intermediates, cross-domain issuance).
 */
import test, { type ExecutionContext } from 'ava';
import { Authenticator, AuthnError, verifyMtlsPeer, type AuthnRequest, type TransportPeer } from '../../src/authn/index.ts';
import { ManualClock } from '../../src/identity/clock.ts';
import { AUD, NOW, bundleOf, bundleSet, issuer, keyPair, mintWitRaw, request, wptRequest } from './helpers.ts';
import { EKU, KU, P384, intermediateCa, leaf, nameConstraints, rootCa, unknownExtension, type Ca } from './pki.ts';

const NOW_MS = NOW * 1000;
const CLIENT = 'spiffe://example.org/ns/default/sa/client';

let caA: Ca; // example.org
let caB: Ca; // other.example
let interA: Ca;
let auth: Authenticator;
const witIssuer = issuer('example.org');

test.before(async () => {
  caA = await rootCa('example.org root', NOW_MS);
  caB = await rootCa('other.example root', NOW_MS);
  interA = await intermediateCa(caA, 'example.org intermediate', NOW_MS);
  auth = new Authenticator({
    bundles: bundleSet(bundleOf('example.org', [witIssuer.witKey], [caA.der]), bundleOf('other.example', [], [caB.der])),
    clock: new ManualClock(NOW_MS),
    audiences: [AUD],
  });
});

const peerReq = (peer: TransportPeer): AuthnRequest => request({ peer });

function rejects(t: ExecutionContext, req: AuthnRequest, code: string): void {
  const err = t.throws(() => auth.authenticate(req), { instanceOf: AuthnError });
  t.is(err?.code, code);
  t.is(err?.status, 401);
  t.is(err?.challenge, undefined);
}

test('mtls - a leaf issued by the trust domain root authenticates the caller', async (t) => {
  const r = auth.authenticate(peerReq({ certificateChainPem: await leaf(caA, NOW_MS) }));
  t.deepEqual(r, { caller: CLIENT, via: 'mtls' });
});

test('mtls - a leaf under an intermediate, chain presented, authenticates', async (t) => {
  const chain = (await leaf(interA, NOW_MS)) + interA.pem;
  t.is(auth.authenticate(peerReq({ certificateChainPem: chain })).caller, CLIENT);
});

test('mtls - a leaf under an intermediate that is not presented is untrusted', async (t) => {
  rejects(t, peerReq({ certificateChainPem: await leaf(interA, NOW_MS) }), 'mtls.untrusted');
});

test('mtls - a CA of trust domain A issuing a certificate for trust domain B is rejected', async (t) => {
  rejects(t, peerReq({ certificateChainPem: await leaf(caA, NOW_MS, { uris: ['spiffe://other.example/payments'] }) }), 'mtls.wrong_trust_domain');
});

test('mtls - a certificate from an unknown CA is untrusted', async (t) => {
  const rogue = await rootCa('example.org root', NOW_MS); // same name, different key
  rejects(t, peerReq({ certificateChainPem: await leaf(rogue, NOW_MS) }), 'mtls.untrusted');
});

test('mtls - a CA of the other algorithm with the same name is untrusted', async (t) => {
  const rogue = await rootCa('example.org root', NOW_MS, P384);
  rejects(t, peerReq({ certificateChainPem: await leaf(rogue, NOW_MS) }), 'mtls.untrusted');
});

test('mtls - an expired leaf is rejected', async (t) => {
  rejects(t, peerReq({ certificateChainPem: await leaf(caA, NOW_MS, { notBefore: NOW_MS - 7_200_000, notAfter: NOW_MS - 1000 }) }), 'mtls.expired');
});

test('mtls - a leaf not yet valid is rejected', async (t) => {
  rejects(t, peerReq({ certificateChainPem: await leaf(caA, NOW_MS, { notBefore: NOW_MS + 60_000, notAfter: NOW_MS + 7_200_000 }) }), 'mtls.not_yet_valid');
});

test('mtls - a leaf without a URI SAN is rejected', async (t) => {
  rejects(t, peerReq({ certificateChainPem: await leaf(caA, NOW_MS, { uris: [] }) }), 'mtls.no_uri_san');
});

test('mtls - a leaf with two URI SANs is rejected', async (t) => {
  rejects(t, peerReq({ certificateChainPem: await leaf(caA, NOW_MS, { uris: [CLIENT, 'spiffe://example.org/admin'] }) }), 'mtls.multiple_uri_sans');
});

test('mtls - a leaf that is a CA is rejected', async (t) => {
  rejects(t, peerReq({ certificateChainPem: await leaf(caA, NOW_MS, { ca: true, keyUsage: KU.digitalSignature | KU.keyCertSign }) }), 'mtls.leaf_is_ca');
});

test('mtls - a leaf with keyCertSign, or without keyUsage, is rejected', async (t) => {
  rejects(t, peerReq({ certificateChainPem: await leaf(caA, NOW_MS, { keyUsage: KU.digitalSignature | KU.keyCertSign }) }), 'mtls.bad_key_usage');
  rejects(t, peerReq({ certificateChainPem: await leaf(caA, NOW_MS, { keyUsage: null }) }), 'mtls.bad_key_usage');
});

test('mtls - an EKU without clientAuth is rejected; no EKU at all is accepted', async (t) => {
  rejects(t, peerReq({ certificateChainPem: await leaf(caA, NOW_MS, { eku: [EKU.serverAuth] }) }), 'mtls.bad_extended_key_usage');
  t.is(auth.authenticate(peerReq({ certificateChainPem: await leaf(caA, NOW_MS, { eku: null }) })).caller, CLIENT);
});

test('mtls - a URI SAN that is not a workload identifier is rejected', async (t) => {
  rejects(t, peerReq({ certificateChainPem: await leaf(caA, NOW_MS, { uris: ['https://example.org/x'] }) }), 'mtls.bad_identifier');
});

test('mtls - a URI SAN in an unconfigured trust domain is rejected', async (t) => {
  rejects(t, peerReq({ certificateChainPem: await leaf(caA, NOW_MS, { uris: ['spiffe://nowhere.example/x'] }) }), 'mtls.unknown_trust_domain');
});

test('mtls - something that is not a certificate is malformed', (t) => {
  rejects(t, peerReq({ certificateChainPem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }), 'mtls.malformed');
  rejects(t, peerReq({ certificateChainPem: 'hello' }), 'mtls.malformed');
});

test('mtls - an empty peer is no credential; verifyMtlsPeer reports no_certificate', (t) => {
  const err = t.throws(() => auth.authenticate(peerReq({})), { instanceOf: AuthnError });
  t.is(err?.code, 'request.no_credentials');
  const direct = t.throws(() => verifyMtlsPeer({}, new Map(), NOW), { instanceOf: AuthnError });
  t.is(direct?.code, 'mtls.no_certificate');
});

test('mtls - a proxy-verified principal alone is accepted when it names a configured trust domain', (t) => {
  t.deepEqual(auth.authenticate(peerReq({ verifiedPrincipal: CLIENT })), { caller: CLIENT, via: 'mtls' });
  rejects(t, peerReq({ verifiedPrincipal: 'spiffe://nowhere.example/x' }), 'mtls.unknown_trust_domain');
  rejects(t, peerReq({ verifiedPrincipal: 'spiffe://example.org/a/../b' }), 'mtls.bad_identifier');
});

test('mtls - a principal that disagrees with the certificate is rejected', async (t) => {
  rejects(t, peerReq({ certificateChainPem: await leaf(caA, NOW_MS), verifiedPrincipal: 'spiffe://example.org/other' }), 'mtls.principal_mismatch');
});

test('mtls - layered: WIT+WPT over mTLS names the WIT caller and the transport peer', async (t) => {
  const workload = keyPair('ES256');
  const wit = mintWitRaw(witIssuer, { workload, sub: 'spiffe://example.org/app' });
  const base = wptRequest(wit, workload);
  const r = auth.authenticate({ ...base, peer: { certificateChainPem: await leaf(caA, NOW_MS, { uris: ['spiffe://example.org/mesh/proxy'] }) } });
  t.is(r.caller, 'spiffe://example.org/app');
  t.is(r.via, 'wpt');
  t.is(r.transportPeer, 'spiffe://example.org/mesh/proxy');
});

test('mtls - layered: an invalid transport peer fails the request even with a good WPT', async (t) => {
  const workload = keyPair('ES256');
  const wit = mintWitRaw(witIssuer, { workload });
  const base = wptRequest(wit, workload);
  rejects(t, { ...base, peer: { certificateChainPem: await leaf(caB, NOW_MS, { uris: [CLIENT] }) } }, 'mtls.wrong_trust_domain');
});

test('mtls - no credentials at all is 401 request.no_credentials', (t) => {
  const err = t.throws(() => auth.authenticate(request()), { instanceOf: AuthnError });
  t.is(err?.code, 'request.no_credentials');
  t.is(err?.status, 401);
});

test('mtls - a chain with too many certificates is malformed before parsing', (t) => {
  const block = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
  rejects(t, peerReq({ certificateChainPem: block.repeat(9) }), 'mtls.malformed');
  rejects(t, peerReq({ certificateChainPem: '-----BEGIN CERTIFICATE-----'.repeat(2000) }), 'mtls.malformed');
});

test('mtls - the root itself at the end of the presented chain is accepted', async (t) => {
  const chain = (await leaf(interA, NOW_MS)) + interA.pem + caA.pem;
  t.is(auth.authenticate(peerReq({ certificateChainPem: chain })).caller, CLIENT);
});

test('mtls - layered: a proxy-verified principal is reported as the transport peer', async (t) => {
  const workload = keyPair('ES256');
  const wit = mintWitRaw(witIssuer, { workload, sub: 'spiffe://example.org/app' });
  const r = auth.authenticate({ ...wptRequest(wit, workload), peer: { verifiedPrincipal: 'spiffe://example.org/mesh/proxy' } });
  t.is(r.caller, 'spiffe://example.org/app');
  t.is(r.transportPeer, 'spiffe://example.org/mesh/proxy');
});

// ---- path constraints (RFC 5280 §6.1.4) and critical extensions (§4.2) ----------------------

/** An Authenticator whose example.org bundle holds `root` alone. */
const authUnder = (root: Ca): Authenticator =>
  new Authenticator({ bundles: bundleSet(bundleOf('example.org', [], [root.der])), clock: new ManualClock(NOW_MS), audiences: [AUD] });

function rejectsUnder(t: ExecutionContext, a: Authenticator, chain: string, code: string): void {
  const err = t.throws(() => a.authenticate(peerReq({ certificateChainPem: chain })), { instanceOf: AuthnError });
  t.is(err?.code, code);
  t.is(err?.status, 401);
}

test('mtls - path length: an intermediate under a root with pathLen 0 is refused, a leaf straight under it is not', async (t) => {
  const root = await rootCa('example.org root pathLen 0', NOW_MS, undefined, { pathLen: 0 });
  const inter = await intermediateCa(root, 'intermediate', NOW_MS);
  const a = authUnder(root);
  rejectsUnder(t, a, (await leaf(inter, NOW_MS)) + inter.pem, 'mtls.path_length');
  rejectsUnder(t, a, (await leaf(inter, NOW_MS)) + inter.pem + root.pem, 'mtls.path_length');
  t.is(a.authenticate(peerReq({ certificateChainPem: await leaf(root, NOW_MS) })).caller, CLIENT);
});

test('mtls - path length: an intermediate with pathLen 0 may not issue another CA', async (t) => {
  const inter0 = await intermediateCa(caA, 'intermediate pathLen 0', NOW_MS);
  const inter1 = await intermediateCa(inter0, 'second intermediate', NOW_MS, { pathLen: null });
  rejects(t, peerReq({ certificateChainPem: (await leaf(inter1, NOW_MS)) + inter1.pem + inter0.pem }), 'mtls.path_length');
  // With room for one more CA below it, the same shape is accepted.
  const roomy = await intermediateCa(caA, 'intermediate pathLen 1', NOW_MS, { pathLen: 1 });
  const below = await intermediateCa(roomy, 'below', NOW_MS);
  t.is(auth.authenticate(peerReq({ certificateChainPem: (await leaf(below, NOW_MS)) + below.pem + roomy.pem })).caller, CLIENT);
});

test('mtls - an issuer whose keyUsage lacks keyCertSign is refused (a CA flag alone is not enough)', async (t) => {
  const inter = await intermediateCa(caA, 'intermediate without keyCertSign', NOW_MS, { keyUsage: KU.digitalSignature | KU.cRLSign });
  // OpenSSL's issuer check (X509_check_issued) refuses the link, so the chain is broken.
  rejects(t, peerReq({ certificateChainPem: (await leaf(inter, NOW_MS)) + inter.pem }), 'mtls.untrusted');
  const root = await rootCa('root without keyCertSign', NOW_MS, undefined, { keyUsage: KU.cRLSign });
  rejectsUnder(t, authUnder(root), await leaf(root, NOW_MS), 'mtls.untrusted');
  // keyUsage absent on a CA puts no limit on it (RFC 5280 §4.2.1.3).
  const bare = await intermediateCa(caA, 'intermediate without keyUsage', NOW_MS, { keyUsage: null });
  t.is(auth.authenticate(peerReq({ certificateChainPem: (await leaf(bare, NOW_MS)) + bare.pem })).caller, CLIENT);
});

test('mtls - name constraints are not evaluated, so a chain carrying them is refused, not trusted blindly', async (t) => {
  const constrained = await intermediateCa(caA, 'constrained intermediate', NOW_MS, { extensions: [nameConstraints('example.org')] });
  rejects(t, peerReq({ certificateChainPem: (await leaf(constrained, NOW_MS)) + constrained.pem }), 'mtls.unsupported_critical_extension');
  const constrainedRoot = await rootCa('constrained root', NOW_MS, undefined, { extensions: [nameConstraints('example.org')] });
  rejectsUnder(t, authUnder(constrainedRoot), await leaf(constrainedRoot, NOW_MS), 'mtls.unsupported_critical_extension');
});

test('mtls - an unknown critical extension on the leaf is refused; the same extension non-critical is ignored', async (t) => {
  rejects(t, peerReq({ certificateChainPem: await leaf(caA, NOW_MS, { extensions: [unknownExtension(true)] }) }), 'mtls.unsupported_critical_extension');
  t.is(auth.authenticate(peerReq({ certificateChainPem: await leaf(caA, NOW_MS, { extensions: [unknownExtension(false)] }) })).caller, CLIENT);
});
