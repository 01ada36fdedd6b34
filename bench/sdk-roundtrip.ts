/**
 * The SDK on a real loopback HTTP exchange: requests per second through `client.fetch` and
 * `wimseMiddleware` (WPT; HTTP signature; HTTP signature with a signed response), against the
 * same exchange with plain `fetch` to a plain node:http handler (the baseline), in the same run.
 * The modes alternate in rounds and the median of each mode's per-round ratio to the baseline
 * is reported, so that load from other processes weighs on every mode alike.
 *
 *   node --import=tsx bench/sdk-roundtrip.ts [seconds-per-round, default 1] [rounds, default 5]
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { systemClock } from '../src/identity/clock.ts';
import { WorkloadClient, wimseMiddleware, type WimseIncomingMessage } from '../src/sdk/index.ts';
import { CLIENT_ID, NODE_TOKEN, SERVER_ID, startWorkloadApi } from '../test/sdk/helpers.ts';

const SECONDS = Number(process.argv[2] ?? 1);
const ROUNDS = Number(process.argv[3] ?? 5);
const BODY = JSON.stringify({ item: 'book', qty: 2, note: 'x'.repeat(200) });

const api = await startWorkloadApi({ clock: systemClock });
const mk = (id: string) => new WorkloadClient({ address: api.address, nodeToken: NODE_TOKEN, workloadId: id });
const client = mk(CLIENT_ID);
const serverId = mk(SERVER_ID);
await Promise.all([client.start(), serverId.start()]);
await serverId.waitForBundles();
await client.waitForBundles();

const answer = (res: ServerResponse, caller: string) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ ok: true, caller }));
};
const plain = createServer((req: IncomingMessage, res) => {
  req.resume();
  req.on('end', () => answer(res, 'anonymous'));
});
let mw: ReturnType<typeof wimseMiddleware> | undefined;
const guarded = createServer((req, res) => mw!(req, res, () => answer(res, (req as WimseIncomingMessage).wimse!.caller)));
await Promise.all([plain, guarded].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
const url = (s: typeof plain) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
mw = wimseMiddleware({ bundles: () => serverId.bundles(), origins: [url(guarded)], credential: () => serverId.credential });

const init = { method: 'POST', body: BODY, headers: { 'content-type': 'application/json' } };
const modes: Record<string, () => Promise<Response>> = {
  'plain fetch, no authentication': () => fetch(`${url(plain)}/orders`, init),
  'WPT': () => client.fetch(`${url(guarded)}/orders`, init, { mode: 'wpt' }),
  'HTTP signature': () => client.fetch(`${url(guarded)}/orders`, init, { mode: 'httpsig' }),
  'HTTP signature + signed response': () => client.fetch(`${url(guarded)}/orders`, init, { mode: 'httpsig', signResponse: true }),
};

async function measure(fn: () => Promise<Response>): Promise<number> {
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  while (performance.now() < end) {
    const r = await fn();
    if (r.status !== 200) throw new Error(`status ${r.status}: ${await r.text()}`);
    await r.arrayBuffer();
    n++;
  }
  return n / SECONDS;
}

const names = Object.keys(modes);
const rates: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
for (const n of names) await measure(modes[n]!); // warm up
for (let round = 0; round < ROUNDS; round++) for (const n of names) rates[n]!.push(await measure(modes[n]!));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = rates[names[0]!]!;
console.log(`sequential requests over loopback, ${BODY.length}-byte JSON body, ES256 keys; ${ROUNDS} rounds of ${SECONDS}s`);
console.log('| mode | requests/s (median) | ratio to plain (median) |\n|---|---:|---:|');
for (const n of names) {
  const ratios = rates[n]!.map((r, i) => r / base[i]!);
  console.log(`| ${n} | ${Math.round(median(rates[n]!)).toLocaleString('en')} | ${median(ratios).toFixed(2)} |`);
}

await client.close();
await serverId.close();
for (const s of [plain, guarded]) {
  s.closeAllConnections();
  s.close();
}
await api.close();
