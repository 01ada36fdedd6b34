/**
 * What the admin API persists, and how the node finds it again at start:
 *
 *   <stateDir>/entries.json            registration entries created through the API
 *   <stateDir>/federation/<td>.json    SPIFFE bundles (JWKS) of trust domains federated through the API
 *   <stateDir>/policy.yaml             policy applied through the API when the config names no policy file
 *   node tokens                        the node-token file the node loads (sds.nodeTokensFile); the node
 *                                      keeps it equal to its token store, which the cluster also changes
 *                                      and from which records expired longer than sds.expiredTokenRetention
 *                                      ago are pruned
 *
 * Every write is atomic: a temporary file in the same directory, fsync, rename, then fsync of
 * the directory, with mode 0600. A reader sees the old file or the new one, never half of one.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parseTrustDomain } from '../identity/workload-id.ts';
import type { Registration } from '../envoy/sds-ca-source.ts';
import { NodeTokenStore } from '../identity/node-tokens.ts';
import type { Clock } from '../identity/clock.ts';

export const ENTRIES_FILE = 'entries.json';
export const FEDERATION_DIR = 'federation';
export const POLICY_FILE = 'policy.yaml';
export const NODE_TOKENS_FILE = 'node-tokens.json';

/** Write `data` to `path` atomically (temp + fsync + rename + directory fsync). */
export async function writeFileAtomic(path: string, data: string, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** Serializes writes of one file so that the last change is the one on disk. */
export class SerialWriter {
  #queue: Promise<unknown> = Promise.resolve();
  constructor(readonly path: string) {}
  write(data: string): Promise<void> {
    const run = this.#queue.then(async () => {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      await writeFileAtomic(this.path, data);
    });
    this.#queue = run.catch(() => {});
    return run;
  }
}

/**
 * Keeps a file equal to the latest state of a document: `save()` resolves once a write that began
 * after the call is on disk (or rejects with its error). Calls made while a write waits to begin
 * share that write, so a burst of changes costs one write; the document is rendered when the
 * write begins.
 */
export class SnapshotFile {
  readonly #path: string;
  readonly #render: () => string;
  #last: Promise<void> = Promise.resolve();
  #waiting: Promise<void> | undefined;

  constructor(path: string, render: () => string) {
    this.#path = path;
    this.#render = render;
  }

