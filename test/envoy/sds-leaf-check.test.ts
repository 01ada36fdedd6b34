import test from 'ava';
import { checkLeaf } from '../../src/envoy/sds-leaf-check.ts';
import type { TrustBundleSet } from '../../src/identity/trust-bundle.ts';
import { TestAuthority } from './helpers/test-source.ts';

const ID = 'spiffe://example.org/ns/shop/sa/orders';
const HOUR = 3_600_000;

async function material() {
  const now = Date.now();
  const ca = await TestAuthority.create('example.org', 'k1', now);
  const other = await TestAuthority.create('example.org', 'k2', now);
  const bundles: TrustBundleSet = new Map([['example.org', { trustDomain: 'example.org', x509Authorities: [ca.der], witKeys: [] }]]);
  return { now, ca, other, bundles, leaf: await ca.issue(ID, now, HOUR) };
}

const errorsOf = (r: ReturnType<typeof checkLeaf>): string[] => (r.ok ? [] : r.errors);

test('sds leaf check - a matching, current leaf that chains to a served root passes', async (t) => {
  const { now, bundles, leaf } = await material();
  t.deepEqual(errorsOf(checkLeaf(leaf, ID, bundles, now)), []);
});

test('sds leaf check - a private key of another certificate is refused', async (t) => {
  const { now, ca, bundles, leaf } = await material();
  const second = await ca.issue(ID, now, HOUR);
  t.deepEqual(errorsOf(checkLeaf({ ...leaf, keyPem: second.keyPem }, ID, bundles, now)), ['keyPem: does not match the leaf certificate']);
  t.deepEqual(errorsOf(checkLeaf({ ...leaf, keyPem: 'not a key' }, ID, bundles, now)), ['keyPem: not a PEM private key']);
});

test('sds leaf check - the URI SAN must be exactly the identifier it is served as', async (t) => {
  const { now, bundles, leaf } = await material();
  t.deepEqual(errorsOf(checkLeaf(leaf, `${ID}-admin`, bundles, now)), [`chainPem: leaf URI SAN is not exactly ${ID}-admin`]);
});

test('sds leaf check - a leaf outside its validity is refused', async (t) => {
  const { now, bundles, leaf } = await material();
  t.deepEqual(errorsOf(checkLeaf(leaf, ID, bundles, now + 2 * HOUR)), ['chainPem: leaf is not valid now']);
  t.deepEqual(errorsOf(checkLeaf(leaf, ID, bundles, now - 60_000)), ['chainPem: leaf is not valid now']);
});

test('sds leaf check - a leaf from a key whose root is not served is refused', async (t) => {
  const { now, other, bundles } = await material();
  const foreign = await other.issue(ID, now, HOUR);
  t.deepEqual(errorsOf(checkLeaf(foreign, ID, bundles, now)), ['chainPem: does not chain to a root served for its trust domain']);
  t.deepEqual(errorsOf(checkLeaf(foreign, ID, new Map(), now)), ['bundles: no trust bundle for example.org']);
});

test('sds leaf check - garbage instead of a chain is refused', async (t) => {
  const { now, bundles, leaf } = await material();
  t.deepEqual(errorsOf(checkLeaf({ ...leaf, chainPem: 'nope' }, ID, bundles, now)), ['chainPem: no certificate']);
  t.deepEqual(
    errorsOf(checkLeaf({ ...leaf, chainPem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }, ID, bundles, now)),
    ['chainPem: not a PEM certificate chain'],
  );
});
