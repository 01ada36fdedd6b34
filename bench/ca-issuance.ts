/**
 * Issuance throughput of the Identity Server against the raw signature rate of the same key type,
 * measured in the same run:
 *   - WICs issued/s (fresh X.509 leaf over a caller's public key: build + sign + PEM)
 *   - WITs minted/s (jose SignJWT)
 *   - crypto.sign/s with the CA's own key type, over a payload of similar size
 * Run: node --import=tsx bench/ca-issuance.ts   (about 30 s; BENCH_ROUNDS, BENCH_ROUND_MS to tune)
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IdentityServer, type CaAlg } from '../src/ca/index.ts';
import { systemClock, type PublicJwk } from '../src/identity/index.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 600);

/** Operations per second of `fn` over one round. */
async function round(fn: () => unknown | Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  const end = t0 + ROUND_MS;
  let n = 0;
  while (performance.now() < end) {
    await fn();
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * The machine is shared, so the cases run interleaved (A B C A B C ...) and each reports the
 * median of its rounds: drift in available CPU hits every case alike and the ratio stays fair.
 */
async function compare(cases: Record<string, () => unknown | Promise<unknown>>): Promise<Record<string, number>> {
  for (const fn of Object.values(cases)) for (let i = 0; i < 50; i++) await fn(); // warm-up
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (let r = 0; r < ROUNDS; r++) for (const [k, fn] of Object.entries(cases)) samples[k]!.push(await round(fn));
  const out = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
  for (const [k, v] of Object.entries(out)) console.log(`  ${k.padEnd(44)} ${v.toFixed(0).padStart(7)} /s`);
  return out;
}

function rawKey(alg: CaAlg): KeyObject {
  return alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey : generateKeyPairSync('ed25519').privateKey;
}

const results: Record<string, Record<string, number>> = {};
for (const alg of ['ES256', 'EdDSA'] as const) {
  const dir = await mkdtemp(join(tmpdir(), 'ca-bench-'));
  const ca = await IdentityServer.open({ stateDir: dir, trustDomain: 'example.org', clock: systemClock, alg });
  const wk = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(wk.publicKey.export({ format: 'jwk' }) as PublicJwk), alg: 'ES256' };
  const key = rawKey(alg);
  const tbs = Buffer.alloc(400, 7); // about the size of a WIC's TBSCertificate
  console.log(`${alg} CA and WIT keys (node ${process.version}, ${ROUNDS} interleaved rounds of ${ROUND_MS} ms, medians):`);
  const r = await compare({
    [`crypto.sign (${alg}, 400 B)`]: () => sign(alg === 'ES256' ? 'sha256' : null, tbs, key),
    'issueWic (caller JWK, ES256 leaf key)': () => ca.issueWic({ id: 'spiffe://example.org/ns/a/sa/b', key: { jwk } }),
    'mintWit': () => ca.mintWit({ sub: 'spiffe://example.org/ns/a/sa/b', cnf: jwk }),
  });
  const [raw, wic, wit] = Object.values(r) as [number, number, number];
  results[alg] = { raw, wic, wit, wicRatio: wic / raw, witRatio: wit / raw };
  await ca.close();
  await rm(dir, { recursive: true, force: true });
}
console.log('\nratios to crypto.sign of the same key type:');
for (const [alg, r] of Object.entries(results))
  console.log(`  ${alg}: WIC ${(r.wicRatio! * 100).toFixed(1)} %, WIT ${(r.witRatio! * 100).toFixed(1)} %`);
