import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IdentityServer, checkPeerKey, type CaEvent, type PeerKey } from '../../src/ca/index.ts';
import { ManualClock, parseSpiffeBundle, toSpiffeBundle } from '../../src/identity/index.ts';
import { openCa, TD } from './helpers.ts';
import { eventually } from '../cluster/fixtures.ts';

/** The public keys of another node's CA, as the cluster carries them. */
async function peerKeysOf(t: Parameters<typeof openCa>[0], clock: ManualClock): Promise<{ keys: PeerKey[]; peer: IdentityServer }> {
  const { ca: peer } = await openCa(t, { clock });
  const keys = peer.publicKeys().map((k) => ({ ...k, publicJwk: { ...k.publicJwk } }) as PeerKey);
  return { keys, peer };
}

test('ca peer keys - another node\'s keys enter the bundle, never sign, and survive a restart', async (t) => {
  const clock = new ManualClock();
  const { ca, dir } = await openCa(t, { clock });
  const { keys } = await peerKeysOf(t, clock);
  const events: CaEvent[] = [];
  ca.onChange((e) => events.push(e));
  const ownRoots = ca.bundle().x509Authorities.length;
  const r = await ca.setPeerKeys('cp-2', keys);
  t.deepEqual(r, { changed: true, refused: [] });
  t.true(events.some((e) => e.type === 'bundle-changed'));
  t.is(ca.bundle().x509Authorities.length, ownRoots + 1);
  const peerWit = keys.find((k) => k.kind === 'wit')!;
  t.true(ca.bundle().witKeys.some((k) => k.kid === peerWit.kid));
  // Our slot is unaffected: the peer's active key is not ours.
  t.not(ca.slot('wit').current?.kid, peerWit.kid);
  await t.throwsAsync(ca.taint('wit', peerWit.kid), { code: 'ca.unknown_key' });
  // The same set again changes nothing (no journal write, no event).
  events.length = 0;
  t.false((await ca.setPeerKeys('cp-2', keys)).changed);
  t.is(events.length, 0);

  await ca.close();
  const again = await IdentityServer.open({ trustDomain: TD, stateDir: dir, clock });
  t.teardown(() => again.close());
  t.true(again.bundle().witKeys.some((k) => k.kid === peerWit.kid));
  t.true(again.keys().some((k) => k.kid === peerWit.kid && k.origin === 'cp-2' && k.status === 'active'));
});

test('ca peer keys - tainted stays in the bundle, revoked leaves it, expired ones are pruned', async (t) => {
  const clock = new ManualClock();
  const { ca } = await openCa(t, { clock });
  const { keys } = await peerKeysOf(t, clock);
  const wit = keys.find((k) => k.kind === 'wit')!;
  await ca.setPeerKeys('cp-2', keys.map((k) => (k === wit ? { ...k, status: 'tainted' as const } : k)));
  t.true(ca.bundle().witKeys.some((k) => k.kid === wit.kid));
  t.is(ca.keys().find((k) => k.kid === wit.kid)?.status, 'tainted');
  await ca.setPeerKeys('cp-2', keys.map((k) => (k === wit ? { ...k, status: 'revoked' as const } : k)));
  t.false(ca.bundle().witKeys.some((k) => k.kid === wit.kid));
  clock.advance(wit.notAfter - clock.now() + ca.timing.pruneGraceSec * 1000 + 1);
  await ca.prune();
  t.false(ca.keys().some((k) => k.origin === 'cp-2'));
});

test('ca peer keys - a key whose kid is not its thumbprint, a private JWK or a non-CA certificate is refused', async (t) => {
  const clock = new ManualClock();
  const { ca } = await openCa(t, { clock });
  const { keys } = await peerKeysOf(t, clock);
  const wit = keys.find((k) => k.kind === 'wit')!;
  const x509 = keys.find((k) => k.kind === 'x509')!;
  t.false(checkPeerKey('cp-2', { ...wit, kid: x509.kid }).ok);
  t.false(checkPeerKey('cp-2', { ...wit, publicJwk: { ...wit.publicJwk, d: 'AAAA' } }).ok);
  t.false(checkPeerKey('cp-2', { ...wit, alg: 'RS256' }).ok);
  t.false(checkPeerKey('cp-2', { ...x509, certPem: undefined }).ok);
  const r = await ca.setPeerKeys('cp-2', [{ ...wit, kid: x509.kid }, x509]);
  t.is(r.refused.length, 1);
  t.false(ca.bundle().witKeys.some((k) => k.kid === wit.kid || k.kid === x509.kid));
});

