import test from 'ava';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startAdminNode, newDir } from './helpers.ts';
import { ManualClock } from '../../src/identity/clock.ts';
import { eventually } from '../cluster/fixtures.ts';

const CONFIG_ENTRY = 'sds:\n  registrations:\n    - {nodeId: from-config, workloads: [wimse://example.org/svc/config]}\n';
const err = (e: unknown) => e as grpc.ServiceError;

test('admin API entries - create, list (with source), delete; SDS sees them at once', async (t) => {
  const n = await startAdminNode(t, newDir(), CONFIG_ENTRY);
  const created = await n.call('CreateEntry', { node_id: 'sidecar-a', workloads: ['wimse://example.org/svc/a', 'wimse://example.org/svc/a2'], dns_names: ['a.example.org'] });
  t.deepEqual(created, { node_id: 'sidecar-a', workloads: ['wimse://example.org/svc/a', 'wimse://example.org/svc/a2'], dns_names: ['a.example.org'], source: 'api' });
  t.deepEqual(n.node.registrations.identitiesFor('sidecar-a'), ['wimse://example.org/svc/a', 'wimse://example.org/svc/a2']);
  const list = (await n.call('ListEntries')).entries;
  t.deepEqual(list.map((e: any) => [e.node_id, e.source]), [['from-config', 'config'], ['sidecar-a', 'api']]);
  await n.call('DeleteEntry', { node_id: 'sidecar-a' });
  t.deepEqual(n.node.registrations.identitiesFor('sidecar-a'), []);
  t.is(err(await t.throwsAsync(n.call('DeleteEntry', { node_id: 'sidecar-a' }))).code, grpc.status.NOT_FOUND);
});

test('admin API entries - invalid entries are refused with every field path; config entries are read-only', async (t) => {
  const n = await startAdminNode(t, newDir(), CONFIG_ENTRY);
  const bad = err(await t.throwsAsync(n.call('CreateEntry', { node_id: 'x', workloads: ['https://nope', 'wimse://other.org/svc/b'], dns_names: ['Bad Name'] })));
  t.is(bad.code, grpc.status.INVALID_ARGUMENT);
  t.regex(bad.details, /workloads\[0\]: not a valid workload identifier/);
  t.regex(bad.details, /workloads\[1\]: is in trust domain "other\.org"; this node issues for "example\.org"/);
  t.regex(bad.details, /dns_names\[0\]: "Bad Name" is not a lower-case DNS name/);
  t.is(err(await t.throwsAsync(n.call('CreateEntry', { node_id: 'x', workloads: [] }))).code, grpc.status.INVALID_ARGUMENT);
  t.regex(err(await t.throwsAsync(n.call('CreateEntry', { node_id: '', workloads: ['wimse://example.org/a'] }))).details, /^node_id: is required/);
  const del = err(await t.throwsAsync(n.call('DeleteEntry', { node_id: 'from-config' })));
  t.is(del.code, grpc.status.FAILED_PRECONDITION);
  t.regex(del.details, /comes from the config file and cannot be deleted through the API\. Remove it from sds\.registrations/);
  t.is(err(await t.throwsAsync(n.call('CreateEntry', { node_id: 'from-config', workloads: ['wimse://example.org/a'] }))).code, grpc.status.ALREADY_EXISTS);
  await n.call('CreateEntry', { node_id: 'dup', workloads: ['wimse://example.org/a'] });
  t.regex(err(await t.throwsAsync(n.call('CreateEntry', { node_id: 'dup', workloads: ['wimse://example.org/b'] }))).details, /already has an entry\. Change it with wimsectl entry update dup/);
  t.deepEqual(n.node.registrations.identitiesFor('x'), []);
});

test('admin API entries - persist to entries.json and are merged with config entries after a restart', async (t) => {
  const dir = newDir();
  const a = await startAdminNode(t, dir, CONFIG_ENTRY);
  await a.call('CreateEntry', { node_id: 'kept', workloads: ['wimse://example.org/svc/kept'] });
  await a.call('CreateEntry', { node_id: 'gone', workloads: ['wimse://example.org/svc/gone'] });
  await a.call('DeleteEntry', { node_id: 'gone' });
  const file = join(dir, 'state', 'entries.json');
  t.is(statSync(file).mode & 0o777, 0o600);
  t.deepEqual(JSON.parse(readFileSync(file, 'utf8')).entries.map((e: any) => e.nodeId), ['kept']);
  await a.close();
  const b = await startAdminNode(t, dir, CONFIG_ENTRY);
  t.deepEqual(b.node.registrations.identitiesFor('kept'), ['wimse://example.org/svc/kept']);
  t.deepEqual(b.node.registrations.identitiesFor('from-config'), ['wimse://example.org/svc/config']);
  t.deepEqual(b.node.registrations.identitiesFor('gone'), []);
});

