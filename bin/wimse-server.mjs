#!/usr/bin/env node
// Runs the compiled server (dist/, made by `npm run build`) with plain node: no TypeScript loader.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli/wimse-server.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('wimse-server: dist/ is missing (a source checkout). Run `npm run build` first: it compiles src/ to dist/\n');
  process.exit(1);
}
const { run } = await import(cli.href);
run(process.argv.slice(2));
