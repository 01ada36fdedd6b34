import test from 'ava';
import { connect, type Msg } from 'nats';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNatsCluster, startNatsServer } from '../helpers/nats-server.ts';
import { ROOT, startTs } from '../helpers/process.ts';
import { A, AGING_TUNING, TUNING, authzClient, callerHeaders, checkRequest, converged, metricsText, policyFor, readyz, recordingLogger, sleep, startMeshNode, trusts, until } from './helpers.ts';

const CLI = join(ROOT, 'src/cli/wimse-server.ts');

test('mesh - a NATS server killed mid-rotation: the key still reaches every node and activates', async (t) => {
  const nats = await startNatsCluster(t, 3);
  const servers = nats.map((s) => s.url);
  // Nodes stay live through the fail-over (heartbeats may stall while JetStream elects a leader),
  // so the gate really waits for every node.
  const tuning = { ...TUNING, heartbeatTimeoutMs: 20_000 };
  const nodes = await Promise.all(['cp-1', 'cp-2', 'cp-3'].map((name) => startMeshNode(t, { name, servers, tuning })));
  await converged(nodes.map((n) => n.node));
  const [n1, n2, n3] = nodes;
  const prepared = n1!.node.ca.prepare('wit');
  await nats[0]!.kill();
  const { kid } = await prepared;
  await n1!.node.ca.activate('wit');
  // The gate was met (every node trusts the key), not given up on after activationTimeout.
  t.regex(await metricsText(n1!.node), /wimse_activation_gate_timeouts_total 0/);
  t.true(trusts(n2!.node, kid) && trusts(n3!.node, kid));
  t.is(n1!.node.ca.slot('wit').current?.kid, kid);
  const caller = await callerHeaders(n1!.node);
  t.is(caller.kid, kid);
});

test('mesh - the whole NATS down: nodes keep serving, /readyz is unready, then everything converges', async (t) => {
  const nats = await startNatsServer(t);
  const servers = [nats.url];
  const nodes = await Promise.all(['cp-1', 'cp-2', 'cp-3'].map((name) => startMeshNode(t, { name, servers, policy: policyFor([A]) })));
  await converged(nodes.map((n) => n.node));
  const [n1, n2, n3] = nodes;
  const caller = await callerHeaders(n1!.node);

  await nats.kill();
  for (const n of nodes) await until(`${n.name} sees the bus lost`, async () => (await readyz(n.node)).status === 503);
  t.deepEqual((await readyz(n2!.node)).body.reasons, ['bus not connected']);
  // Serving goes on with the state each node has.
  t.is((await n2!.check(checkRequest(caller.fresh()))).status.code, 0);
  // Changes made during the outage: a policy on node 1, a new key on node 3.
  n1!.node.policy.load(policyFor(['wimse://example.org/svc/other']), 'api');
  const k3 = await n3!.node.ca.prepare('x509');
  await sleep(300);
  t.not(n2!.node.policy.digest, n1!.node.policy.digest);

  await nats.start();
  const ms = await until('every node converges after the outage', async () =>
    nodes.every((n) => n.node.policy.digest === n1!.node.policy.digest && trusts(n.node, k3.kid)) &&
    (await Promise.all(nodes.map((n) => readyz(n.node)))).every((r) => r.status === 200), 20_000);
  t.log(`converged ${ms} ms after NATS came back`);
  t.is((await n2!.check(checkRequest(caller.fresh()))).denied_response?.status?.code, 'Forbidden');
});

