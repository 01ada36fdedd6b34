import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { startNatsCluster, startNatsServer } from '../helpers/nats-server.ts';
import { FakeEnvoy, secretsOf } from '../envoy/helpers/fake-envoy.ts';
import { spiffeBundlesOf } from '../envoy/helpers/verify.ts';
import { NatsBus } from '../../src/cluster/index.ts';
import { jwkThumbprint } from '../../src/ca/index.ts';
import { A, callerHeaders, checkRequest, converged, metricsText, policyFor, startMeshNode, trusts, until } from './helpers.ts';

const kidOfCert = (c: X509Certificate): string => {
  const j = c.publicKey.export({ format: 'jwk' }) as Record<string, string>;
  return jwkThumbprint({ kty: 'EC', crv: 'P-256', x: j.x!, y: j.y! });
};

test('mesh - a rotation on one node reaches the others (SDS push, ext_authz) before it activates', async (t) => {
  const nats = await startNatsCluster(t, 3);
  const servers = nats.map((s) => s.url);
  const policy = policyFor([A]);
  const [n1, n2, n3] = await Promise.all(['cp-1', 'cp-2', 'cp-3'].map((name) => startMeshNode(t, { name, servers, policy })));
  const nodes = [n1!.node, n2!.node, n3!.node];
  await converged(nodes);

  // An Envoy on node 2 watches the trust bundle (validation context).
  const token = n2!.node.nodeTokens.issue('sidecar-b');
  const envoy = new FakeEnvoy(n2!.node.grpcAddress, { nodeId: 'sidecar-b', token });
  t.teardown(() => envoy.close());
  const all = envoy.open(['ALL']);
  const first = await all.next();
  all.ack(first);

  // Where each peer first saw the new keys, and when node 1 activated them.
  const seen = new Map<string, number>();
  for (const n of [n2!, n3!])
    n.node.ca.onChange(() => {
      for (const k of n.node.ca.keys()) if (!seen.has(`${n.name}/${k.kid}`)) seen.set(`${n.name}/${k.kid}`, performance.now());
    });
  const activatedAt = new Map<string, number>();
  n1!.node.ca.onChange((e) => e.type === 'key-activated' && activatedAt.set(e.kid, performance.now()));

  const x509 = await n1!.node.ca.prepare('x509');
  const wit = await n1!.node.ca.prepare('wit');
  // activate() is gated: it resolves only once every live node trusts the key.
  await Promise.all([n1!.node.ca.activate('x509'), n1!.node.ca.activate('wit')]);
  for (const kid of [x509.kid, wit.kid]) {
    t.true(trusts(n2!.node, kid) && trusts(n3!.node, kid), 'peers trust the key when it becomes active');
    for (const peer of ['cp-2', 'cp-3']) t.true(seen.get(`${peer}/${kid}`)! < activatedAt.get(kid)!, `${peer} had ${kid} before activation`);
  }

  // Node 2's SDS stream pushed a validation context holding node 1's new root.
  let roots: string[] = [];
  await until('node 2 SDS pushes the new root', async () => {
    const r = await all.next();
    all.ack(r);
    roots = (spiffeBundlesOf(secretsOf(r).get('ALL')!).get('example.org') ?? []).map(kidOfCert);
    return roots.includes(x509.kid);
  });
  t.true(roots.includes(x509.kid));

  // A WIT signed by node 1's new key is accepted by nodes 2 and 3 at once.
  const caller = await callerHeaders(n1!.node);
  t.is(caller.kid, wit.kid);
  t.is((await n2!.check(checkRequest(caller.fresh()))).status.code, 0);
  t.is((await n3!.check(checkRequest(caller.fresh()))).status.code, 0);
  t.regex(await metricsText(n2!.node), /wimse_bus_connected 1/);
  t.regex(await metricsText(n2!.node), /wimse_bus_propagation_lag_seconds_count [1-9]/);
  all.end();
});