test('admin API entries - UpdateEntry replaces the fields its mask names, checked as CreateEntry; SDS follows; it persists', async (t) => {
  const dir = newDir();
  const n = await startAdminNode(t, dir, CONFIG_ENTRY);
  await n.call('CreateEntry', { node_id: 'sidecar-a', workloads: ['wimse://example.org/svc/a'], dns_names: ['a.example.org'] });
  const dnsOf = (id: string) => n.node.registrations.registrations().find((r) => r.nodeId === id)?.dnsNames;
  // Only the workloads: the DNS names stay.
  const w = await n.call('UpdateEntry', { entry: { node_id: 'sidecar-a', workloads: ['wimse://example.org/svc/b', 'wimse://example.org/svc/a'] }, update_mask: ['workloads'] });
  t.deepEqual(w, { node_id: 'sidecar-a', workloads: ['wimse://example.org/svc/b', 'wimse://example.org/svc/a'], dns_names: ['a.example.org'], source: 'api' });
  t.deepEqual(n.node.registrations.identitiesFor('sidecar-a'), ['wimse://example.org/svc/b', 'wimse://example.org/svc/a']);
  // Only the DNS names, cleared: the workloads stay.
  await n.call('UpdateEntry', { entry: { node_id: 'sidecar-a', dns_names: [] }, update_mask: ['dns_names'] });
  t.deepEqual(dnsOf('sidecar-a'), []);
  t.deepEqual(n.node.registrations.identitiesFor('sidecar-a'), ['wimse://example.org/svc/b', 'wimse://example.org/svc/a']);
  // No mask: the whole entry.
  await n.call('UpdateEntry', { entry: { node_id: 'sidecar-a', workloads: ['wimse://example.org/svc/c'], dns_names: ['c.example.org'] } });
  t.deepEqual(n.node.registrations.identitiesFor('sidecar-a'), ['wimse://example.org/svc/c']);
  t.deepEqual(dnsOf('sidecar-a'), ['c.example.org']);

  // Refusals change nothing.
  const missing = err(await t.throwsAsync(n.call('UpdateEntry', { entry: { node_id: 'nope', workloads: ['wimse://example.org/svc/x'] } })));
  t.is(missing.code, grpc.status.NOT_FOUND);
  t.regex(missing.details, /^no entry for node id "nope"\. Create it with wimsectl entry create/);
  const config = err(await t.throwsAsync(n.call('UpdateEntry', { entry: { node_id: 'from-config', workloads: ['wimse://example.org/svc/x'] } })));
  t.is(config.code, grpc.status.FAILED_PRECONDITION);
  t.regex(config.details, /comes from the config file and cannot be changed through the API\. Edit it in sds\.registrations/);
  const bad = err(await t.throwsAsync(n.call('UpdateEntry', { entry: { node_id: 'sidecar-a', workloads: ['wimse://other.org/svc/x'], dns_names: ['Bad Name'] } })));
  t.is(bad.code, grpc.status.INVALID_ARGUMENT);
  t.regex(bad.details, /workloads\[0\]: is in trust domain "other\.org"/);
  t.regex(bad.details, /dns_names\[0\]: "Bad Name" is not a lower-case DNS name/);
  const empty = err(await t.throwsAsync(n.call('UpdateEntry', { entry: { node_id: 'sidecar-a', workloads: [] }, update_mask: ['workloads'] })));
  t.is(empty.code, grpc.status.INVALID_ARGUMENT);
  const mask = err(await t.throwsAsync(n.call('UpdateEntry', { entry: { node_id: 'sidecar-a' }, update_mask: ['source'] })));
  t.is(mask.code, grpc.status.INVALID_ARGUMENT);
  t.regex(mask.details, /^update_mask: "source" is not a field that can change \(workloads, dns_names\)/);
  t.regex(err(await t.throwsAsync(n.call('UpdateEntry', { update_mask: ['workloads'] }))).details, /^entry\.node_id: is required/);
  t.deepEqual(n.node.registrations.identitiesFor('sidecar-a'), ['wimse://example.org/svc/c']);
  t.deepEqual(dnsOf('sidecar-a'), ['c.example.org']);

  await n.close();
  const again = await startAdminNode(t, dir, CONFIG_ENTRY);
  t.deepEqual(again.node.registrations.identitiesFor('sidecar-a'), ['wimse://example.org/svc/c']);
});

