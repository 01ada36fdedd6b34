/**
 * Argument parsing for `wimsectl`: global flags anywhere on the line, then `<group> <verb>`,
 * then the verb's flags and positionals. Every mistake is a `UsageError` (exit code 2) that
 * says what was wrong and shows the usage line.
 */
export type FlagKind = 'value' | 'multi' | 'bool';

/** A flag as `wimsectl <command> --help` describes it. */
export interface FlagSpec {
  readonly kind: FlagKind;
  /** What it means (one line). */
  readonly help: string;
  /** The value's placeholder (`ID`, `FILE`) for value and multi flags. */
  readonly arg?: string;
}
/** A command's flags; a bare kind is a flag with no description. */
export type FlagTable = Record<string, FlagKind | FlagSpec>;

/** A flag that takes one value. */
export const value = (arg: string, help: string): FlagSpec => ({ kind: 'value', arg, help });
/** A flag that may be repeated; every value is kept. */
export const multi = (arg: string, help: string): FlagSpec => ({ kind: 'multi', arg, help });
/** A flag without a value. */
export const bool = (help: string): FlagSpec => ({ kind: 'bool', help });

export const kindOf = (f: FlagKind | FlagSpec): FlagKind => (typeof f === 'string' ? f : f.kind);

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A failure on this side (a file that cannot be read, a bad answer): exit code 1 or 2. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
  }
}

export interface ParsedArgs {
  readonly positionals: string[];
  readonly flags: Map<string, string[]>;
}

export const OUTPUTS = ['table', 'json', 'yaml'] as const;
export type Output = (typeof OUTPUTS)[number];

export const GLOBAL_FLAGS: Record<string, FlagSpec> = {
  '--server': value('ADDR', "the node's gRPC address (default 127.0.0.1:8443, or WIMSE_SERVER); unix:/path works"),
  '--token-file': value('FILE', 'the admin token (or WIMSE_ADMIN_TOKEN; default ./state/admin-token)'),
  '--ca-file': value('FILE', 'PEM roots for a TLS listener'),
  '--cert-file': value('FILE', 'client certificate (PEM) for a listener that requires one (grpc.tls.requireClientCert)'),
  '--key-file': value('FILE', 'its private key (PEM)'),
  '--output': value('json|yaml', 'machine-readable output (camelCase keys, RFC 3339 times); default: tables'),
  '--help': bool('usage of every command, or of one'),
  '--version': bool('print the version'),
};
export const ALIASES: Record<string, string> = { '-o': '--output', '-h': '--help' };

/**
 * Is this argument a flag? `--name[=value]` and the short aliases are; anything else is a word,
 * even with a leading `-`: a token id is a digest prefix in base64url and may begin with `-`.
 */
export const isFlagArg = (a: string): boolean => a.startsWith('--') || Object.hasOwn(ALIASES, a);

/** Split argv by the flag table (global flags included); `--flag=value` and `--flag value` both work. */
export function parseFlags(argv: readonly string[], spec: FlagTable): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string[]>();
  const all = { ...GLOBAL_FLAGS, ...spec };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!isFlagArg(a)) {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    let name = eq > 0 ? a.slice(0, eq) : a;
    name = ALIASES[name] ?? name;
    const f = all[name];
    if (!f) throw new UsageError(`unknown flag ${eq > 0 ? a.slice(0, eq) : a}`);
    const kind = kindOf(f);
    let value: string;
    if (kind === 'bool') {
      if (eq > 0) throw new UsageError(`${name} takes no value`);
      value = 'true';
    } else if (eq > 0) value = a.slice(eq + 1);
    else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new UsageError(`${name} needs a value`);
      value = next;
      i++;
    }
    const prev = flags.get(name) ?? [];
    if (kind !== 'multi' && prev.length > 0) throw new UsageError(`${name} given twice`);
    flags.set(name, [...prev, value]);
  }
  return { positionals, flags };
}

export const flag = (a: ParsedArgs, name: string): string | undefined => a.flags.get(name)?.[0];
export const flags = (a: ParsedArgs, name: string): string[] => a.flags.get(name) ?? [];

export function required(a: ParsedArgs, name: string, what: string): string {
  const v = flag(a, name);
  if (v === undefined || v === '') throw new UsageError(`${name} is required (${what})`);
  return v;
}

/** A flag or the first positional (e.g. `entry delete NODE_ID` or `--node-id NODE_ID`). */
export function flagOrPositional(a: ParsedArgs, name: string, what: string): string {
  const v = flag(a, name) ?? a.positionals[0];
  if (v === undefined || v === '') throw new UsageError(`${what} is required (${name} or as an argument)`);
  return v;
}

export function noPositionals(a: ParsedArgs, max = 0): void {
  if (a.positionals.length > max) throw new UsageError(`unexpected argument ${JSON.stringify(a.positionals[max])}`);
}

/** What a command runs with. */
export interface Ctx {
  readonly args: ParsedArgs;
  readonly output: Output;
  /** Calls the admin API (connects on first use). */
  call(rpc: string, request?: unknown): Promise<any>;
  /** Reads a file, or stdin for `-`; unreadable: a CliError naming the flag. */
  readInput(path: string, flagName: string): string;
  readonly stdin: () => string;
  out(text: string): void;
  /** Print a result: `data` as JSON or YAML with `-o`, else the human text. */
  show(data: unknown, human: () => string): void;
}

export interface Command {
  /** One line, after `wimsectl `. */
  readonly usage: string;
  readonly summary: string;
  readonly flags: FlagTable;
  /** Resolves to the exit code. */
  run(ctx: Ctx): Promise<number>;
}
