import test from 'ava';
import { parseFlags, UsageError } from '../../src/cli/wimsectl-args.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GROUPS, main, type Io } from '../../src/cli/wimsectl.ts';
import { ROOT } from '../helpers/process.ts';
import { ttlSeconds } from '../../src/cli/wimsectl-registry.ts';

const io = (): Io & { out: string; err: string } => {
  const o = { out: '', err: '', env: {}, readStdin: () => '' } as Io & { out: string; err: string };
  o.stdout = (t) => void (o.out += t);
  o.stderr = (t) => void (o.err += t);
  return o;
};

test('wimsectl args - flags with = or a separate value, repeated multi flags, aliases, positionals', (t) => {
  const a = parseFlags(['NODE', '--workload', 'a', '--workload=b', '-o', 'json', '--server=h:1', '-'], { '--workload': 'multi' });
  t.deepEqual(a.positionals, ['NODE', '-']);
  t.deepEqual(a.flags.get('--workload'), ['a', 'b']);
  t.deepEqual(a.flags.get('--output'), ['json']);
  t.deepEqual(a.flags.get('--server'), ['h:1']);
  t.throws(() => parseFlags(['--node-id', 'a', '--node-id', 'b'], { '--node-id': 'value' }), { instanceOf: UsageError, message: '--node-id given twice' });
  t.throws(() => parseFlags(['--node-id'], { '--node-id': 'value' }), { message: '--node-id needs a value' });
  t.throws(() => parseFlags(['--server', '--token-file', 'x'], {}), { message: '--server needs a value' });
  t.throws(() => parseFlags(['--help=yes'], {}), { message: '--help takes no value' });
  t.throws(() => parseFlags(['--nope'], {}), { message: 'unknown flag --nope' });
});

test('wimsectl args - a word with a leading - (a token id is base64url) is a positional, not a flag', (t) => {
  const a = parseFlags(['-AbCdEfGhIjKlMnO', '-o', 'json'], {});
  t.deepEqual(a.positionals, ['-AbCdEfGhIjKlMnO']);
  t.deepEqual(a.flags.get('--output'), ['json']);
  t.deepEqual(parseFlags(['--node-id', '-x1'], { '--node-id': 'value' }).flags.get('--node-id'), ['-x1']);
});

test('wimsectl args - durations for --ttl', (t) => {
  t.is(ttlSeconds(undefined), 0);
  t.is(ttlSeconds('3600'), 3600);
  t.is(ttlSeconds('90m'), 5400);
  t.is(ttlSeconds('7d'), 604_800);
  t.throws(() => ttlSeconds('1500ms'), { instanceOf: UsageError });
  t.throws(() => ttlSeconds('soon'), { instanceOf: UsageError });
});

test('wimsectl main - help, per-command help and usage errors, without a node', async (t) => {
  const all = io();
  t.is(await main([], all), 0);
  t.regex(all.out, /^usage: wimsectl \[--server ADDR\]/);
  const one = io();
  t.is(await main(['token', 'create', '--help'], one), 0);
  t.is(
    one.out,
    [
      'usage: wimsectl token create --node-id ID [--ttl DURATION]',
      '  issue a node token for an Envoy (shown once; the node keeps only its hash)',
      '',
      'flags:',
      '  --node-id ID    the Envoy node id the token is bound to',
      '  --ttl DURATION  lifetime: seconds, or 90m, 24h, 7d (default: no expiry, revocable)',
      '',
      'global flags: --server ADDR, --token-file FILE, --ca-file FILE, --cert-file FILE, --key-file FILE, -o json|yaml (see wimsectl --help)',
      '',
    ].join('\n'),
  );
  const missing = io();
  t.is(await main(['-o', 'json', 'entry'], missing), 2);
  t.is(missing.err, 'wimsectl: entry needs a command (create, update, list, show, delete). Run wimsectl --help\n');
  const unreadable = io();
  t.is(await main(['--token-file', '/nonexistent/admin-token', 'entry', 'list'], unreadable), 2);
  t.regex(unreadable.err, /^wimsectl: cannot read the admin token file \/nonexistent\/admin-token \(ENOENT\)\. Check --token-file/);
});

test('wimsectl main - every command has --help and help GROUP VERB, the same text, naming each flag with a description', async (t) => {
  const commands = [...Object.entries(GROUPS).flatMap(([g, cmds]) => Object.entries(cmds).map(([v, c]) => [g, v, c.flags] as const)), ['authn', 'check', { '--bundle': 'value', '--audience': 'value', '--now': 'value', '--max-skew': 'value' }] as const];
  t.true(commands.length >= 25);
  for (const [group, verb, flags] of commands) {
    const [viaFlag, viaShort, viaHelp] = [io(), io(), io()];
    t.is(await main([group, verb, '--help'], viaFlag), 0, `${group} ${verb}`);
    t.is(await main([group, verb, '-h'], viaShort), 0);
    t.is(await main(['help', group, verb], viaHelp), 0);
    t.is(viaShort.out, viaFlag.out);
    t.is(viaHelp.out, viaFlag.out);
    t.true(viaFlag.out.startsWith(`usage: wimsectl ${group} ${verb}`), viaFlag.out);
    for (const name of Object.keys(flags)) t.regex(viaFlag.out, new RegExp(`\\n  ${name}( \\S+)?  +\\S`), `${group} ${verb}: ${name} is described`);
  }
  for (const cmds of Object.values(GROUPS))
    for (const c of Object.values(cmds))
      for (const [name, f] of Object.entries(c.flags)) t.true(typeof f === 'object' && f.help.length > 0, `${c.usage}: ${name} has a description`);
  const group = io();
  t.is(await main(['help', 'token'], group), 0);
  t.regex(group.out, /^usage: wimsectl token <command>/);
  t.regex(group.out, /wimsectl token revoke TOKEN_ID/);
  const unknown = io();
  t.is(await main(['help', 'entry', 'frob'], unknown), 2);
  t.regex(unknown.err, /unknown command "entry frob" \(entry: create, update, list, show, delete\)/);
});

test('wimsectl main - an unknown flag is a usage error naming it, with the command\'s usage', async (t) => {
  const a = io();
  t.is(await main(['entry', 'update', 'x', '--workloads', 'wimse://example.org/a'], a), 2);
  t.is(a.err, 'wimsectl: unknown flag --workloads. Usage: wimsectl entry update NODE_ID [--workload ID]... [--dns NAME]... [--no-dns] (wimsectl entry update --help describes its flags)\n');
  const b = io();
  t.is(await main(['bundle', 'show', '--trust-domain=a.example', '--kid=x'], b), 2);
  t.regex(b.err, /^wimsectl: unknown flag --kid\. Usage: wimsectl bundle show/);
});

test('wimsectl main - --version prints the package version, anywhere on the line', async (t) => {
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  for (const argv of [['--version'], ['entry', 'list', '--version'], ['-o', 'json', '--version']]) {
    const o = io();
    t.is(await main(argv, o), 0);
    t.is(o.out, `wimsectl ${version}\n`);
    t.is(o.err, '');
  }
});