test('mesh - a node restarted catches up; restarted while NATS is down it still trusts its peers from its journal', async (t) => {
  const nats = await startNatsServer(t);
  const servers = [nats.url];
  const policy = policyFor([A]);
  // Node 1's activation waits for node 3, which is down, until this timeout.
  const nodes = await Promise.all(['cp-1', 'cp-2', 'cp-3'].map((name) => startMeshNode(t, { name, servers, policy, activationTimeout: '3s' })));
  await converged(nodes.map((n) => n.node));
  const [n1, n2, n3] = nodes;

  // Node 3 is down while node 1 rotates and changes the policy.
  await n3!.stop();
  await n1!.node.ca.prepare('wit');
  await n1!.node.ca.activate('wit'); // node 3 is known but silent: the gate gives up after 3 s
  n1!.node.policy.load(policyFor([A, 'wimse://example.org/svc/other']), 'api');
  const back = await startMeshNode(t, { name: 'cp-3', servers, dir: n3!.dir, policy });
  await until('node 3 caught up', () => back.node.policy.digest === n1!.node.policy.digest && trusts(back.node, n1!.node.ca.slot('wit').current!.kid));
  const caller = await callerHeaders(n1!.node);
  t.is((await back.check(checkRequest(caller.fresh()))).status.code, 0);

  // Node 2 restarts with NATS down: its journal still holds node 1's public keys.
  await n2!.stop();
  await nats.kill();
  const cut = await startMeshNode(t, { name: 'cp-2', servers, dir: n2!.dir, policy });
  t.false(cut.node.cluster.bus.connected);
  t.is((await readyz(cut.node)).status, 503);
  t.true(trusts(cut.node, caller.kid));
  t.is((await cut.check(checkRequest(caller.fresh()))).status.code, 0);
  t.true(cut.node.ca.keys().some((k) => k.kid === caller.kid && k.origin === 'cp-1'));
});

test('mesh - a lost announcement is repaired; duplicated and reordered messages change nothing', async (t) => {
  const nats = await startNatsServer(t);
  const servers = [nats.url];
  let dropped = 0;
  const dropPolicy = { ...TUNING, nats: { ...TUNING.nats, testHooks: { dropAnnounce: (s: string) => s.includes('.policy.') && ++dropped > 0 } } };
  const n1 = await startMeshNode(t, { name: 'cp-1', servers, policy: policyFor([A]), tuning: dropPolicy });
  const n2 = await startMeshNode(t, { name: 'cp-2', servers, policy: policyFor([A]) });
  await converged([n1.node, n2.node]);

  // Record node 1's key announcements, then replay them twice, newest first.
  const nc = await connect({ servers });
  t.teardown(() => nc.close());
  const seen: Msg[] = [];
  const sub = nc.subscribe('wimse.example_2eorg.keys.cp-1', { callback: (_e, m) => seen.push(m) });
  await nc.flush();

  const dropsBefore = dropped;
  n1.node.policy.load(policyFor(['wimse://example.org/svc/other']), 'api');
  const ms = await until('node 2 repairs the lost policy announcement', () => n2.node.policy.digest === n1.node.policy.digest);
  t.true(dropped > dropsBefore, 'the announcement was dropped');
  t.log(`repaired in ${ms} ms`);

  const { kid } = await n1.node.ca.prepare('wit');
  await n1.node.ca.activate('wit');
  await n1.node.ca.taint('wit', kid);
  await until('node 2 sees the taint', () => n2.node.ca.keys().some((k) => k.kid === kid && k.status === 'tainted'));
  await sleep(200);
  sub.unsubscribe();
  t.true(seen.length >= 3);
  const stateOf = () => JSON.stringify(n2.node.ca.keys().filter((k) => k.origin === 'cp-1').map((k) => [k.kid, k.status]));
  const before = stateOf();
  for (const m of [...seen].reverse().concat(seen)) nc.publish(m.subject, m.data);
  await nc.flush();
  await sleep(500);
  t.is(stateOf(), before);
  t.true(n2.node.ca.keys().some((k) => k.kid === kid && k.status === 'tainted'));
});

