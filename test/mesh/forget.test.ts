/**
 * Forgetting a node that is gone (`wimsectl cluster forget`, the admin API's ForgetClusterNode):
 * real nodes, a real nats-server, a node in a process of its own killed with SIGKILL, and the
 * real wimsectl.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { adminClientConstructor } from '../../src/admin/api.ts';
import { startNatsServer } from '../helpers/nats-server.ts';
import { ROOT, startTs } from '../helpers/process.ts';
import { wimsectl } from '../admin/cli.ts';
import { AGING_TUNING, TUNING, converged, metricsText, recordingLogger, startMeshNode, trusts, until, type MeshNode } from './helpers.ts';

const SERVER = join(ROOT, 'src/cli/wimse-server.ts');

const tokenFileOf = (n: MeshNode): string => join(n.node.config.stateDir, 'admin-token');

/** One admin call to the node at `address` with `token`: the answer, or the gRPC error. */
async function adminCall(address: string, token: string, rpc: string, req: unknown = {}): Promise<{ code: number; res?: any; details?: string }> {
  const Ctor = adminClientConstructor();
  const client = new Ctor(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  try {
    const res = await new Promise<any>((resolve, reject) =>
      client[rpc](req, md, { deadline: Date.now() + 30_000 }, (e: unknown, r: unknown) => (e ? reject(e) : resolve(r))),
    );
    return { code: grpc.status.OK, res };
  } catch (e) {
    return { code: (e as grpc.ServiceError).code, details: (e as grpc.ServiceError).details };
  } finally {
    client.close();
  }
}

/** Is `token` accepted by `n`'s admin API? */
const accepts = async (n: MeshNode, token: string): Promise<boolean> => (await adminCall(n.node.grpcAddress, token, 'ListEntries')).code === grpc.status.OK;

/** `wimsectl cluster nodes -o json` against `n`: the node named `name`. */
async function listed(n: MeshNode, name: string): Promise<Record<string, any> | undefined> {
  const ran = await wimsectl(['--server', n.node.grpcAddress, '--token-file', tokenFileOf(n), 'cluster', 'nodes', '-o', 'json']);
  if (ran.code !== 0) throw new Error(`wimsectl cluster nodes: ${ran.stderr}`);
  return (JSON.parse(ran.stdout) as { nodes: Array<Record<string, any>> }).nodes.find((x) => x.node === name);
}

/** A wimse-server process named `name` on `servers`, state in `dir`: kill it with SIGKILL. */
function processNode(t: ExecutionContext, name: string, servers: string[]) {
  const dir = mkdtempSync(join(tmpdir(), `wimse-mesh-${name}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'node.yaml');
  writeFileSync(
    file,
    `nodeName: ${name}
stateDir: ${join(dir, 'state')}
grpc:
  listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
cluster:
  servers: [${servers.join(', ')}]
  reconcileInterval: 1s
logging:
  level: warn
`,
  );
  return {
    tokenFile: join(dir, 'state', 'admin-token'),
    async start() {
      const { child, stdout } = await startTs(SERVER, ['--config', file], /admin HTTP: (http:\S+)/);
      t.teardown(() => void child.kill('SIGKILL'));
      return { child, address: /gRPC \([^)]*\): (\S+)/.exec(stdout())![1]!, stdout };
    },
  };
}

test('mesh forget - a node killed with SIGKILL is forgotten through wimsectl: its admin token is refused everywhere, a waiting activation passes the gate, and it re-joins when it restarts', async (t) => {
  const nats = await startNatsServer(t);
  const servers = [nats.url];
  const log1 = recordingLogger();
  const log2 = recordingLogger();
  // A node is no longer live 2 s after its last heartbeat; an activation would wait 10 minutes
  // for a missing node, far beyond every wait of this test.
  const n1 = await startMeshNode(t, { name: 'cp-1', servers, tuning: AGING_TUNING, activationTimeout: '10m', logger: log1.logger });
  const n2 = await startMeshNode(t, { name: 'cp-2', servers, tuning: AGING_TUNING, activationTimeout: '10m', logger: log2.logger });
  await converged([n1.node, n2.node]);
  const p3 = processNode(t, 'cp-3', servers);
  let cp3 = await p3.start();
  const token3 = readFileSync(p3.tokenFile, 'utf8').trim();
  for (const n of [n1, n2]) {
    await until(`${n.name} trusts cp-3's keys`, () => n.node.ca.keys().some((k) => k.origin === 'cp-3'));
    await until(`${n.name} accepts cp-3's admin token`, () => accepts(n, token3));
  }
  const cp3Kids = n1.node.ca.keys().filter((k) => k.origin === 'cp-3').map((k) => k.kid);

  const exited = new Promise((r) => cp3.child.once('exit', r));
  cp3.child.kill('SIGKILL');
  await exited;

  // Killed, not stopped: its heartbeat and admin token stay on the bus. Its admin token still
  // works on the other nodes, and an activation waits for it.
  for (const n of [n1, n2]) t.true(await accepts(n, token3), `${n.name} still accepts the killed node's admin token`);
  t.like(await listed(n1, 'cp-3'), { countsAtGate: true, adminToken: true, forgottenAt: null });
  const prepared = await n1.node.ca.prepare('wit');
  let activated = false;
  const activation = n1.node.ca.activate('wit').then((k) => {
    activated = true;
    return k;
  });
  await until('cp-2 reports the prepared key in its heartbeat', () =>
    n1.node.cluster.presence.nodes().some((n) => n.node === 'cp-2' && n.trustedKids.includes(prepared.kid)),
  );
  await until('the activation waits at the gate', async () => /^wimse_activation_gate_waiting 1$/m.test(await metricsText(n1.node)));
  t.deepEqual(n1.node.cluster.knownPeers(), ['cp-2', 'cp-3']);
  t.false(activated, 'the activation waits for the killed node');

  // Forgotten through cp-2, with the real wimsectl, once its heartbeat is out of cp-2's liveness window.
  await until('cp-3 is no longer live for cp-2', () => !n2.node.cluster.presence.liveNodes().some((n) => n.node === 'cp-3'));
  const forgot = await wimsectl(['--server', n2.node.grpcAddress, '--token-file', tokenFileOf(n2), 'cluster', 'forget', 'cp-3']);
  t.is(forgot.code, 0, forgot.stderr);
  t.regex(forgot.stdout, /^forgot cp-3: /);

  // The activation waiting on cp-1 passes the gate (its timeout is 10 minutes away).
  await until('the waiting activation completes', () => activated);
  t.is((await activation).kid, prepared.kid);
  t.is(n1.node.ca.slot('wit').current?.kid, prepared.kid);
  t.regex(await metricsText(n1.node), /^wimse_activation_gate_timeouts_total 0$/m);
  t.deepEqual(n1.node.cluster.knownPeers(), ['cp-2']);

  // Its admin token is refused on every node.
  for (const n of [n1, n2]) await until(`${n.name} refuses the forgotten node's admin token`, async () => !(await accepts(n, token3)));
  const refused = await adminCall(n1.node.grpcAddress, token3, 'ListEntries');
  t.is(refused.code, grpc.status.UNAUTHENTICATED);
  for (const n of [n1, n2]) {
    const row = await listed(n, 'cp-3');
    t.like(row, { self: false, live: false, countsAtGate: false, adminToken: false, forgottenBy: 'cp-2' }, n.name);
    t.true(row!.journaledKeys > 0, `${n.name} keeps cp-3's public keys`);
  }
  // Its public keys stay trusted until they expire: workloads may hold credentials it signed.
  for (const kid of cp3Kids) t.true(trusts(n1.node, kid) && trusts(n2.node, kid));

  // A new activation elsewhere passes the gate without waiting for the forgotten node.
  await n2.node.ca.prepare('x509');
  const k2 = await n2.node.ca.activate('x509');
  t.is(n2.node.ca.slot('x509').current?.kid, k2.kid);
  t.regex(await metricsText(n2.node), /^wimse_activation_gate_timeouts_total 0$/m);

  // Logged at warn on the node that served the call: what was forgotten, with whose admin token.
  const line = log2.lines().find((l) => /^cluster node forgotten/.test(l.msg));
  t.like(line, { level: 40, node: 'cp-3', changed: true, adminTokenOf: 'cp-2' });
  t.truthy(line?.peer);
  // Forgetting it again changes nothing.
  const again = await wimsectl(['--server', n1.node.grpcAddress, '--token-file', tokenFileOf(n1), '-o', 'json', 'cluster', 'forget', 'cp-3']);
  t.is(again.code, 0, again.stderr);
  t.deepEqual(JSON.parse(again.stdout), { forgotten: { node: 'cp-3', changed: false, lastHeartbeatAt: null } });

  // The forgotten node restarts with the same state: it writes its records again and re-joins.
  cp3 = await p3.start();
  const restarted = cp3;
  await until('cp-3 says it was forgotten and joins again', () => /this node was forgotten by an operator/.test(restarted.stdout()));
  for (const n of [n1, n2]) await until(`${n.name} accepts the restarted node's admin token`, () => accepts(n, token3));
  await until('cp-3 counts at cp-1\'s gate again', async () => (await listed(n1, 'cp-3'))?.countsAtGate === true);
  t.like(await listed(n1, 'cp-3'), { adminToken: true, forgottenAt: null });
});

test('mesh forget - refused for a live node, for the node serving the call, for an unknown node and while the bus is down; a node stopped cleanly can be forgotten, once', async (t) => {
  const nats = await startNatsServer(t);
  const servers = [nats.url];
  // Nodes stay live for 30 s after their last heartbeat (TUNING): a loaded machine never makes one look gone.
  const nodes = await Promise.all(['cp-1', 'cp-2', 'cp-3'].map((name) => startMeshNode(t, { name, servers, tuning: TUNING })));
  await converged(nodes.map((n) => n.node));
  const [n1, n2, n3] = nodes as [MeshNode, MeshNode, MeshNode];
  const token1 = readFileSync(tokenFileOf(n1), 'utf8').trim();
  const forget = (node: string) => adminCall(n1.node.grpcAddress, token1, 'ForgetClusterNode', { node });

  const live = await forget('cp-2');
  t.is(live.code, grpc.status.FAILED_PRECONDITION);
  t.regex(live.details!, /^"cp-2" is alive: its last heartbeat is \d+ s old, within the 30 s liveness window of the activation gate/);
  const self = await forget('cp-1');
  t.is(self.code, grpc.status.FAILED_PRECONDITION);
  t.regex(self.details!, /^"cp-1" is this node, the one serving the call: a node cannot forget itself/);
  const unknown = await forget('cp-9');
  t.is(unknown.code, grpc.status.NOT_FOUND);
  t.regex(unknown.details!, /^no node named "cp-9" is known to cp-1/);
  const invalid = await forget('not a node');
  t.is(invalid.code, grpc.status.INVALID_ARGUMENT);
  // Nothing was written: cp-2's admin token is still accepted everywhere.
  const token2 = readFileSync(tokenFileOf(n2), 'utf8').trim();
  t.true(await accepts(n3, token2));
  t.like(await listed(n1, 'cp-2'), { live: true, countsAtGate: true, adminToken: true });
  t.like(await listed(n1, 'cp-1'), { self: true, live: true, countsAtGate: false, adminToken: true });

  // A node stopped cleanly has left the gate, but its admin token is still accepted: forget it.
  const token3 = readFileSync(tokenFileOf(n3), 'utf8').trim();
  await n3.stop();
  await until('cp-3 no longer counts at cp-1\'s gate', () => !n1.node.cluster.knownPeers().includes('cp-3'));
  t.true(await accepts(n2, token3));
  const first = await forget('cp-3');
  t.is(first.code, grpc.status.OK, first.details);
  t.like(first.res, { node: 'cp-3', changed: true, last_heartbeat_ms: 0 });
  await until('cp-2 refuses cp-3\'s admin token', async () => !(await accepts(n2, token3)));
  const second = await forget('cp-3');
  t.like(second.res, { node: 'cp-3', changed: false });

  // With the bus down a node cannot confirm what it would act on: refused.
  await nats.kill();
  await until('cp-1 has lost the bus', () => !n1.node.cluster.bus.connected);
  const down = await forget('cp-3');
  t.is(down.code, grpc.status.FAILED_PRECONDITION);
  t.regex(down.details!, /^cp-1 cannot confirm the cluster's state \(the cluster bus is not connected\)/);
});

test('mesh forget - a node forgotten while it still runs (its heartbeats looked old: its clock is behind) writes its records again and re-joins', async (t) => {
  const nats = await startNatsServer(t);
  const servers = [nats.url];
  const log2 = recordingLogger();
  const n1 = await startMeshNode(t, { name: 'cp-1', servers, tuning: AGING_TUNING });
  // cp-2's clock is a minute behind: to cp-1 its heartbeats are a minute old, outside the 2 s window.
  const behind = { now: () => Date.now() - 60_000 };
  const n2 = await startMeshNode(t, { name: 'cp-2', servers, tuning: AGING_TUNING, clock: behind, logger: log2.logger });
  await converged([n1.node, n2.node]);
  const token2 = readFileSync(tokenFileOf(n2), 'utf8').trim();
  await until('cp-1 accepts cp-2\'s admin token', () => accepts(n1, token2));
  t.false(n1.node.cluster.presence.liveNodes().some((n) => n.node === 'cp-2'));

  const forgot = await wimsectl(['--server', n1.node.grpcAddress, '--token-file', tokenFileOf(n1), '-o', 'json', 'cluster', 'forget', 'cp-2']);
  t.is(forgot.code, 0, forgot.stderr);
  t.like(JSON.parse(forgot.stdout), { forgotten: { node: 'cp-2', changed: true } });
  // cp-2 hears that it was forgotten, says so, and writes its heartbeat and admin token anew.
  await until('cp-2 warns that it was forgotten', () => log2.lines().some((l) => l.level === 40 && /^this node was forgotten by an operator/.test(l.msg) && l.by === 'cp-1'));
  await until('cp-1 accepts cp-2\'s admin token again', () => accepts(n1, token2));
  await until('cp-2 counts at cp-1\'s gate again', () => n1.node.cluster.knownPeers().includes('cp-2'));
  t.like(await listed(n1, 'cp-2'), { adminToken: true, countsAtGate: true, forgottenAt: null });
});