test('ca activation gate - activation waits for the gate, which sees the prepared kid; none without an active key', async (t) => {
  const clock = new ManualClock();
  const { ca } = await openCa(t, { clock });
  const asked: string[] = [];
  let open!: () => void;
  ca.setActivationGate((_kind, kid) => {
    asked.push(kid);
    return new Promise<void>((r) => (open = r));
  });
  const next = await ca.prepare('wit');
  let done = false;
  const activation = ca.activate('wit').then(() => (done = true));
  await new Promise((r) => setTimeout(r, 50));
  t.false(done);
  t.deepEqual(asked, [next.kid]);
  t.not(ca.slot('wit').current?.kid, next.kid);
  open();
  await activation;
  t.is(ca.slot('wit').current?.kid, next.kid);

  // A CA whose active key has expired does not wait: nothing could sign otherwise.
  clock.advance(ca.timing.keyTtlSec * 1000 + 1);
  await ca.prepare('x509');
  asked.length = 0;
  await ca.activate('x509');
  t.deepEqual(asked, []);
});

test('ca activation gate - the wait never holds the journal: taint and revoke go ahead; a taint that activates the awaited key ends it', async (t) => {
  const clock = new ManualClock();
  const { ca } = await openCa(t, { clock });
  const signals: AbortSignal[] = [];
  ca.setActivationGate((_kind, _kid, signal) => {
    signals.push(signal);
    return new Promise<void>(() => undefined); // a gate that never opens by itself
  });
  // An old WIT key to taint and revoke while the activation waits.
  const first = ca.slot('wit').current!.kid;
  await ca.prepare('wit');
  ca.setActivationGate(undefined);
  await ca.activate('wit');
  ca.setActivationGate((_kind, _kid, signal) => {
    signals.push(signal);
    return new Promise<void>(() => undefined);
  });
  const active = ca.slot('wit').current!.kid;
  const next = await ca.prepare('wit');
  let settled = false;
  const activation = ca.activate('wit').finally(() => (settled = true));
  await ca.taint('wit', first);
  await ca.revoke('wit', first);
  t.false(settled);
  t.is(ca.keys().find((k) => k.kid === first)?.status, 'revoked');
  t.false(signals.at(-1)!.aborted);
  // Tainting the active key activates the awaited key at once: the wait ends with it.
  await ca.taint('wit', active);
  t.true(signals.at(-1)!.aborted);
  t.is((await activation).kid, next.kid);
  t.is(ca.slot('wit').current?.kid, next.kid);
  t.is(ca.keys().filter((k) => k.status === 'active' && k.kind === 'wit').length, 1);
});

test('ca activation gate - a key superseded while it waits is not activated: the newer one goes through the gate; a tainted one is refused', async (t) => {
  const clock = new ManualClock();
  const { ca } = await openCa(t, { clock });
  const asked: string[] = [];
  const opens = new Map<string, () => void>();
  ca.setActivationGate((_kind, kid) => {
    asked.push(kid);
    return new Promise<void>((r) => opens.set(kid, r));
  });
  const active = ca.slot('wit').current!.kid;
  const p1 = await ca.prepare('wit');
  const activation = ca.activate('wit');
  const p2 = await ca.prepare('wit');
  await eventually('the newer key reaches the gate', () => asked.length === 2, 20_000);
  t.deepEqual(asked, [p1.kid, p2.kid], 'the newer prepared key is gated anew');
  t.is(ca.slot('wit').current?.kid, active);
  opens.get(p1.kid)!();
  opens.get(p2.kid)!();
  t.is((await activation).kid, p2.kid);
  t.is(ca.keys().find((k) => k.kid === p1.kid)?.status, 'old');

  const p3 = await ca.prepare('wit');
  const refused = ca.activate('wit');
  await ca.taint('wit', p3.kid);
  await t.throwsAsync(refused, { message: /no usable prepared wit key/ });
  t.is(ca.slot('wit').current?.kid, p2.kid);
});

