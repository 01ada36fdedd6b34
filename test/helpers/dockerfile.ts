/** A Dockerfile read into stages and instructions, so that tests can check and replay its steps. */
import { readFileSync } from 'node:fs';

export interface Instruction {
  /** Upper-case: FROM, RUN, COPY, ... */
  readonly op: string;
  /** The rest of the line, continuations joined. */
  readonly args: string;
}

export interface Stage {
  readonly from: string;
  readonly name?: string;
  readonly steps: readonly Instruction[];
}

export function readDockerfile(path: string): Stage[] {
  const lines = readFileSync(path, 'utf8').replace(/\\\n/g, ' ').split('\n');
  const stages: { from: string; name?: string; steps: Instruction[] }[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`unreadable Dockerfile line: ${line}`);
    const op = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!f) throw new Error(`unreadable FROM: ${args}`);
      stages.push({ from: f[1]!, ...(f[2] ? { name: f[2] } : {}), steps: [] });
    } else {
      const stage = stages.at(-1);
      if (!stage) throw new Error(`${op} before FROM`);
      stage.steps.push({ op, args });
    }
  }
  return stages;
}

/** A COPY: `--from=STAGE` (if any), its sources and its destination. */
export function copyArgs(args: string): { from?: string; sources: string[]; dest: string } {
  const words = args.split(/\s+/);
  const from = words[0]?.startsWith('--from=') ? words.shift()!.slice('--from='.length) : undefined;
  if (words.some((w) => w.startsWith('--'))) throw new Error(`COPY option not understood: ${args}`);
  const dest = words.pop()!;
  return { ...(from ? { from } : {}), sources: words, dest };
}

/** The JSON (exec) form of ENTRYPOINT or CMD. */
export const execForm = (args: string): string[] => JSON.parse(args) as string[];
