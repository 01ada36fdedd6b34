/**
 * A start that failed, told in one line: what went wrong and what to do about it. The stack is
 * for `--debug` (or LOG_LEVEL=debug); an operator reading a crash loop's log needs the cause and
 * the remedy, not the frames of grpc-js.
 */
import * as grpc from '@grpc/grpc-js';
import { ConfigError, type NodeConfig } from '../config/config.ts';
import { FederationBundleError, JournalCorruptError, JournalLockedError, JournalMismatchError, JournalUnloadableError } from '../ca/index.ts';
import { ListenError } from '../node.ts';

export interface StartupContext {
  /** The --config file, if any. */
  readonly configFile?: string | undefined;
  /** The validated configuration, once there is one. */
  readonly config?: NodeConfig | undefined;
}

/**
 * grpc-js writes its own errors to stderr (a failed bind prints "E No address added ..." before
 * our line). They go to stdout as JSON log lines, beside the node's own logs, so that stderr
 * carries only the one line of a failed start.
 */
export function grpcLogsToStdout(): void {
  const write = (level: number) => (...args: unknown[]) =>
    void process.stdout.write(`${JSON.stringify({ level, time: new Date().toISOString(), name: 'grpc-js', msg: args.map(String).join(' ') })}\n`);
  grpc.setLogger({ error: write(50), info: write(30), debug: write(20) });
}

/** `wimse-server: cannot start: <cause>. <remedy>` with no newline inside. */
export function startupFailure(err: unknown, ctx: StartupContext): string {
  return `wimse-server: cannot start: ${oneLine(describe(err, ctx))}`;
}

/** The stack and causes, for --debug. */
export function startupDebug(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e !== undefined && parts.length < 5; e = (e as Error).cause) parts.push((e as Error).stack ?? String(e));
  return parts.join('\ncaused by: ');
}

const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').trim();

function describe(err: unknown, ctx: StartupContext): string {
  const source = ctx.configFile ?? 'the embedded defaults (no --config)';
  const stateDir = ctx.config?.stateDir;
  const validate = ctx.configFile ? ` (wimse-server validate --config ${ctx.configFile} runs the same checks)` : '';
  if (err instanceof ConfigError && err.stage === 'schema') return `${source} is not valid: ${err.errors.join('; ')}. Fix ${err.errors.length > 1 ? 'these fields' : 'this field'}${validate}`;
  if (err instanceof ConfigError) return `${err.errors.join('; ')}${validate}`;
  if (err instanceof JournalLockedError) return `the state directory is in use: ${err.path}: ${err.why}. ${err.remedy}`;
  if (err instanceof JournalCorruptError || err instanceof JournalMismatchError) return `key journal ${err.detail}; nothing was changed: ${err.remedy}`;
  if (err instanceof JournalUnloadableError)
    return `${err.detail}; nothing was written. Check the system clock and the keys settings (wimse-server validate${ctx.configFile ? ` --config ${ctx.configFile}` : ''})`;
  if (err instanceof FederationBundleError) return `federated bundle ${err.path}: ${err.errors.join('; ')}. Fix or replace the file`;
  if (err instanceof ListenError) return listenProblem(err);
  const errno = err as NodeJS.ErrnoException;
  if (errno?.code && errno.path) {
    const where = stateDir && errno.path.startsWith(stateDir) ? ' (in the state directory)' : '';
    return `${errno.path}${where}: ${errno.code} (${errno.syscall ?? 'access'}). Check that the file exists and this process may use it`;
  }
  return `${(err as Error)?.message ?? String(err)} (wimse-server --debug shows where)`;
}

function listenProblem(e: ListenError): string {
  const port = /:(\d+)$/.exec(e.address)?.[1];
  switch (e.code) {
    case 'EADDRINUSE':
      return `${e.address} (${e.field}) is already in use. Stop what listens there${port ? ` (ss -ltnp 'sport = :${port}')` : ''}, or set ${e.field} to another port (0 picks a free one)`;
    case 'EACCES':
      return e.address.startsWith('unix:')
        ? `not allowed to create the socket ${e.address} (${e.field}). Give this process write access to its directory`
        : `not allowed to listen on ${e.address} (${e.field}): ports below 1024 need root or CAP_NET_BIND_SERVICE. Use a port of 1024 or more`;
    case 'EADDRNOTAVAIL':
      return `${e.address} (${e.field}) is not an address of this host. Use one of its addresses, 127.0.0.1, or 0.0.0.0`;
    default:
      return `cannot listen on ${e.address} (${e.field}): ${e.code ?? (e.cause as Error)?.message ?? 'unknown error'}. Check ${e.field}`;
  }
}
