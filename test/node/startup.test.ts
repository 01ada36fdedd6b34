import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/config.ts';
import { startNode } from '../../src/node.ts';
import { silentLogger } from '../../src/log.ts';

const listen = (s: Server, port = 0) => new Promise<number>((r) => s.listen(port, '127.0.0.1', () => r((s.address() as { port: number }).port)));

test('node - a start that fails late (admin port taken) closes what it opened, so the same ports and state start next time', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-startup-'));
  const blocker = createServer();
  const adminPort = await listen(blocker);
  t.teardown(() => blocker.close());
  const probe = createServer();
  const grpcPort = await listen(probe);
  await new Promise<void>((r) => probe.close(() => r()));
  const cfg = (admin: string) => {
    const r = parseConfig(`grpc:\n  listen: 127.0.0.1:${grpcPort}\nadmin:\n  listen: '${admin}'\n`, dir);
    if (!r.ok) throw new Error(r.errors.join('; '));
    return r.value;
  };
  // The gRPC listener is bound before the admin listener fails.
  await t.throwsAsync(startNode(cfg(`127.0.0.1:${adminPort}`), { logger: silentLogger() }));
  // Everything was released: the same gRPC port and state directory start again.
  const node = await startNode(cfg('127.0.0.1:0'), { logger: silentLogger() });
  t.teardown(() => node.close());
  t.is(node.grpcAddress, `127.0.0.1:${grpcPort}`);
  t.true(node.readiness().ready);
});
