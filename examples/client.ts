/**
 * A workload calling another one at the application level: it gets its WIT from the Workload
 * API, then calls the server once with a WPT and once with an HTTP message signature, asking
 * for (and verifying) a signed response.
 *
 *   WIMSE_WORKLOAD_API=127.0.0.1:PORT SERVER_URL=http://127.0.0.1:8080 node --import=tsx examples/client.ts
 *
 * Env: WIMSE_WORKLOAD_API (required), SERVER_URL (required), WIMSE_NODE_TOKEN or
 * WIMSE_NODE_TOKEN_FILE, WIMSE_WORKLOAD_ID (default spiffe://example.org/ns/demo/sa/client),
 * WIMSE_EXPECTED_SERVER (the identity the signed response must come from, optional).
 */
import { WorkloadClient } from '../src/sdk/index.ts';

const address = process.env.WIMSE_WORKLOAD_API;
const serverUrl = process.env.SERVER_URL;
if (!address || !serverUrl) throw new Error('set WIMSE_WORKLOAD_API and SERVER_URL');

const identity = new WorkloadClient({
  address,
  workloadId: process.env.WIMSE_WORKLOAD_ID ?? 'spiffe://example.org/ns/demo/sa/client',
  ...(process.env.WIMSE_NODE_TOKEN_FILE ? { nodeTokenFile: process.env.WIMSE_NODE_TOKEN_FILE } : { nodeToken: process.env.WIMSE_NODE_TOKEN ?? 'dev-token' }),
});
try {
  const cred = await identity.start();
  console.log(`got a WIT for ${cred.workloadId}, valid until ${new Date(cred.expiresAt * 1000).toISOString()}`);
  await identity.waitForBundles(); // to verify the server's WIT on signed responses

  const a = await identity.fetch(new URL('/hello?via=wpt', serverUrl), {}, { mode: 'wpt' });
  console.log(`wpt: ${a.status} ${await a.text()}`);

  const b = await identity.fetch(new URL('/hello', serverUrl), { method: 'POST', body: 'ping', headers: { 'content-type': 'text/plain' } }, {
    mode: 'httpsig',
    signResponse: true,
    ...(process.env.WIMSE_EXPECTED_SERVER ? { expectedServer: process.env.WIMSE_EXPECTED_SERVER } : {}),
  });
  console.log(`httpsig: ${b.status} ${await b.text()} (response signed by ${b.wimse.server})`);
} finally {
  await identity.close();
}
