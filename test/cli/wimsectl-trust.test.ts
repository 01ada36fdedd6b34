import test from 'ava';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { decodeJwt } from 'jose';
import { startAdminNode, newDir, writeFile } from '../admin/helpers.ts';
import { against } from '../admin/cli.ts';
import { parseSpiffeBundle, parseSpiffeBundleMap, pemToDers } from '../../src/identity/trust-bundle.ts';

test('wimsectl bundle - show, status, export as SPIFFE map, one trust domain and PEM', async (t) => {
  const n = await startAdminNode(t, newDir());
  const w = against(n);
  const [show, status, statusJson, map, one, pem, unknown] = await Promise.all([
    w(['bundle', 'show']),
    w(['bundle', 'status']),
    w(['bundle', 'status', '-o', 'json']),
    w(['bundle', 'export']),
    w(['bundle', 'export', '--trust-domain', 'example.org']),
    w(['bundle', 'export', '--format', 'pem', '--trust-domain', 'example.org']),
    w(['bundle', 'export', '--trust-domain', 'elsewhere.example']),
  ]);
  const wit = n.node.ca.keys().find((k) => k.kind === 'wit' && k.status === 'active')!;
  const x509 = n.node.ca.keys().find((k) => k.kind === 'x509' && k.status === 'active')!;
  t.regex(show.stdout, new RegExp(`example\\.org\\s+wit ES256\\s+${wit.kid}`));
  t.regex(show.stdout, new RegExp(`example\\.org\\s+x509\\s+${x509.kid}\\s+\\d{4}-`));
  t.regex(status.stdout, new RegExp(`admin-node\\s+example\\.org\\s+\\d+\\s+${x509.kid}\\s+${wit.kid}`));
  t.is(JSON.parse(statusJson.stdout).nodes[0].node, 'admin-node');
  t.true(parseSpiffeBundleMap(map.stdout).ok);
  t.true(parseSpiffeBundle('example.org', JSON.parse(one.stdout)).ok);
  t.is(pemToDers(pem.stdout).length, n.node.ca.bundle().x509Authorities.length);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /trust domain "elsewhere\.example" is not in this node's bundles/);
});

test('wimsectl authority - show, prepare, activate, taint, revoke; revoking an untainted key is refused', async (t) => {
  const n = await startAdminNode(t, newDir());
  const w = against(n);
  const shown = JSON.parse((await w(['authority', 'show', '--kind', 'x509', '-o', 'json'])).stdout);
  t.true(shown.keys.every((k: any) => k.kind === 'x509'));
  const first = shown.keys.find((k: any) => k.status === 'active');
  const prep = await w(['authority', 'prepare', '--kind', 'x509']);
  t.regex(prep.stdout, /^x509 key \S+ is prepared\n$/);
  const early = await w(['authority', 'revoke', '--kind', 'x509', '--kid', first.kid]);
  t.is(early.code, 1);
  t.regex(early.stderr, /^wimsectl: ca\.key_state: only a tainted key can be revoked; x509 key \S+ is active\. See the key lifecycle/);
  t.regex((await w(['authority', 'activate', '--kind', 'x509'])).stdout, /is active/);
  t.regex((await w(['authority', 'taint', '--kind', 'x509', '--kid', first.kid])).stdout, /is tainted/);
  const revoked = await w(['authority', 'revoke', '--kind', 'x509', '--kid', first.kid, '-o', 'json']);
  t.is(JSON.parse(revoked.stdout).status, 'revoked');
  const table = (await w(['authority', 'show'])).stdout;
  t.regex(table, /^KIND\s+KID\s+ALG\s+STATUS\s+NOT BEFORE\s+NOT AFTER\n/);
  t.regex(table, new RegExp(`x509\\s+${first.kid}\\s+ES256\\s+revoked`));
  const usage = await w(['authority', 'taint', '--kind', 'x509']);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /--kid is required/);
});

test('wimsectl federation - export from one node, add to another, list, remove', async (t) => {
  const partner = await startAdminNode(t, newDir(), 'trustDomain: partner.example\n');
  const n = await startAdminNode(t, newDir());
  const exported = await against(partner)(['bundle', 'export', '--trust-domain', 'partner.example']);
  const file = writeFile(n.dir, 'partner.json', exported.stdout);
  const w = against(n);
  const added = await w(['federation', 'add', '--trust-domain', 'partner.example', '--bundle', file]);
  t.is(added.code, 0, added.stderr);
  t.truthy(n.node.ca.bundles().get('partner.example'));
  t.regex((await w(['federation', 'list'])).stdout, /partner\.example\s+api\s+1\s+1/);
  // From stdin too.
  t.is((await w(['federation', 'add', '--trust-domain', 'partner.example', '--bundle', '-'], { stdin: exported.stdout })).code, 0);
  const bad = await w(['federation', 'add', '--trust-domain', 'other.example', '--bundle', '-'], { stdin: '{"keys": "no"}' });
  t.is(bad.code, 1);
  t.regex(bad.stderr, /bundle_json: trust_domains\["other\.example"\]\.keys: must be an array/);
  const unreadable = await w(['federation', 'add', '--trust-domain', 'x.example', '--bundle', '/nonexistent/b.json']);
  t.is(unreadable.code, 2);
  t.regex(unreadable.stderr, /cannot read \/nonexistent\/b\.json \(ENOENT\)\. Check --bundle/);
  t.is((await w(['federation', 'remove', 'partner.example'])).code, 0);
  t.deepEqual(JSON.parse((await w(['federation', 'list', '-o', 'json'])).stdout), []);
});

test('wimsectl mint - a WIT for a public key file, a certificate with a generated key', async (t) => {
  const n = await startAdminNode(t, newDir());
  const w = against(n);
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwkFile = writeFile(n.dir, 'key.jwk', JSON.stringify({ ...(publicKey.export({ format: 'jwk' }) as object), alg: 'ES256' }));
  const [wit, cert, noKey] = await Promise.all([
    w(['mint', 'wit', '--id', 'wimse://example.org/svc/debug', '--public-key', jwkFile, '--ttl', '5m']),
    w(['mint', 'cert', '--id', 'wimse://example.org/svc/debug', '--dns', 'debug.example.org']),
    w(['mint', 'wit', '--id', 'wimse://example.org/svc/debug']),
  ]);
  t.is(wit.code, 0, wit.stderr);
  const claims = decodeJwt(wit.stdout.trim());
  t.is(claims.sub, 'wimse://example.org/svc/debug');
  t.is(claims.exp! - claims.iat!, 300);
  t.is(cert.code, 0, cert.stderr);
  t.regex(cert.stdout, /-----BEGIN PRIVATE KEY-----/);
  const leaf = new X509Certificate(cert.stdout);
  t.regex(leaf.subjectAltName ?? '', /DNS:debug\.example\.org/);
  t.is(noKey.code, 2);
  t.regex(noKey.stderr, /--public-key is required/);
});
