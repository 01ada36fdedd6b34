/**
 * Admin handlers for who gets what: registration entries (node id -> workload identifiers) and
 * node tokens. Changes are written to disk before they take effect, so a crash never leaves a
 * node serving something it would forget on restart.
 */
import { parseWorkloadId } from '../identity/workload-id.ts';
import { checkRegistrations, type Registration } from '../envoy/sds-ca-source.ts';
import { NODE_ID, hashToken, tokenIdOf } from '../identity/node-tokens.ts';
import type { AdminApiDeps } from './api-deps.ts';
import * as grpc from '@grpc/grpc-js';
import { AdminError, alreadyExists, failedPrecondition, invalidArgument, notFound } from './api-errors.ts';
import { SerialWriter, entriesDocument, entriesPath } from './api-state.ts';
import type { Handler } from './api.ts';

// As the CA checks them (src/ca/identity-server.ts): lower-case, an optional leading wildcard.
const DNS_NAME = /^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const MAX_TTL_SECONDS = 10 * 365 * 24 * 3600;
/** What UpdateEntry's update_mask may name. */
const ENTRY_FIELDS = ['workloads', 'dns_names'];

interface EntryMsg {
  node_id: string;
  workloads: string[];
  dns_names: string[];
}

export function checkNodeId(field: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') throw invalidArgument(field, 'is required (the Envoy node.id)');
  if (!NODE_ID.test(v)) throw invalidArgument(field, 'must be 1-256 printable ASCII characters without spaces');
  return v;
}

/** Check a new entry field by field; every problem is reported at once. */
function checkEntry(req: EntryMsg, trustDomain: string): Registration {
  const nodeId = checkNodeId('node_id', req.node_id);
  const problems: string[] = [];
  if (req.workloads.length === 0) problems.push('workloads: at least one workload identifier (the first is served as `default`)');
  req.workloads.forEach((w, i) => {
    const p = parseWorkloadId(w);
    if (!p.ok) problems.push(`workloads[${i}]: not a valid workload identifier (${p.reason}): ${p.message}`);
    else if (p.value.trustDomain !== trustDomain) problems.push(`workloads[${i}]: is in trust domain "${p.value.trustDomain}"; this node issues for "${trustDomain}"`);
  });
  req.dns_names.forEach((d, i) => {
    if (!DNS_NAME.test(d)) problems.push(`dns_names[${i}]: ${JSON.stringify(d)} is not a lower-case DNS name`);
  });
  if (problems.length) throw new AdminError(grpc.status.INVALID_ARGUMENT, problems.join('; '));
  return { nodeId, workloads: [...req.workloads], dnsNames: [...req.dns_names] };
}

/** An entry as the API returns it. */
const entryMsg = (e: Registration, source: 'config' | 'api') => ({ node_id: e.nodeId, workloads: [...e.workloads], dns_names: [...(e.dnsNames ?? [])], source });

