import test from 'ava';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IdentityServer } from '../../src/ca/index.ts';
import { systemClock, toSpiffeBundle } from '../../src/identity/index.ts';
import { createLogger } from '../../src/log.ts';
import { startTestNode } from '../helpers/node.ts';

const until = async (what: string, cond: () => boolean, ms = 30_000) => {
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
  const sink = new PassThrough();
  let log = '';
  sink.on('data', (d: Buffer) => (log += d));
  const logger = createLogger({ level: 'info', destination: sink });
  const { node } = await startTestNode(t, { yaml: `federation:\n  - {trustDomain: partner.example, bundleFile: ${file}}\n`, logger });
  const roots = () => node.ca.bundles().get('partner.example')?.x509Authorities.length ?? 0;
  t.is(roots(), 1);

  await partner.prepare('x509');
  await new Promise((r) => setTimeout(r, 20)); // a distinct mtime
  publish(JSON.stringify(toSpiffeBundle(partner.bundle())));
  await until('the new partner root is trusted', () => roots() === 2);

  publish('{ not json');
  // The node read the broken file and said so (no fixed wait that a busy machine can outrun).
  await until('the broken file is refused', () => log.includes('federated bundle refused'));
  t.is(roots(), 2, 'a broken file changes nothing');
});
