import test from 'ava';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, runProcess } from '../helpers/process.ts';

// The bins run dist/ with plain node (test/deploy/image.test.ts runs them so); this is a
// checkout where dist/ was not built.
test('bins - without dist/ each says in one line to run npm run build, and exits 1', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-bins-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(ROOT, 'bin'), join(dir, 'bin'), { recursive: true });
  for (const bin of ['wimsectl', 'wimse-server']) {
    const r = await runProcess(process.execPath, [join(dir, 'bin', `${bin}.mjs`), '--version'], { cwd: dir });
    t.is(r.code, 1, bin);
    t.is(r.stdout, '');
    t.is(r.stderr, `${bin}: dist/ is missing (a source checkout). Run \`npm run build\` first: it compiles src/ to dist/\n`);
  }
});
