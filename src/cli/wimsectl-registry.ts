/** `wimsectl entry ...` and `wimsectl token ...`: who may receive which identity. */
import { parseDuration } from '../config/schema.ts';
import { CliError, UsageError, flag, flagOrPositional, flags, noPositionals, required, type Command } from './wimsectl-args.ts';
import { isoSec, json, table } from './wimsectl-format.ts';

interface Entry {
  node_id: string;
  workloads: string[];
  dns_names: string[];
  source: string;
}
interface TokenInfo {
  token_id: string;
  node_id: string;
  expires_at: number;
  revoked: boolean;
}

const entryRows = (es: Entry[]) => es.map((e) => [e.node_id, e.workloads.join(','), e.dns_names.join(',') || '-', e.source]);
const entryJson = (e: Entry): Entry => ({ node_id: e.node_id, workloads: e.workloads, dns_names: e.dns_names, source: e.source });
const ENTRY_HEADER = ['NODE ID', 'WORKLOADS', 'DNS NAMES', 'SOURCE'];

/** `--ttl 24h`, `--ttl 90m`, `--ttl 3600` (seconds) -> seconds. */
export function ttlSeconds(v: string | undefined): number {
  if (v === undefined) return 0;
  if (/^\d+$/.test(v)) return Number(v);
  const ms = parseDuration(v);
  if (ms === undefined || ms % 1000 !== 0) throw new UsageError(`--ttl ${JSON.stringify(v)} is not a duration; use seconds or 30m, 24h, 7d`);
  return ms / 1000;
}

export const entryCommands: Record<string, Command> = {
  create: {
    usage: 'entry create --node-id ID --workload ID [--workload ID]... [--dns NAME]...',
    summary: 'register an Envoy node id for workload identifiers (the first is its default)',
    flags: { '--node-id': 'value', '--workload': 'multi', '--dns': 'multi' },
    async run(c) {
      noPositionals(c.args);
      const node_id = required(c.args, '--node-id', "the Envoy node's node.id");
      const workloads = flags(c.args, '--workload');
      if (workloads.length === 0) throw new UsageError('--workload is required (at least one workload identifier)');
      const e: Entry = await c.call('CreateEntry', { node_id, workloads, dns_names: flags(c.args, '--dns') });
      c.out(c.output === 'json' ? json(entryJson(e)) : `created entry for ${e.node_id}: ${e.workloads.join(', ')}\n`);
      return 0;
    },
  },
  list: {
    usage: 'entry list',
    summary: 'list registration entries (from the config file and from the API)',
    flags: {},
    async run(c) {
      noPositionals(c.args);
      const { entries } = (await c.call('ListEntries')) as { entries: Entry[] };
      c.out(c.output === 'json' ? json(entries.map(entryJson)) : table(ENTRY_HEADER, entryRows(entries)));
      return 0;
    },
  },
  show: {
    usage: 'entry show NODE_ID',
    summary: 'show the entry of one node id',
    flags: { '--node-id': 'value' },
    async run(c) {
      const id = flagOrPositional(c.args, '--node-id', 'the node id');
      const { entries } = (await c.call('ListEntries')) as { entries: Entry[] };
      const e = entries.find((x) => x.node_id === id);
      if (!e) throw new CliError(`no entry for node id ${JSON.stringify(id)}. List them with wimsectl entry list`, 1);
      c.out(
        c.output === 'json'
          ? json(entryJson(e))
          : `node id:    ${e.node_id}\nsource:     ${e.source}\nworkloads:  ${e.workloads.join('\n            ')}\ndns names:  ${e.dns_names.join(', ') || '-'}\n`,
      );
      return 0;
    },
  },
  delete: {
    usage: 'entry delete NODE_ID',
    summary: 'delete an entry created through the API',
    flags: { '--node-id': 'value' },
    async run(c) {
      const node_id = flagOrPositional(c.args, '--node-id', 'the node id');
      await c.call('DeleteEntry', { node_id });
      c.out(c.output === 'json' ? json({ deleted: node_id }) : `deleted entry for ${node_id}\n`);
      return 0;
    },
  },
};

export const tokenCommands: Record<string, Command> = {
  create: {
    usage: 'token create --node-id ID [--ttl DURATION]',
    summary: 'issue a node token for an Envoy (shown once; the node keeps only its hash)',
    flags: { '--node-id': 'value', '--ttl': 'value' },
    async run(c) {
      noPositionals(c.args);
      const node_id = required(c.args, '--node-id', 'the Envoy node id the token is bound to');
      const r = (await c.call('CreateNodeToken', { node_id, ttl_seconds: ttlSeconds(flag(c.args, '--ttl')) })) as { token: string; token_id: string; expires_at: number };
      c.out(c.output === 'json' ? json(r) : `token:    ${r.token}\ntoken id: ${r.token_id}\nexpires:  ${isoSec(r.expires_at)}\n(shown once: put it in the Envoy bootstrap as initial_metadata authorization: Bearer <token>)\n`);
      return 0;
    },
  },
  revoke: {
    usage: 'token revoke TOKEN_ID | token revoke --node-id ID',
    summary: 'revoke one token, or every token of a node id (its SDS streams end)',
    flags: { '--node-id': 'value' },
    async run(c) {
      const node_id = flag(c.args, '--node-id') ?? '';
      const token_id = c.args.positionals[0] ?? '';
      if ((node_id === '') === (token_id === '')) throw new UsageError('give a TOKEN_ID or --node-id ID (not both)');
      noPositionals(c.args, 1);
      await c.call('RevokeNodeToken', { token_id, node_id });
      c.out(c.output === 'json' ? json({ revoked: token_id || { node_id } }) : `revoked ${token_id ? `token ${token_id}` : `every token of ${node_id}`}\n`);
      return 0;
    },
  },
  list: {
    usage: 'token list',
    summary: 'list node tokens (ids, node ids, expiry, revoked)',
    flags: {},
    async run(c) {
      noPositionals(c.args);
      const { tokens } = (await c.call('ListNodeTokens')) as { tokens: TokenInfo[] };
      c.out(
        c.output === 'json'
          ? json(tokens)
          : table(['TOKEN ID', 'NODE ID', 'EXPIRES', 'REVOKED'], tokens.map((x) => [x.token_id, x.node_id, isoSec(x.expires_at), x.revoked ? 'yes' : 'no'])),
      );
      return 0;
    },
  },
};
