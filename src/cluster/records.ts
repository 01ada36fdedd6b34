/**
 * Validation of the records the bus carries. Every record received from another node passes
 * through `checkRecord` before it is applied; so does every record this node writes, so a bad
 * local write fails at the caller instead of on every peer. Problems carry field paths.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { checkPublicJwk, parseSpiffeBundle, parseTrustDomain, parseWorkloadId, type Checked } from '../identity/index.ts';
import { KEY_STATES, KEY_USES, type RecordKind, type RecordOf } from './types.ts';

/** Node names, as in the configuration schema (`nodeName`). */
export const NODE_NAME = /^[A-Za-z0-9._-]{1,64}$/;
export const isNodeName = (s: unknown): s is string => typeof s === 'string' && NODE_NAME.test(s);

/** Bounds so that one record stays well under the 64 KiB message limit. */
const MAX_ID = 256;
const MAX_LIST = 1024;

type Obj = Record<string, unknown>;

class Fields {
  readonly errors: string[] = [];
  constructor(readonly o: Obj) {}
  private bad(f: string, what: string): void {
    this.errors.push(`${f}: ${what}`);
  }
  str(f: string, opts: { optional?: boolean; max?: number; pattern?: RegExp } = {}): void {
    const v = this.o[f];
    if (v === undefined && opts.optional) return;
    if (typeof v !== 'string' || v.length === 0) return this.bad(f, 'must be a non-empty string');
    if (v.length > (opts.max ?? MAX_ID)) return this.bad(f, `must be at most ${opts.max ?? MAX_ID} characters`);
    if (opts.pattern && !opts.pattern.test(v)) this.bad(f, `must match ${opts.pattern}`);
  }
  int(f: string, opts: { optional?: boolean; min?: number } = {}): void {
    const v = this.o[f];
    if (v === undefined && opts.optional) return;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < (opts.min ?? 0)) this.bad(f, `must be an integer >= ${opts.min ?? 0}`);
  }
  bool(f: string, opts: { optional?: boolean } = {}): void {
    const v = this.o[f];
    if (v === undefined && opts.optional) return;
    if (typeof v !== 'boolean') this.bad(f, 'must be a boolean');
  }
  oneOf(f: string, values: readonly string[]): void {
    if (!values.includes(this.o[f] as string)) this.bad(f, `must be one of ${values.join(', ')}`);
  }
  strList(f: string, opts: { optional?: boolean } = {}): void {
    const v = this.o[f];
    if (v === undefined && opts.optional) return;
    if (!Array.isArray(v) || v.length > MAX_LIST) return this.bad(f, `must be an array of at most ${MAX_LIST} strings`);
    v.forEach((s, i) => {
      if (typeof s !== 'string' || s.length === 0 || s.length > MAX_ID) this.bad(`${f}[${i}]`, 'must be a non-empty string');
    });
  }
  /** Refuse members we do not know: a record is plain data of a fixed shape. */
  only(allowed: readonly string[]): void {
    for (const k of Object.keys(this.o)) if (!allowed.includes(k)) this.bad(k, 'unexpected member');
  }
}

function checkKey(o: Obj): string[] {
  const f = new Fields(o);
  f.only(['node', 'kid', 'alg', 'use', 'state', 'publicJwk', 'x509RootDer', 'notBefore', 'notAfter', 'keySeq']);
  f.str('node', { pattern: NODE_NAME });
  f.str('kid');
  f.str('alg', { max: 32 });
  f.oneOf('use', KEY_USES);
  f.oneOf('state', KEY_STATES);
  f.int('notBefore');
  f.int('notAfter');
  f.int('keySeq');
  if (typeof o.notBefore === 'number' && typeof o.notAfter === 'number' && o.notAfter <= o.notBefore)
    f.errors.push('notAfter: must be after notBefore');
  const hasJwk = o.publicJwk !== undefined;
  const hasDer = o.x509RootDer !== undefined;
  if (hasJwk === hasDer) f.errors.push('publicJwk: exactly one of publicJwk and x509RootDer is required');
  if (hasJwk) {
    // A private member (d, p, q, k ...) is refused here: private keys never travel.
    const problem = checkPublicJwk(o.publicJwk, { requireAlg: false });
    if (problem) f.errors.push(`publicJwk: ${problem}`);
    else if ((o.publicJwk as Obj).kid !== undefined && (o.publicJwk as Obj).kid !== o.kid) f.errors.push('publicJwk.kid: must equal kid');
  }
  if (hasDer) {
    if (typeof o.x509RootDer !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(o.x509RootDer)) f.errors.push('x509RootDer: must be base64');
    else {
      try {
        if (!new X509Certificate(Buffer.from(o.x509RootDer, 'base64')).ca) f.errors.push('x509RootDer: not a CA certificate');
      } catch {
        f.errors.push('x509RootDer: not a DER certificate');
      }
    }
  }
  return f.errors;
}

function checkBundle(o: Obj): string[] {
  const f = new Fields(o);
  f.only(['trustDomain', 'spiffeBundle', 'sequence']);
  f.int('sequence');
  const td = parseTrustDomain(o.trustDomain);
  if (!td.ok) f.errors.push(`trustDomain: ${td.message}`);
  if (typeof o.spiffeBundle !== 'string') f.errors.push('spiffeBundle: must be JSON text');
  else if (td.ok) {
    let doc: unknown;
    try {
      doc = JSON.parse(o.spiffeBundle);
    } catch {
      f.errors.push('spiffeBundle: not JSON');
      return f.errors;
    }
    const parsed = parseSpiffeBundle(td.value, doc);
    if (!parsed.ok) f.errors.push(...parsed.errors.map((e) => `spiffeBundle: ${e}`));
  }
  return f.errors;
}