test('mesh - a node process SIGKILLed and restarted reads its journal and catches up', async (t) => {
  const nats = await startNatsServer(t);
  const servers = [nats.url];
  const policy = policyFor([A]);
  const log = recordingLogger();
  // Node 3 (a process of its own) ages out of node 1's presence 2 s after it is killed.
  const n1 = await startMeshNode(t, { name: 'cp-1', servers, policy, activationTimeout: '3s', logger: log.logger, tuning: AGING_TUNING });
  const n2 = await startMeshNode(t, { name: 'cp-2', servers, policy });
  const dir = mkdtempSync(join(tmpdir(), 'wimse-mesh-proc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'policy.yaml'), policy);
  const file = join(dir, 'node.yaml');
  writeFileSync(file, `nodeName: cp-3
stateDir: ${join(dir, 'state')}
grpc:
  listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
policy:
  file: ${join(dir, 'policy.yaml')}
cluster:
  servers: [${servers.join(', ')}]
  reconcileInterval: 1s
logging:
  level: warn
`);
  const start = async () => {
    const { child, stdout } = await startTs(CLI, ['--config', file], /admin HTTP: (http:\S+)/);
    t.teardown(() => void child.kill('SIGKILL'));
    const address = /gRPC \([^)]*\): (\S+)/.exec(stdout())![1]!;
    // The proxy token issued on node 1 reaches node 3 over the bus (and its journal).
    const authz = authzClient(address, n1.proxyToken);
    t.teardown(() => authz.close());
    return { child, authz };
  };
  let p3 = await start();
  await until('node 1 trusts node 3', () => n1.node.ca.keys().some((k) => k.origin === 'cp-3'));
  const cp3Kids = n1.node.ca.keys().filter((k) => k.origin === 'cp-3').map((k) => k.kid);
  const before = await callerHeaders(n1.node);
  await until('node 3 accepts node 1\'s WIT', async () => (await p3.authz.check(checkRequest(before.fresh())).catch(() => undefined))?.status.code === 0);

  const exited = new Promise((r) => p3.child.once('exit', r));
  p3.child.kill('SIGKILL');
  await exited;
  const killedAt = Date.now();
  // While it is gone: node 1 rotates and widens the policy. Node 3's heartbeat ages out, but
  // its keys are journaled: the activation waits for it until the timeout, then warns and counts.
  await until('node 3 is no longer live for node 1', () => !n1.node.cluster.presence.liveNodes().some((n) => n.node === 'cp-3'));
  t.deepEqual(n1.node.cluster.knownPeers(), ['cp-2', 'cp-3']);
  const rotated = await n1.node.ca.prepare('wit');
  await n1.node.ca.activate('wit');
  t.is(n1.node.ca.slot('wit').current?.kid, rotated.kid);
  t.regex(await metricsText(n1.node), /^wimse_activation_gate_timeouts_total 1$/m);
  await until('the warning names node 3', () => log.lines().some((l) => /^ACTIVATING A KEY NOT YET TRUSTED/.test(l.msg) && l.missing.join() === 'cp-3'));
  n1.node.policy.load(policyFor([A], ['/orders/', '/admin/']), 'api');
  await until('node 2 has both', () => n2.node.policy.digest === n1.node.policy.digest);

  p3 = await start();
  const after = await callerHeaders(n1.node);
  t.not(after.kid, before.kid);
  await until('node 3 caught up', async () => (await p3.authz.check(checkRequest(after.fresh(), '/admin/x'))).status.code === 0);
  // Its own keys are the ones it had before the kill: the journal survived (a node with a fresh
  // journal would have replaced them on the bus, and node 1 would have dropped them).
  await until('node 3 heartbeats again', () => n1.node.cluster.presence.liveNodes().some((n) => n.node === 'cp-3' && (n.startedAt ?? 0) > killedAt));
  await sleep(300);
  const kidsNow = n1.node.ca.keys().filter((k) => k.origin === 'cp-3').map((k) => k.kid);
  t.deepEqual(kidsNow.sort(), cp3Kids.sort());
});
