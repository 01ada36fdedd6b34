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
  s.addService(authorizationService(), {
    Check: (call: grpc.ServerUnaryCall<any, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const path: string = call.request.attributes?.request?.http?.path ?? '';
      seen.push(path);
      authorization.push(call.metadata.get('authorization').map(String));
      const answer = () => {
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
  return { address: `127.0.0.1:${port}`, seen, authorization };
}

const bin = buildCLoadgen();

test('it builds with the machine\'s C compiler', (t) => {
  t.truthy(bin, 'cc must be installed (.ci/run installs gcc where it is missing)');
});

test.serial('allows, denials and gRPC errors are told apart, every request is sent once, in order', async (t) => {
  const s = await server(t);
  const paths = Array.from({ length: 300 }, (_, i) => (i % 10 === 3 ? `/deny/${i}` : i % 10 === 7 ? `/fail/${i}` : `/ok/${i}`));
  const run = await runCLoadgen(bin!, s.address, CHECK, 2000, paths.map((p) => encode(p)));
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

test.serial('requests leave on schedule and each latency is its own: a 100 ms handler delays only its request', async (t) => {
  const s = await server(t, (p) => (p.startsWith('/slow') ? 100 : 0));
  await runCLoadgen(bin!, s.address, CHECK, 1000, Array.from({ length: 50 }, () => encode('/ok/warm'))); // warm the server up
  const run = await runCLoadgen(bin!, s.address, CHECK, 500, Array.from({ length: 100 }, (_, i) => encode(i === 50 ? '/slow' : `/ok/${i}`)));
  t.is(run.ok, 100);
  // Node's timers round to the loop's millisecond clock, so a 100 ms timer may fire a little early.
  t.true(run.lat[50]! >= 95, `the slow request took ${run.lat[50]} ms`);
  const others = run.lat.filter((_, i) => i !== 50).sort((a, b) => a - b);
  t.true(others[49]! < 100, `median of the others ${others[49]} ms`);
  t.true(Math.max(...run.lag) < 100, 'the sender did not wait for the slow response');
});

test.serial('a message larger than a frame and the initial windows arrives whole', async (t) => {
  const s = await server(t);
  const body = Buffer.alloc(300 * 1024, 1);
  const run = await runCLoadgen(bin!, s.address, CHECK, 50, Array.from({ length: 5 }, () => encode('/ok/big', body)));
  t.is(run.ok, 5);
  t.is(s.seen.length, 5);
});

test.serial('with an authorization value, every request carries it (the proxy\'s node token)', async (t) => {
  const s = await server(t);
  const value = `Bearer wnt_${'x'.repeat(43)}`;
  const run = await runCLoadgen(bin!, s.address, CHECK, 500, Array.from({ length: 20 }, (_, i) => encode(`/ok/${i}`)), 2000, value);
  t.is(run.ok, 20);
  t.deepEqual(s.authorization, Array.from({ length: 20 }, () => [value]));
  const without = await runCLoadgen(bin!, s.address, CHECK, 500, [encode('/ok/none')]);
  t.is(without.ok, 1);
  t.deepEqual(s.authorization.at(-1), []);
});