  save(): Promise<void> {
    if (this.#waiting) return this.#waiting;
    const run = this.#last.catch(() => {}).then(async () => {
      this.#waiting = undefined;
      const data = this.#render();
      await mkdir(dirname(this.#path), { recursive: true, mode: 0o700 });
      await writeFileAtomic(this.#path, data);
    });
    this.#waiting = run;
    this.#last = run;
    return run;
  }

  /** Resolves when no write is under way or waiting (whatever their outcome). */
  async idle(): Promise<void> {
    let last: Promise<void>;
    do {
      last = this.#last;
      await last.catch(() => {});
    } while (last !== this.#last);
  }
}

export const entriesPath = (stateDir: string): string => join(stateDir, ENTRIES_FILE);
export const federationDir = (stateDir: string): string => join(stateDir, FEDERATION_DIR);
export const federationPath = (stateDir: string, trustDomain: string): string => join(federationDir(stateDir), `${trustDomain}.json`);

export function entriesDocument(entries: readonly Registration[]): string {
  return `${JSON.stringify({ entries: entries.map((e) => ({ nodeId: e.nodeId, workloads: [...e.workloads], dnsNames: [...(e.dnsNames ?? [])] })) }, null, 2)}\n`;
}

/** A JSON state file: its parsed content, or undefined when it does not exist yet. */
export async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Error(`${path}: not JSON`);
  }
}

/** The node-token file: `sds.nodeTokensFile`, else `<stateDir>/node-tokens.json`. */
export const nodeTokensFileOf = (cfg: { readonly stateDir: string; readonly sds: { readonly nodeTokensFile?: string | undefined } }): string =>
  cfg.sds.nodeTokensFile ?? join(cfg.stateDir, NODE_TOKENS_FILE);

/**
 * The node-token file (`{"tokens": [{nodeId, sha256, revoked?, expiresAt?}]}`); none yet means no
 * tokens. Records past their expiry plus `retentionMs` are still in the store returned: the node
 * prunes them (`NodeTokenStore.prune`) and writes the file again.
 */
export async function loadNodeTokens(path: string, clock: Clock, retentionMs?: number): Promise<NodeTokenStore> {
  const opts = { now: () => clock.now(), ...(retentionMs !== undefined ? { retentionMs } : {}) };
  const doc = await readJsonFile(path);
  if (doc === undefined) return new NodeTokenStore([], opts);
  const r = NodeTokenStore.parse(doc, opts);
  if (!r.ok) throw new Error(`${path}: ${r.errors.join('; ')}`);
  return r.value;
}

/** Entries created through the API (none yet: an empty list). Shape errors carry field paths. */
export async function loadApiEntries(stateDir: string): Promise<Registration[]> {
  const path = entriesPath(stateDir);
  const doc = await readJsonFile(path);
  if (doc === undefined) return [];
  const list = (doc as { entries?: unknown } | null)?.entries;
  if (!Array.isArray(list)) throw new Error(`${path}: entries: must be a list`);
  const errors: string[] = [];
  const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
  const out: Registration[] = [];
  list.forEach((e: unknown, i) => {
    const r = e as Record<string, unknown> | null;
    if (!r || typeof r !== 'object' || typeof r.nodeId !== 'string') return void errors.push(`entries[${i}].nodeId: must be a string`);
    if (!strings(r.workloads)) return void errors.push(`entries[${i}].workloads: must be a list of strings`);
    if (r.dnsNames !== undefined && !strings(r.dnsNames)) return void errors.push(`entries[${i}].dnsNames: must be a list of strings`);
    out.push({ nodeId: r.nodeId, workloads: r.workloads, dnsNames: (r.dnsNames as string[] | undefined) ?? [] });
  });
  if (errors.length) throw new Error(`${path}: ${errors.join('; ')}`);
  return out;
}

/** Trust domains federated through the API: one `<td>.json` per trust domain. */
export async function listApiFederation(stateDir: string): Promise<Array<{ trustDomain: string; path: string }>> {
  let names: string[];
  try {
    names = await readdir(federationDir(stateDir));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return names
    .filter((n) => n.endsWith('.json') && !n.startsWith('.'))
    .map((n) => n.slice(0, -'.json'.length))
    .filter((td) => parseTrustDomain(td).ok)
    .sort()
    .map((trustDomain) => ({ trustDomain, path: federationPath(stateDir, trustDomain) }));
}

export interface AdminState {
  /** API entries whose node id the config does not already name (the config wins). */
  readonly entries: Registration[];
  /** API entries shadowed by a config entry of the same node id. */
  readonly shadowed: string[];
  readonly federationFiles: Array<{ trustDomain: string; path: string }>;
  /** The policy file to watch: the configured one, else `<stateDir>/policy.yaml` if present. */
  readonly policyFile: string | undefined;
}

/** Everything the admin API persisted, read at node start. */
export async function loadAdminState(cfg: {
  readonly stateDir: string;
  readonly sds: { readonly registrations: readonly { nodeId: string }[] };
  readonly federation: readonly { trustDomain: string }[];
  readonly policy: { readonly file?: string | undefined };
}): Promise<AdminState> {
  const configured = new Set(cfg.sds.registrations.map((r) => r.nodeId));
  const api = await loadApiEntries(cfg.stateDir);
  const configuredTds = new Set(cfg.federation.map((f) => f.trustDomain));
  const fed = (await listApiFederation(cfg.stateDir)).filter((f) => !configuredTds.has(f.trustDomain));
  let policyFile = cfg.policy.file;
  if (policyFile === undefined) {
    const p = join(cfg.stateDir, POLICY_FILE);
    if (await readFile(p).then(() => true, () => false)) policyFile = p;
  }
  return {
    entries: api.filter((e) => !configured.has(e.nodeId)),
    shadowed: api.filter((e) => configured.has(e.nodeId)).map((e) => e.nodeId),
    federationFiles: fed,
    policyFile,
  };
}
