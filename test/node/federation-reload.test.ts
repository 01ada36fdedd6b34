import test from 'ava';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IdentityServer } from '../../src/ca/index.ts';
import { systemClock, toSpiffeBundle } from '../../src/identity/index.ts';
import { startTestNode } from '../helpers/node.ts';

const until = async (what: string, cond: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

test('node federation - a changed bundle file is picked up; a broken one is refused and the previous bundle stays', async (t) => {
  const partner = await IdentityServer.open({ stateDir: mkdtempSync(join(tmpdir(), 'wimse-partner-')), trustDomain: 'partner.example', clock: systemClock });
  t.teardown(() => partner.close());
  const dir = mkdtempSync(join(tmpdir(), 'wimse-fed-'));
  const file = join(dir, 'partner.json');
  // Written as operators (and config management) do: to a temporary file, then renamed.
  const publish = (text: string) => {
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
  };
  publish(JSON.stringify(toSpiffeBundle(partner.bundle())));
  const { node } = await startTestNode(t, { yaml: `federation:\n  - {trustDomain: partner.example, bundleFile: ${file}}\n` });
  const roots = () => node.ca.bundles().get('partner.example')?.x509Authorities.length ?? 0;
  t.is(roots(), 1);

  await partner.prepare('x509');
  await new Promise((r) => setTimeout(r, 20)); // a distinct mtime
  publish(JSON.stringify(toSpiffeBundle(partner.bundle())));
  await until('the new partner root is trusted', () => roots() === 2);

  publish('{ not json');
  await new Promise((r) => setTimeout(r, 2500));
  t.is(roots(), 2, 'a broken file changes nothing');
});
