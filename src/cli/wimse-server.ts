/**
 * wimse-server: run one control-plane node.
 *
 *   wimse-server                          run on embedded defaults (example.org, ./state, no NATS)
 *   wimse-server --config FILE            run with a config file
 *   wimse-server validate --config FILE   check a config file, start nothing
 *
 * A start that fails prints one line to stderr (the cause and the remedy) and exits 1; `--debug`
 * or LOG_LEVEL=debug adds the stack.
 */
import { ConfigError, embeddedDefaults, loadConfigFile, type NodeConfig } from '../config/config.ts';
import { startNode } from '../node.ts';
import { preflight } from '../node-preflight.ts';
import { grpcLogsToStdout, startupDebug, startupFailure, type StartupContext } from './startup-error.ts';

const USAGE = `usage: wimse-server [run] [--config FILE] [--debug]
       wimse-server validate --config FILE

With no --config, runs on embedded defaults: trust domain example.org, state in ./state, no NATS.
See docs/config.md for every field.`;

interface Args {
  command: 'run' | 'validate' | 'help';
  config?: string;
  /** Print the stack of a failed start. */
  debug?: boolean;
}

export function parseArgs(argv: string[]): Args | string {
  const args: Args = { command: 'run' };
  const rest = [...argv];
  if (rest[0] === 'run' || rest[0] === 'validate') args.command = rest.shift() as Args['command'];
  while (rest.length) {
    const a = rest.shift()!;
    if (a === '--help' || a === '-h') return { command: 'help' };
    if (a === '--debug') args.debug = true;
    else if (a === '--config' || a === '-c') {
      const v = rest.shift();
      if (!v) return '--config needs a file';
      args.config = v;
    } else if (a.startsWith('--config=')) args.config = a.slice('--config='.length);
    else return `unknown argument: ${a}`;
  }
  if (args.command === 'validate' && !args.config) return 'validate needs --config FILE';
  return args;
}

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (typeof args === 'string') {
    process.stderr.write(`wimse-server: ${args}\n${USAGE}\n`);
    return 2;
  }
  if (args.command === 'help') {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  let config: NodeConfig;
  if (args.config) {
    const r = loadConfigFile(args.config);
    if (!r.ok && args.command === 'run') return failed(new ConfigError(r.errors, 'schema'), { configFile: args.config }, args.debug);
    if (!r.ok) {
      process.stderr.write(`wimse-server: ${args.config} is not valid:\n${r.errors.map((e) => `  ${e}`).join('\n')}\n`);
      return 1;
    }
    config = r.value;
  } else config = embeddedDefaults();
  if (args.command === 'validate') {
    const problems = await preflight(config);
    if (problems.length) {
      process.stderr.write(`wimse-server: ${args.config} is not valid:\n${problems.map((e) => `  ${e}`).join('\n')}\n`);
      return 1;
    }
    process.stdout.write(`${args.config}: valid (trust domain ${config.trustDomain})\n`);
    return 0;
  }
  grpcLogsToStdout();
  let node: Awaited<ReturnType<typeof startNode>>;
  try {
    node = await startNode(config);
  } catch (e) {
    return failed(e, { configFile: args.config, config }, args.debug);
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
function failed(err: unknown, ctx: StartupContext, debug = false): number {
  process.stderr.write(`${startupFailure(err, ctx)}\n`);
  if (debug || /^(debug|trace)$/i.test(process.env.LOG_LEVEL ?? '')) process.stderr.write(`${startupDebug(err)}\n`);
  return 1;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const argv = process.argv.slice(2);
  main(argv).then(
    (code) => process.exit(code),
    (err: unknown) => process.exit(failed(err, {}, argv.includes('--debug'))),
  );
}
