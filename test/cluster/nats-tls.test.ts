/** The NATS security options against a real TLS-only nats-server: the CA file is what lets a node in. */
import 'reflect-metadata';
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsBus } from '../../src/cluster/index.ts';
import { makeNatsPki } from '../helpers/nats-pki.ts';
import { startNatsServer } from '../helpers/nats-server.ts';
import { eventually, policyRecord, sleep } from './fixtures.ts';

test('cluster nats tls - nodes that trust the server CA connect and share state; a node with another CA never connects', async (t) => {
  t.timeout(60_000);
  const dir = await mkdtemp(join(tmpdir(), 'wimse-nats-tls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pki = await makeNatsPki(dir);
  const server = await startNatsServer(t, 'tls', ['--tls', '--tlscert', pki.certFile, '--tlskey', pki.keyFile]);
  t.true(server.url.startsWith('tls://'));
  const mk = (nodeName: string, tlsCaFile: string, startTimeoutMs = 10_000) =>
    new NatsBus({ servers: [server.url], trustDomain: 'tls.example.org', nodeName, tlsCaFile, startTimeoutMs, reconnectWaitMs: 100 });
  const a = mk('a', pki.caFile);
  const b = mk('b', pki.caFile);
  const mallory = mk('mallory', pki.otherCaFile, 500);
  for (const x of [a, b, mallory]) t.teardown(() => x.close());
  await Promise.all([a.start(), b.start(), mallory.start()]);
  t.true(a.connected && b.connected);
  t.false(mallory.connected);
  await a.put('policy', 'current', policyRecord('over-tls'));
  await eventually('b has the policy', () => b.get('policy', 'current') !== undefined);
  t.is(b.get('policy', 'current')?.record.version, 'over-tls');
  await sleep(300);
  t.false(mallory.connected);
  t.is(mallory.get('policy', 'current'), undefined);
});
