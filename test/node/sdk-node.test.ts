import test from 'ava';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestNode } from '../helpers/node.ts';
import { WorkloadClient, wimseMiddleware, type WimseIncomingMessage } from '../../src/sdk/index.ts';

const A = 'wimse://example.org/svc/a';
const B = 'wimse://example.org/svc/b';
const REG = `sds:\n  registrations:\n    - {nodeId: host-a, workloads: [${A}]}\n    - {nodeId: host-b, workloads: [${B}]}\n`;

test('sdk on a real node - A gets its WIT from the node and calls B, whose middleware authenticates A (WPT and HTTP signature)', async (t) => {
  const { node } = await startTestNode(t, { yaml: REG });
  const a = new WorkloadClient({ address: node.grpcAddress, nodeToken: node.nodeTokens.issue('host-a'), workloadId: A });
  const b = new WorkloadClient({ address: node.grpcAddress, nodeToken: node.nodeTokens.issue('host-b'), workloadId: B });
  t.teardown(() => {
    a.close();
    b.close();
  });
  await Promise.all([a.start(), b.start()]);
  await b.waitForBundles();

  const seen: string[] = [];
  const authenticate = wimseMiddleware({ bundles: () => b.bundles(), audiences: ['https://b.example.org/orders'], credential: () => b.credential });
  const server = createServer((req, res) =>
    authenticate(req, res, () => {
      const w = (req as WimseIncomingMessage).wimse!;
      seen.push(`${w.via} ${w.caller}`);
      res.end('ok');
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/orders`;

  const viaWpt = await a.fetch(url, { method: 'GET' }, { mode: 'wpt', audience: 'https://b.example.org/orders' });
  t.is(viaWpt.status, 200);
  const viaSig = await a.fetch(url, { method: 'POST', body: '{"n":1}', headers: { 'content-type': 'application/json' } }, { mode: 'httpsig', audience: 'https://b.example.org/orders', signResponse: true });
  t.is(viaSig.status, 200);
  t.deepEqual(seen, [`wpt ${A}`, `httpsig ${A}`]);

  // A proof for another audience is refused (401 with the WPT challenge).
  const wrongAud = await a.fetch(url, { method: 'GET' }, { mode: 'wpt', audience: 'https://elsewhere.example.org/' });
  t.is(wrongAud.status, 401);
});
