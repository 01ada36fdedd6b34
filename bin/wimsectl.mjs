#!/usr/bin/env node
// Runs the compiled CLI (dist/, made by `npm run build`) with plain node: no TypeScript loader.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli/wimsectl.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('wimsectl: dist/ is missing (a source checkout). Run `npm run build` first: it compiles src/ to dist/\n');
  process.exit(1);
}
const { main } = await import(cli.href);
process.exitCode = await main(process.argv.slice(2));
