import test from 'ava';
import { KeyStateError, type CaEvent } from '../../src/ca/index.ts';
import { openCa } from './helpers.ts';

const statusOf = (ca: { keys(): { kid: string; status: string }[] }, kid: string) => ca.keys().find((k) => k.kid === kid)?.status;

test('lifecycle - a fresh node has one active key of each kind, both in the bundle', async (t) => {
  const { ca } = await openCa(t);
  t.deepEqual(ca.keys().map((k) => `${k.kind}:${k.status}`).sort(), ['wit:active', 'x509:active']);
  t.is(ca.bundle().x509Authorities.length, 1);
  t.is(ca.bundle().witKeys.length, 1);
  t.is(ca.bundle().trustDomain, 'example.org');
});

test('lifecycle - prepare publishes, activate swaps, both with events and a new sequence', async (t) => {
  const { ca } = await openCa(t);
  const events: CaEvent[] = [];
  ca.onChange((e) => events.push(e));
  const seq0 = ca.bundle().sequence!;
  const old = ca.slot('x509').current!.kid;
  const p = await ca.prepare('x509');
  t.is(p.status, 'prepared');
  t.is(ca.bundle().sequence, seq0 + 1);
  t.is(ca.bundle().x509Authorities.length, 2);
  const a = await ca.activate('x509');
  t.is(a.kid, p.kid);
  t.is(statusOf(ca, old), 'old');
  t.is(ca.bundle().sequence, seq0 + 1, 'activation does not change the bundle');
  t.deepEqual(events, [
    { type: 'key-prepared', kind: 'x509', kid: p.kid },
    { type: 'bundle-changed', trustDomain: 'example.org', sequence: seq0 + 1 },
    { type: 'key-activated', kind: 'x509', kid: p.kid },
  ]);
  const e = await t.throwsAsync<KeyStateError>(ca.activate('x509'), { instanceOf: KeyStateError });
  t.is(e!.code, 'ca.key_state', 'nothing prepared to activate');
});

test('lifecycle - preparing twice supersedes the unused prepared key; it stays published until expiry', async (t) => {
  const { ca } = await openCa(t);
  const a = await ca.prepare('wit');
  const b = await ca.prepare('wit');
  t.is(statusOf(ca, a.kid), 'old');
  t.is(ca.slot('wit').next!.kid, b.kid);
  t.is(ca.bundle().witKeys.length, 3);
  await ca.activate('wit');
  t.is(ca.slot('wit').current!.kid, b.kid);
});

test('lifecycle - tainting the active key activates a replacement in the same step', async (t) => {
  const { ca } = await openCa(t);
  const events: CaEvent[] = [];
  ca.onChange((e) => events.push(e));
  const victim = ca.slot('x509').current!.kid;
  const wic = await ca.issueWic({ id: 'spiffe://example.org/a' });
  t.is(wic.caKid, victim);
  await ca.taint('x509', victim);
  t.is(statusOf(ca, victim), 'tainted');
  const now = ca.slot('x509').current!.kid;
  t.not(now, victim);
  t.is((await ca.issueWic({ id: 'spiffe://example.org/a' })).caKid, now);
  t.is(ca.bundle().x509Authorities.length, 2, 'tainted key still trusted until revoked');
  t.deepEqual(events.map((e) => e.type), ['key-prepared', 'key-activated', 'key-tainted', 'bundle-changed']);
  t.deepEqual(events[2], { type: 'key-tainted', kind: 'x509', kid: victim }, 'SDS learns which key to re-issue away from');
  t.is((await t.throwsAsync<KeyStateError>(ca.taint('x509', victim)))!.code, 'ca.key_state');
});

test('lifecycle - tainting the active key uses a waiting prepared key', async (t) => {
  const { ca } = await openCa(t);
  const next = await ca.prepare('wit');
  const victim = ca.slot('wit').current!.kid;
  await ca.taint('wit', victim);
  t.is(ca.slot('wit').current!.kid, next.kid);
  t.is(ca.bundle().witKeys.length, 2);
});

