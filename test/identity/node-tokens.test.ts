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
  t.true(again.record?.revoked, 'a later copy of the unrevoked record does not bring it back');
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

test('node tokens - prune drops records expired longer than the retention ago, revoked or not; keeps the rest', (t) => {
  const HOUR = 3600_000;
  let now = 100 * HOUR;
  const store = new NodeTokenStore([], { now: () => now, retentionMs: 24 * HOUR });
  const dropped: string[][] = [];
  store.onPrune((gone) => dropped.push(gone.map((r) => r.nodeId).sort()));
  const sha = (id: string) => store.records().find((r) => r.nodeId === id)!.sha256;

  store.issue('expired-long-ago', { expiresAt: now - 25 * HOUR });
  store.issue('revoked-expired-long-ago', { expiresAt: now - 25 * HOUR });
  store.revokeDigest(sha('revoked-expired-long-ago'));
  store.issue('expired-within-retention', { expiresAt: now - 23 * HOUR });
  const revokedLive = store.issue('revoked-unexpired', { expiresAt: now + HOUR });
  store.revokeDigest(sha('revoked-unexpired'));
  const revokedForever = store.issue('revoked-no-expiry');
  store.revokeDigest(sha('revoked-no-expiry'));
  const live = store.issue('no-expiry');
  t.deepEqual(store.counts(), { live: 1, revoked: 3, expired: 2 });

  t.deepEqual(store.prune().map((r) => r.nodeId).sort(), ['expired-long-ago', 'revoked-expired-long-ago']);
  t.deepEqual(dropped, [['expired-long-ago', 'revoked-expired-long-ago']], 'one prune, one notice');
  t.deepEqual(store.list().map((x) => x.nodeId).sort(), ['expired-within-retention', 'no-expiry', 'revoked-no-expiry', 'revoked-unexpired']);
  t.is(store.verify(revokedLive), undefined, 'a revoked token that has not expired is kept, and stays refused');
  t.is(store.verify(revokedForever), undefined);
  t.is(store.verify(live)?.nodeId, 'no-expiry');
  t.deepEqual(store.prune(), [], 'nothing more to drop');
  t.is(dropped.length, 1, 'an empty prune tells nobody');

  // The revoked token expires; a day later its record goes, and only then.
  now += HOUR + 24 * HOUR - 1;
  t.deepEqual(store.prune().map((r) => r.nodeId), ['expired-within-retention']);
  now += 1;
  t.deepEqual(store.prune().map((r) => r.nodeId), ['revoked-unexpired']);
  t.is(store.verify(revokedLive), undefined);
  t.deepEqual(store.list().map((x) => x.nodeId).sort(), ['no-expiry', 'revoked-no-expiry'], 'tokens without expiry are never dropped');
});

test('node tokens - a copy of a record past its retention is not taken (back) in; one within it is', (t) => {
  const HOUR = 3600_000;
  let now = 100 * HOUR;
  const store = new NodeTokenStore([], { now: () => now, retentionMs: HOUR });
  const changes: boolean[] = [];
  store.onChange((r) => changes.push(r.revoked === true));
  const dropped: number[] = [];
  store.onPrune((gone) => dropped.push(gone.length));
  const dead = { nodeId: 'sidecar-b', sha256: hashToken('wnt_dead'), expiresAt: now - HOUR };
  t.deepEqual(store.merge(dead), { record: undefined, changed: false });
  t.deepEqual(store.merge({ ...dead, revoked: true }), { record: undefined, changed: false });
  t.is(store.get(dead.sha256), undefined);
  t.deepEqual(changes, [], 'nothing to journal or share');

  const dying = { nodeId: 'sidecar-b', sha256: hashToken('wnt_dying'), expiresAt: now - HOUR + 1, revoked: true as const };
  t.true(store.merge(dying).changed, 'still within the retention: taken in');
  now += 1;
  // The held record is past its retention too; a copy heard now drops it, as prune would.
  t.deepEqual(store.merge({ ...dying, revoked: undefined }), { record: undefined, changed: true });
  t.is(store.get(dying.sha256), undefined);
  t.deepEqual(dropped, [1]);
});

test('node tokens - without a clock nothing is pruned (an expiring token never verifies anyway)', (t) => {
  const store = new NodeTokenStore([{ nodeId: 'sidecar-b', sha256: hashToken('wnt_x'), expiresAt: 1 }]);
  t.deepEqual(store.prune(), []);
  t.is(store.records().length, 1);
  t.throws(() => new NodeTokenStore([], { retentionMs: -1 }), { message: /retentionMs/ });
});
