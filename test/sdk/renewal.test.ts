import test from 'ava';
import { backoffDelay, planRenewal } from '../../src/sdk/index.ts';

const T0 = 1_800_000_000_000;

test('sdk renewal - the server refresh_at is used when it lies inside the WIT life, plus bounded jitter', (t) => {
  const exp = T0 / 1000 + 3600;
  t.is(planRenewal(T0, exp, T0 / 1000 + 2000, 0).renewAtMs, T0 + 2_000_000);
  // Full jitter adds at most 5% of the life.
  t.is(planRenewal(T0, exp, T0 / 1000 + 2000, 0.999999).renewAtMs, Math.round(T0 + 2_000_000 + 0.999999 * 0.05 * 3_600_000));
});

test('sdk renewal - without a usable refresh_at the client renews at half-life', (t) => {
  const exp = T0 / 1000 + 3600;
  for (const refresh of [undefined, 0, T0 / 1000 - 10, exp, exp + 100]) t.is(planRenewal(T0, exp, refresh, 0).renewAtMs, T0 + 1_800_000, String(refresh));
});

test('sdk renewal - never later than 90% of the life, whatever the hint and jitter', (t) => {
  const exp = T0 / 1000 + 100;
  const at = planRenewal(T0, exp, exp - 1, 0.99, 0.5).renewAtMs;
  t.is(at, T0 + 90_000);
});

test('sdk renewal - backoff doubles per attempt within [ceiling/2, ceiling] and is capped', (t) => {
  t.is(backoffDelay(0, 0), 500);
  t.is(backoffDelay(0, 1), 1000);
  t.is(backoffDelay(3, 0), 4000);
  t.is(backoffDelay(3, 1), 8000);
  t.is(backoffDelay(30, 1), 30_000);
  t.is(backoffDelay(30, 0, 1000, 10_000), 5000);
});
