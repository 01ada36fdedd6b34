/**
 * The load generator's HTTP/2 client (bench/_h2-frames.ts) against a real grpc-js server: the
 * benchmark's numbers are only worth something if its client speaks gRPC the way Envoy does.
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { H2GrpcClient, hpackBlock } from '../../bench/_h2-frames.ts';
import { authorizationService } from '../../src/envoy/check-codec.ts';
import { okResponse, deniedResponse } from '../../src/envoy/check-response.ts';
import { envoyProtos } from '../../src/envoy/protos.ts';
import { envoyCheckRequest } from '../helpers/envoy-pep.ts';

const CHECK = '/envoy.service.auth.v3.Authorization/Check';
const generic = (envoyProtos().Authorization as any).Check;

async function server(): Promise<{ address: string; close(): Promise<void>; force(): void }> {
  const s = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  s.addService(authorizationService(), {
    // Echo something of the request back, so a response cannot be confused with another's.
    Check: (call: grpc.ServerUnaryCall<any, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const path: string = call.request.attributes?.request?.http?.path ?? '';
      if (path === '/fail') return cb({ code: grpc.status.UNAVAILABLE, details: 'down' });
      const size = call.request.attributes?.request?.http?.raw_body?.length ?? 0;
      cb(null, path === '/deny' ? deniedResponse({ status: 403, code: 'policy.no_rule', detail: 'no', decisionId: `${size}` }) : okResponse({ caller: path, via: 'mtls', decisionId: `${size}` }));
    },
  });
  const port = await new Promise<number>((resolve, reject) => s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { address: `127.0.0.1:${port}`, close: () => new Promise((r) => s.tryShutdown(() => r())), force: () => s.forceShutdown() };
}

const encode = (path: string, body?: Buffer): Buffer => generic.requestSerialize(envoyCheckRequest({ method: 'POST', path, headers: [['Host', 'a']], ...(body ? { body } : {}) }));

test('responses match a grpc-js client byte for byte, over many concurrent streams', async (t) => {
  const s = await server();
  const c = new H2GrpcClient(s.address);
  await c.ready;
  const g = new grpc.Client(s.address, grpc.credentials.createInsecure());
  const viaGrpc = (req: Buffer) => new Promise<Buffer>((resolve, reject) => g.makeUnaryRequest(CHECK, (b: Buffer) => b, (b: Buffer) => b, req, (e, r) => (e ? reject(e) : resolve(r!))));
  const reqs = Array.from({ length: 200 }, (_, i) => encode(i % 7 === 0 ? '/deny' : `/orders/${i}`));
  const ours = await Promise.all(reqs.map((r) => c.unary(CHECK, r, 5000)));
  const theirs = await Promise.all(reqs.map(viaGrpc));
  for (let i = 0; i < reqs.length; i++) {
    const a = generic.responseDeserialize(ours[i]);
    const b = generic.responseDeserialize(theirs[i]);
    // The decision id is the request's body size; caller echoes the path: equal iff paired right.
    t.deepEqual(a, b);
  }
  t.is(generic.responseDeserialize(ours[1]).ok_response.headers[0].header.value, '/orders/1');
  g.close();
  c.close();
  await s.close();
});

test('a gRPC error status (trailers-only) rejects the call', async (t) => {
  const s = await server();
  const c = new H2GrpcClient(s.address);
  await c.ready;
  await t.throwsAsync(c.unary(CHECK, encode('/fail'), 5000), { message: /no complete gRPC message/ });
  // The connection is still usable afterwards.
  t.truthy(await c.unary(CHECK, encode('/ok'), 5000));
  c.close();
  await s.close();
});

test('a message larger than a frame and than the initial window arrives whole (flow control)', async (t) => {
  const s = await server();
  const c = new H2GrpcClient(s.address);
  await c.ready;
  const body = Buffer.alloc(300 * 1024, 7);
  const res = generic.responseDeserialize(await c.unary(CHECK, encode('/big', body), 10_000));
  t.is(res.dynamic_metadata.fields.decision_id.stringValue, String(body.length));
  // Several at once, so the connection window is shared and replenished.
  const many = await Promise.all(Array.from({ length: 8 }, () => c.unary(CHECK, encode('/big', body), 10_000)));
  for (const m of many) t.is(generic.responseDeserialize(m).dynamic_metadata.fields.decision_id.stringValue, String(body.length));
  c.close();
  await s.close();
});

test('a server that goes away fails the calls on its connection instead of leaving them hanging', async (t) => {
  const s = await server();
  const c = new H2GrpcClient(s.address);
  await c.ready;
  await c.unary(CHECK, encode('/ok'), 5000);
  s.force();
  await new Promise((r) => setTimeout(r, 100));
  await t.throwsAsync(c.unary(CHECK, encode('/ok'), 5000), { message: /GOAWAY|closed|ECONNRESET/ });
  c.close();
});

test('HPACK literals use the static table for known names and plain literals otherwise', (t) => {
  const block = hpackBlock([[':method', 'POST'], ['te', 'trailers']]);
  // :method is static index 2 (literal without indexing, 4-bit prefix), `te` a new name.
  t.deepEqual([...block.subarray(0, 6)], [0x02, 4, ...Buffer.from('POST')]);
  t.deepEqual([...block.subarray(6)], [0x00, 2, ...Buffer.from('te'), 8, ...Buffer.from('trailers')]);
});