test('admin API node tokens - create, list, revoke by id and by node; the SDS store follows', async (t) => {
  const n = await startAdminNode(t, newDir());
  const one = await n.call('CreateNodeToken', { node_id: 'sidecar-a' });
  const two = await n.call('CreateNodeToken', { node_id: 'sidecar-a' });
  const madeFrom = Math.floor(Date.now() / 1000);
  const three = await n.call('CreateNodeToken', { node_id: 'sidecar-b', ttl_seconds: 3600 });
  const madeBy = Math.floor(Date.now() / 1000);
  t.regex(one.token, /^wnt_/);
  t.is(one.expires_at, 0);
  // An hour from when the node made it (the node's clock is this process's).
  t.true(three.expires_at >= madeFrom + 3600 && three.expires_at <= madeBy + 3600, `expires_at ${three.expires_at}, made between ${madeFrom} and ${madeBy}`);
  t.is(n.node.nodeTokens.verify(one.token)?.nodeId, 'sidecar-a');
  t.is(n.node.nodeTokens.verify(three.token)?.nodeId, 'sidecar-b');
  const listed = (await n.call('ListNodeTokens')).tokens;
  t.is(listed.length, 3);
  t.false(JSON.stringify(listed).includes(one.token.slice(4)), 'the token itself is never listed');
  await n.call('RevokeNodeToken', { token_id: one.token_id });
  t.is(n.node.nodeTokens.verify(one.token), undefined);
  t.truthy(n.node.nodeTokens.verify(two.token));
  await n.call('RevokeNodeToken', { node_id: 'sidecar-b' });
  t.is(n.node.nodeTokens.verify(three.token), undefined);
  const after = (await n.call('ListNodeTokens')).tokens;
  t.deepEqual(after.filter((x: any) => x.revoked).map((x: any) => x.token_id).sort(), [one.token_id, three.token_id].sort());
  t.is(err(await t.throwsAsync(n.call('RevokeNodeToken', { token_id: 'nope' }))).code, grpc.status.NOT_FOUND);
  t.is(err(await t.throwsAsync(n.call('RevokeNodeToken', {}))).code, grpc.status.INVALID_ARGUMENT);
  t.is(err(await t.throwsAsync(n.call('RevokeNodeToken', { token_id: 'a', node_id: 'b' }))).code, grpc.status.INVALID_ARGUMENT);
  t.is(err(await t.throwsAsync(n.call('CreateNodeToken', { node_id: 'bad id' }))).code, grpc.status.INVALID_ARGUMENT);
  t.regex(err(await t.throwsAsync(n.call('CreateNodeToken', { node_id: 'x', ttl_seconds: -5 }))).details, /^ttl_seconds: must be 0 \(no expiry\)/);
});

test('admin API node tokens - written atomically (0600) to the node-token file and honoured after a restart', async (t) => {
  const dir = newDir();
  const a = await startAdminNode(t, dir);
  const kept = await a.call('CreateNodeToken', { node_id: 'sidecar-a' });
  const revoked = await a.call('CreateNodeToken', { node_id: 'sidecar-a' });
  const timed = await a.call('CreateNodeToken', { node_id: 'sidecar-t', ttl_seconds: 3600 });
  await a.call('RevokeNodeToken', { token_id: revoked.token_id });
  const file = join(dir, 'state', 'node-tokens.json');
  t.is(statSync(file).mode & 0o777, 0o600);
  const text = readFileSync(file, 'utf8');
  t.false(text.includes(kept.token), 'only digests are stored');
  await a.close();
  const b = await startAdminNode(t, dir);
  t.is(b.node.nodeTokens.verify(kept.token)?.nodeId, 'sidecar-a');
  t.is(b.node.nodeTokens.verify(revoked.token), undefined);
  t.is(b.node.nodeTokens.verify(timed.token)?.nodeId, 'sidecar-t');
  t.is((await b.call('ListNodeTokens')).tokens.find((x: any) => x.token_id === timed.token_id).expires_at, timed.expires_at);
});

test('admin API node tokens - a custom sds.nodeTokensFile is the file written', async (t) => {
  const dir = newDir();
  const a = await startAdminNode(t, dir, 'sds:\n  nodeTokensFile: tokens.json\n');
  const tok = await a.call('CreateNodeToken', { node_id: 'n1' });
  const doc = JSON.parse(readFileSync(join(dir, 'tokens.json'), 'utf8'));
  t.is(doc.tokens.length, 1);
  t.is(doc.tokens[0].nodeId, 'n1');
  t.true(doc.tokens[0].sha256.startsWith(tok.token_id));
});

