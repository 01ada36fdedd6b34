/**
 * Failure behaviour against real nats-server processes: a JetStream cluster losing a server while
 * changes flow, and the whole of NATS going away and coming back.
 */
import test from 'ava';
import { NatsBus, type NatsBusOptions } from '../../src/cluster/index.ts';
import { startNatsCluster, startNatsServer } from '../helpers/nats-server.ts';
import { eventually, keyRecord, policyRecord, sleep } from './fixtures.ts';

let n = 0;
const opts = (servers: string[], nodeName: string, td: string, extra: Partial<NatsBusOptions> = {}): NatsBusOptions => ({
  servers,
  trustDomain: td,
  nodeName,
  requestTimeoutMs: 1_500,
  retryMs: 200,
  reconcileIntervalMs: 2_000,
  startTimeoutMs: 15_000,
  ...extra,
});

test('cluster nats faults - a 3-server JetStream cluster loses a server mid-stream: nodes continue and converge', async (t) => {
  t.timeout(60_000);
  const servers = await startNatsCluster(t, 3);
  const urls = servers.map((s) => s.url);
  const td = `faults${++n}-${process.pid}.example.org`;
  // Node i is pinned to server i first; the server under the writer n1 is the one that dies.
  const nodes = ['n1', 'n2', 'n3'].map((name, i) => new NatsBus(opts([...urls.slice(i), ...urls.slice(0, i)], name, td, { replicas: 3, preferListedOrder: true })));
  for (const b of nodes) t.teardown(() => b.close());
  await Promise.all(nodes.map((b) => b.start()));
  t.true(nodes.every((b) => b.connected));
  const [n1, n2, n3] = nodes as [NatsBus, NatsBus, NatsBus];
  const writes: Promise<number>[] = [];
  for (let i = 1; i <= 30; i++) {
    writes.push(n1.put('policy', 'current', policyRecord(`v${i}`)));
    writes.push(n2.put('keys', `n2/k${i}`, keyRecord('n2', `k${i}`)));
    if (i === 10) await servers[0]!.kill();
    await sleep(20);
  }
  await Promise.all(writes);
  await eventually(
    'all nodes converge on v30 and 30 keys of n2, nothing pending',
    () => nodes.every((b) => b.get('policy', 'current')?.record.version === 'v30' && b.list('keys').length === 30 && b.stats().pending === 0),
    40_000,
  );
  const rev = n1.get('policy', 'current')!.revision;
  t.true(rev > 0);
  t.is(n3.get('policy', 'current')?.revision, rev);
  t.is(n2.get('policy', 'current')?.revision, rev);
  t.true(nodes.every((b) => b.connected));
});

test('cluster nats faults - the whole of NATS down: nodes keep their state, report disconnected, then reconnect and converge', async (t) => {
  t.timeout(60_000);
  const server = await startNatsServer(t, 'solo');
  const td = `outage${++n}-${process.pid}.example.org`;
  const nodes = ['a', 'b', 'c'].map((name) => new NatsBus(opts([server.url], name, td)));
  for (const b of nodes) t.teardown(() => b.close());
  await Promise.all(nodes.map((b) => b.start()));
  const [a, b, c] = nodes as [NatsBus, NatsBus, NatsBus];
  const transitions: boolean[] = [];
  c.onConnectionChange((x) => transitions.push(x));
  await a.put('keys', 'a/k1', keyRecord('a', 'k1'));
  await eventually('c has a/k1', () => c.get('keys', 'a/k1') !== undefined);

  await server.kill();
  await eventually('all disconnected', () => nodes.every((x) => !x.connected));
  // State survives the outage, and writes made during it are kept locally.
  t.truthy(c.get('keys', 'a/k1'));
  t.is(await a.put('keys', 'a/k2', keyRecord('a', 'k2', { state: 'prepared' })), 0);
  t.is(await b.put('registrations', 'web', { id: 'web', workloadId: 'spiffe://example.org/web', selectors: ['unix:uid:1000'] }), 0);
  t.is(a.stats().pending, 1);
  await sleep(500);

  await server.start();
  await eventually(
    'reconnected and converged',
    () => nodes.every((x) => x.connected && x.stats().pending === 0 && x.get('keys', 'a/k2') !== undefined && x.get('registrations', 'web') !== undefined),
    20_000,
  );
  t.deepEqual(transitions, [false, true]);
  t.is(c.get('keys', 'a/k2')?.revision, a.get('keys', 'a/k2')?.revision);
});
