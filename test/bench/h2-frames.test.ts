/**
 * The load generator's HTTP/2 client (bench/_h2-frames.ts) against a real grpc-js server: the
 * benchmark's numbers are only worth something if its client speaks gRPC the way Envoy does.
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { GrpcStatusError, H2GrpcClient, hpackBlock } from '../../bench/_h2-frames.ts';
import { hpackDecode, huffmanDecode } from '../../bench/_hpack.ts';
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

test('a gRPC error status (trailers-only) rejects the call with its code and message', async (t) => {
  const s = await server();
  const c = new H2GrpcClient(s.address);
  await c.ready;
  const err = await t.throwsAsync(c.unary(CHECK, encode('/fail'), 5000), { instanceOf: GrpcStatusError });
  t.like(err, { code: grpc.status.UNAVAILABLE, details: 'down' });
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

test('HPACK decoding: RFC 7541 Appendix C examples, Huffman strings included', (t) => {
  const hex = (h: string) => Buffer.from(h.replace(/\s/g, ''), 'hex');
  t.is(huffmanDecode(hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff')), 'www.example.com');
  t.is(huffmanDecode(hex('a8eb 1064 9cbf')), 'no-cache');
  t.is(huffmanDecode(hex('25a8 49e9 5bb8 e8b4 bf')), 'custom-value');
  // C.4.1: a request, indexed fields and a Huffman literal.
  t.deepEqual(hpackDecode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff')), [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']]);
  // C.2.2 (literal without indexing) and C.2.3 (never indexed).
  t.deepEqual(hpackDecode(hex('040c 2f73 616d 706c 652f 7061 7468')), [[':path', '/sample/path']]);
  t.deepEqual(hpackDecode(hex('1008 7061 7373 776f 7264 0673 6563 7265 74')), [['password', 'secret']]);
  // Our own encoder's blocks decode to what was encoded, a repeated field included.
  const fields: Array<[string, string]> = [[':method', 'POST'], ['authorization', 'Bearer a'], ['authorization', 'Bearer b']];
  t.deepEqual(hpackDecode(hpackBlock(fields)), fields);
  // A reference to a dynamic table the client said it does not keep is refused.
  t.throws(() => hpackDecode(hex('be')), { message: /not in the static table/ });
  t.throws(() => huffmanDecode(hex('f1e3 c2e5 f23a 6ba0 ab90 f400')), { message: /padding|Huffman/ });
});
