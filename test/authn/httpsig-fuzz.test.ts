/**
 * Bounded fuzzing with a seeded PRNG: mutated Signature-Input, Signature and Content-Digest values
 * must only ever produce AuthnError (never another exception, never `httpsig.internal`), and the
 * structured-field parser only SfError.
 */
import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { ManualClock } from '../../src/identity/clock.ts';
import { AuthnError } from '../../src/authn/errors.ts';
import { ReplayCache } from '../../src/authn/replay.ts';
import type { PublicJwk } from '../../src/identity/jwk.ts';
import { cpuMsSince, cpuStart } from '../helpers/cpu.ts';
import {
  SfError,
  hasWimseSignature,
  parseDictionary,
  parseItem,
  parseList,
  signWimseRequest,
  signWimseResponse,
  verifyWimseRequestSignature,
  verifyWimseResponseSignature,
  type HttpRequestMessage,
} from '../../src/authn/httpsig/index.ts';

/** mulberry32: small, seeded, reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = ['"', '(', ')', ';', ',', '=', ':', '?', '*', '\\', ' ', '\t', '-', '_', '.', '/', '+', '0', '1', '9', 'a', 'z', 'A', '@', '\u00e9', '\u0000', '\n', '\r', '?1', '?0', '=:', '"@path"', ';req', ';bs', ';sf', ';key="a"', ';alg="ed25519"', ';keyid="k"', ';tag="wimse-workload-to-workload"', '999999999999999', '1234567890123456', '0.1234', 'sig2=()'];

function mutate(rnd: () => number, s: string): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const pos = () => Math.floor(rnd() * (s.length + 1));
  switch (Math.floor(rnd() * 8)) {
    case 0: {
      const i = pos();
      return s.slice(0, i) + pick(ALPHABET) + s.slice(i + 1);
    }
    case 1: {
      const i = pos();
      return s.slice(0, i) + pick(ALPHABET) + s.slice(i);
    }
    case 2: {
      const i = pos();
      return s.slice(0, i) + s.slice(i + 1 + Math.floor(rnd() * 8));
    }
    case 3:
      return s.slice(0, pos());
    case 4: {
      const i = pos();
      const j = Math.min(s.length, i + Math.floor(rnd() * 40));
      return s.slice(0, j) + s.slice(i, j) + s.slice(j);
    }
    case 5:
      return `${s}, ${s}`;
    case 6:
      // Oversize values: beyond the 8 KiB limit once long enough.
      return s.length > 2000 ? s : s.repeat(1 + Math.floor(rnd() * 100));
    default: {
      const a = pos();
      const b = pos();
      return s.slice(0, Math.min(a, b)) + s.slice(Math.max(a, b)).split('').reverse().join('');
    }
  }
}

const clock = new ManualClock(Date.UTC(2026, 10, 26, 12, 0, 0));
const NOW = Math.floor(clock.now() / 1000);
const AUD = 'https://svc.example.com/x';
const FIELDS = ['signature-input', 'signature', 'content-digest'] as const;

function assertOnlyAuthnError(t: import('ava').ExecutionContext, fn: () => unknown, what: string): 'ok' | string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (!(e instanceof AuthnError)) {
      t.fail(`${what}: threw ${String(e)}`);
      return 'non-authn';
    }
    if (e.code === 'httpsig.internal' || e.status !== 400) t.fail(`${what}: ${e.code}`);
    return e.code;
  }
}

for (const alg of ['ES256', 'EdDSA'] as const) {
  test(`httpsig fuzz ${alg} - mutated signature fields only ever yield AuthnError (seeded, 1500 iterations)`, (t) => {
    const { privateKey, publicKey } = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
    const jwk = { ...(publicKey.export({ format: 'jwk' }) as PublicJwk), alg };
    const body = new TextEncoder().encode('{"fuzz":true}');
    const signed = signWimseRequest({ method: 'PUT', path: '/x', query: '?q=1', headers: [['workload-identity-token', 'a.b.c'], ['content-type', 'application/json']], body, key: { privateKey, alg }, audience: AUD, clock });
    const base: HttpRequestMessage = { method: 'PUT', path: '/x', query: '?q=1', headers: signed.headers, body };
    t.notThrows(() => verifyWimseRequestSignature(base, { jwk, alg }, { audiences: [AUD], nowSec: NOW }));

    const rnd = prng(alg === 'ES256' ? 0x5eed1 : 0x5eed2);
    const codes = new Map<string, number>();
    const started = cpuStart();
    for (let i = 0; i < 1500; i++) {
      const headers = new Map(signed.headers);
      const rounds = 1 + Math.floor(rnd() * 3);
      for (let r = 0; r < rounds; r++) {
        const f = FIELDS[Math.floor(rnd() * FIELDS.length)]!;
        const lines = headers.get(f) ?? [''];
        const choice = rnd();
        if (choice < 0.05) headers.delete(f);
        else if (choice < 0.1) headers.set(f, [...lines, mutate(rnd, lines[0] ?? '')]);
        else headers.set(f, lines.map((l) => mutate(rnd, l)));
      }
      const req = { ...base, headers };
      t.notThrows(() => hasWimseSignature(req));
      const c = assertOnlyAuthnError(t, () => verifyWimseRequestSignature(req, { jwk, alg }, { audiences: [AUD], nowSec: NOW, replay: new ReplayCache() }), `iteration ${i}`);
      codes.set(c, (codes.get(c) ?? 0) + 1);
    }
    t.log([...codes].map(([c, n]) => `${c}:${n}`).join(" "));
    // The mutations reach deep into the checks, not just the parser.
    t.true((codes.get('httpsig.malformed') ?? 0) > 100);
    t.true(codes.size >= 5, [...codes.keys()].join(' '));
    t.true(cpuMsSince(started) < 30_000);
  });
}

test('httpsig fuzz - mutated response signature fields only ever yield AuthnError (seeded, 1000 iterations)', (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const jwk = { ...(publicKey.export({ format: 'jwk' }) as PublicJwk), alg: 'EdDSA' };
  const req: HttpRequestMessage = { method: 'GET', path: '/r', query: '', headers: new Map() };
  const body = new TextEncoder().encode('hello');
  const res = signWimseResponse({ status: 200, headers: [['workload-identity-token', 'a.b.c'], ['content-type', 'text/plain']], body, request: req, requestNonce: 'rn', key: { privateKey, alg: 'EdDSA' }, clock });
  const rnd = prng(0x5eed3);
  for (let i = 0; i < 1000; i++) {
    const headers = new Map(res.headers);
    const f = FIELDS[Math.floor(rnd() * FIELDS.length)]!;
    headers.set(f, (headers.get(f) ?? ['']).map((l) => mutate(rnd, l)));
    assertOnlyAuthnError(t, () => verifyWimseResponseSignature({ status: 200, headers, body }, { jwk, alg: 'EdDSA' }, { request: req, nonce: 'rn', signResponse: true }, { nowSec: NOW }), `iteration ${i}`);
  }
  t.pass();
});

test('httpsig fuzz - the structured-field parser only ever throws SfError (seeded, 5000 inputs)', (t) => {
  const rnd = prng(0x5eed4);
  const seeds = ['a=1, b=(1 2);x="y", c=:AAAA:;d', '("@method" "@path";req);created=1;nonce="n"', '?1;a=1.5, tok/en:x, "s\\"q"', 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:'];
  let s = seeds[0]!;
  for (let i = 0; i < 5000; i++) {
    s = i % 50 === 0 ? seeds[Math.floor(rnd() * seeds.length)]! : mutate(rnd, s).slice(0, 9000);
    for (const parse of [parseDictionary, parseList, parseItem]) {
      try {
        parse(s);
      } catch (e) {
        if (!(e instanceof SfError)) t.fail(`${parse.name}(${JSON.stringify(s.slice(0, 80))}) threw ${String(e)}`);
      }
    }
  }
  t.pass();
});
