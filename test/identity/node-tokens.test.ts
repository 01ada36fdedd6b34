import test from 'ava';
import { hashToken, mergeNodeTokenRecords, NodeTokenStore, type NodeTokenRecord } from '../../src/identity/node-tokens.ts';

const rec = (over: Partial<NodeTokenRecord> = {}): NodeTokenRecord => ({ nodeId: 'sidecar-b', sha256: hashToken('wnt_a'), ...over });

test('node tokens - merging: revoked wins, the earlier expiry wins, in any order', (t) => {
  const cases: Array<[NodeTokenRecord, NodeTokenRecord, NodeTokenRecord]> = [
    [rec(), rec({ revoked: true }), rec({ revoked: true })],
    [rec({ expiresAt: 200 }), rec({ expiresAt: 100 }), rec({ expiresAt: 100 })],
    [rec(), rec({ expiresAt: 100 }), rec({ expiresAt: 100 })],
    [rec({ expiresAt: 100, revoked: true }), rec({ expiresAt: 50 }), rec({ expiresAt: 50, revoked: true })],
    // One digest bound to two node ids: neither can be trusted.
    [rec(), rec({ nodeId: 'sidecar-x' }), rec({ revoked: true })],
  ];
  for (const [a, b, want] of cases) {
    t.deepEqual(mergeNodeTokenRecords(a, b), want);
    const back = mergeNodeTokenRecords(b, a);
    t.is(back.revoked, want.revoked);
    t.is(back.expiresAt, want.expiresAt);
    t.deepEqual(mergeNodeTokenRecords(want, want), want);
  }
});

test('node tokens - merge adds unknown tokens, never un-revokes, and tells revocation and change listeners', (t) => {
  const store = new NodeTokenStore([], { now: () => 0 });
  const revoked: string[] = [];
  const changes: Array<[boolean, boolean]> = [];
  store.onRevoke((sha) => revoked.push(sha));
  store.onChange((r, merged) => changes.push([r.revoked === true, merged]));

  const token = store.issue('sidecar-b');
  const sha256 = hashToken(token);
  t.deepEqual(changes, [[false, false]]);
  t.deepEqual(store.merge({ nodeId: 'sidecar-b', sha256 }), { record: { nodeId: 'sidecar-b', sha256 }, changed: false });
  t.deepEqual(changes.length, 1, 'an equal record changes nothing');

  t.true(store.merge({ nodeId: 'sidecar-b', sha256, revoked: true }).changed);
  t.deepEqual(revoked, [sha256], 'the streams of a token revoked by a merge are ended');
  t.deepEqual(changes.at(-1), [true, true]);
  t.is(store.verify(token), undefined);

  const again = store.merge({ nodeId: 'sidecar-b', sha256 });
  t.false(again.changed);
  t.true(again.record.revoked, 'a later copy of the unrevoked record does not bring it back');
  t.is(store.verify(token), undefined);

  const other = hashToken('wnt_other-token-0123456789');
  t.true(store.merge({ nodeId: 'sidecar-c', sha256: other }).changed);
  t.deepEqual(store.verify('wnt_other-token-0123456789'), { nodeId: 'sidecar-c', sha256: other });
  t.deepEqual(revoked, [sha256], 'adding a token revokes nothing');
});

test('node tokens - expiry learned by a merge applies to open checks (isLive) and new ones (verify)', (t) => {
  let now = 1_000;
  const store = new NodeTokenStore([], { now: () => now });
  const token = store.issue('sidecar-b');
  const sha256 = hashToken(token);
  t.true(store.isLive(sha256));
  store.merge({ nodeId: 'sidecar-b', sha256, expiresAt: 2_000 });
  t.true(store.isLive(sha256));
  now = 2_000;
  t.false(store.isLive(sha256));
  t.is(store.verify(token), undefined);
});

test('node tokens - a journal listing one digest twice keeps the merged record', (t) => {
  const sha256 = hashToken('wnt_twice');
  const r = NodeTokenStore.parse({ tokens: [{ nodeId: 'sidecar-b', sha256 }, { nodeId: 'sidecar-b', sha256, revoked: true }] });
  t.true(r.ok);
  if (r.ok) t.deepEqual(r.value.records(), [{ nodeId: 'sidecar-b', sha256, revoked: true }]);
});
