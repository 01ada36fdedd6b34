/** Run the project's commands as real child processes. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * How long a test lets a child process run (or start) before it gives up: a safety net only. A
 * `node --import=tsx` start costs about a second of CPU, and on a busy machine with several of
 * them starting at once that is tens of seconds of wall clock.
 */
export const CHILD_TIMEOUT_MS = 120_000;

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface SpawnOptions {
  stdin?: string;
  cwd?: string;
  timeoutMs?: number;
  /** The whole environment of the child (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Run as this user and group (this process must be root). */
  uid?: number;
  gid?: number;
  /** Its own process group (kill it whole with `process.kill(-child.pid)`), for a command that starts others (npm). */
  detached?: boolean;
}

const ids = (opts: SpawnOptions) => ({
  ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
  ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
  ...(opts.detached ? { detached: true } : {}),
});

/** Run `command ...args` to completion (bounded by `timeoutMs`). */
export function runProcess(command: string, args: string[], opts: SpawnOptions = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, ...ids(opts), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? CHILD_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.stdin ?? '');
  });
}

/** Start a long-running `command ...args` and resolve once its stdout matches `ready`. */
export function startProcess(command: string, args: string[], ready: RegExp, opts: SpawnOptions = {}): Promise<{ child: ChildProcess; stdout: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, ...ids(opts), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`not ready in time; stdout=${out} stderr=${err}`));
    }, opts.timeoutMs ?? CHILD_TIMEOUT_MS);
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve({ child, stdout: () => out });
      }
    });
    child.stderr!.on('data', (d: Buffer) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code} before ready; stdout=${out} stderr=${err}`));
    });
  });
}

/** Run `node --import=tsx <script> ...args` to completion (bounded by `timeoutMs`). */
export const runTs = (script: string, args: string[], opts: SpawnOptions = {}): Promise<Ran> => runProcess(process.execPath, ['--import=tsx', script, ...args], opts);

/** Start `node --import=tsx <script> ...args` and resolve once its stdout matches `ready`. */
export const startTs = (script: string, args: string[], ready: RegExp, opts: SpawnOptions = {}) => startProcess(process.execPath, ['--import=tsx', script, ...args], ready, opts);
