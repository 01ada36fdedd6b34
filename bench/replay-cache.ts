/**
 * The replay cache on the hot path: CPU time per `checkAndStore` at steady state, where every
 * second as many keys expire as arrive, so each check also pays its share of the expiry sweep.
 *
 *   node --import=tsx bench/replay-cache.ts
 *
 * Simulated time: `RATE` new keys per second, each held `LIFETIME` s (every tenth one `LONG` s,
 * as WPTs of different lifetimes mix), until the cache holds its steady-state population; then
 * `MEASURE` simulated seconds are timed. Also timed: refusing a key already held (a replay).
 * Medians of `ROUNDS` runs; CPU time, not wall time (the machine is shared).
 */
import { randomBytes } from 'node:crypto';
import { ReplayCache } from '../src/authn/replay.ts';

const RATE = 5_000;
const LIFETIME = 120;
const LONG = 420;
const MEASURE = 30;
const ROUNDS = 5;
const NOW = 1_800_000_000;

const cpuNow = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const prefix = 'wpt:spiffe://example.org/ns/shop/sa/web:';
const keys = Array.from({ length: RATE * (LONG + MEASURE) }, () => prefix + randomBytes(16).toString('base64url'));

const store: number[] = [];
const replay: number[] = [];
let population = 0;
for (let r = 0; r < ROUNDS; r++) {
  const cache = new ReplayCache({ maxEntries: 10_000_000 });
  let k = 0;
  // A new cache per round, so the same keys are new to it.
  const second = (s: number) => {
    for (let i = 0; i < RATE; i++, k++) cache.checkAndStore(keys[k]!, NOW + s + (k % 10 === 0 ? LONG : LIFETIME), NOW + s);
  };
  for (let s = 0; s < LONG; s++) second(s); // fill to steady state
  population = cache.size;
  let t = cpuNow();
  for (let s = LONG; s < LONG + MEASURE; s++) second(s);
  store.push(((cpuNow() - t) * 1000) / (RATE * MEASURE));
  // Replays of keys still held.
  const held = keys.slice(k - RATE * 10, k);
  t = cpuNow();
  for (const key of held) if (cache.checkAndStore(key, NOW + LONG + MEASURE + LIFETIME, NOW + LONG + MEASURE) !== 'replayed') throw new Error('not held');
  replay.push(((cpuNow() - t) * 1000) / held.length);
}

console.log(`node ${process.version}; ${RATE.toLocaleString('en-US')} keys/s held ${LIFETIME} s (1 in 10: ${LONG} s); steady population ${population.toLocaleString('en-US')}; CPU time, median of ${ROUNDS}`);
console.log('| operation | ns per call |');
console.log('|---|---|');
console.log(`| new key (store + its share of the expiry sweep) | ${Math.round(median(store))} |`);
console.log(`| key already held (a replay, refused) | ${Math.round(median(replay))} |`);
