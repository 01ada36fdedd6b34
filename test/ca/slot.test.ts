import test from 'ava';
import { DEFAULT_TIMING, decide, keyTimes, resolveTiming, shouldActivateNext, shouldPrepareNext, needsActiveKey, hasUsableNext, type Slot } from '../../src/ca/index.ts';

const H = 3600_000;
const t0 = Date.UTC(2026, 0, 1);
const key = (kid: string, notBefore: number, ttlH = 24) => ({ kid, status: 'active' as const, ...keyTimes(notBefore, resolveTiming({ keyTtlSec: ttlH * 3600 })) });

test('slot - default timing is SPIRE: 24 h keys, prepare at 1/2, activate at 5/6', (t) => {
  t.is(DEFAULT_TIMING.keyTtlSec, 86400);
  const k = keyTimes(t0, DEFAULT_TIMING);
  t.is(k.notAfter - t0, 24 * H);
  t.is(k.prepareNextAt - t0, 12 * H);
  t.is(k.activateNextAt - t0, 20 * H);
});

test('slot - shouldPrepareNext flips exactly at half the current key life', (t) => {
  const s: Slot = { kind: 'x509', current: key('a', t0) };
  t.false(shouldPrepareNext(s, t0));
  t.false(shouldPrepareNext(s, t0 + 12 * H - 1));
  t.true(shouldPrepareNext(s, t0 + 12 * H));
  t.false(shouldPrepareNext({ ...s, next: { ...key('b', t0 + 12 * H), status: 'prepared' } }, t0 + 13 * H), 'not when next is already prepared');
  t.false(shouldPrepareNext({ kind: 'x509' }, t0), 'not on an empty slot');
});

test('slot - shouldActivateNext flips at five sixths and needs a prepared key', (t) => {
  const s: Slot = { kind: 'wit', current: key('a', t0), next: { ...key('b', t0 + 12 * H), status: 'prepared' } };
  t.false(shouldActivateNext(s, t0 + 20 * H - 1));
  t.true(shouldActivateNext(s, t0 + 20 * H));
  t.false(shouldActivateNext({ kind: 'wit', current: key('a', t0) }, t0 + 21 * H));
});

test('slot - thresholds scale down to seconds', (t) => {
  const k = keyTimes(t0, resolveTiming({ keyTtlSec: 6 }));
  t.is(k.prepareNextAt - t0, 3000);
  t.is(k.activateNextAt - t0, 5000);
  t.is(k.notAfter - t0, 6000);
});

test('slot - an expired or missing current key needs an active key', (t) => {
  t.true(needsActiveKey({ kind: 'x509' }, t0));
  const s: Slot = { kind: 'x509', current: key('a', t0) };
  t.false(needsActiveKey(s, t0 + 24 * H - 1));
  t.true(needsActiveKey(s, t0 + 24 * H));
  t.false(hasUsableNext({ ...s, next: { ...key('b', t0), status: 'prepared' } }, t0 + 24 * H));
});

test('slot - decide names the verbs in order', (t) => {
  const cur = key('a', t0);
  const next = { ...key('b', t0 + 12 * H), status: 'prepared' as const };
  t.deepEqual(decide({ kind: 'x509' }, t0), ['prepare', 'activate']);
  t.deepEqual(decide({ kind: 'x509', current: cur }, t0 + H), []);
  t.deepEqual(decide({ kind: 'x509', current: cur }, t0 + 12 * H), ['prepare']);
  t.deepEqual(decide({ kind: 'x509', current: cur, next }, t0 + 19 * H), []);
  t.deepEqual(decide({ kind: 'x509', current: cur, next }, t0 + 20 * H), ['activate']);
  t.deepEqual(decide({ kind: 'x509', current: cur }, t0 + 21 * H), ['prepare', 'activate'], 'both thresholds passed while down');
  t.deepEqual(decide({ kind: 'x509', current: cur, next }, t0 + 30 * H), ['activate'], 'current expired, next still usable');
  t.deepEqual(decide({ kind: 'x509', current: cur, next: { ...key('b', t0), status: 'prepared' } }, t0 + 25 * H), ['prepare', 'activate']);
});

test('slot - bad timing is misuse: TypeError', (t) => {
  t.throws(() => resolveTiming({ keyTtlSec: 0 }), { instanceOf: TypeError });
  t.throws(() => resolveTiming({ prepareAt: 0.9, activateAt: 0.5 }), { instanceOf: TypeError });
  t.throws(() => resolveTiming({ activateAt: 1 }), { instanceOf: TypeError });
  t.throws(() => resolveTiming({ pruneGraceSec: -1 }), { instanceOf: TypeError });
  // 99999999999999 days overflows Date; a tick past 2^31 - 1 ms would fire after 1 ms.
  t.throws(() => resolveTiming({ keyTtlSec: 99_999_999_999_999 * 86_400 }), { instanceOf: TypeError, message: /keyTtlSec must be at most/ });
  t.throws(() => resolveTiming({ rotateIntervalSec: 30 * 86_400 }), { instanceOf: TypeError, message: /rotateIntervalSec must be at most/ });
});
