import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IdentityServer, checkPeerKey } from '../../src/ca/index.ts';
import { ManualClock } from '../../src/identity/index.ts';
import { checkRecord, fromRegistrationRecords, ownKeySeq, toBusKey, toPeerKey, toRegistrationRecords } from '../../src/cluster/index.ts';

test('mesh records - own keys become valid bus records without private material, and valid peer keys again', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mesh-records-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const clock = new ManualClock();
  const ca = await IdentityServer.open({ trustDomain: 'example.org', stateDir: dir, clock });
  t.teardown(() => ca.close());
  await ca.prepare('x509');
  const own = ca.publicKeys();
  const seq = ownKeySeq(own);
  t.true(seq >= clock.now() - 1);
  for (const k of own) {
    const rec = toBusKey('cp-1', k, seq);
    const checked = checkRecord('keys', rec);
    t.true(checked.ok, checked.ok ? '' : checked.errors.join('; '));
    t.false(/PRIVATE|"d":/.test(JSON.stringify(rec)));
    t.is(k.kind === 'x509', rec.x509RootDer !== undefined);
    const peer = toPeerKey(rec)!;
    const back = checkPeerKey('cp-1', peer);
    t.true(back.ok, back.ok ? '' : back.errors.join('; '));
    if (back.ok) t.is(back.value.kid, k.kid);
  }
  t.is(toPeerKey({ ...toBusKey('cp-1', own.find((k) => k.kind === 'wit')!, seq), use: 'jwt' }), undefined);
});

test('mesh records - registrations round-trip in order, with their DNS names', (t) => {
  const regs = [
    { nodeId: 'sidecar-a', workloads: ['wimse://example.org/a', 'wimse://example.org/a2'], dnsNames: ['a.example.org'] },
    { nodeId: 'odd id/with:chars', workloads: ['wimse://example.org/b'] },
  ];
  const records = toRegistrationRecords(regs);
  t.is(records.length, 3);
  for (const r of records) t.true(checkRecord('registrations', r).ok);
  t.deepEqual(fromRegistrationRecords([...records].reverse()), [regs[1], regs[0]]);
});
