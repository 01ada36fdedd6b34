/** `wimsectl entry ...` and `wimsectl token ...`: who may receive which identity. */
import { parseDuration } from '../config/schema.ts';
import { CliError, UsageError, bool, flag, flagOrPositional, flags, multi, noPositionals, required, value, type Command } from './wimsectl-args.ts';
import { isoSec, rfc3339Sec, table } from './wimsectl-format.ts';

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
/** `-o json|yaml`: an entry. */
const entryView = (e: Entry) => ({ nodeId: e.node_id, workloads: e.workloads, dnsNames: e.dns_names, source: e.source });
/** `-o json|yaml`: a node token (expiresAt null: it does not expire). */
const tokenView = (x: TokenInfo) => ({ tokenId: x.token_id, nodeId: x.node_id, expiresAt: rfc3339Sec(x.expires_at), revoked: x.revoked });
const ENTRY_HEADER = ['NODE ID', 'WORKLOADS', 'DNS NAMES', 'SOURCE'];

const NODE_ID = value('ID', "the Envoy node's node.id");
const WORKLOAD = multi('ID', 'a workload identifier it may receive; the first is its default');
const DNS = multi('NAME', 'a DNS SAN of its certificates (lower case)');

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
    flags: { '--node-id': NODE_ID, '--workload': WORKLOAD, '--dns': DNS },
    async run(c) {
      noPositionals(c.args);
      const node_id = required(c.args, '--node-id', "the Envoy node's node.id");
      const workloads = flags(c.args, '--workload');
      if (workloads.length === 0) throw new UsageError('--workload is required (at least one workload identifier)');
      const e: Entry = await c.call('CreateEntry', { node_id, workloads, dns_names: flags(c.args, '--dns') });
      c.show(entryView(e), () => `created entry for ${e.node_id}: ${e.workloads.join(', ')}\n`);
      return 0;
    },
  },
  update: {
    usage: 'entry update NODE_ID [--workload ID]... [--dns NAME]... [--no-dns]',
    summary: 'change an entry created through the API: --workload replaces its workloads, --dns or --no-dns its DNS names',
    flags: { '--node-id': NODE_ID, '--workload': multi('ID', 'the new workload identifiers, replacing the old ones; the first is its default'), '--dns': multi('NAME', 'the new DNS SANs, replacing the old ones'), '--no-dns': bool('remove every DNS SAN') },
    async run(c) {
      const node_id = flagOrPositional(c.args, '--node-id', 'the node id');
      noPositionals(c.args, flag(c.args, '--node-id') !== undefined ? 0 : 1);
      const workloads = flags(c.args, '--workload');
      const dns_names = flags(c.args, '--dns');
      const noDns = flag(c.args, '--no-dns') !== undefined;
      if (noDns && dns_names.length > 0) throw new UsageError('give --dns NAME or --no-dns, not both');
      const update_mask = [...(workloads.length > 0 ? ['workloads'] : []), ...(dns_names.length > 0 || noDns ? ['dns_names'] : [])];
      if (update_mask.length === 0) throw new UsageError('nothing to change: give --workload, --dns or --no-dns');
      const e: Entry = await c.call('UpdateEntry', { entry: { node_id, workloads, dns_names }, update_mask });
      c.show(entryView(e), () => `updated entry for ${e.node_id}: ${e.workloads.join(', ')}${e.dns_names.length ? ` (DNS: ${e.dns_names.join(', ')})` : ''}\n`);
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
      c.show(entries.map(entryView), () => table(ENTRY_HEADER, entryRows(entries)));
      return 0;
    },
  },
  show: {
    usage: 'entry show NODE_ID',
    summary: 'show the entry of one node id',
    flags: { '--node-id': NODE_ID },
    async run(c) {
      const id = flagOrPositional(c.args, '--node-id', 'the node id');
      const { entries } = (await c.call('ListEntries')) as { entries: Entry[] };
      const e = entries.find((x) => x.node_id === id);
      if (!e) throw new CliError(`no entry for node id ${JSON.stringify(id)}. List them with wimsectl entry list`, 1);
      c.show(entryView(e), () => `node id:    ${e.node_id}\nsource:     ${e.source}\nworkloads:  ${e.workloads.join('\n            ')}\ndns names:  ${e.dns_names.join(', ') || '-'}\n`);
      return 0;
    },
  },
  delete: {
    usage: 'entry delete NODE_ID',
    summary: 'delete an entry created through the API',
    flags: { '--node-id': NODE_ID },
    async run(c) {
      const node_id = flagOrPositional(c.args, '--node-id', 'the node id');
      await c.call('DeleteEntry', { node_id });
      c.show({ deleted: { nodeId: node_id } }, () => `deleted entry for ${node_id}\n`);
      return 0;
    },
  },
};

export const tokenCommands: Record<string, Command> = {
  create: {
    usage: 'token create --node-id ID [--ttl DURATION]',
    summary: 'issue a node token for an Envoy (shown once; the node keeps only its hash)',
    flags: { '--node-id': value('ID', 'the Envoy node id the token is bound to'), '--ttl': value('DURATION', 'lifetime: seconds, or 90m, 24h, 7d (default: no expiry, revocable)') },
    async run(c) {
      noPositionals(c.args);
      const node_id = required(c.args, '--node-id', 'the Envoy node id the token is bound to');
      const r = (await c.call('CreateNodeToken', { node_id, ttl_seconds: ttlSeconds(flag(c.args, '--ttl')) })) as { token: string; token_id: string; expires_at: number };
      c.show({ token: r.token, tokenId: r.token_id, nodeId: node_id, expiresAt: rfc3339Sec(r.expires_at) }, () => `token:    ${r.token}\ntoken id: ${r.token_id}\nexpires:  ${isoSec(r.expires_at)}\n(shown once: put it in the Envoy bootstrap as initial_metadata authorization: Bearer <token>)\n`);
      return 0;
    },
  },
  revoke: {
    usage: 'token revoke TOKEN_ID | token revoke --node-id ID',
    summary: 'revoke one token, or every token of a node id (its SDS streams end)',
    flags: { '--node-id': value('ID', 'revoke every token of this node id instead of one') },
    async run(c) {
      const node_id = flag(c.args, '--node-id') ?? '';
      const token_id = c.args.positionals[0] ?? '';
      if ((node_id === '') === (token_id === '')) throw new UsageError('give a TOKEN_ID or --node-id ID (not both)');
      noPositionals(c.args, 1);
      await c.call('RevokeNodeToken', { token_id, node_id });
      c.show({ revoked: token_id ? { tokenId: token_id } : { nodeId: node_id } }, () => `revoked ${token_id ? `token ${token_id}` : `every token of ${node_id}`}\n`);
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
      c.show(tokens.map(tokenView), () => table(['TOKEN ID', 'NODE ID', 'EXPIRES', 'REVOKED'], tokens.map((x) => [x.token_id, x.node_id, isoSec(x.expires_at), x.revoked ? 'yes' : 'no'])));
      return 0;
    },
  },
};
