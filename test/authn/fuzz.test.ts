/**
 * Seeded, bounded fuzzing of `authenticate`: mutated token bytes, re-signed claim sets with values
 * of every JSON type, and shuffled/duplicated/garbled header fields. Whatever the input, the
 * result is an authenticated caller of a configured trust domain or an AuthnError with a stable
 * code, and never `internal.error` (which would mean an unanticipated exception).
 */
import test from 'ava';
import { AuthnError, headersFrom, tokenHash, type AuthnRequest } from '../../src/authn/index.ts';
import { parseWorkloadId } from '../../src/identity/workload-id.ts';
import { AUD, NOW, env, mintWitRaw, signRaw, witParts } from './helpers.ts';
import { cpuMsSince, cpuStart } from '../helpers/cpu.ts';

const SEED = 0x5eed1234;
const ITERATIONS = 2500;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('fuzz - authenticate only ever returns a configured caller or throws a coded AuthnError', (t) => {
  const rnd = mulberry32(SEED);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const int = (n: number) => Math.floor(rnd() * n);
  const e = env({ witCache: { maxEntries: 64 } });
  const goodWit = mintWitRaw(e.iss, { workload: e.workload });
  const CHARS = ['.', '=', ',', ' ', '\t', '"', '\\', '\u0000', 'é', '\u{1F600}', 'A', '_', '-', '0', '{', '}'];
  const VALUES: unknown[] = [
    null, true, 0, -1, 1e308, NOW, NOW + 30, 'x', '', 'spiffe://example.org/a', [], [1], ['spiffe://example.org/a'], {}, { jwk: {} },
    { jwk: e.workload.publicJwk }, { jwk: { ...e.workload.publicJwk, alg: 'none' } }, 'A'.repeat(3000), { a: { b: { c: [{}] } } }, [AUD], AUD,
  ];
  const WIT_CLAIMS = ['sub', 'exp', 'iat', 'nbf', 'iss', 'jti', 'cnf', 'aud', '__proto__', 'constructor'];
  const WPT_CLAIMS = ['aud', 'exp', 'jti', 'wth', 'tth', 'oth', '__proto__'];
  const HEADER_PARAMS = ['alg', 'typ', 'kid', 'crit', 'b64', 'jwk', 'zip'];

  const mutateChars = (s: string): string => {
    const chars = [...s];
    for (let n = 1 + int(4); n > 0; n--) {
      const i = int(chars.length + 1);
      const op = int(3);
      if (op === 0) chars.splice(i, 1);
      else if (op === 1) chars.splice(i, 0, pick(CHARS));
      else chars[i] = pick(CHARS);
    }
    return chars.join('');
  };

  const wptFor = (wit: string, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string =>
    signRaw(
      { alg: e.workload.alg, typ: 'wpt+jwt', ...header },
      { aud: AUD, exp: NOW + 60, jti: `j${int(1e9)}`, wth: tokenHash(wit), ...claims },
      e.workload.privateKey,
      e.workload.alg,
    );

  const codes = new Map<string, number>();
  let authenticated = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    let wit = goodWit;
    let wptClaims: Record<string, unknown> = {};
    let wptHeader: Record<string, unknown> = {};
    const kind = int(6);
    if (kind === 1) {
      const { header, claims } = witParts(e.iss, { workload: e.workload });
      if (rnd() < 0.7) claims[pick(WIT_CLAIMS)] = pick(VALUES);
      else header[pick(HEADER_PARAMS)] = pick(VALUES);
      wit = signRaw(header, claims, e.iss.privateKey, 'ES256');
    } else if (kind === 2) {
      wptClaims = { [pick(WPT_CLAIMS)]: pick(VALUES) };
      if (rnd() < 0.3) wptHeader = { [pick(HEADER_PARAMS)]: pick(VALUES) };
    }
    let wpt = wptFor(wit, wptClaims, wptHeader);
    if (kind === 3) wit = mutateChars(wit);
    if (kind === 4) wpt = mutateChars(wpt);
    const pairs: [string, string][] = [
      ['Workload-Identity-Token', wit],
      ['Authorization', `${pick(['WPT', 'wpt', 'WPT ', 'Bearer', 'WPT\t'])} ${wpt}`],
    ];
    if (kind === 5 || rnd() < 0.2) {
      const extra = pick<[string, string]>([
        ['Workload-Identity-Token', wit],
        ['Authorization', 'Bearer x'],
        ['Txn-Token', 'txn'],
        ['X-User', 'u'],
        ['Workload-Proof-Token', wpt],
        ['Signature-Input', 'sig1=();tag="wimse-workload-to-workload"'],
        ['Signature', 'sig1=:AAAA:'],
      ]);
      pairs.splice(int(pairs.length + 1), 0, extra);
    }
    if (rnd() < 0.1) pairs.splice(int(pairs.length), 1);
    const req: AuthnRequest = {
      method: 'GET',
      path: '/api',
      query: '',
      headers: headersFrom(pairs),
      ...(rnd() < 0.05 ? { peer: { certificateChainPem: `-----BEGIN CERTIFICATE-----\n${mutateChars('MIIBIjANBgkq')}\n-----END CERTIFICATE-----` } } : {}),
      ...(rnd() < 0.05 ? { peer: { verifiedPrincipal: mutateChars('spiffe://example.org/x') } } : {}),
    };
    try {
      const r = e.auth.authenticate(req);
      const id = parseWorkloadId(r.caller);
      t.true(id.ok && id.value.trustDomain === 'example.org', `iteration ${i}: caller ${r.caller}`);
      authenticated++;
    } catch (err) {
      if (!(err instanceof AuthnError)) {
        t.fail(`iteration ${i}: threw ${String(err)}`);
        continue;
      }
      if (err.code === 'internal.error' || !/^(request|wit|wpt|httpsig|mtls)\.[a-z_]+$/.test(err.code))
        t.fail(`iteration ${i}: unexpected code ${err.code} (${err.detail})`);
      codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
    }
  }
  t.log(authenticated, [...codes].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c}:${n}`).join(" "));
  // The corpus reaches deep: both successes and a spread of distinct rejections.
  t.true(authenticated > 50, `authenticated ${authenticated}`);
  t.true(codes.size >= 20, `distinct codes: ${[...codes.keys()].join(' ')}`);
});

test('fuzz - hostile sizes are refused quickly (size caps before parsing)', (t) => {
  const e = env();
  const wit = mintWitRaw(e.iss, { workload: e.workload });
  const deep = Buffer.from('{"a":' + '['.repeat(3000) + ']'.repeat(3000) + '}').toString('base64url');
  const cases: [string, AuthnRequest][] = [
    ['1 MiB WIT', { method: 'GET', path: '/', query: '', headers: headersFrom([['workload-identity-token', 'a'.repeat(1 << 20)], ['authorization', 'WPT a.b.c']]) }],
    ['deeply nested claims', { method: 'GET', path: '/', query: '', headers: headersFrom([['workload-identity-token', `${deep.slice(0, 2000)}.${deep.slice(0, 4000)}.AAAA`], ['authorization', 'WPT a.b.c']]) }],
    ['unterminated strings', { method: 'GET', path: '/', query: '', headers: headersFrom([['workload-identity-token', `${Buffer.from('{"' + '\\"'.repeat(2500)).toString('base64url')}.e30.AAAA`], ['authorization', 'WPT a.b.c']]) }],
    ['10,000 commas in Authorization', { method: 'GET', path: '/', query: '', headers: headersFrom([['workload-identity-token', wit], ['authorization', `WPT x${', WPT x'.repeat(10_000)}`]]) }],
    ['64 KiB of PEM markers', { method: 'GET', path: '/', query: '', headers: new Map(), peer: { certificateChainPem: '-----BEGIN CERTIFICATE-----'.repeat(2400) } }],
    ['1 MiB PEM', { method: 'GET', path: '/', query: '', headers: new Map(), peer: { certificateChainPem: 'A'.repeat(1 << 20) } }],
  ];
  for (const [label, req] of cases) {
    const t0 = cpuStart();
    const err = t.throws(() => e.auth.authenticate(req), { instanceOf: AuthnError }, label);
    const ms = cpuMsSince(t0);
    t.not(err?.code, 'internal.error', label);
    t.true(ms < 200, `${label}: ${ms} ms of CPU`);
  }
});
