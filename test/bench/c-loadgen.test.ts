/**
 * The C load generator (bench/loadgen/h2grpc.c) against a real grpc-js server: it must pace,
 * pair each response with its request and classify allow / other status / no message, or the
 * benchmark's latencies mean nothing.
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { buildCLoadgen, runCLoadgen } from '../../bench/_c-loadgen.ts';
import { authorizationService } from '../../src/envoy/check-codec.ts';
import { deniedResponse, okResponse } from '../../src/envoy/check-response.ts';
import { envoyProtos } from '../../src/envoy/protos.ts';
import { envoyCheckRequest } from '../helpers/envoy-pep.ts';

const CHECK = '/envoy.service.auth.v3.Authorization/Check';
const generic = (envoyProtos().Authorization as any).Check;
const encode = (path: string, body?: Buffer): Buffer => generic.requestSerialize(envoyCheckRequest({ method: 'POST', path, headers: [['Host', 'a']], ...(body ? { body } : {}) }));

async function server(t: { teardown(fn: () => Promise<void>): void }, delayMsFor: (path: string) => number = () => 0) {
  const s = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  const seen: string[] = [];
  const authorization: string[][] = [];
  const answered: string[] = [];
  s.addService(authorizationService(), {
    Check: (call: grpc.ServerUnaryCall<any, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const path: string = call.request.attributes?.request?.http?.path ?? '';
      seen.push(path);
      authorization.push(call.metadata.get('authorization').map(String));
      const answer = () => {
        answered.push(path);
        if (path.startsWith('/fail')) return cb({ code: grpc.status.UNAVAILABLE, details: 'down' });
        if (path.startsWith('/deny')) return cb(null, deniedResponse({ status: 403, code: 'policy.no_rule', detail: 'no', decisionId: 'd' }));
        cb(null, okResponse({ caller: path, via: 'mtls', decisionId: 'd' }));
      };
      const delay = delayMsFor(path);
      if (delay > 0) setTimeout(answer, delay);
      else setImmediate(answer);
    },
  });
  const port = await new Promise<number>((resolve, reject) => s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  t.teardown(() => new Promise<void>((r) => s.tryShutdown(() => r())));
  return { address: `127.0.0.1:${port}`, seen, authorization, answered };
}

const bin = buildCLoadgen();
// How long the generator waits for answers: a safety net only (a busy machine can take seconds),
// so that a slow answer is never counted as a failed one.
const WAIT_MS = 60_000;

test('it builds with the machine\'s C compiler', (t) => {
  t.truthy(bin, 'cc must be installed (.ci/run installs gcc where it is missing)');
});

test.serial('allows, denials and gRPC errors are told apart, every request is sent once, in order', async (t) => {
  const s = await server(t);
  const paths = Array.from({ length: 300 }, (_, i) => (i % 10 === 3 ? `/deny/${i}` : i % 10 === 7 ? `/fail/${i}` : `/ok/${i}`));
  const run = await runCLoadgen(bin!, s.address, CHECK, 2000, paths.map((p) => encode(p)), WAIT_MS);
  t.is(run.ok, 240);
  t.is(run.failed, 60);
  t.is(run.lag.length, 300);
  t.is(run.lat.length, 270, 'a trailers-only error has no latency');
  t.is(run.fromDue.length, 270);
  // Each answered request's schedule-to-response time is its own lag plus its own latency, even
  // where failures in between leave no latency.
  const answered = paths.map((p, i) => (p.startsWith('/fail') ? -1 : i)).filter((i) => i >= 0);
  answered.forEach((i, k) => t.true(Math.abs(run.fromDue[k]! - (run.lag[i]! + run.lat[k]!)) < 1e-9));
  t.deepEqual(s.seen, paths, 'each request sent once, in order');
  t.true(run.cpuUs > 0);
});

test.serial('requests leave on schedule and each latency is its own: a 2 s handler delays only its request', async (t) => {
  const s = await server(t, (p) => (p.startsWith('/slow') ? 2000 : 0));
  await runCLoadgen(bin!, s.address, CHECK, 1000, Array.from({ length: 50 }, () => encode('/ok/warm')), WAIT_MS); // warm the server up
  s.answered.length = 0;
  const paths = Array.from({ length: 100 }, (_, i) => (i === 50 ? '/slow' : `/ok/${i}`));
  const run = await runCLoadgen(bin!, s.address, CHECK, 500, paths.map((p) => encode(p)), WAIT_MS);
  t.is(run.ok, 100);
  // Node's timers round to the loop's millisecond clock, so a 2 s timer may fire a little early.
  t.true(run.lat[50]! >= 1995, `the slow request took ${run.lat[50]} ms`);
  // On the generator's own clock (ms from the start of the schedule, 2 ms apart at 500/s): when
  // each request was written, and when its response arrived. The generator reports whole µs:
  // rounded back to them, requests written together (a late sender catching up) compare equal
  // instead of one float ulp apart.
  const written = run.lag.map((lag, i) => Math.round((i * 2 + lag) * 1000) / 1000);
  const arrived = run.lat.map((lat, i) => written[i]! + lat);
  // The sender did not wait for the slow response: the next request left before it arrived.
  t.true(written[51]! < arrived[50]!, `request 51 written at ${written[51]} ms, the slow response arrived at ${arrived[50]} ms`);
  t.true(written.every((w, i) => i === 0 || w >= written[i - 1]!), 'requests leave in schedule order');
  // Each latency is its own: every response the server sent before the slow one arrived before
  // it, every later one after it (the slow response is paired with its own request and timed at
  // its own arrival), and the requests the server answered during the slow one's wait were not
  // held back by it.
  const order = s.answered.map((p) => paths.indexOf(p));
  t.deepEqual([...order].sort((a, b) => a - b), paths.map((_, i) => i));
  const slowAt = order.indexOf(50);
  order.forEach((i, k) => {
    if (k < slowAt) t.true(arrived[i]! < arrived[50]!, `request ${i} answered before the slow one arrived at ${arrived[i]} ms, after it`);
    if (k > slowAt) t.true(arrived[i]! > arrived[50]!, `request ${i} answered after the slow one arrived at ${arrived[i]} ms, before it`);
  });
  const during = order.slice(0, slowAt).filter((i) => i > 50);
  t.true(during.length > 0, 'the server answered later requests while the slow one waited');
  for (const i of during) t.true(run.lat[i]! < run.lat[50]!, `request ${i} took ${run.lat[i]} ms`);
});

test.serial('a message larger than a frame and the initial windows arrives whole', async (t) => {
  const s = await server(t);
  const body = Buffer.alloc(300 * 1024, 1);
  const run = await runCLoadgen(bin!, s.address, CHECK, 50, Array.from({ length: 5 }, () => encode('/ok/big', body)), WAIT_MS);
  t.is(run.ok, 5);
  t.is(s.seen.length, 5);
});

test.serial('with an authorization value, every request carries it (the proxy\'s node token)', async (t) => {
  const s = await server(t);
  const value = `Bearer wnt_${'x'.repeat(43)}`;
  const run = await runCLoadgen(bin!, s.address, CHECK, 500, Array.from({ length: 20 }, (_, i) => encode(`/ok/${i}`)), WAIT_MS, value);
  t.is(run.ok, 20);
  t.deepEqual(s.authorization, Array.from({ length: 20 }, () => [value]));
  const without = await runCLoadgen(bin!, s.address, CHECK, 500, [encode('/ok/none')], WAIT_MS);
  t.is(without.ok, 1);
  t.deepEqual(s.authorization.at(-1), []);
});
