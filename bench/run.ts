/**
 * Run the benchmarks one after another (each is also runnable on its own):
 *   npm run bench                 every benchmark
 *   npm run bench -- ca authn     only those whose file name contains one of the words
 * Each prints its own figures and the command that reproduces them; docs/performance.md
 * records the results.
 */
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('./', import.meta.url));
const filters = process.argv.slice(2);
const files = readdirSync(dir)
  // `_name.ts` files are shared by benchmarks (or run by them as child processes), not benchmarks.
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)))
  .sort();
let failed = 0;
for (const f of files) {
  process.stdout.write(`\n=== bench/${f}\n`);
  const r = spawnSync(process.execPath, ['--import=tsx', `${dir}${f}`], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