test('lifecycle - revoke needs taint first, then removes the key from the bundle and erases it', async (t) => {
  const { ca } = await openCa(t);
  const events: CaEvent[] = [];
  const victim = ca.slot('wit').current!.kid;
  const e = await t.throwsAsync<KeyStateError>(ca.revoke('wit', victim), { instanceOf: KeyStateError });
  t.is(e!.code, 'ca.key_state');
  await ca.taint('wit', victim);
  const seq = ca.bundle().sequence!;
  ca.onChange((ev) => events.push(ev));
  await ca.revoke('wit', victim);
  t.is(statusOf(ca, victim), 'revoked');
  t.false(ca.bundle().witKeys.some((k) => k.kid === victim));
  t.is(ca.bundle().sequence, seq + 1);
  t.deepEqual(events, [
    { type: 'key-revoked', kind: 'wit', kid: victim },
    { type: 'bundle-changed', trustDomain: 'example.org', sequence: seq + 1 },
  ]);
  t.is((await t.throwsAsync<KeyStateError>(ca.revoke('wit', 'no-such-kid')))!.code, 'ca.unknown_key');
});

test('lifecycle - a listener that throws does not break the CA', async (t) => {
  const { ca } = await openCa(t);
  ca.onChange(() => {
    throw new Error('boom');
  });
  const seen: string[] = [];
  const off = ca.onChange((e) => seen.push(e.type));
  await ca.prepare('x509');
  off();
  await ca.activate('x509');
  t.deepEqual(seen, ['key-prepared', 'bundle-changed']);
});

test('lifecycle - a key whose journal write fails is never published nor used; the rotator retries', async (t) => {
  const { ca, clock, dir } = await openCa(t, { timing: { keyTtlSec: 60 } });
  const { rename } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const events: CaEvent[] = [];
  ca.onChange((e) => events.push(e));
  const bundle = ca.bundle();
  const keys = ca.keys();
  await rename(join(dir, 'ca'), join(dir, 'ca-away')); // the journal directory vanishes
  clock.advance(50_000); // past prepare (1/2) and activate (5/6)
  await ca.rotator.tick();
  t.true(ca.rotator.stats.errors >= 2, 'both kinds failed and were counted');
  t.deepEqual(ca.keys(), keys, 'no key added in memory');
  t.is(ca.bundle(), bundle, 'bundle unchanged');
  t.deepEqual(events, []);
  t.is((await ca.issueWic({ id: 'spiffe://example.org/a' })).caKid, keys.find((k) => k.kind === 'x509')!.kid);
  await rename(join(dir, 'ca-away'), join(dir, 'ca'));
  await ca.rotator.tick();
  t.is(ca.keys().filter((k) => k.status === 'active' && !keys.some((o) => o.kid === k.kid)).length, 2, 'recovered on the next tick');
});

test('lifecycle - issuance running alongside taints and rotations only ever uses a key that was active and published', async (t) => {
  const { ca } = await openCa(t);
  const { X509Certificate } = await import('node:crypto');
  const published = new Set(ca.keys().map((k) => k.kid));
  ca.onChange((e) => {
    if (e.type === 'key-prepared') published.add(e.kid);
  });
  const work = Array.from({ length: 40 }, (_, i) => ca.issueWic({ id: `spiffe://example.org/w${i}` }));
  const ops = (async () => {
    for (let i = 0; i < 3; i++) {
      await ca.taint('x509', ca.slot('x509').current!.kid);
      await ca.prepare('x509');
      await ca.activate('x509');
    }
  })();
  const [wics] = await Promise.all([Promise.all(work), ops]);
  const tainted = new Set(ca.keys().filter((k) => k.status === 'tainted').map((k) => k.kid));
  t.is(tainted.size, 3);
  for (const w of wics) {
    t.true(published.has(w.caKid), 'signed by a journaled, published key');
    const root = ca.bundle().x509Authorities.map((d) => new X509Certificate(d)).find((r) => new X509Certificate(w.certPem).checkIssued(r));
    t.truthy(root, 'still chains to the bundle (tainted keys stay trusted until revoked)');
  }
});
