import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/config.ts';
import { startNode } from '../../src/node.ts';
import { createLogger } from '../../src/log.ts';
import { FakeEnvoy, secretsOf } from '../envoy/helpers/fake-envoy.ts';

test('node - logs are JSON; every key transition names its kid and validity; no private key or token in any line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-logs-'));
  const sink = new PassThrough();
  let out = '';
  sink.on('data', (d: Buffer) => (out += d));
  const cfg = parseConfig(
    'grpc:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nlogging:\n  level: debug\nsds:\n  registrations:\n    - {nodeId: e1, workloads: [spiffe://example.org/w]}\n',
    dir,
  );
  if (!cfg.ok) throw new Error(cfg.errors.join('; '));
  const node = await startNode(cfg.value, { logger: createLogger({ level: 'debug', destination: sink }) });
  t.teardown(() => node.close());
  const token = node.nodeTokens.issue('e1');
  const envoy = new FakeEnvoy(node.grpcAddress, { nodeId: 'e1', token });
  t.teardown(() => envoy.close());
  const s = envoy.open(['default']);
  t.truthy(secretsOf(await s.next()).get('default'));
  s.end();
  const x509 = node.ca.keys().find((k) => k.kind === 'x509' && k.status === 'active')!;
  await node.ca.taint('x509', x509.kid);
  // The taint's log line, however long a busy machine takes to write it.
  for (const end = Date.now() + 30_000; !out.includes('"type":"key-tainted"') && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));

  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const lifecycle = lines.filter((l) => l.msg === 'key lifecycle');
  t.true(lifecycle.length >= 3, 'prepare and activate of both kinds at start, then the taint');
  const taint = lifecycle.find((l) => l.type === 'key-tainted');
  t.is(taint?.kid, x509.kid);
  t.is(taint?.notAfter, new Date(x509.notAfter).toISOString());
  t.truthy(taint?.notBefore);
  t.false(out.includes('PRIVATE KEY'), 'no private key in the logs');
  t.false(out.includes(token), 'no node token in the logs');

  const metrics = await (await fetch(`${node.adminUrl}/metrics`)).text();
  t.regex(metrics, /wimse_issued_total\{kind="wic"\} [1-9]/);
  t.regex(metrics, /wimse_sds_pushes_total\{resource="default"\} [1-9]/);
});
