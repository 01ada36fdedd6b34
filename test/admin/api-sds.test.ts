import test from 'ava';
import { startAdminNode, newDir } from './helpers.ts';
import { FakeEnvoy, secretsOf } from '../envoy/helpers/fake-envoy.ts';
import { tlsCertificateOf, spiffeBundlesOf } from '../envoy/helpers/verify.ts';

const ID = 'spiffe://example.org/ns/shop/sa/a';

test('admin API with SDS - an entry and a token made through the API serve an Envoy, also after a restart; revoking ends its stream', async (t) => {
  const dir = newDir();
  const a = await startAdminNode(t, dir);
  await a.call('CreateEntry', { node_id: 'sidecar-a', workloads: [ID] });
  const { token, token_id } = await a.call('CreateNodeToken', { node_id: 'sidecar-a' });
  await a.close();

  const b = await startAdminNode(t, dir);
  const envoy = new FakeEnvoy(b.node.grpcAddress, { nodeId: 'sidecar-a', token });
  t.teardown(() => envoy.close());
  const def = envoy.open(['default']);
  t.deepEqual(tlsCertificateOf(secretsOf(await def.next()).get('default')!).uriSans, [ID]);

  // Federation added through the API reaches the stream of ALL.
  const partner = await startAdminNode(t, newDir(), 'trustDomain: partner.example\n');
  const all = envoy.open(['ALL']);
  t.deepEqual([...spiffeBundlesOf(secretsOf(await all.next()).get('ALL')!).keys()], ['example.org']);
  await b.call('AddFederation', { trust_domain: 'partner.example', bundle_json: (await partner.call('GetBundle', { trust_domain: 'partner.example' })).text });
  const pushed = secretsOf(await all.next()).get('ALL')!;
  t.deepEqual([...spiffeBundlesOf(pushed).keys()].sort(), ['example.org', 'partner.example']);

  await b.call('RevokeNodeToken', { token_id });
  const status = await def.status;
  t.is(status.code, 16); // UNAUTHENTICATED: the revoked token's stream is ended
});
