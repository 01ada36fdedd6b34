/**
 * /metrics of a real node, scraped over HTTP before and after real work: every issuance path
 * moves `wimse_issued_total`, and expiries are absolute Unix timestamps.
 */
import test from 'ava';
import { X509Certificate, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CompactSign } from 'jose';
import { startTestNode } from '../helpers/node.ts';
import { FakeEnvoy, secretsOf } from '../envoy/helpers/fake-envoy.ts';
import { adminClientConstructor } from '../../src/admin/api.ts';
import { workloadClientConstructor } from '../../src/workload-api/server.ts';
import { PROOF_AUDIENCE, PROOF_TYP } from '../../src/workload-api/proof.ts';

const ID = 'spiffe://example.org/ns/shop/sa/web';
const REG = `sds:\n  registrations:\n    - {nodeId: e1, workloads: [${ID}]}\n`;

/** The samples of `name` on this scrape, by their label set as written (`kind="wic"`). */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.set(m[2] ?? '', Number(m[3]));
  }
  return out;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const unary = (client: any, rpc: string, req: unknown, md: grpc.Metadata) =>
  new Promise<any>((resolve, reject) => client[rpc](req, md, { deadline: Date.now() + 30_000 }, (e: grpc.ServiceError | null, r: any) => (e ? reject(e) : resolve(r))));
const bearer = (token: string) => {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
};

test('metrics - every issuance path moves wimse_issued_total: SDS, SDS rotation, admin mint, Workload API', async (t) => {
  const { node, dir } = await startTestNode(t, { yaml: REG });
  const scrape = async () => (await fetch(`${node.adminUrl}/metrics`)).text();
  const issued = async (kind: string) => samples(await scrape(), 'wimse_issued_total').get(`kind="${kind}"`) ?? 0;
  const moved = async (kind: string, from: number, by = 1) => until(`wimse_issued_total{kind="${kind}"} to reach ${from + by}`, async () => ((await issued(kind)) >= from + by ? true : undefined));

  // SDS: an Envoy asks for its certificate.
  let wic = await issued('wic');
  const envoy = new FakeEnvoy(node.grpcAddress, { nodeId: 'e1', token: node.nodeTokens.issue('e1') });
  t.teardown(() => envoy.close());
  const stream = envoy.open(['default']);
  t.teardown(() => stream.end());
  t.truthy(secretsOf(await stream.next(20_000)).get('default'));
  await moved('wic', wic);

  // SDS rotation: the signing key is tainted, the leaf is re-issued and pushed.
  wic = await issued('wic');
  await node.ca.taint('x509', node.ca.keys().find((k) => k.kind === 'x509' && k.status === 'active')!.kid);
  await moved('wic', wic);

  // Admin API: wimsectl mint (a WIT for a public key, a certificate with a generated key).
  const admin = new (adminClientConstructor())(node.grpcAddress, grpc.credentials.createInsecure()) as any;
  t.teardown(() => admin.close());
  const adminToken = readFileSync(join(dir, 'state', 'admin-token'), 'utf8').trim();
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(publicKey.export({ format: 'jwk' }) as Record<string, string>), alg: 'ES256' };
  let wit = await issued('wit');
  await unary(admin, 'MintWIT', { workload_id: ID, public_jwk_json: JSON.stringify(jwk) }, bearer(adminToken));
  await moved('wit', wit);
  wic = await issued('wic');
  await unary(admin, 'MintCertificate', { workload_id: ID }, bearer(adminToken));
  await moved('wic', wic);

  // Workload API: an application fetches a WIT for its key.
  wit = await issued('wit');
  const workload = new (workloadClientConstructor())(node.grpcAddress, grpc.credentials.createInsecure()) as any;
  t.teardown(() => workload.close());
  const claims = { sub: ID, aud: PROOF_AUDIENCE, iat: Math.floor(Date.now() / 1000), jti: randomBytes(16).toString('base64url') };
  const proof = await new CompactSign(Buffer.from(JSON.stringify(claims))).setProtectedHeader({ alg: 'ES256', typ: PROOF_TYP, jwk }).sign(privateKey);
  await unary(workload, 'FetchWIT', { workload_id: ID, proof }, bearer(node.nodeTokens.issue('e1')));
  await moved('wit', wit);

  // Exactly once per credential: nothing else issued since.
  t.is(await issued('wit'), wit + 1);
});

test('metrics - key and certificate expiry are absolute Unix timestamps in seconds', async (t) => {
  const { node } = await startTestNode(t, { yaml: REG });
  const scrape = async () => (await fetch(`${node.adminUrl}/metrics`)).text();
  const keys = samples(await scrape(), 'wimse_key_expiration_timestamp_seconds');
  const own = node.ca.keys().filter((k) => k.status !== 'revoked');
  t.true(own.length >= 2);
  for (const k of own) t.is(keys.get(`kind="${k.kind}",kid="${k.kid}",state="${k.status}"`), k.notAfter / 1000, `${k.kind} ${k.kid}`);
  t.is(keys.size, own.length);
  t.false((await scrape()).includes('wimse_key_expiry_seconds'), 'the relative gauge is gone');

  // No certificate served yet: no sample. Once an Envoy has its certificate, its notAfter.
  t.is(samples(await scrape(), 'wimse_credential_earliest_expiration_timestamp_seconds').size, 0);
  const envoy = new FakeEnvoy(node.grpcAddress, { nodeId: 'e1', token: node.nodeTokens.issue('e1') });
  t.teardown(() => envoy.close());
  const stream = envoy.open(['default']);
  t.teardown(() => stream.end());
  const leaf = secretsOf(await stream.next(20_000)).get('default')!;
  const chainPem = Buffer.from(leaf.tls_certificate.certificate_chain.inline_bytes).toString('utf8');
  const served = samples(await scrape(), 'wimse_credential_earliest_expiration_timestamp_seconds');
  t.deepEqual([...served], [['kind="wic"', Date.parse(new X509Certificate(chainPem).validTo) / 1000]]);
});
