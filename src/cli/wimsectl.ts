/**
 * wimsectl: operate a wimse-server node through its admin API (docs/cli.md).
 *
 *   wimsectl [--server ADDR] [--token-file FILE] [--ca-file FILE] [--cert-file FILE --key-file FILE] [-o json] <group> <verb> [flags]
 *
 * Groups: entry, token, bundle, authority, federation, mint, policy, authn. Exit codes: 0 ok,
 * 1 the node said no (or a check/decision failed), 2 usage error. Errors are printed as
 * `wimsectl: <what was wrong>. <how to fix it>`.
 */
import { readFileSync } from 'node:fs';
import { runAuthnCheck, AUTHN_CHECK_USAGE } from './authn-check.ts';
import { CliError, UsageError, flag, parseFlags, type Command, type Ctx } from './wimsectl-args.ts';
import { adminCaller } from './wimsectl-client.ts';
import { envoyCommands } from './wimsectl-envoy.ts';
import { policyCommands } from './wimsectl-policy.ts';
import { entryCommands, tokenCommands } from './wimsectl-registry.ts';
import { authorityCommands, bundleCommands, federationCommands, mintCommands } from './wimsectl-trust.ts';

export const GROUPS: Record<string, Record<string, Command>> = {
  entry: entryCommands,
  token: tokenCommands,
  bundle: bundleCommands,
  authority: authorityCommands,
  federation: federationCommands,
  mint: mintCommands,
  policy: policyCommands,
  envoy: envoyCommands,
};

const GLOBAL_USAGE = `usage: wimsectl [--server ADDR] [--token-file FILE] [--ca-file FILE] [--cert-file FILE --key-file FILE] [-o json] <command>

  --server ADDR       the node's gRPC address (default 127.0.0.1:8443, or WIMSE_SERVER); unix:/path works
  --token-file FILE   the admin token (or WIMSE_ADMIN_TOKEN; default ./state/admin-token)
  --ca-file FILE      PEM roots for a TLS listener
  --cert-file FILE    client certificate (PEM) for a listener that requires one (grpc.tls.requireClientCert)
  --key-file FILE     its private key (PEM)
  -o json             machine-readable output

commands:`;

export function usageText(): string {
  const lines = [GLOBAL_USAGE];
  for (const cmds of Object.values(GROUPS)) for (const c of Object.values(cmds)) lines.push(`  wimsectl ${c.usage}\n      ${c.summary}`);
  lines.push(`  wimsectl ${AUTHN_CHECK_USAGE.replace(/^usage: wimsectl /, '')}\n      authenticate one request offline against a bundle file`);
  return `${lines.join('\n')}\n`;
}

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

/** `authn check` takes its own flags (runAuthnCheck); `-o json` is accepted and is its only output anyway. */
function authnCheck(argv: readonly string[], io: Io): number {
  const rest = argv.filter((a, i) => !(a === '-o' || a === '--output' || argv[i - 1] === '-o' || argv[i - 1] === '--output'));
  const out = runAuthnCheck(rest, io.readStdin());
  io.stdout(`${out.stdoutLine}\n`);
  return out.exitCode;
}

export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  const at = argv.map((_, i) => i).filter((i) => !argv[i]!.startsWith('-') && !isFlagValue(argv, i));
  const group = at[0] !== undefined ? argv[at[0]] : undefined;
  const verb = at[1] !== undefined ? argv[at[1]] : undefined;
  if (group === 'authn' && verb === 'check') return authnCheck(argv.slice(at[1]! + 1), io);
  const cmd = group !== undefined && verb !== undefined ? GROUPS[group]?.[verb] : undefined;
  try {
    if (argv.includes('--help') || argv.includes('-h') || argv.length === 0) {
      io.stdout(cmd ? `usage: wimsectl ${cmd.usage}\n  ${cmd.summary}\n` : usageText());
      return 0;
    }
    if (!group) throw new UsageError('a command is required');
    if (!GROUPS[group] && group !== 'authn') throw new UsageError(`unknown command group ${JSON.stringify(group)} (one of ${[...Object.keys(GROUPS), 'authn'].join(', ')})`);
    if (!cmd) {
      const verbs = group === 'authn' ? ['check'] : Object.keys(GROUPS[group]!);
      throw new UsageError(verb ? `unknown command "${group} ${verb}" (${group}: ${verbs.join(', ')})` : `${group} needs a command (${verbs.join(', ')})`);
    }
    const rest = argv.filter((_, i) => i !== at[0] && i !== at[1]);
    let args;
    try {
      args = parseFlags(rest, cmd.flags);
    } catch (e) {
      if (e instanceof UsageError) throw new UsageError(`${e.message}. Usage: wimsectl ${cmd.usage}`);
      throw e;
    }
    const output = flag(args, '--output') ?? 'table';
    if (output !== 'table' && output !== 'json') throw new UsageError('-o must be json (or table, the default)');
    const client = adminCaller({ server: flag(args, '--server'), tokenFile: flag(args, '--token-file'), caFile: flag(args, '--ca-file'), certFile: flag(args, '--cert-file'), keyFile: flag(args, '--key-file'), env: io.env });
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
    };
    try {
      return await cmd.run(ctx);
    } catch (e) {
      if (e instanceof UsageError) throw new UsageError(`${e.message}. Usage: wimsectl ${cmd.usage}`);
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

/** Is argv[i] the value of a flag that takes one (so not a command word)? */
function isFlagValue(argv: readonly string[], i: number): boolean {
  const prev = argv[i - 1];
  if (prev === undefined || !prev.startsWith('-') || prev.includes('=')) return false;
  const booleans = new Set(['--help', '-h', '--']);
  return !booleans.has(prev);
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
