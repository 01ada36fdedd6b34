import test from 'ava';
import { parseFlags, UsageError } from '../../src/cli/wimsectl-args.ts';
import { main, type Io } from '../../src/cli/wimsectl.ts';
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
  t.is(one.out, 'usage: wimsectl token create --node-id ID [--ttl DURATION]\n  issue a node token for an Envoy (shown once; the node keeps only its hash)\n');
  const missing = io();
  t.is(await main(['-o', 'json', 'entry'], missing), 2);
  t.is(missing.err, 'wimsectl: entry needs a command (create, list, show, delete). Run wimsectl --help\n');
  const unreadable = io();
  t.is(await main(['--token-file', '/nonexistent/admin-token', 'entry', 'list'], unreadable), 2);
  t.regex(unreadable.err, /^wimsectl: cannot read the admin token file \/nonexistent\/admin-token \(ENOENT\)\. Check --token-file/);
});
