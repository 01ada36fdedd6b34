/**
 * The node-id rule for client certificates (src/identity/node-certificate.ts) and how
 * authenticateCaller combines a certificate with a node token. Real certificates; the TLS side
 * (a real node, real handshakes) is test/node/certificate-node.test.ts.
 */
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { nodeIdFromCertificate, nodeIdFromUris, uriPrefixProblem } from '../../src/identity/node-certificate.ts';
import { authenticateCaller, NodeTokenStore } from '../../src/identity/node-tokens.ts';
import { lapsed } from '../../src/caller-streams.ts';
import { makeNodePki } from '../helpers/node-pki.ts';

const PREFIX = 'spiffe://nodes.example.org/envoy/';

test('node certificate - exactly one URI SAN under the prefix, the rest a node id taken as written', (t) => {
  t.deepEqual(nodeIdFromUris([`${PREFIX}sidecar-a`], PREFIX), { ok: true, nodeId: 'sidecar-a' });
  // Other URI SANs (a workload identity, another prefix) are not looked at.
  t.deepEqual(nodeIdFromUris(['spiffe://example.org/ns/shop/sa/a', `${PREFIX}ns/a/pod%2D1`, 'spiffe://nodes.example.org/other/b'], PREFIX), { ok: true, nodeId: 'ns/a/pod%2D1' });
  t.deepEqual(nodeIdFromUris([], PREFIX), { ok: false, problem: 'no_node_uri', uris: [] });
  // Byte for byte: no case folding, and the prefix ends at its slash.
  t.deepEqual(nodeIdFromUris(['SPIFFE://nodes.example.org/envoy/a', 'spiffe://nodes.example.org/envoya', 'spiffe://nodes.example.org/envoy'], PREFIX), { ok: false, problem: 'no_node_uri', uris: [] });
  t.deepEqual(nodeIdFromUris([`${PREFIX}a`, `${PREFIX}b`], PREFIX), { ok: false, problem: 'several_node_uris', uris: [`${PREFIX}a`, `${PREFIX}b`] });
  t.deepEqual(nodeIdFromUris([`${PREFIX}a`, `${PREFIX}a`], PREFIX), { ok: false, problem: 'several_node_uris', uris: [`${PREFIX}a`, `${PREFIX}a`] });
  for (const bad of ['', 'x'.repeat(257), 'a b', 'caf\u00e9'])
    t.deepEqual(nodeIdFromUris([PREFIX + bad], PREFIX), { ok: false, problem: 'bad_node_id', uris: [PREFIX + bad] }, JSON.stringify(bad));
  t.deepEqual(nodeIdFromUris([PREFIX + 'x'.repeat(256)], PREFIX), { ok: true, nodeId: 'x'.repeat(256) });
});

test('node certificate - the prefix must be an absolute URI with a host, ending in /, in lower case', (t) => {
  for (const ok of [PREFIX, 'spiffe://nodes.example.org/', 'https://ca.example.org:8443/nodes/envoy/'])
    t.is(uriPrefixProblem(ok), undefined, ok);
  const problems = Object.fromEntries(
    ['spiffe://nodes.example.org/envoy', 'spiffe://nodes.example.org', 'envoy/', 'spiffe:///envoy/', 'spiffe://n.example/?a=/', 'spiffe://n.example/#/', 'SPIFFE://n.example/', 'spiffe://N.example/', 'spiffe://n.example/a b/', ''].map((p) => [
      p,
      uriPrefixProblem(p),
    ]),
  );
  t.regex(problems['spiffe://nodes.example.org/envoy']!, /the node id follows the last \/$/);
  for (const p of ['spiffe://nodes.example.org', 'envoy/', 'spiffe:///envoy/']) t.is(problems[p], 'must be an absolute URI with a host, ending in / (for example spiffe://nodes.example.org/envoy/)', p);
  for (const p of ['spiffe://n.example/?a=/', 'spiffe://n.example/#/']) t.regex(problems[p]!, /without query or fragment$/, p);
  for (const p of ['SPIFFE://n.example/', 'spiffe://N.example/']) t.regex(problems[p]!, /write the scheme and host in lower case/, p);
  for (const p of ['spiffe://n.example/a b/', '']) t.regex(problems[p]!, /printable ASCII characters$/, p);
  t.throws(() => nodeIdFromCertificate('spiffe://n.example/envoy'), { instanceOf: TypeError });
});

/** A client certificate as grpc-js hands it over: Node's PeerCertificate of a verified peer. */
function peerOf(certPem: string): PeerCertificate {
  const x = new X509Certificate(certPem);
  return { raw: x.raw, fingerprint256: x.fingerprint256, serialNumber: x.serialNumber, valid_from: x.validFrom, valid_to: x.validTo, subject: {}, issuer: {} } as unknown as PeerCertificate;
}