test('admin API node tokens - a token with a TTL stops verifying when it expires', async (t) => {
  const clock = new ManualClock(Date.now());
  const n = await startAdminNode(t, newDir(), '', { clock });
  const tok = await n.call('CreateNodeToken', { node_id: 'short', ttl_seconds: 60 });
  t.is(tok.expires_at, Math.floor((clock.now() + 60_000) / 1000));
  t.is(n.node.nodeTokens.verify(tok.token)?.nodeId, 'short');
  clock.advance(60_000);
  t.is(n.node.nodeTokens.verify(tok.token), undefined);
});

test('admin API node tokens - records expired longer than sds.expiredTokenRetention ago leave the list and the file; a revoked unexpired token stays refused; a restart reads the pruned file', async (t) => {
  const dir = newDir();
  const yaml = 'sds:\n  expiredTokenRetention: 10s\n';
  const t0 = Date.now();
  const clock = new ManualClock(t0);
  const a = await startAdminNode(t, dir, yaml, { clock });
  const create = (node_id: string, ttl_seconds = 0) => a.call('CreateNodeToken', { node_id, ttl_seconds });
  const gone = await create('gone', 60); // expires t0+60 s, dropped from t0+70 s
  const goneRevoked = await create('gone-revoked', 60);
  const within = await create('within', 65); // expires t0+65 s, dropped from t0+75 s
  const revokedLive = await create('revoked-live', 3600);
  const forever = await create('forever');
  await a.call('RevokeNodeToken', { token_id: goneRevoked.token_id });
  await a.call('RevokeNodeToken', { token_id: revokedLive.token_id });
  const file = join(dir, 'state', 'node-tokens.json');
  const inFile = () => (JSON.parse(readFileSync(file, 'utf8')).tokens as Array<{ sha256: string }>).map((r) => r.sha256.slice(0, 16)).sort();
  const listed = async (n = a) => ((await n.call('ListNodeTokens')).tokens as Array<{ token_id: string; node_id: string }>).map((x) => x.node_id).sort();
  const all = ['forever', 'gone', 'gone-revoked', 'revoked-live', 'within'];
  t.deepEqual(await listed(), all);

  clock.set(t0 + 69_000);
  const counts = (await a.node.metrics.registry.getSingleMetric('wimse_node_tokens')!.get()).values;
  t.deepEqual(Object.fromEntries(counts.map((v) => [v.labels.state, v.value])), { live: 1, revoked: 2, expired: 2 });

  // gone and gone-revoked are now past the retention, within not yet (the prune runs every second).
  clock.set(t0 + 72_000);
  const want = [forever.token_id, revokedLive.token_id, within.token_id].sort();
  await eventually('the file holds only the records to keep', () => JSON.stringify(inFile()) === JSON.stringify(want));
  t.deepEqual(await listed(), ['forever', 'revoked-live', 'within'], 'a record within its retention stays');
  t.is(a.node.nodeTokens.verify(revokedLive.token), undefined, 'the revoked token that has not expired is kept, and refused');
  t.is(a.node.nodeTokens.verify(forever.token)?.nodeId, 'forever');
  t.is(a.node.nodeTokens.verify(gone.token), undefined);
  t.is(err(await t.throwsAsync(a.call('RevokeNodeToken', { token_id: gone.token_id }))).code, grpc.status.NOT_FOUND, 'a dropped token is unknown');
  t.is((await a.node.metrics.registry.getSingleMetric('wimse_node_tokens_pruned_total')!.get()).values[0]?.value, 2);
  // The in-process bus forgets them at its next reconcile (every 30 s), and never hands them back.
  await a.node.cluster.bus.reconcile();
  t.deepEqual(a.node.cluster.bus.list('nodeTokens').map((e) => e.record.nodeId).sort(), ['forever', 'revoked-live', 'within']);
  await a.close();

  // A restart reads the pruned file; at its start it also drops what has passed the retention since.
  const b = await startAdminNode(t, dir, yaml, { clock });
  t.deepEqual(await listed(b), ['forever', 'revoked-live', 'within']);
  await b.close();
  clock.set(t0 + 76_000);
  const c = await startAdminNode(t, dir, yaml, { clock });
  t.deepEqual(await listed(c), ['forever', 'revoked-live']);
  t.is(c.node.nodeTokens.verify(revokedLive.token), undefined);
  await eventually('the file follows', () => JSON.stringify(inFile()) === JSON.stringify([forever.token_id, revokedLive.token_id].sort()));
});