test('ca activation gate - closing the server ends a wait without activating', async (t) => {
  const { ca } = await openCa(t);
  ca.setActivationGate(() => new Promise<void>(() => undefined));
  const active = ca.slot('x509').current!.kid;
  await ca.prepare('x509');
  const activation = ca.activate('x509');
  await ca.close();
  await t.throwsAsync(activation, { message: /closed/ });
  t.is(ca.slot('x509').current?.kid, active);
});

test('ca local bundles - own keys and federation files only: nothing learned from other nodes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ca-local-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const clock = new ManualClock();
  const { ca: partner } = await openCa(t, { clock, trustDomain: 'partner.example' });
  const { ca: shared } = await openCa(t, { clock, trustDomain: 'shared.example' });
  const file = join(dir, 'partner.json');
  await writeFile(file, JSON.stringify(toSpiffeBundle(partner.bundle())));
  const { ca } = await openCa(t, { clock, federatedBundleFiles: [{ trustDomain: 'partner.example', path: file }] });
  t.is(ca.localBundles().get(TD), ca.bundle(), 'without peers, the very same bundle object (verifier caches)');
  const { keys } = await peerKeysOf(t, clock);
  await ca.setPeerKeys('cp-2', keys);
  const fromCluster = parseSpiffeBundle('shared.example', toSpiffeBundle(shared.bundle()));
  if (!fromCluster.ok) throw new Error(fromCluster.errors.join());
  ca.setFederatedBundle('shared.example', fromCluster.value);

  const kids = (b: { witKeys: readonly { kid?: string }[] } | undefined) => (b?.witKeys ?? []).map((k) => k.kid).sort();
  const own = ca.keys().filter((k) => k.kind === 'wit' && k.origin === undefined).map((k) => k.kid).sort();
  const peer = keys.find((k) => k.kind === 'wit')!.kid;
  t.true(kids(ca.bundles().get(TD)).includes(peer));
  t.deepEqual(kids(ca.localBundles().get(TD)), own);
  t.is(ca.localBundles().get(TD)!.x509Authorities.length, ca.keys().filter((k) => k.kind === 'x509' && k.origin === undefined).length);
  t.deepEqual([...ca.bundles().keys()].sort(), [TD, 'partner.example', 'shared.example'].sort());
  t.deepEqual([...ca.localBundles().keys()].sort(), [TD, 'partner.example'].sort());
  t.is(ca.localBundles().get('partner.example'), ca.bundles().get('partner.example'));
});

test('ca federation - a bundle from the cluster is served; a file bundle with a higher sequence wins', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ca-fed-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const clock = new ManualClock();
  const { ca: partner } = await openCa(t, { clock, trustDomain: 'partner.example' });
  const bundle = (seq: number) => {
    const r = parseSpiffeBundle('partner.example', toSpiffeBundle({ ...partner.bundle(), sequence: seq }));
    if (!r.ok) throw new Error(r.errors.join());
    return r.value;
  };
  const file = join(dir, 'partner.json');
  await writeFile(file, JSON.stringify(toSpiffeBundle({ ...partner.bundle(), sequence: 5 })));
  const { ca } = await openCa(t, { clock, federatedBundleFiles: [{ trustDomain: 'partner.example', path: file }] });
  const events: CaEvent[] = [];
  ca.onChange((e) => events.push(e));
  t.false(ca.setFederatedBundle('partner.example', bundle(2)), 'the file is newer');
  t.is(ca.bundles().get('partner.example')?.sequence, 5);
  t.true(ca.setFederatedBundle('partner.example', bundle(6)));
  t.is(ca.bundles().get('partner.example')?.sequence, 6);
  t.true(events.some((e) => e.type === 'bundle-changed'));
  t.throws(() => ca.setFederatedBundle(TD, { ...bundle(3), trustDomain: TD }), { instanceOf: TypeError });
  t.true(ca.setFederatedBundle('partner.example', undefined));
  t.is(ca.bundles().get('partner.example')?.sequence, 5, 'back to the file');
});
