/**
 * wimse-server: run one control-plane node.
 *
 *   wimse-server                          run on embedded defaults (example.org, ./state, no NATS)
 *   wimse-server --config FILE            run with a config file
 *   wimse-server validate --config FILE   check a config file, start nothing
 *   --grpc-listen ADDR, --admin-listen ADDR  (or WIMSE_GRPC_LISTEN, WIMSE_ADMIN_LISTEN) replace the file's listeners
 *
 * A start that fails prints one line to stderr (the cause and the remedy) and exits 1; `--debug`
 * or LOG_LEVEL=debug adds the stack.
 */
import { ConfigError, checkConfig, loadConfigFile, type ConfigOverrides, type NodeConfig } from '../config/config.ts';
import type { StartupContext } from './startup-error.ts';
import { packageVersion } from './version.ts';

const USAGE = `usage: wimse-server [run] [--config FILE] [--grpc-listen ADDR] [--admin-listen ADDR] [--debug]
       wimse-server validate --config FILE [--grpc-listen ADDR] [--admin-listen ADDR]
       wimse-server --version

  -c, --config FILE      the node's configuration (docs/config.md); without it, embedded defaults:
                         trust domain example.org, state in ./state, no NATS
  --grpc-listen ADDR     grpc.listen: HOST:PORT or unix:/path (or WIMSE_GRPC_LISTEN)
  --admin-listen ADDR    admin.listen: HOST:PORT, or '' for none (or WIMSE_ADMIN_LISTEN)
  --version              print the version

A flag wins over its environment variable, which wins over the config file.`;

/** Listen addresses from flags and the environment: which config field, and where it may come from. */
const LISTEN_OVERRIDES = [
  { field: 'grpc.listen', flag: '--grpc-listen', env: 'WIMSE_GRPC_LISTEN' },
  { field: 'admin.listen', flag: '--admin-listen', env: 'WIMSE_ADMIN_LISTEN' },
] as const;

interface Args {
  command: 'run' | 'validate' | 'help' | 'version';
  config?: string;
  /** Flag values by config field. */
  listen: Record<string, string>;
  /** Print the stack of a failed start. */
  debug?: boolean;
}

export function parseArgs(argv: string[]): Args | string {
  const args: Args = { command: 'run', listen: {} };
  const rest = [...argv];
  if (rest[0] === 'run' || rest[0] === 'validate') args.command = rest.shift() as Args['command'];
  while (rest.length) {
    const a = rest.shift()!;
    if (a === '--help' || a === '-h') return { command: 'help', listen: {} };
    if (a === '--version') return { command: 'version', listen: {} };
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const takeValue = (): string | undefined => (eq > 0 && name !== a ? a.slice(eq + 1) : rest.shift());
    const listen = LISTEN_OVERRIDES.find((o) => o.flag === name);
    if (a === '--debug') args.debug = true;
    else if (name === '--config' || name === '-c') {
      const v = takeValue();
      if (!v) return '--config needs a file';
      args.config = v;
    } else if (listen) {
      const v = takeValue();
      if (v === undefined) return `${listen.flag} needs an address (HOST:PORT or unix:/path)`;
      args.listen[listen.field] = v;
    } else return `unknown argument: ${a}`;
  }
  if (args.command === 'validate' && !args.config) return 'validate needs --config FILE';
  return args;
}

/**
 * The listen overrides in force: a flag, else a non-empty environment variable. Each error about
 * an overridden field names where its value came from.
 */
function listenOverrides(args: Args, env: NodeJS.ProcessEnv): { overrides: ConfigOverrides; explain(error: string): string } {
  const overrides: Record<string, string> = {};
  const sources: Record<string, string> = {};
  for (const o of LISTEN_OVERRIDES) {
    const fromEnv = env[o.env];
    if (args.listen[o.field] !== undefined) [overrides[o.field], sources[o.field]] = [args.listen[o.field]!, o.flag];
    else if (fromEnv) [overrides[o.field], sources[o.field]] = [fromEnv, o.env];
  }
  return {
    overrides,
    explain: (error) => {
      const field = Object.keys(sources).find((f) => error.startsWith(`${f}:`));
      return field ? `${field} (from ${sources[field]})${error.slice(field.length)}` : error;
    },
  };
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const args = parseArgs(argv);
  if (typeof args === 'string') {
    process.stderr.write(`wimse-server: ${args}\n${USAGE}\n`);
    return 2;
  }
  if (args.command === 'help') {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (args.command === 'version') {
    process.stdout.write(`wimse-server ${packageVersion()}\n`);
    return 0;
  }
  const { overrides, explain } = listenOverrides(args, env);
  const r = args.config ? loadConfigFile(args.config, overrides) : checkConfig({}, process.cwd(), overrides);
  if (!r.ok) {
    const errors = r.errors.map(explain);
    if (args.command === 'run') return await failed(new ConfigError(errors, 'schema'), { configFile: args.config }, args.debug);
    process.stderr.write(`wimse-server: ${args.config} is not valid:\n${errors.map((e) => `  ${e}`).join('\n')}\n`);
    return 1;
  }
  const config: NodeConfig = r.value;
  if (args.command === 'validate') {
    const { preflight, policyProblems } = await import('../node-preflight.ts');
    const problems = [...(await preflight(config)), ...(await policyProblems(config))];
    if (problems.length) {
      process.stderr.write(`wimse-server: ${args.config} is not valid:\n${problems.map((e) => `  ${e}`).join('\n')}\n`);
      return 1;
    }
    process.stdout.write(`${args.config}: valid (trust domain ${config.trustDomain}; gRPC ${config.grpc.listen}, admin HTTP ${config.admin.listen || 'off'})\n`);
    return 0;
  }
  // The node loads only to run: --version, --help and validate start without it.
  const [{ startNode }, { grpcLogsToStdout }] = await Promise.all([import('../node.ts'), import('./startup-error.ts')]);
  grpcLogsToStdout();
  let node: Awaited<ReturnType<typeof startNode>>;
  try {
    node = await startNode(config);
  } catch (e) {
    return await failed(e, { configFile: args.config, config }, args.debug);
  }
  process.stdout.write(
    `wimse-server: node ${node.name}, trust domain ${config.trustDomain}\n` +
      `  gRPC (SDS, ext_authz, Workload API, admin API): ${node.grpcAddress}\n` +
      (node.adminUrl ? `  admin HTTP: ${node.adminUrl} (/healthz /readyz /metrics)\n` : '') +
      `  state: ${config.stateDir}\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await node.close();
  return 0;
}

/** A failed start: one line on stderr (the stack too with --debug or LOG_LEVEL=debug); exit code 1. */
async function failed(err: unknown, ctx: StartupContext, debug = false): Promise<number> {
  const { startupDebug, startupFailure } = await import('./startup-error.ts');
  process.stderr.write(`${startupFailure(err, ctx)}\n`);
  if (debug || /^(debug|trace)$/i.test(process.env.LOG_LEVEL ?? '')) process.stderr.write(`${startupDebug(err)}\n`);
  return 1;
}

/** The process: bin/wimse-server.mjs, or this file run directly. Exits with main's code; an unexpected error is one line too. */
export function run(argv: string[]): void {
  main(argv).then(
    (code) => process.exit(code),
    (err: unknown) => failed(err, {}, argv.includes('--debug')).then((code) => process.exit(code)),
  );
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) run(process.argv.slice(2));
