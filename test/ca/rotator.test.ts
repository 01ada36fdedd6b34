import test from 'ava';
import { Rotator, keyTimes, resolveTiming, slotOf, type KeyKind, type KeyRecord, type RotatorTarget, type Slot } from '../../src/ca/index.ts';
import { ManualClock } from '../../src/identity/index.ts';
import { openCa } from './helpers.ts';

/** A recording target over plain records: the rotator's port, not the CA. */
class RecordingTarget implements RotatorTarget {
  records: KeyRecord[] = [];
  calls: string[] = [];
  failKinds = new Set<KeyKind>();
  n = 0;
  constructor(readonly clock: ManualClock) {}
  slot(kind: KeyKind): Slot {
    return slotOf(kind, this.records);
  }
  async prepare(kind: KeyKind) {
    this.calls.push(`prepare ${kind}`);
    if (this.failKinds.has(kind)) throw new Error('disk full');
    this.records = this.records.filter((r) => !(r.kind === kind && r.status === 'prepared'));
    const times = keyTimes(this.clock.now(), resolveTiming({ keyTtlSec: 60 }));
    this.records.push({ kind, kid: `${kind}-${++this.n}`, alg: 'ES256', status: 'prepared', ...times, publicJwk: { kty: 'OKP', crv: 'Ed25519', x: 'x' } });
  }
  async activate(kind: KeyKind) {
    this.calls.push(`activate ${kind}`);
    const next = this.slot(kind).next!;
    this.records = this.records.map((r) =>
      r.kind !== kind ? r : r.status === 'active' ? { ...r, status: 'old' } : r.kid === next.kid ? { ...r, status: 'active' } : r,
    );
  }
  async prune() {
    this.calls.push('prune');
  }
}

test('rotator - empty slots are prepared and activated on the first tick', async (t) => {
  const clock = new ManualClock();
  const target = new RecordingTarget(clock);
  const r = new Rotator({ target, clock, intervalMs: 10_000 });
  await r.tick();
  t.deepEqual(target.calls, ['prepare x509', 'activate x509', 'prepare wit', 'activate wit', 'prune']);
  t.is(r.stats.prepared, 2);
  t.is(r.stats.activated, 2);
});

test('rotator - prepare next at 1/2, activate at 5/6, through full cycles', async (t) => {
  const clock = new ManualClock();
  const target = new RecordingTarget(clock);
  const r = new Rotator({ target, clock, intervalMs: 10_000, kinds: ['wit'] });
  await r.tick();
  target.calls = [];
  const seen: string[] = [];
  for (let i = 0; i < 36; i++) {
    clock.advance(5_000); // 3 lifetimes of 60 s
    await r.tick();
    seen.push(...target.calls.filter((c) => c !== 'prune').map((c) => `${(clock.now() - Date.UTC(2026, 0, 1)) / 1000}s ${c}`));
    target.calls = [];
  }
  // Thresholds count from each key's own creation (its prepare): a key prepared at 30 s has its
  // successor prepared at 60 s and activated at 80 s. One rotation per keyTtl/2, as SPIRE.
  t.deepEqual(seen, [
    '30s prepare wit', '50s activate wit', '60s prepare wit', '80s activate wit', '90s prepare wit', '110s activate wit',
    '120s prepare wit', '140s activate wit', '150s prepare wit', '170s activate wit', '180s prepare wit',
  ]);
  t.is(r.stats.errors, 0);
});

test('rotator - an error in one kind is counted and the other kind and later ticks go on', async (t) => {
  const clock = new ManualClock();
  const target = new RecordingTarget(clock);
  const logged: string[] = [];
  const logger = { info: () => {}, warn: () => {}, error: (_o: object, m?: string) => void logged.push(m ?? '') };
  const r = new Rotator({ target, clock, intervalMs: 10_000, logger });
  target.failKinds.add('x509');
  await r.tick();
  t.is(r.stats.errors, 1);
  t.is(logged.length, 1);
  t.truthy(target.slot('wit').current, 'wit rotated despite the x509 failure');
  t.falsy(target.slot('x509').current);
  target.failKinds.clear();
  await r.tick();
  t.truthy(target.slot('x509').current, 'the next tick recovers');
});

test('rotator - start() ticks on its interval until stop()', async (t) => {
  const { ca, clock } = await openCa(t, { timing: { keyTtlSec: 6, rotateIntervalSec: 0.02 } });
  const first = ca.slot('wit').current!.kid;
  ca.start();
  clock.advance(5_100); // past 1/2 and 5/6 of a 6 s key
  const deadline = Date.now() + 30_000; // a safety net: the loop ends at the first rotation
  while (ca.slot('wit').current!.kid === first && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await ca.stop();
  t.not(ca.slot('wit').current!.kid, first, 'the running rotator prepared and activated the next key');
  const ticks = ca.rotator.stats.ticks;
  await new Promise((r) => setTimeout(r, 100));
  t.is(ca.rotator.stats.ticks, ticks, 'no ticks after stop');
});
