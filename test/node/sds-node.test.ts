import test from 'ava';
import { startTestNode } from '../helpers/node.ts';
import { FakeEnvoy, secretsOf } from '../envoy/helpers/fake-envoy.ts';
import { tlsCertificateOf, spiffeBundlesOf, keyMatches, verifiesTo } from '../envoy/helpers/verify.ts';

const REG = `sds:
  registrations:
    - nodeId: sidecar-a
      workloads: [spiffe://example.org/ns/shop/sa/a]
`;

test('node SDS - an Envoy with a valid node token gets its WIC and the trust bundle', async (t) => {
  const { node } = await startTestNode(t, { yaml: REG });
  const token = node.nodeTokens.issue('sidecar-a');
  const envoy = new FakeEnvoy(node.grpcAddress, { nodeId: 'sidecar-a', token });
  t.teardown(() => envoy.close());
  const def = envoy.open(['default']);
  const all = envoy.open(['ALL']);
  const leaf = tlsCertificateOf(secretsOf(await def.next()).get('default')!);
  const bundles = spiffeBundlesOf(secretsOf(await all.next()).get('ALL')!);
  t.true(keyMatches(leaf));
  t.true(verifiesTo(leaf, bundles.get('example.org')!));
  t.deepEqual(leaf.uriSans, ['spiffe://example.org/ns/shop/sa/a']);
  const metrics = await (await fetch(`${node.adminUrl}/metrics`)).text();
  t.regex(metrics, /wimse_sds_streams 2/);
  def.end();
  all.end();
});

test('node SDS - without a node token the stream is refused', async (t) => {
  const { node } = await startTestNode(t, { yaml: REG });
  const envoy = new FakeEnvoy(node.grpcAddress, { nodeId: 'sidecar-a' });
  t.teardown(() => envoy.close());
  const s = envoy.open(['default']);
  const status = await s.status;
  t.is(status.code, 16); // UNAUTHENTICATED
});
