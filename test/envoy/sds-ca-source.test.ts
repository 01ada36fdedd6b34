import test from 'ava';
import { CaSecretSource, checkRegistrations, type CaChangeEvent, type CaFacade } from '../../src/envoy/sds-ca-source.ts';
import type { SecretSourceEvent } from '../../src/envoy/sds-source.ts';

const ORDERS = 'spiffe://example.org/ns/shop/sa/orders';

/** Records what the adapter asks of the CA; emits CA events on demand. */
function recordingCa() {
  const listeners = new Set<(e: CaChangeEvent) => void>();
  const requests: unknown[] = [];
  const ca: CaFacade = {
    trustDomain: 'example.org',
    bundles: () => new Map(),
    issueWic: async (req) => {
      requests.push(req);
      return { chainPem: 'chain', privateKeyPem: 'key', notBefore: 1, notAfter: 2, caKid: 'k1' };
    },
    onChange: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  return { ca, requests, emit: (e: CaChangeEvent) => listeners.forEach((l) => l(e)) };
}

test('sds ca source - registration entries are checked with field paths', (t) => {
  const r = checkRegistrations('example.org', [
    { nodeId: 'a', workloads: [ORDERS] },
    { nodeId: 'a', workloads: ['spiffe://other.org/x', 'spiffe://example.org/a/../b'] },
    { nodeId: 'b', workloads: [] },
  ]);
  t.deepEqual(r.ok ? [] : r.errors, [
    'registrations[1].nodeId: duplicate node id "a"',
    'registrations[1].workloads[0]: not in trust domain "example.org"',
    'registrations[1].workloads[1]: path must not contain . or .. segments',
    'registrations[2].workloads: at least one workload identifier',
  ]);
});

test('sds ca source - issues only registered identities, with the entry DNS names', async (t) => {
  const { ca, requests } = recordingCa();
  const src = new CaSecretSource(ca, [{ nodeId: 'n1', workloads: [ORDERS], dnsNames: ['orders.shop'] }]);
  t.deepEqual(src.identitiesFor('n1'), [ORDERS]);
  t.deepEqual(src.identitiesFor('n2'), []);
  const leaf = await src.issueLeaf('n1', ORDERS);
  t.deepEqual(leaf, { chainPem: 'chain', keyPem: 'key', notBefore: 1, notAfter: 2, authorityId: 'k1' });
  t.deepEqual(requests, [{ id: ORDERS, dnsNames: ['orders.shop'] }]);
  await t.throwsAsync(src.issueLeaf('n2', ORDERS));
});

test('sds ca source - a burst of CA events is delivered bundles first, then one taint', async (t) => {
  const { ca, emit } = recordingCa();
  const src = new CaSecretSource(ca, []);
  const seen: SecretSourceEvent[] = [];
  src.subscribe((e) => seen.push(e));
  // The order the CA emits when its active X.509 key is tainted.
  emit({ type: 'key-prepared', kind: 'x509', kid: 'k2' });
  emit({ type: 'key-activated', kind: 'x509', kid: 'k2' });
  emit({ type: 'key-tainted', kind: 'x509', kid: 'k1' });
  emit({ type: 'key-tainted', kind: 'wit', kid: 'w1' });
  emit({ type: 'bundle-changed', trustDomain: 'example.org' });
  t.deepEqual(seen, []);
  await Promise.resolve();
  t.deepEqual(seen, [{ kind: 'bundles' }, { kind: 'taint', authorityIds: ['k1'] }]);
  src.setRegistrations([{ nodeId: 'n1', workloads: [ORDERS] }]);
  t.deepEqual(seen.at(-1), { kind: 'registrations' });
});