test('node certificate - authenticateCaller: a certificate alone, a token alone, and both together', async (t) => {
  const pki = await makeNodePki(mkdtempSync(join(tmpdir(), 'wimse-node-cert-')));
  const certA = peerOf((await pki.client([`${PREFIX}sidecar-a`, 'spiffe://example.org/ns/shop/sa/a'])).certPem);
  const noNode = peerOf((await pki.client(['spiffe://example.org/ops/wimsectl'])).certPem);
  const twoNodes = peerOf((await pki.client([`${PREFIX}sidecar-a`, `${PREFIX}sidecar-b`])).certPem);
  const tokens = new NodeTokenStore();
  const tokenA = tokens.issue('sidecar-a');
  const tokenB = tokens.issue('sidecar-b');
  const warnings: Array<[Record<string, unknown>, string]> = [];
  let now = Date.now();
  const opts = { tokens, nodeIdFromCertificate: nodeIdFromCertificate(PREFIX), now: () => now, logger: { warn: (o: object, m: string) => void warnings.push([o as Record<string, unknown>, m]) } };
  const who = (cert: PeerCertificate | undefined, token?: string) => authenticateCaller(token ? [`Bearer ${token}`] : [], cert, opts);

  t.deepEqual(who(certA), { ok: true, nodeId: 'sidecar-a', via: 'certificate', notAfter: Date.parse(certA.valid_to) });
  t.like(who(undefined, tokenA), { ok: true, nodeId: 'sidecar-a', via: 'token' });
  // Both naming one node: the token's call (its revocation and expiry rules apply).
  t.like(who(certA, tokenA), { ok: true, nodeId: 'sidecar-a', via: 'token' });
  // A certificate that claims no node only admitted the connection: the token decides.
  t.like(who(noNode, tokenA), { ok: true, nodeId: 'sidecar-a', via: 'token' });
  t.is(warnings.length, 0);
  // Refused: the credentials disagree, a certificate that claims a node invalidly, a bad token
  // (never rescued by a certificate), a certificate naming no node and no token.
  t.deepEqual(who(certA, tokenB), { ok: false, reason: 'credentials_disagree' });
  t.deepEqual(who(twoNodes, tokenA), { ok: false, reason: 'unknown_certificate' });
  t.deepEqual(who(certA, 'wnt_forged'), { ok: false, reason: 'bad_token' });
  t.deepEqual(who(noNode), { ok: false, reason: 'unknown_certificate' });
  t.deepEqual(who(twoNodes), { ok: false, reason: 'unknown_certificate' });
  t.deepEqual(who(undefined), { ok: false, reason: 'no_credentials' });
  // Without the mapping a certificate names nothing.
  t.deepEqual(authenticateCaller([], certA, { tokens }), { ok: false, reason: 'no_credentials' });
  t.like(authenticateCaller([`Bearer ${tokenB}`], certA, { tokens }), { ok: true, nodeId: 'sidecar-b', via: 'token' });
  // An unreadable certificate names no node.
  t.deepEqual(who({ ...certA, raw: Buffer.from('not DER') }), { ok: false, reason: 'unknown_certificate' });
  // A certificate authenticates until its notAfter (the connection outlives the handshake), and
  // not at all without a clock; a token sent with it is judged as a token.
  const notAfter = Date.parse(certA.valid_to);
  now = notAfter - 1;
  t.like(who(certA), { ok: true, via: 'certificate' });
  now = notAfter;
  t.deepEqual(who(certA), { ok: false, reason: 'expired_certificate' });
  t.like(who(certA, tokenA), { ok: true, nodeId: 'sidecar-a', via: 'token' });
  t.deepEqual(authenticateCaller([], certA, { ...opts, now: undefined }), { ok: false, reason: 'expired_certificate' });
  // An open stream of a certificate caller lapses at notAfter; staleness does not touch it.
  const caller = { ok: true, nodeId: 'sidecar-a', via: 'certificate', notAfter } as const;
  const stale = () => 'cluster state stale: test';
  now = notAfter - 1;
  t.is(lapsed(caller, opts, stale), undefined);
  now = notAfter;
  t.like(lapsed(caller, opts, stale), { why: 'expired', details: 'node credentials expired' });
  t.like(lapsed(caller, { ...opts, now: undefined }, undefined), { why: 'expired' });

  // Every refusal that involved the certificate is logged at warn: what identifies the
  // certificate and the problem, never the certificate itself or a token.
  t.deepEqual(
    warnings.map(([o, m]) => [m, o.problem ?? (o.certificateNode ? `${String(o.certificateNode)}/${String(o.tokenNode)}` : undefined)]),
    [
      ['call refused: the client certificate and the node token name different nodes', 'sidecar-a/sidecar-b'],
      ['client certificate refused: it names no node validly; the node token is not used', 'several_node_uris'],
      ['client certificate refused: it names no node', 'no_node_uri'],
      ['client certificate refused: it names no node', 'several_node_uris'],
      ['client certificate refused: it names no node', 'unreadable'],
      ['client certificate refused: it has expired', undefined],
      ['client certificate refused: it has expired', undefined],
    ],
  );
  t.deepEqual(warnings[1]![0].uris, [`${PREFIX}sidecar-a`, `${PREFIX}sidecar-b`]);
  t.is(warnings[0]![0].fingerprint256, certA.fingerprint256);
  const logged = JSON.stringify(warnings);
  t.false(logged.includes(tokenA.slice(4)) || logged.includes(tokenB.slice(4)), 'no token');
  t.false(logged.includes(certA.raw.toString('base64').slice(0, 40)), 'no certificate');
});
