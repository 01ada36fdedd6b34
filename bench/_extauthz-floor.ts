/**
 * The floor for bench/extauthz-check.ts: the node's gRPC server as the node builds it (grpc-js,
 * the same server options, the same Check codec) with a handler that answers every Check with
 * one prebuilt allow and does nothing else. What the bench measures against it is the cost of
 * gRPC on loopback, this machine and the load generator: the latency no Check handler written
 * for this server can go below. Driven like the node: it prints nothing, sends its address.
 *
 *   fork('bench/_extauthz-floor.ts', { execArgv: ['--import=tsx'] })
 */
import * as grpc from '@grpc/grpc-js';
import { authorizationService } from '../src/envoy/check-codec.ts';
import { okResponse } from '../src/envoy/check-response.ts';
import { MAX_CHECK_REQUEST_BYTES } from '../src/envoy/check-request.ts';

const allow = okResponse({ caller: 'spiffe://example.org/ns/bench/sa/w0', via: 'mtls', decisionId: '00000000-0000-4000-8000-000000000000', clientWimseHeaders: [] });
const server = new grpc.Server({ 'grpc.max_concurrent_streams': 100_000, 'grpc.max_receive_message_length': MAX_CHECK_REQUEST_BYTES, 'grpc.enable_channelz': 0 });
server.addService(authorizationService(), {
  Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(null, allow),
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.send!({ ready: `127.0.0.1:${port}` });
});
process.on('message', (m: { op?: string; id?: number }) => {
  if (m.op === 'cpu') {
    const u = process.cpuUsage();
    process.send!({ id: m.id, body: u.user + u.system });
  }
  if (m.op === 'close') server.tryShutdown(() => process.exit(0));
});
