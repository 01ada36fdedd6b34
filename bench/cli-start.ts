/**
 * CLI start-up time: each command as a whole process, run two ways in alternation —
 *   tsx:  node --import=tsx src/cli/<cli>.ts ...   (how bin/*.mjs ran before dist/)
 *   dist: node bin/<cli>.mjs ...                   (compiled dist/, plain node: how they run now)
 * `wimsectl bundle show` goes to a real node this script starts (from dist/, on free ports).
 *
 *   node --import=tsx bench/cli-start.ts [runs=10]
 *
 * It builds dist/ first (npm run build). Runs alternate tsx, dist, tsx, dist, ... after one
 * warm-up each, so drift in the machine's speed hits both alike; it prints the median wall time
 * of each and the median of the per-pair ratios (tsx / dist).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const runs = Number(process.argv[2] ?? 10);

const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore' });
if (build.status !== 0) throw new Error('npm run build failed');

const dir = mkdtempSync(join(tmpdir(), 'cli-start-'));
const config = join(dir, 'node.yaml');
writeFileSync(config, 'stateDir: ./state\ngrpc:\n  listen: 127.0.0.1:0\nadmin:\n  listen: ""\nlogging:\n  level: error\n');
const server = spawn(process.execPath, [join(ROOT, 'bin/wimse-server.mjs'), '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
const grpc = await new Promise<string>((resolve, reject) => {
  let out = '';
  server.stdout!.on('data', (d: Buffer) => {
    out += d;
    const m = /admin API\): (\S+)/.exec(out);
    if (m) resolve(m[1]!);
  });
  server.on('exit', (code) => reject(new Error(`the node exited ${code}: ${out}`)));
});

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const wall = (args: string[]): number => {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
};

const admin = ['--server', grpc, '--token-file', join(dir, 'state/admin-token')];
const cases: Array<{ name: string; cli: 'wimsectl' | 'wimse-server'; args: string[] }> = [
  { name: 'wimsectl --version', cli: 'wimsectl', args: ['--version'] },
  { name: 'wimsectl --help', cli: 'wimsectl', args: ['--help'] },
  { name: 'wimsectl bundle show (a running node)', cli: 'wimsectl', args: [...admin, 'bundle', 'show'] },
  { name: 'wimse-server --version', cli: 'wimse-server', args: ['--version'] },
  { name: 'wimse-server validate --config F', cli: 'wimse-server', args: ['validate', '--config', config] },
];

console.log(`CLI start-up, ${runs} alternating pairs per command after one warm-up each; wall milliseconds, median`);
console.log(`${'command'.padEnd(40)}  ${'tsx (src)'.padStart(10)}  ${'dist'.padStart(10)}  ${'tsx / dist'.padStart(10)}`);
try {
  for (const c of cases) {
    const viaTsx = ['--import=tsx', join(ROOT, `src/cli/${c.cli}.ts`), ...c.args];
    const viaDist = [join(ROOT, `bin/${c.cli}.mjs`), ...c.args];
    // `--version` did not exist before; from src it runs the same start-up as any other command.
    wall(viaTsx);
    wall(viaDist);
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < runs; i++) {
      a.push(wall(viaTsx));
      b.push(wall(viaDist));
    }
    const ratio = median(a.map((x, i) => x / b[i]!));
    console.log(`${c.name.padEnd(40)}  ${median(a).toFixed(0).padStart(10)}  ${median(b).toFixed(0).padStart(10)}  ${ratio.toFixed(2).padStart(10)}`);
  }
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
