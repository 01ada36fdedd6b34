import test from 'ava';
import { envoyProtos, TYPE_URL } from '../../src/envoy/protos.ts';
import { ResponseEncoder } from '../../src/envoy/sds-response.ts';
import { rootCaSecret, decodeSecret } from '../../src/envoy/sds-secrets.ts';
import { TestAuthority } from './helpers/test-source.ts';

test('sds response - one encoding per content, each stream appending its own nonce', async (t) => {
  const ca = await TestAuthority.create('example.org', 'k1', Date.now());
  const built = rootCaSecret('ROOTCA', { trustDomain: 'example.org', x509Authorities: [ca.der], witKeys: [] });
  if (!built.ok) return t.fail(built.errors.join());
  const enc = new ResponseEncoder('cp-1');
  const decode = envoyProtos().SecretDiscoveryService.StreamSecrets!.responseDeserialize;
  for (const nonce of ['a1b2', 'n'.repeat(300)]) {
    const r = decode(enc.encode([built.value], 'v1', nonce)) as any;
    t.is(r.nonce, nonce);
    t.is(r.version_info, 'v1');
    t.is(r.type_url, TYPE_URL.secret);
    t.is(r.control_plane.identifier, 'cp-1');
    t.is(r.resources.length, 1);
    t.is(decodeSecret(r.resources[0]).name, 'ROOTCA');
  }
});
