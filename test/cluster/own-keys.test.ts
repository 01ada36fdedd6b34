import test from 'ava';
import { ClusterError, MemoryBus, MemoryHub, publishOwnKeys } from '../../src/cluster/index.ts';
import { eventually, keyRecord } from './fixtures.ts';

test('cluster own keys - the bus ends up holding exactly the journal\'s key set, writing only what changed', async (t) => {
  const hub = new MemoryHub();
  const a = new MemoryBus({ hub, trustDomain: 'example.org', nodeName: 'a' });
  const b = new MemoryBus({ hub, trustDomain: 'example.org', nodeName: 'b' });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  await Promise.all([a.start(), b.start()]);
  await b.put('keys', 'b/kb', keyRecord('b', 'kb'));
  const k1 = keyRecord('a', 'k1', { state: 'active' });
  const k2 = keyRecord('a', 'k2');
  t.deepEqual(await publishOwnKeys(a, [k1, k2]), { put: 2, deleted: 0, unchanged: 0 });
  // Same set, members in another order: nothing to write.
  const reordered = Object.fromEntries(Object.entries(k1).reverse()) as typeof k1;
  t.deepEqual(await publishOwnKeys(a, [reordered, k2]), { put: 0, deleted: 0, unchanged: 2 });
  // Rotation: k1 becomes old, k2 active, k1's predecessor gone; b's key is left alone.
  const result = await publishOwnKeys(a, [{ ...k2, state: 'active', keySeq: 2 }]);
  t.deepEqual(result, { put: 1, deleted: 1, unchanged: 0 });
  await eventually('b sees the new set', () => b.list('keys').map((e) => e.key).join() === 'a/k2,b/kb' && b.get('keys', 'a/k2')?.record.state === 'active');
  await t.throwsAsync(publishOwnKeys(a, [keyRecord('b', 'x')]), { instanceOf: ClusterError, message: /belongs to node "b"/ });
});
