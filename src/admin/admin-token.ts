/**
 * The admin bearer token: what `wimsectl` presents as `authorization: Bearer <token>` to the
 * admin API. It lives in `admin.tokenFile` when configured (the operator provisions it), else it
 * is generated once into `<stateDir>/admin-token` (32 random bytes, base64url, mode 0600) and
 * reused on every later start. In a cluster each node also accepts the other nodes' admin tokens
 * (`AdminTokens`).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const ADMIN_TOKEN_FILE = 'admin-token';
const MIN_TOKEN_CHARS = 16;
const MAX_TOKEN_CHARS = 512;
const TOKEN_CHARS = /^[\x21-\x7e]+$/;

export interface AdminToken {
  readonly token: string;
  readonly path: string;
  /** True when this start generated it. */
  readonly created: boolean;
}

export const generateAdminToken = (): string => randomBytes(32).toString('base64url');

/** Read the configured token file, or read/generate `<stateDir>/admin-token`. Throws with a fix on a bad file. */
export async function loadAdminToken(opts: { readonly tokenFile?: string | undefined; readonly stateDir: string }): Promise<AdminToken> {
  if (opts.tokenFile !== undefined) {
    const token = await readTokenFile(opts.tokenFile, 'admin.tokenFile');
    if (token === undefined)
      throw new Error(`admin.tokenFile: ${opts.tokenFile} does not exist. Create it with a random token, or remove admin.tokenFile to have one generated in stateDir`);
    return { token, path: opts.tokenFile, created: false };
  }
  const path = join(opts.stateDir, ADMIN_TOKEN_FILE);
  const existing = await readTokenFile(path, 'admin token');
  if (existing !== undefined) return { token: existing, path, created: false };
  const token = generateAdminToken();
  try {
    // 'wx': never overwrite a token another process just wrote.
    await writeFile(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const raced = await readTokenFile(path, 'admin token');
    if (raced === undefined) throw e;
    return { token: raced, path, created: false };
  }
  return { token, path, created: true };
}

/** The token in `path`, undefined when the file does not exist; throws with a fix when it cannot serve. */
export async function readTokenFile(path: string, what: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${what}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const token = text.trim();
  if (token.length < MIN_TOKEN_CHARS || token.length > MAX_TOKEN_CHARS || !TOKEN_CHARS.test(token))
    throw new Error(`${what}: ${path} must hold one token of ${MIN_TOKEN_CHARS}-${MAX_TOKEN_CHARS} printable ASCII characters`);
  return token;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** The token of exactly one `Bearer` value, or undefined (none, several, another scheme). */
function presentedBearer(authorization: readonly string[]): string | undefined {
  if (authorization.length !== 1) return undefined;
  return /^Bearer ([\x21-\x7e]{1,512})$/.exec(authorization[0]!)?.[1];
}

/**
 * The admin tokens a node accepts: its own (`admin.tokenFile`, or the generated one) and, in a
 * cluster, the admin token of every node it has heard from, known only by its SHA-256 digest
 * (src/node-cluster.ts shares them as `adminTokens` records). Every admin token grants the same
 * rights over the same shared state (policy, entries, node tokens), so accepting a peer's adds no
 * power, and lets `wimsectl` reach any node behind a load balancer. A node's record is replaced
 * when it starts with another token, so rotating a node's token withdraws the old one everywhere.
 * Peers' digests are held in memory only: a node restarted while the bus is down accepts its own
 * token until it hears from the others again (fail closed).
 */
export class AdminTokens {
  /** This node's own token, as the base64url SHA-256 digest that travels. */
  readonly ownDigest: string;
  readonly #own: Buffer;
  readonly #peers = new Map<string, Buffer>();

  constructor(ownToken: string) {
    this.#own = digest(ownToken);
    this.ownDigest = this.#own.toString('base64url');
  }

  /** Accept `sha256` (base64url) as node `node`'s admin token, or forget it (undefined). True when it changed. */
  setPeer(node: string, sha256: string | undefined): boolean {
    const had = this.#peers.get(node);
    if (sha256 === undefined) return this.#peers.delete(node);
    const d = Buffer.from(sha256, 'base64url');
    if (d.length !== 32) throw new TypeError('"sha256" must be a base64url SHA-256 digest');
    if (had?.equals(d)) return false;
    this.#peers.set(node, d);
    return true;
  }

  /** The nodes whose admin tokens are accepted besides this one's. */
  peers(): string[] {
    return [...this.#peers.keys()].sort();
  }

  /** Does the call carry one of the accepted admin tokens? Exactly one `Bearer` value; each accepted digest is compared in constant time. */
  matches(authorization: readonly string[]): boolean {
    return this.holder(authorization) !== undefined;
  }

  /**
   * Whose admin token the call carries: this node's (`own`, also when a peer shares it) or the
   * named peer's; undefined when none matches. Every accepted digest is compared, in constant time.
   */
  holder(authorization: readonly string[]): { readonly own: true } | { readonly own: false; readonly node: string } | undefined {
    const presented = presentedBearer(authorization);
    const d = digest(presented ?? '');
    const own = timingSafeEqual(d, this.#own);
    let peer: string | undefined;
    for (const [node, p] of this.#peers) if (timingSafeEqual(d, p)) peer ??= node;
    if (presented === undefined) return undefined;
    if (own) return { own: true };
    return peer !== undefined ? { own: false, node: peer } : undefined;
  }
}
