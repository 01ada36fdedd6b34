/**
 * wimsectl: operate a wimse-server node through its admin API (docs/cli.md).
 *
 *   wimsectl [--server ADDR] [--token-file FILE] [--ca-file FILE] [--cert-file FILE --key-file FILE] [-o json|yaml] <group> <verb> [flags]
 *   wimsectl <group> <verb> --help | wimsectl help [<group> [<verb>]] | wimsectl --version
 *
 * Groups: entry, token, bundle, authority, federation, mint, policy, envoy, cluster, authn. Exit codes: 0 ok,
 * 1 the node said no (or a check/decision failed), 2 usage error. Errors are printed as
 * `wimsectl: <what was wrong>. <how to fix it>`.
 */
import { readFileSync } from 'node:fs';
import { CliError, GLOBAL_FLAGS, OUTPUTS, UsageError, flag, isFlagArg, kindOf, parseFlags, type Command, type Ctx, type Output } from './wimsectl-args.ts';
import { adminCaller } from './wimsectl-client.ts';
import { YAML_OPTIONS, json } from './wimsectl-format.ts';
import { AUTHN_CHECK_HELP, commandHelp, globalHelp, groupHelp, type HelpTable } from './wimsectl-help.ts';
import { clusterCommands } from './wimsectl-cluster.ts';
import { envoyCommands } from './wimsectl-envoy.ts';
import { policyCommands } from './wimsectl-policy.ts';
import { entryCommands, tokenCommands } from './wimsectl-registry.ts';
import { authorityCommands, bundleCommands, federationCommands, mintCommands } from './wimsectl-trust.ts';
import { packageVersion } from './version.ts';

/** Every command, by group and verb. A new group is one line here. */
export const GROUPS: Record<string, Record<string, Command>> = {
  entry: entryCommands,
  token: tokenCommands,
  bundle: bundleCommands,
  authority: authorityCommands,
  federation: federationCommands,
  mint: mintCommands,
  policy: policyCommands,
  envoy: envoyCommands,
  cluster: clusterCommands,
};

const helpTable = (): HelpTable => ({ ...GROUPS, authn: { check: AUTHN_CHECK_HELP } });

export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  readStdin(): string;
  env: NodeJS.ProcessEnv;
}

const processIo: Io = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
  readStdin: () => readFileSync(0, 'utf8'),
  env: process.env,
};

/** `authn check`: its flags go to runAuthnCheck; `-o json` (its only format) or `-o yaml` is taken here. */
async function authnCheck(argv: readonly string[], rest: readonly string[], io: Io): Promise<number> {
  let output = 'json';
  argv.forEach((a, i) => {
    if ((a === '-o' || a === '--output') && argv[i + 1] !== undefined) output = argv[i + 1]!;
    else if (a.startsWith('--output=') || a.startsWith('-o=')) output = a.slice(a.indexOf('=') + 1);
  });
  const args = rest.filter((a, i) => !(a === '-o' || a === '--output' || a.startsWith('--output=') || a.startsWith('-o=') || rest[i - 1] === '-o' || rest[i - 1] === '--output'));
  if (!(OUTPUTS as readonly string[]).includes(output)) {
    io.stdout(`${JSON.stringify({ authenticated: false, error: { code: 'usage', detail: `-o must be json or yaml, not ${JSON.stringify(output)}` } })}\n`);
    return 2;
  }
  // Loaded here: the authentication stack is not needed by any other command.
  const { runAuthnCheck } = await import('./authn-check.ts');
  const out = runAuthnCheck(args, io.readStdin());
  io.stdout(output === 'yaml' ? (await import('yaml')).default.stringify(JSON.parse(out.stdoutLine), YAML_OPTIONS) : `${out.stdoutLine}\n`);
  return out.exitCode;
}