test('mesh - activation waits for a live node that lacks the key, then activates with a warning metric', async (t) => {
  const nats = await startNatsServer(t);
  const servers = [nats.url];
  const n1 = await startMeshNode(t, { name: 'cp-1', servers, activationTimeout: '1500ms' });
  // A live node that never takes the key in: a heartbeat with an empty bundle.
  const ghost = new NatsBus({ trustDomain: 'example.org', nodeName: 'cp-ghost', servers, reconcileIntervalMs: 0 });
  await ghost.start();
  t.teardown(() => ghost.close());
  const beat = () => ghost.put('nodes', 'cp-ghost', { node: 'cp-ghost', lastSeen: Date.now(), trustedKids: [] });
  await beat();
  const timer = setInterval(() => void beat(), 200);
  t.teardown(() => clearInterval(timer));
  await until('node 1 sees the ghost', () => n1.node.cluster.presence.liveNodes().some((n) => n.node === 'cp-ghost'));

  const prepared = await n1.node.ca.prepare('wit');
  const started = Date.now();
  await n1.node.ca.activate('wit');
  const waited = Date.now() - started;
  // A lower bound: the gate held the key back for its whole timeout (a busy machine only adds).
  t.true(waited >= 1400, `activation waited ${waited} ms`);
  t.is(n1.node.ca.slot('wit').current?.kid, prepared.kid);
  t.deepEqual(n1.node.cluster.presence.report(prepared.kid).missing, ['cp-ghost']);
  t.regex(await metricsText(n1.node), /wimse_activation_gate_timeouts_total 1/);
});

test('mesh - a single node (no cluster section) activates at once and needs no bus to be ready', async (t) => {
  const { startTestNode } = await import('../helpers/node.ts');
  const { node } = await startTestNode(t);
  t.false(node.cluster.clustered);
  await node.ca.prepare('wit');
  const started = Date.now();
  await node.ca.activate('wit');
  // No gate: a gated activation would wait for cluster.activationTimeout (5 min by default).
  // The bound is far below that and far above what a busy machine needs for one activation.
  t.true(Date.now() - started < 30_000);
  t.deepEqual(node.readiness(), { ready: true, reasons: [] });
});

test('mesh - the rotators of three nodes with short key lifetimes: every new key is trusted everywhere before it signs', async (t) => {
  const nats = await startNatsServer(t);
  const servers = [nats.url];
  // Prepared 6 s into a key's life, activated at 15 s; the activation wait (12 s) and the
  // credentials (10 s) fit in the 15 s a key has left once its successor is active.
  const extraYaml = 'keys:\n  ttl: 30s\n  prepareAt: 0.2\n  activateAt: 0.5\n  rotationInterval: 100ms\ncredentials: {wicTtl: 10s, witTtl: 10s}\n';
  const nodes = await Promise.all(
    ['cp-1', 'cp-2', 'cp-3'].map((name) => startMeshNode(t, { name, servers, extraYaml, activationTimeout: '12s', policy: policyFor([A]) })),
  );
  const firstWit = nodes[0]!.node.ca.slot('wit').current!.kid;
  // At each activation anywhere, every other node must already trust the key.
  const checks: { node: string; kid: string; trustedBy: string[] }[] = [];
  for (const n of nodes)
    n.node.ca.onChange((e) => {
      if (e.type !== 'key-activated') return;
      checks.push({ node: n.name, kid: e.kid, trustedBy: nodes.filter((o) => o !== n && trusts(o.node, e.kid)).map((o) => o.name) });
    });
  await until('node 1 rotated its WIT key', () => nodes[0]!.node.ca.slot('wit').current?.kid !== firstWit, 60_000);
  t.true(checks.length >= 2);
  for (const c of checks) t.is(c.trustedBy.length, 2, `${c.node} activated ${c.kid} trusted by ${c.trustedBy.join(',')}`);
  const caller = await callerHeaders(nodes[0]!.node);
  t.not(caller.kid, firstWit);
  for (const n of nodes.slice(1)) t.is((await n.check(checkRequest(caller.fresh()))).status.code, 0);
});
