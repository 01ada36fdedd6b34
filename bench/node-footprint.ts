/**
 * What a serving node costs before any traffic: time to start (`startNode`, single node, embedded
 * defaults apart from ports) and live heap after a full GC, then, in the same process, how much
 * the whole Envoy config API (bootstrap and friends, loaded only to validate configs) would add.
 * The live heap is what every major GC marks, so it sets the length of the longest pauses.
 *
 *   node --import=tsx bench/node-footprint.ts        (a few seconds; 5 rounds, each its own process)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

if (process.argv[2] === 'child') {
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const heap = (): number => {
    gc();
    gc();
    return process.memoryUsage().heapUsed / 1e6;
  };
  const { parseConfig } = await import('../src/config/config.ts');
  const { startNode } = await import('../src/node.ts');
  const { silentLogger } = await import('../src/log.ts');
  const { envoyConfigRoot } = await import('../src/envoy/protos.ts');
  const dir = mkdtempSync(join(tmpdir(), 'wimse-footprint-'));
  const cfg = parseConfig(`nodeName: footprint\ntrustDomain: example.org\ngrpc:\n  listen: 127.0.0.1:0\nadmin:\n  listen: ''\nlogging:\n  level: silent\n`, dir);
  if (!cfg.ok) throw new Error(cfg.errors.join('; '));
  const before = heap();
  const t0 = performance.now();
  const node = await startNode(cfg.value, { logger: silentLogger() });
  const startMs = performance.now() - t0;
  const serving = heap();
  envoyConfigRoot();
  const withConfigApi = heap();
  await node.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(JSON.stringify({ startMs, before, serving, withConfigApi }));
} else {
  const rounds = Array.from({ length: 5 }, () =>
    JSON.parse(execFileSync(process.execPath, ['--import=tsx', new URL(import.meta.url).pathname, 'child'], { encoding: 'utf8' })) as Record<string, number>,
  );
  const med = (k: string): number => rounds.map((r) => r[k]!).sort((a, b) => a - b)[2]!;
  console.log(`Run: ${new Date().toISOString()}, Node ${process.version}; median of 5 processes`);
  console.log(`startNode: ${med('startMs').toFixed(0)} ms`);
  console.log(`live heap: ${med('before').toFixed(1)} MB with the modules loaded, ${med('serving').toFixed(1)} MB serving`);
  console.log(`the Envoy config API (validation only) would add ${(med('withConfigApi') - med('serving')).toFixed(1)} MB = ${((100 * (med('withConfigApi') - med('serving'))) / med('serving')).toFixed(0)} % of the serving heap`);
}