export const policyDigest = (text: string): string => 'sha256:' + createHash('sha256').update(text, 'utf8').digest('hex');

function checkPolicy(o: Obj): string[] {
  const f = new Fields(o);
  f.only(['version', 'digest', 'text']);
  f.str('version', { max: 128 });
  f.str('digest', { pattern: /^sha256:[0-9a-f]{64}$/ });
  if (typeof o.text !== 'string') f.errors.push('text: must be a string');
  else if (typeof o.digest === 'string' && policyDigest(o.text) !== o.digest) f.errors.push('digest: does not match text');
  return f.errors;
}

function checkRegistration(o: Obj): string[] {
  const f = new Fields(o);
  f.only(['id', 'workloadId', 'selectors', 'x509TtlMs', 'witTtlMs', 'dnsNames']);
  f.str('id', { pattern: /^[A-Za-z0-9._-]+$/ });
  const id = parseWorkloadId(o.workloadId);
  if (!id.ok) f.errors.push(`workloadId: ${id.message}`);
  f.strList('selectors');
  f.int('x509TtlMs', { optional: true, min: 1 });
  f.int('witTtlMs', { optional: true, min: 1 });
  f.strList('dnsNames', { optional: true });
  return f.errors;
}

function checkRevocation(o: Obj): string[] {
  const f = new Fields(o);
  f.only(['tokenId', 'node', 'reason', 'revokedAt', 'expiresAt']);
  // An identifier (jti or digest), short by construction: a whole token never travels.
  f.str('tokenId', { max: 128, pattern: /^[A-Za-z0-9._:-]+$/ });
  f.str('node', { optional: true, pattern: NODE_NAME });
  f.str('reason', { optional: true, max: 256 });
  f.int('revokedAt');
  f.int('expiresAt');
  return f.errors;
}

/** A SHA-256 digest, base64url without padding: what identifies a token on the bus. */
const TOKEN_DIGEST = /^[A-Za-z0-9_-]{43}$/;
/** An Envoy node id (`node.id`), as the node-token store takes it. */
const ENVOY_NODE_ID = /^[\x21-\x7e]+$/;

function checkNodeToken(o: Obj): string[] {
  const f = new Fields(o);
  f.only(['nodeId', 'sha256', 'expiresAt', 'revoked']);
  f.str('nodeId', { pattern: ENVOY_NODE_ID });
  f.str('sha256', { pattern: TOKEN_DIGEST });
  f.int('expiresAt', { optional: true });
  f.bool('revoked', { optional: true });
  return f.errors;
}

function checkAdminToken(o: Obj): string[] {
  const f = new Fields(o);
  f.only(['node', 'sha256']);
  f.str('node', { pattern: NODE_NAME });
  f.str('sha256', { pattern: TOKEN_DIGEST });
  return f.errors;
}

function checkNode(o: Obj): string[] {
  const f = new Fields(o);
  f.only(['node', 'lastSeen', 'trustedKids', 'startedAt', 'version']);
  f.str('node', { pattern: NODE_NAME });
  f.int('lastSeen');
  f.strList('trustedKids');
  f.int('startedAt', { optional: true });
  f.str('version', { optional: true, max: 64 });
  return f.errors;
}

function checkForgottenNode(o: Obj): string[] {
  const f = new Fields(o);
  f.only(['node', 'forgottenAt', 'lastSeen']);
  f.str('node', { pattern: NODE_NAME });
  f.int('forgottenAt');
  f.int('lastSeen', { optional: true });
  return f.errors;
}

const checkers: Record<RecordKind, (o: Obj) => string[]> = {
  keys: checkKey,
  bundles: checkBundle,
  policy: checkPolicy,
  registrations: checkRegistration,
  revocations: checkRevocation,
  nodeTokens: checkNodeToken,
  adminTokens: checkAdminToken,
  nodes: checkNode,
  forgottenNodes: checkForgottenNode,
};

/** Check the shape of a record of `kind`. */
export function checkRecord<K extends RecordKind>(kind: K, record: unknown): Checked<RecordOf[K]> {
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return { ok: false, errors: ['record: must be an object'] };
  const errors = checkers[kind](record as Obj).map((e) => `record.${e}`);
  return errors.length ? { ok: false, errors } : { ok: true, value: record as RecordOf[K] };
}

/**
 * The key a record must be stored under, when the kind fixes it; undefined for kinds with free
 * keys (policy). Node-owned kinds put the owning node first: `<node>/<kid>`, `<node>`.
 */
export function expectedKey(kind: RecordKind, record: RecordOf[RecordKind]): string | undefined {
  switch (kind) {
    case 'keys': {
      const r = record as RecordOf['keys'];
      return `${r.node}/${r.kid}`;
    }
    case 'nodes':
      return (record as RecordOf['nodes']).node;
    case 'bundles':
      return (record as RecordOf['bundles']).trustDomain;
    case 'registrations':
      return (record as RecordOf['registrations']).id;
    case 'revocations':
      return (record as RecordOf['revocations']).tokenId;
    case 'nodeTokens':
      return (record as RecordOf['nodeTokens']).sha256;
    case 'adminTokens':
      return (record as RecordOf['adminTokens']).node;
    case 'forgottenNodes':
      return (record as RecordOf['forgottenNodes']).node;
    case 'policy':
      return undefined;
  }
}

/** The node that owns a key of a node-owned kind (its first segment). */
export const ownerOfKey = (key: string): string => key.split('/')[0] ?? '';

/** Keys are `/`-separated non-empty segments. */
export function checkKeySyntax(key: unknown): string | undefined {
  if (typeof key !== 'string' || key.length === 0 || key.length > 512) return 'key: must be a string of 1-512 characters';
  if (key.split('/').some((s) => s.length === 0)) return 'key: empty segment';
  return undefined;
}
