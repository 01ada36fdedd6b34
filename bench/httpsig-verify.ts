/**
 * WIMSE request-signature verification throughput vs raw crypto.verify of the same key type over
 * the same signature base, measured in the same run (ratio = verify / raw).
 *
 * The two are measured in alternating rounds and the median of the per-round ratios is reported,
 * so that load from other processes on the machine affects both sides alike.
 *
 *   node --import=tsx bench/httpsig-verify.ts [seconds-per-round, default 0.5] [rounds, default 5]
 */
import { generateKeyPairSync, randomBytes, verify, type KeyObject } from 'node:crypto';
import { ManualClock } from '../src/identity/clock.ts';
import type { PublicJwk } from '../src/identity/jwk.ts';
import { signWimseRequest, signatureBytes, verifyWimseRequestSignature, type HttpRequestMessage } from '../src/authn/httpsig/index.ts';

const SECONDS = Number(process.argv[2] ?? 0.5);
const ROUNDS = Number(process.argv[3] ?? 5);
const AUD = 'https://svcb.example.com/orders';
const clock = new ManualClock(Date.UTC(2026, 10, 26, 12, 0, 0));
const nowSec = Math.floor(clock.now() / 1000);
// A WIT-sized header value (~650 characters, like the drafts' examples).
const WIT = `${randomBytes(40).toString('base64url')}.${randomBytes(400).toString('base64url')}.${randomBytes(64).toString('base64url')}`;

function measure(fn: () => void): number {
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(SECONDS * 1e9));
  let now = start;
  while (now < end) {
    for (let i = 0; i < 200; i++) fn();
    n += 200;
    now = process.hrtime.bigint();
  }
  return n / (Number(now - start) / 1e9);
}

interface Row {
  alg: string;
  body: string;
  verifyPerSec: number;
  rawPerSec: number;
  ratio: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

/** Alternate rounds of `a` and `b`; medians of each rate and of the per-round ratio a/b. */
function compare(a: () => void, b: () => void): { a: number; b: number; ratio: number } {
  for (let i = 0; i < 300; i++) {
    a();
    b();
  }
  const as: number[] = [];
  const bs: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const ra = measure(a);
    const rb = measure(b);
    as.push(ra);
    bs.push(rb);
    ratios.push(ra / rb);
  }
  return { a: median(as), b: median(bs), ratio: median(ratios) };
}

const rows: Row[] = [];
for (const alg of ['ES256', 'EdDSA'] as const) {
  const { privateKey, publicKey } = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  const jwk = { ...(publicKey.export({ format: 'jwk' }) as PublicJwk), alg };
  for (const bodyLen of [0, 1024]) {
    const body = bodyLen ? randomBytes(bodyLen) : undefined;
    const headers: [string, string][] = [['workload-identity-token', WIT], ...(body ? ([['content-type', 'application/octet-stream']] as [string, string][]) : [])];
    const s = signWimseRequest({ method: 'POST', path: '/orders', query: '?page=2', headers, ...(body ? { body } : {}), key: { privateKey, alg }, audience: AUD, clock });
    const req: HttpRequestMessage = { method: 'POST', path: '/orders', query: '?page=2', headers: s.headers, ...(body ? { body } : {}) };
    // The WIT's cnf.jwk is parsed afresh per request in real use: pass a new object every time.
    const base = Buffer.from(s.base);
    const sig = signatureBytes(s.headers, s.label);
    const key: KeyObject = publicKey;
    const c = compare(
      () => {
        verifyWimseRequestSignature(req, { jwk: { ...jwk }, alg }, { audiences: [AUD], nowSec });
      },
      () => {
        if (alg === 'ES256') verify('sha256', base, { key, dsaEncoding: 'ieee-p1363' }, sig);
        else verify(null, base, key, sig);
      },
    );
    rows.push({ alg, body: bodyLen ? `${bodyLen} B` : 'none', verifyPerSec: c.a, rawPerSec: c.b, ratio: c.ratio });
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(`node ${process.version}, ${ROUNDS} alternating rounds of ${SECONDS} s; medians`);
console.log('| alg | body | verifyWimseRequestSignature /s | raw crypto.verify /s | ratio |');
console.log('|---|---|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.alg} | ${r.body} | ${fmt(r.verifyPerSec)} | ${fmt(r.rawPerSec)} | ${r.ratio.toFixed(2)} |`);