/** Help for `words` (none, a group, or a group and verb). */
function help(words: readonly string[]): string {
  const table = helpTable();
  const [group, verb, extra] = words;
  if (group === undefined) return globalHelp(table);
  const cmds = table[group];
  if (!cmds) throw new UsageError(`unknown command group ${JSON.stringify(group)} (one of ${Object.keys(table).join(', ')})`);
  if (verb === undefined) return groupHelp(group, cmds);
  const cmd = cmds[verb];
  if (!cmd) throw new UsageError(`unknown command "${group} ${verb}" (${group}: ${Object.keys(cmds).join(', ')})`);
  if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`);
  return commandHelp(cmd);
}

export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  const at = argv.map((_, i) => i).filter((i) => !isFlagArg(argv[i]!) && !isFlagValue(argv, i));
  const words = at.map((i) => argv[i]!);
  const has = (...names: string[]) => argv.some((a, i) => names.includes(a) && !isFlagValue(argv, i));
  const [group, verb] = words;
  try {
    if (has('--version')) {
      io.stdout(`wimsectl ${packageVersion()}\n`);
      return 0;
    }
    if (group === 'help') {
      io.stdout(help(words.slice(1)));
      return 0;
    }
    if (argv.length === 0 || has('--help', '-h')) {
      io.stdout(help(words.slice(0, 2)));
      return 0;
    }
    if (group === 'authn' && verb === 'check') return await authnCheck(argv, argv.slice(at[1]! + 1), io);
    if (!group) throw new UsageError('a command is required');
    const groups = helpTable();
    if (!groups[group]) throw new UsageError(`unknown command group ${JSON.stringify(group)} (one of ${Object.keys(groups).join(', ')})`);
    const cmd = verb !== undefined ? GROUPS[group]?.[verb] : undefined;
    if (!cmd) {
      const verbs = Object.keys(groups[group]!);
      throw new UsageError(verb ? `unknown command "${group} ${verb}" (${group}: ${verbs.join(', ')})` : `${group} needs a command (${verbs.join(', ')})`);
    }
    const usage = `Usage: wimsectl ${cmd.usage} (wimsectl ${group} ${verb} --help describes its flags)`;
    const rest = argv.filter((_, i) => i !== at[0] && i !== at[1]);
    let args;
    try {
      args = parseFlags(rest, cmd.flags);
    } catch (e) {
      if (e instanceof UsageError) throw new UsageError(`${e.message}. ${usage}`);
      throw e;
    }
    const output = (flag(args, '--output') ?? 'table') as Output;
    if (!OUTPUTS.includes(output)) throw new UsageError(`-o must be json or yaml (or table, the default), not ${JSON.stringify(output)}`);
    const client = adminCaller({ server: flag(args, '--server'), tokenFile: flag(args, '--token-file'), caFile: flag(args, '--ca-file'), certFile: flag(args, '--cert-file'), keyFile: flag(args, '--key-file'), env: io.env });
    // The yaml package loads only for -o yaml.
    const yaml = output === 'yaml' ? (await import('yaml')).default : undefined;
    const ctx: Ctx = {
      args,
      output,
      call: client.call,
      readInput(path, flagName) {
        try {
          return path === '-' ? io.readStdin() : readFileSync(path, 'utf8');
        } catch (e) {
          throw new CliError(`cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'}). Check ${flagName}`, 2);
        }
      },
      stdin: io.readStdin,
      out: io.stdout,
      show: (data, human) => io.stdout(yaml ? yaml.stringify(data, YAML_OPTIONS) : output === 'json' ? json(data) : human()),
    };
    try {
      return await cmd.run(ctx);
    } catch (e) {
      if (e instanceof UsageError) throw new UsageError(`${e.message}. ${usage}`);
      throw e;
    } finally {
      client.close();
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`wimsectl: ${e.message}${/Usage: /.test(e.message) ? '' : '. Run wimsectl --help'}\n`);
      return 2;
    }
    if (e instanceof CliError) {
      io.stderr(`wimsectl: ${e.message}\n`);
      return e.exitCode;
    }
    io.stderr(`wimsectl: ${(e as Error).message}\n`);
    return 1;
  }
}

/** Flags that take no value, in any command: the word after one is not its value. */
const BOOLEAN_FLAGS: ReadonlySet<string> = new Set([
  '-h',
  '--',
  ...[GLOBAL_FLAGS, ...Object.values(helpTable()).flatMap((cmds) => Object.values(cmds).map((c) => c.flags))].flatMap((flags) =>
    Object.entries(flags).flatMap(([name, f]) => (kindOf(f) === 'bool' ? [name] : [])),
  ),
]);

/** Is argv[i] the value of a flag that takes one (so not a command word)? */
function isFlagValue(argv: readonly string[], i: number): boolean {
  const prev = argv[i - 1];
  if (prev === undefined || !isFlagArg(prev) || prev.includes('=')) return false;
  return !BOOLEAN_FLAGS.has(prev);
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`wimsectl: ${(err as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
