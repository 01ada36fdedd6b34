/**
 * Floors for bench/extauthz-check.ts: servers that answer every Check with one prebuilt allow and
 * do nothing else, driven by the same client with the same requests. What the bench measures
 * against them is the cost of gRPC on loopback, this machine and the load generator: the latency
 * no Check handler on that server can go below. Modes (process arguments):
 * - `grpc` (default): the node's gRPC server as the node builds it (grpc-js, the same options,
 *   the same Check codec);
 * - `h2`: a unary gRPC responder on bare node:http2 with the same codec, to tell grpc-js's share;
 * - `verify`, with either: the handler also makes the one ES256 verification a WPT or signature
 *   check cannot avoid (a fixed signature over 300 bytes), so the floor of those kinds.
 * Driven like the node: it sends its address, then answers `cpu` and `close`.
 *
 *   fork('bench/_extauthz-floor.ts', ['grpc', 'verify'], { execArgv: ['--import=tsx'] })
 */
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { createServer } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { authorizationService, decodeCheckRequest, encodeCheckResponse } from '../src/envoy/check-codec.ts';
import { okResponse } from '../src/envoy/check-response.ts';
import { MAX_CHECK_REQUEST_BYTES } from '../src/envoy/check-request.ts';

const VERIFY = process.argv.includes('verify');
const H2 = process.argv.includes('h2');
const allow = okResponse({ caller: 'spiffe://example.org/ns/bench/sa/w0', via: 'mtls', decisionId: '00000000-0000-4000-8000-000000000000', clientWimseHeaders: [] });
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const data = Buffer.alloc(300, 'x');
const sig = sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
const work = (): void => {
  if (VERIFY && !verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig)) throw new Error('the fixed signature must verify');
};

let close: () => void;
if (H2) {
  const srv = createServer();
  srv.on('stream', (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => {
      const b = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      decodeCheckRequest(b.subarray(5));
      work();
      const body = encodeCheckResponse(allow);
      const frame = Buffer.allocUnsafe(5 + body.length);
      frame[0] = 0;
      frame.writeUInt32BE(body.length, 1);
      body.copy(frame, 5);
      s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
      s.end(frame);
    });
  });
  srv.listen(0, '127.0.0.1', () => process.send!({ ready: `127.0.0.1:${(srv.address() as { port: number }).port}` }));
  close = () => srv.close(() => process.exit(0));
} else {
  const server = new grpc.Server({ 'grpc.max_concurrent_streams': 100_000, 'grpc.max_receive_message_length': MAX_CHECK_REQUEST_BYTES, 'grpc.enable_channelz': 0 });
  server.addService(authorizationService(), {
    Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      work();
      callback(null, allow);
    },
  });
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    process.send!({ ready: `127.0.0.1:${port}` });
  });
  close = () => server.tryShutdown(() => process.exit(0));
}
process.on('message', (m: { op?: string; id?: number }) => {
  if (m.op === 'cpu') {
    const u = process.cpuUsage();
    process.send!({ id: m.id, body: u.user + u.system });
  }
  if (m.op === 'close') close();
});
