/**
 * What a node needs from its surroundings before it may start: the files its configuration names
 * and its state directory, read the way the start reads them, without creating or writing
 * anything. `wimse-server validate` runs this after the schema checks, and `startNode` runs it
 * first, so that whatever validate accepts, start can honour, and a start refused here leaves
 * the state directory as it was.
 *
 * Each problem is one string that begins with the field path it comes from, as the schema's.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import { unixSocketPath, type NodeConfig } from './config/config.ts';
import { systemClock } from './identity/clock.ts';
import { pemToDers } from './identity/index.ts';
import { checkJournal, loadFederatedBundles, CaError, FederationBundleError, JournalCorruptError, JournalMismatchError } from './ca/index.ts';
import { loadAdminState, loadNodeTokens, nodeTokensFileOf, POLICY_FILE } from './admin/api-state.ts';
import { ADMIN_TOKEN_FILE, loadAdminToken, readTokenFile } from './admin/admin-token.ts';
import { MAX_POLICY_BYTES, parsePolicyText } from './policy/load.ts';

/**
 * Every problem found, each prefixed with its field path; empty when the node can start.
 * The checks run concurrently, but each writes into its own slot, so the report's order is the
 * config's order whatever finishes first.
 */
export async function preflight(config: NodeConfig): Promise<string[]> {
  const slot = (field: string) => (e: unknown) => [`${field}: ${describe(e)}`];
  const none = (): string[] => [];
  const found = await Promise.all([
    checkListen(config.grpc.listen).then(none, slot('grpc.listen')),
    config.admin.listen === '' ? [] : checkListen(config.admin.listen).then(none, slot('admin.listen')),
    config.grpc.tls ? checkServerTls(config.grpc.tls) : [],
    ...config.federation.map((f, i) =>
      loadFederatedBundles([{ trustDomain: f.trustDomain, path: f.bundleFile }], config.trustDomain).then(none, slot(`federation[${i}].bundleFile`)),
    ),
    // With a token file named, loading only reads it (and says how to fix it).
    config.admin.tokenFile === undefined ? [] : loadAdminToken({ tokenFile: config.admin.tokenFile, stateDir: config.stateDir }).then(none, (e: Error) => [e.message]),
    config.sds.nodeTokensFile === undefined ? [] : loadNodeTokens(config.sds.nodeTokensFile, systemClock).then(none, slot('sds.nodeTokensFile')),
    config.cluster?.credsFile === undefined ? [] : readable(config.cluster.credsFile).then(none, slot('cluster.credsFile')),
    config.cluster?.tlsCaFile === undefined ? [] : certificates(config.cluster.tlsCaFile).then(none, slot('cluster.tlsCaFile')),
  ]);
  return [...found.flat(), ...(await checkStateDir(config))];
}

/**
 * The policy file the node would load (`policy.file`, else `<stateDir>/policy.yaml` when present),
 * checked exactly as a start loads it. Not part of `preflight`: a node starts with a missing or
 * refused policy and denies every request until the watched file is fixed (docs/policy.md), so
 * only `validate` reports these.
 */
export async function policyProblems(config: NodeConfig): Promise<string[]> {
  const named = config.policy.file;
  const path = named ?? join(config.stateDir, POLICY_FILE);
  const field = named === undefined ? 'stateDir' : 'policy.file';
  const consequence = 'the node would start and deny every request until it is fixed';
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) return [`${field}: ${path} is not a file; ${consequence}`];
    size = st.size;
  } catch (e) {
    if (named === undefined && (e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    return [`${field}: ${describe(e)}; ${consequence}`];
  }
  if (size > MAX_POLICY_BYTES) return [`${field}: ${path} is ${size} bytes, more than the limit of ${MAX_POLICY_BYTES}; ${consequence}`];
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    return [`${field}: ${describe(e)}; ${consequence}`];
  }
  const checked = parsePolicyText(text, { lines: true });
  return checked.ok ? [] : [`${field}: ${path} is not a valid policy (docs/policy.md); ${consequence}:`, ...checked.errors.map((e) => `  ${e}`)];
}

