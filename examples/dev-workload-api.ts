/**
 * A development Workload API on loopback, for trying the SDK examples without a full node:
 * the project's Workload API service backed by a real Identity Server (src/ca) in a temporary
 * state directory. Every identifier of its trust domain is granted to the one node token; a
 * real node grants identities by registration entries instead.
 *
 *   WIMSE_NODE_TOKEN=dev-token node --import=tsx examples/dev-workload-api.ts
 *
 * Env: WIMSE_NODE_TOKEN (default dev-token), WIMSE_TRUST_DOMAIN (default example.org),
 * WIMSE_LISTEN (default 127.0.0.1:0; `unix:/path` works too).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { IdentityServer } from '../src/ca/index.ts';
import { systemClock } from '../src/identity/clock.ts';
import { hashToken, NodeTokenStore } from '../src/identity/node-tokens.ts';
import { trustDomainOf } from '../src/identity/workload-id.ts';
import { createLogger } from '../src/log.ts';
import { WorkloadApiServer } from '../src/workload-api/server.ts';

const token = process.env.WIMSE_NODE_TOKEN ?? 'dev-token';
const trustDomain = process.env.WIMSE_TRUST_DOMAIN ?? 'example.org';
const listen = process.env.WIMSE_LISTEN ?? '127.0.0.1:0';

const stateDir = await mkdtemp(join(tmpdir(), 'wimse-dev-'));
const ca = await IdentityServer.open({ stateDir, trustDomain, clock: systemClock, witTtlSec: 3600 });
// The one node token, known by its digest as a node's token store knows its tokens.
const tokens = new NodeTokenStore([{ nodeId: 'dev-node', sha256: hashToken(token) }]);

const server = new grpc.Server();
const api = new WorkloadApiServer({
  auth: { tokens },
  entitled: (_caller, id) => trustDomainOf(id) === trustDomain,
  mintWit: async (sub, jwk) => {
    const w = await ca.mintWit({ sub, cnf: jwk });
    return { token: w.token, exp: w.exp };
  },
  bundles: () => ca.bundles(),
  onBundlesChange: (l) => ca.onChange((e) => e.type === 'bundle-changed' && l()),
  clock: systemClock,
  logger: createLogger({ level: 'warn' }),
});
api.register(server);
const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
);
ca.start();
const address = listen.startsWith('unix:') ? listen : `${listen.slice(0, listen.lastIndexOf(':'))}:${port}`;
console.log(`workload api listening on ${address} (trust domain ${trustDomain})`);

const stop = async () => {
  api.close();
  server.forceShutdown();
  await ca.close();
  await rm(stateDir, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