export function registryHandlers(deps: AdminApiDeps, exclusive: <T>(fn: () => Promise<T>) => Promise<T>): Record<string, Handler> {
  const configIds = new Set(deps.configEntries.map((e) => e.nodeId));
  let apiEntries: Registration[] = deps.apiEntries.filter((e) => !configIds.has(e.nodeId));
  const entriesFile = new SerialWriter(entriesPath(deps.stateDir));

  const applyEntries = async (next: Registration[]): Promise<void> => {
    const all = [...deps.configEntries, ...next];
    const checked = checkRegistrations(deps.ca.trustDomain, all);
    if (!checked.ok) throw invalidArgument('entry', checked.errors.join('; '));
    await entriesFile.write(entriesDocument(next)); // durable first, then in force
    apiEntries = next;
    deps.registrations.setRegistrations(all);
  };

  return {
    async ListEntries() {
      const entries = deps.registrations
        .registrations()
        .map((e) => entryMsg(e, configIds.has(e.nodeId) ? 'config' : 'api'))
        .sort((a, b) => (a.node_id < b.node_id ? -1 : a.node_id > b.node_id ? 1 : 0));
      return { entries };
    },

    CreateEntry: (req: EntryMsg) =>
      exclusive(async () => {
        const entry = checkEntry(req, deps.ca.trustDomain);
        if (configIds.has(entry.nodeId))
          throw alreadyExists(`node id ${JSON.stringify(entry.nodeId)} already has an entry in the config file (sds.registrations). Edit it there`);
        if (apiEntries.some((e) => e.nodeId === entry.nodeId))
          throw alreadyExists(`node id ${JSON.stringify(entry.nodeId)} already has an entry. Change it with wimsectl entry update ${entry.nodeId}`);
        await applyEntries([...apiEntries, entry]);
        return entryMsg(entry, 'api');
      }),

    UpdateEntry: (req: { entry: EntryMsg | null; update_mask: string[] }) =>
      exclusive(async () => {
        const given = req.entry ?? { node_id: '', workloads: [], dns_names: [] };
        const nodeId = checkNodeId('entry.node_id', given.node_id);
        const unknown = req.update_mask.find((f) => !ENTRY_FIELDS.includes(f));
        if (unknown !== undefined) throw invalidArgument('update_mask', `${JSON.stringify(unknown)} is not a field that can change (${ENTRY_FIELDS.join(', ')})`);
        const mask = req.update_mask.length ? req.update_mask : ENTRY_FIELDS;
        if (configIds.has(nodeId))
          throw failedPrecondition(`the entry for node id ${JSON.stringify(nodeId)} comes from the config file and cannot be changed through the API. Edit it in sds.registrations and restart the node`);
        const current = apiEntries.find((e) => e.nodeId === nodeId);
        if (!current) throw notFound(`no entry for node id ${JSON.stringify(nodeId)}. Create it with wimsectl entry create, or list them with wimsectl entry list`);
        const entry = checkEntry(
          {
            node_id: nodeId,
            workloads: mask.includes('workloads') ? given.workloads : [...current.workloads],
            dns_names: mask.includes('dns_names') ? given.dns_names : [...(current.dnsNames ?? [])],
          },
          deps.ca.trustDomain,
        );
        await applyEntries(apiEntries.map((e) => (e.nodeId === nodeId ? entry : e)));
        return entryMsg(entry, 'api');
      }),

    DeleteEntry: (req: { node_id: string }) =>
      exclusive(async () => {
        const nodeId = checkNodeId('node_id', req.node_id);
        if (configIds.has(nodeId))
          throw failedPrecondition(`the entry for node id ${JSON.stringify(nodeId)} comes from the config file and cannot be deleted through the API. Remove it from sds.registrations and restart the node`);
        if (!apiEntries.some((e) => e.nodeId === nodeId)) throw notFound(`no entry for node id ${JSON.stringify(nodeId)}. List them with wimsectl entry list`);
        await applyEntries(apiEntries.filter((e) => e.nodeId !== nodeId));
        return {};
      }),

    CreateNodeToken: (req: { node_id: string; ttl_seconds: number }) =>
      exclusive(async () => {
        const nodeId = checkNodeId('node_id', req.node_id);
        const ttl = req.ttl_seconds;
        if (!Number.isSafeInteger(ttl) || ttl < 0 || ttl > MAX_TTL_SECONDS)
          throw invalidArgument('ttl_seconds', `must be 0 (no expiry) or a number of seconds up to ${MAX_TTL_SECONDS}`);
        const expiresAt = ttl > 0 ? deps.clock.now() + ttl * 1000 : undefined;
        const token = deps.nodeTokens.issue(nodeId, expiresAt !== undefined ? { expiresAt } : {});
        const tokenId = tokenIdOf(hashToken(token));
        try {
          await deps.saveNodeTokens();
        } catch (e) {
          deps.nodeTokens.revokeToken(tokenId); // never hand out a token the node would forget
          throw e;
        }
        return { token, token_id: tokenId, expires_at: expiresAt !== undefined ? Math.floor(expiresAt / 1000) : 0 };
      }),

    RevokeNodeToken: (req: { token_id: string; node_id: string }) =>
      exclusive(async () => {
        if ((req.token_id === '') === (req.node_id === ''))
          throw invalidArgument('token_id', 'give exactly one of token_id (one token) or node_id (every token of that node)');
        if (req.token_id !== '') {
          if (!deps.nodeTokens.revokeToken(req.token_id)) throw notFound(`no node token with id ${JSON.stringify(req.token_id)}. List them with wimsectl token list`);
        } else {
          const nodeId = checkNodeId('node_id', req.node_id);
          if (!deps.nodeTokens.list().some((t) => t.nodeId === nodeId)) throw notFound(`no node token for node id ${JSON.stringify(nodeId)}. List them with wimsectl token list`);
          deps.nodeTokens.revokeNode(nodeId);
        }
        await deps.saveNodeTokens();
        return {};
      }),

    async ListNodeTokens() {
      const tokens = deps.nodeTokens
        .list()
        .map((t) => ({ token_id: t.tokenId, node_id: t.nodeId, expires_at: t.expiresAt !== undefined ? Math.floor(t.expiresAt / 1000) : 0, revoked: t.revoked }))
        .sort((a, b) => (a.node_id < b.node_id ? -1 : a.node_id > b.node_id ? 1 : a.token_id < b.token_id ? -1 : 1));
      return { tokens };
    },
  };
}
