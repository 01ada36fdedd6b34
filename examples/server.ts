/**
 * A workload serving HTTP without Envoy in front: it gets its own WIT from the Workload API (to
 * sign responses), watches the trust bundles, and authenticates every caller with the SDK
 * middleware (WIT+WPT or WIT+HTTP signature).
 *
 *   WIMSE_WORKLOAD_API=127.0.0.1:PORT WIMSE_NODE_TOKEN=dev-token node --import=tsx examples/server.ts
 *
 * Env: WIMSE_WORKLOAD_API (required), WIMSE_NODE_TOKEN or WIMSE_NODE_TOKEN_FILE,
 * WIMSE_WORKLOAD_ID (default spiffe://example.org/ns/demo/sa/server), PORT (default 0: any),
 * PUBLIC_ORIGIN (the origin clients address, default http://127.0.0.1:<port>).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WorkloadClient, wimseMiddleware, type WimseIncomingMessage } from '../src/sdk/index.ts';

const address = process.env.WIMSE_WORKLOAD_API;
if (!address) throw new Error('set WIMSE_WORKLOAD_API to the Workload API address (host:port or unix:/path)');

const identity = new WorkloadClient({
  address,
  workloadId: process.env.WIMSE_WORKLOAD_ID ?? 'spiffe://example.org/ns/demo/sa/server',
  ...(process.env.WIMSE_NODE_TOKEN_FILE ? { nodeTokenFile: process.env.WIMSE_NODE_TOKEN_FILE } : { nodeToken: process.env.WIMSE_NODE_TOKEN ?? 'dev-token' }),
  onError: (e) => console.error(`identity: ${e.message}`),
});
await identity.start();
await identity.waitForBundles();

let authenticate: ReturnType<typeof wimseMiddleware> | undefined;
const server = createServer((req, res) =>
  authenticate!(req, res, () => {
    const { caller, via } = (req as WimseIncomingMessage).wimse!;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ hello: caller, via, path: req.url }));
  }),
);
await new Promise<void>((r) => server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', r));
const origin = process.env.PUBLIC_ORIGIN ?? `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

authenticate = wimseMiddleware({
  bundles: () => identity.bundles(),
  // Trusted configuration: the origin clients use; never the Host header.
  origins: [origin],
  credential: () => identity.credential,
  onDenied: (err) => console.error(`denied: ${err.code}`),
});
console.log(`server ${identity.workloadId} listening on ${origin}`);

const stop = async () => {
  server.close();
  await identity.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
