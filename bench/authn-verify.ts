/**
 * Authentication cost vs the signature verifications it cannot avoid.
 *
 *   node --import=tsx bench/authn-verify.ts
 *
 * For WIT+WPT requests (ES256 issuer; ES256 or EdDSA workload keys) it measures verified
 * requests/s through `Authenticator.authenticate`, with and without the verified-WIT cache, and
 * in the same run the raw `crypto.verify` rate for the same keys and signing inputs. The floor
 * is two verifications per request without the cache (WIT + WPT) and one with it (WPT only).
 * The machine is shared and its speed drifts, so: CPU time (not wall time), small alternating
 * batches of raw and authenticated work, a ratio per round, and the median of the rounds.
 */
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { Authenticator, createWpt, headersFrom, type AuthnRequest } from '../src/authn/index.ts';
import { ManualClock } from '../src/identity/clock.ts';
import type { SigningAlg } from '../src/identity/jwk.ts';
import { AUD, NOW, bundleOf, bundleSet, issuer, keyPair, mintWitRaw } from '../test/authn/helpers.ts';

const ROUNDS = 15;
const BATCHES = 20;
const BATCH = 25;

interface Case {
  label: string;
  requests: AuthnRequest[];
  rawWit: () => boolean;
  rawWpt: () => boolean;
  auth: (cache: boolean) => Authenticator;
}

function makeCase(workloadAlg: SigningAlg): Case {
  const iss = issuer('example.org', 'ES256');
  const workload = keyPair(workloadAlg);
  const wit = mintWitRaw(iss, { workload });
  const requests: AuthnRequest[] = [];
  for (let i = 0; i < ROUNDS * BATCHES * BATCH * 2 + 2; i++) {
    const wpt = createWpt({ wit, privateKey: workload.privateKey, alg: workloadAlg, aud: AUD, nowSec: NOW });
    requests.push({
      method: 'GET',
      path: '/api',
      query: '',
      headers: headersFrom([
        ['workload-identity-token', wit],
        ['authorization', `WPT ${wpt}`],
        ['content-type', 'application/json'],
        ['user-agent', 'bench'],
      ]),
    });
  }
  const [wh, wp, ws] = wit.split('.');
  const wptSample = (requests[0]!.headers.get('authorization')![0]!).slice(4).split('.');
  const witInput = Buffer.from(`${wh}.${wp}`);
  const witSig = Buffer.from(ws!, 'base64url');
  const wptInput = Buffer.from(`${wptSample[0]}.${wptSample[1]}`);
  const wptSig = Buffer.from(wptSample[2]!, 'base64url');
  const issuerPub = createPublicKey(iss.privateKey);
  const workloadPub = createPublicKey(workload.privateKey);
  const bundles = bundleSet(bundleOf('example.org', [iss.witKey]));
  return {
    label: `WIT ES256 + WPT ${workloadAlg}`,
    requests,
    rawWit: () => cryptoVerify('sha256', witInput, { key: issuerPub, dsaEncoding: 'ieee-p1363' }, witSig),
    rawWpt: () =>
      workloadAlg === 'ES256'
        ? cryptoVerify('sha256', wptInput, { key: workloadPub, dsaEncoding: 'ieee-p1363' }, wptSig)
        : cryptoVerify(null, wptInput, workloadPub, wptSig),
    auth: (cache) =>
      new Authenticator({
        bundles,
        clock: new ManualClock(NOW * 1000),
        audiences: [AUD],
        witCache: cache ? {} : false,
      }),
  };
}

/** CPU time in microseconds (user + system): less disturbed than wall time on a shared machine. */
const cpuNow = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const rows: string[] = [];
for (const alg of ['ES256', 'EdDSA'] as const) {
  const c = makeCase(alg);
  const noCache = c.auth(false);
  const withCache = c.auth(true);
  // Warm up every path (JIT, key caches).
  for (let i = 0; i < 200; i++) {
    c.rawWit();
    c.rawWpt();
  }
  let next = 0;
  const take = () => c.requests[next++]!;
  noCache.authenticate(take());
  withCache.authenticate(take());
  const m = { rawWit: [] as number[], rawWpt: [] as number[], noCache: [] as number[], cache: [] as number[], rNo: [] as number[], rCache: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    // Small alternating batches, so that raw and authenticated work see the same machine.
    const sum = { rawWit: 0, rawWpt: 0, nc: 0, wc: 0 };
    for (let b = 0; b < BATCHES; b++) {
      let t = cpuNow();
      for (let i = 0; i < BATCH; i++) if (!c.rawWit()) throw new Error('raw WIT verify failed');
      sum.rawWit += cpuNow() - t;
      t = cpuNow();
      for (let i = 0; i < BATCH; i++) if (!c.rawWpt()) throw new Error('raw WPT verify failed');
      sum.rawWpt += cpuNow() - t;
      t = cpuNow();
      for (let i = 0; i < BATCH; i++) noCache.authenticate(take());
      sum.nc += cpuNow() - t;
      t = cpuNow();
      for (let i = 0; i < BATCH; i++) withCache.authenticate(take());
      sum.wc += cpuNow() - t;
    }
    const per = (us: number) => (us * 1000) / (BATCH * BATCHES); // ns per call
    m.rawWit.push(per(sum.rawWit));
    m.rawWpt.push(per(sum.rawWpt));
    m.noCache.push(per(sum.nc));
    m.cache.push(per(sum.wc));
    m.rNo.push(sum.nc / (sum.rawWit + sum.rawWpt));
    m.rCache.push(sum.wc / sum.rawWpt);
  }
  const rate = (ns: number) => Math.round(1e9 / ns).toLocaleString('en-US');
  rows.push(
    `| ${c.label} | ${rate(median(m.rawWit))} / ${rate(median(m.rawWpt))} | ${rate(median(m.noCache))} | ${median(m.rNo).toFixed(2)}x | ${rate(median(m.cache))} | ${median(m.rCache).toFixed(2)}x |`,
  );
}

console.log(`node ${process.version}; CPU time; ${ROUNDS} rounds of ${BATCHES} alternating batches of ${BATCH}; medians; ratio = time per request / unavoidable verifications`);
console.log('| case | raw verify/s (WIT key / WPT key) | req/s no cache | ratio vs 2 verifies | req/s WIT cache | ratio vs 1 verify |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