/** A host name must resolve; a Unix socket's directory must exist. Binding itself is left to the start. */
async function checkListen(listen: string): Promise<void> {
  if (listen.startsWith('unix:')) {
    const dir = dirname(unixSocketPath(listen));
    if (!(await stat(dir).then((s) => s.isDirectory(), () => false))) throw new Error(`the socket's directory ${dir} does not exist`);
    return;
  }
  const host = listen.slice(0, listen.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  if (isIP(host)) return;
  try {
    await lookup(host);
  } catch (e) {
    throw new Error(`host "${host}" does not resolve (${(e as NodeJS.ErrnoException).code ?? 'lookup failed'}); use an IP address or a name this host resolves`);
  }
}

async function checkServerTls(tls: NonNullable<NodeConfig['grpc']['tls']>): Promise<string[]> {
  const problems: string[][] = [[], [], [], []];
  const [chain, key] = await Promise.all([
    certificates(tls.certFile).catch((e: unknown) => void problems[0]!.push(`grpc.tls.certFile: ${describe(e)}`)),
    privateKey(tls.keyFile).catch((e: unknown) => void problems[1]!.push(`grpc.tls.keyFile: ${describe(e)}`)),
    tls.clientCaFile === undefined ? undefined : certificates(tls.clientCaFile).catch((e: unknown) => void problems[2]!.push(`grpc.tls.clientCaFile: ${describe(e)}`)),
  ]);
  if (chain && key && !chain[0]!.checkPrivateKey(key))
    problems[3]!.push(`grpc.tls.keyFile: ${tls.keyFile} is not the private key of the first certificate in ${tls.certFile}`);
  return problems.flat();
}

/**
 * The state directory: a directory this process may write (or one it may create), whose key
 * journal (if any) loads for this trust domain, and whose admin-API files load.
 */
async function checkStateDir(config: NodeConfig): Promise<string[]> {
  const dir = config.stateDir;
  const st = await stat(dir).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : e));
  if (st instanceof Error) return [`stateDir: ${describe(st)}`];
  if (st === undefined) {
    // Created at start: the nearest existing parent must be a writable directory.
    let parent = dirname(dir);
    while (!(await stat(parent).then(() => true, () => false)) && parent !== dirname(parent)) parent = dirname(parent);
    const ok = await access(parent, fsc.W_OK | fsc.X_OK).then(() => true, () => false);
    return ok ? [] : [`stateDir: ${dir} does not exist and ${parent} is not a directory this process may create it in`];
  }
  if (!st.isDirectory()) return [`stateDir: ${dir} is not a directory`];
  if (!(await access(dir, fsc.W_OK | fsc.X_OK).then(() => true, () => false))) return [`stateDir: ${dir} is not writable by this process`];
  const problems: string[] = [];
  await checkJournal(dir, config.trustDomain).catch((e: unknown) => problems.push(`stateDir: ${describe(e)}`));
  try {
    const state = await loadAdminState(config);
    await loadFederatedBundles(state.federationFiles, config.trustDomain).catch((e: unknown) => problems.push(`stateDir: ${describe(e)}`));
  } catch (e) {
    problems.push(`stateDir: ${describe(e)}`);
  }
  if (config.admin.tokenFile === undefined) await readTokenFile(join(dir, ADMIN_TOKEN_FILE), 'stateDir').catch((e: Error) => problems.push(e.message));
  if (config.sds.nodeTokensFile === undefined)
    await loadNodeTokens(nodeTokensFileOf(config), systemClock).catch((e: unknown) => problems.push(`stateDir: ${describe(e)}`));
  return problems;
}

async function readable(path: string): Promise<Buffer> {
  const bytes = await readFile(path);
  if (bytes.length === 0) throw new Error(`${path} is empty`);
  return bytes;
}

/** Every certificate of a PEM file; at least one. */
async function certificates(path: string): Promise<X509Certificate[]> {
  const ders = pemToDers((await readable(path)).toString('utf8'));
  if (ders.length === 0) throw new Error(`${path} holds no PEM certificate`);
  return ders.map((der, i) => {
    try {
      return new X509Certificate(der);
    } catch {
      throw new Error(`${path}: certificate ${i + 1} does not parse`);
    }
  });
}

async function privateKey(path: string): Promise<KeyObject> {
  const pem = await readable(path);
  try {
    return createPrivateKey(pem);
  } catch {
    throw new Error(`${path} holds no PEM private key this node can use`);
  }
}

/** One line: what went wrong, with the file; never a stack. */
function describe(e: unknown): string {
  if (e instanceof FederationBundleError) return `${e.path}: ${e.errors.join('; ')}`;
  if (e instanceof JournalCorruptError || e instanceof JournalMismatchError) return `${e.detail}; ${e.remedy}`;
  if (e instanceof CaError) return e.detail;
  const err = e as NodeJS.ErrnoException;
  if (err.code && err.path) {
    const why: Record<string, string> = { ENOENT: 'does not exist', EACCES: 'permission denied', EISDIR: 'is a directory', ENOTDIR: 'a parent is not a directory' };
    return `${err.path}: ${why[err.code] ?? err.code}`;
  }
  return (e as Error).message ?? String(e);
}
