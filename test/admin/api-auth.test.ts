import test from 'ava';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startAdminNode, newDir, writeFile } from './helpers.ts';
import { AdminTokens } from '../../src/admin/admin-token.ts';
import { hashToken } from '../../src/identity/node-tokens.ts';

test('admin API - a missing or wrong admin token is UNAUTHENTICATED on every RPC', async (t) => {
  const n = await startAdminNode(t, newDir());
  for (const rpc of ['ListEntries', 'CreateNodeToken', 'GetBundle', 'ListAuthorities', 'RevokeAuthority', 'ApplyPolicy', 'MintWIT']) {
    const none = (await t.throwsAsync(n.call(rpc, {}, null))) as grpc.ServiceError;
    t.is(none.code, grpc.status.UNAUTHENTICATED, rpc);
    t.regex(none.details, /admin token is missing or wrong\. Pass it with --token-file/);
    const wrong = (await t.throwsAsync(n.call(rpc, {}, `${n.token.slice(0, -1)}x`))) as grpc.ServiceError;
    t.is(wrong.code, grpc.status.UNAUTHENTICATED, rpc);
  }
  // A refused call changed nothing.
  t.is(n.node.nodeTokens.list().length, 0);
  t.deepEqual((await n.call('ListEntries')).entries, []);
});

test('admin API - the generated admin token is 32 random bytes, mode 0600, reused after a restart', async (t) => {
  const dir = newDir();
  const a = await startAdminNode(t, dir);
  const path = join(dir, 'state', 'admin-token');
  t.is(statSync(path).mode & 0o777, 0o600);
  t.regex(a.token, /^[A-Za-z0-9_-]{43}$/);
  await a.close();
  const b = await startAdminNode(t, dir);
  t.is(b.token, a.token);
  t.truthy(await b.call('ListAuthorities'));
});

test('admin API - admin.tokenFile is used when configured, and a missing one stops the start with a fix', async (t) => {
  const dir = newDir();
  writeFile(dir, 'admin.token', 'operator-provided-token-0123456789\n');
  const n = await startAdminNode(t, dir, 'admin:\n  listen: ""\n  tokenFile: admin.token\n');
  t.is(n.token, 'operator-provided-token-0123456789');
  t.truthy(await n.call('ListEntries', {}, 'operator-provided-token-0123456789'));
  const other = newDir();
  const err = await t.throwsAsync(startAdminNode(t, other, 'admin:\n  listen: ""\n  tokenFile: nope.token\n'));
  t.regex(err!.message, /admin\.tokenFile: .*nope\.token does not exist\. Create it/);
});

test('admin API - token comparison needs exactly one Bearer value with the exact token', (t) => {
  const tok = 'abcdefghijklmnopqrstuvwxyz';
  const matches = (authorization: string[], token: string) => new AdminTokens(token).matches(authorization);
  t.true(matches([`Bearer ${tok}`], tok));
  t.false(matches([`Bearer ${tok}x`], tok));
  t.false(matches([`bearer ${tok}`], tok));
  t.false(matches([tok], tok));
  t.false(matches([`Bearer ${tok}`, `Bearer ${tok}`], tok));
  t.false(matches([], tok));
  t.false(matches(['Bearer '], ''));
});

test('admin API - the accepted admin tokens: this node\'s, and other nodes\' by digest until they are withdrawn', (t) => {
  const own = 'own-admin-token-0123456789abcdef';
  const peer = 'peer-admin-token-0123456789abcdef';
  const set = new AdminTokens(own);
  t.is(set.ownDigest, hashToken(own));
  t.true(set.matches([`Bearer ${own}`]));
  t.false(set.matches([`Bearer ${peer}`]));
  t.true(set.setPeer('cp-2', hashToken(peer)));
  t.false(set.setPeer('cp-2', hashToken(peer)), 'the same digest again changes nothing');
  t.true(set.matches([`Bearer ${peer}`]));
  t.false(set.matches([`Bearer ${peer}`, `Bearer ${own}`]), 'two values are refused');
  t.false(set.matches([`Bearer ${peer}x`]));
  t.deepEqual(set.peers(), ['cp-2']);
  t.true(set.setPeer('cp-2', undefined));
  t.false(set.matches([`Bearer ${peer}`]));
  t.throws(() => set.setPeer('cp-3', 'short'), { instanceOf: TypeError });
});
