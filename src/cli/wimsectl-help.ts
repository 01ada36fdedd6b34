/** `wimsectl --help`, `wimsectl help GROUP` and `wimsectl GROUP VERB --help` (or `wimsectl help GROUP VERB`). */
import { ALIASES, GLOBAL_FLAGS, kindOf, multi, value, type Command, type FlagSpec, type FlagTable } from './wimsectl-args.ts';

/** What help needs of a command. */
export type CommandHelp = Pick<Command, 'usage' | 'summary' | 'flags'>;
export type HelpTable = Record<string, Record<string, CommandHelp>>;

/**
 * `authn check` parses its own flags (src/cli/authn-check.ts; its output is always one JSON line,
 * errors too); this describes them, and its usage errors quote this usage.
 */
export const AUTHN_CHECK_HELP: CommandHelp = {
  usage: 'authn check --bundle FILE [--audience URI]... [--now UNIX_SECONDS] [--max-skew SECONDS] < request.json',
  summary: 'authenticate one request (JSON on stdin) offline against a bundle file; prints one JSON line',
  flags: {
    '--bundle': value('FILE', 'a SPIFFE bundle map (wimsectl bundle export)'),
    '--audience': multi('URI', 'an audience this service accepts in WPTs'),
    '--now': value('UNIX_SECONDS', 'check as of this time instead of now'),
    '--max-skew': value('SECONDS', 'clock skew allowed on iat/exp'),
  },
};

const alias = (name: string) => Object.entries(ALIASES).find(([, long]) => long === name)?.[0];

/** One line per flag: name, placeholder, meaning. */
function flagLines(flags: FlagTable): string[] {
  const rows = Object.entries(flags).map(([name, f]) => {
    const spec: FlagSpec = typeof f === 'string' ? { kind: f, help: '' } : f;
    const short = alias(name);
    const arg = kindOf(f) === 'bool' ? '' : ` ${spec.arg ?? 'VALUE'}`;
    const repeat = kindOf(f) === 'multi' ? ' (repeatable)' : '';
    return [`${short ? `${short}, ` : ''}${name}${arg}`, `${spec.help}${repeat}`] as const;
  });
  const width = Math.max(0, ...rows.map(([n]) => n.length));
  return rows.map(([n, h]) => `  ${n.padEnd(width)}  ${h}`.trimEnd());
}

const GLOBAL_LINE = 'global flags: --server ADDR, --token-file FILE, --ca-file FILE, --cert-file FILE, --key-file FILE, -o json|yaml (see wimsectl --help)';

export function commandHelp(cmd: CommandHelp): string {
  const flags = Object.keys(cmd.flags).length ? ['', 'flags:', ...flagLines(cmd.flags)] : [];
  return `${[`usage: wimsectl ${cmd.usage}`, `  ${cmd.summary}`, ...flags, '', GLOBAL_LINE].join('\n')}\n`;
}

export function groupHelp(group: string, cmds: Record<string, CommandHelp>): string {
  const lines = [`usage: wimsectl ${group} <command> [flags]`, '', 'commands:'];
  for (const c of Object.values(cmds)) lines.push(`  wimsectl ${c.usage}`, `      ${c.summary}`);
  lines.push('', `wimsectl ${group} <command> --help describes each flag.`);
  return `${lines.join('\n')}\n`;
}

export function globalHelp(table: HelpTable): string {
  const lines = [
    'usage: wimsectl [--server ADDR] [--token-file FILE] [--ca-file FILE] [--cert-file FILE --key-file FILE] [-o json|yaml] <command> [flags]',
    '',
    ...flagLines(GLOBAL_FLAGS),
    '',
    'commands:',
  ];
  for (const cmds of Object.values(table)) for (const c of Object.values(cmds)) lines.push(`  wimsectl ${c.usage}`, `      ${c.summary}`);
  lines.push('', 'wimsectl <command> --help (or wimsectl help <command>) describes its flags.');
  return `${lines.join('\n')}\n`;
}
