/** Run `node --import=tsx src/cli/wimsectl.ts` as a real child process. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { CHILD_TIMEOUT_MS, ROOT } from '../helpers/process.ts';
import type { AdminNode } from './helpers.ts';

export const WIMSECTL = join(ROOT, 'src/cli/wimsectl.ts');
// Resolved here, so that the child may run in any working directory.
const TSX = import.meta.resolve('tsx');

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function wimsectl(args: string[], opts: { stdin?: string; env?: Record<string, string>; cwd?: string } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...(opts.env ?? {}) };
    delete env.WIMSE_SERVER;
    delete env.WIMSE_ADMIN_TOKEN;
    Object.assign(env, opts.env ?? {});
    const child = spawn(process.execPath, [`--import=${TSX}`, WIMSECTL, ...args], { cwd: opts.cwd ?? ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.stdin ?? '');
  });
}

/** wimsectl against `n`, with its address and admin token file. */
export const against = (n: AdminNode) => (args: string[], opts: { stdin?: string } = {}) =>
  wimsectl(['--server', n.node.grpcAddress, '--token-file', join(n.node.config.stateDir, 'admin-token'), ...args], opts);
