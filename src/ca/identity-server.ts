/**
 * The Identity Server core: signing keys on SPIRE's lifecycle, journaled on disk, issuing WICs
 * and WITs, and publishing the trust bundle. Pure of gRPC/Envoy/NATS; other modules use it
 * through this class.
 *
 * Ordering guarantee: every change is written to the journal (durably) before it is published
 * (bundle, events) or used (signing). A node killed at any moment restarts with every key it
 * ever published.
 */
import { parseTrustDomain, parseWorkloadId, type Clock, type TrustBundleSet, type TrustDomainBundle } from '../identity/index.ts';
import { buildOwnBundle, bundleSet, loadFederatedBundles, type FederatedBundleFile } from './bundle.ts';
import { CaRequestError, JournalCorruptError, JournalMismatchError, NoActiveKeyError } from './errors.ts';
import { ensureJournalDir, journalPath, readJournal, removeStaleTemps, writeJournal, type JournalBody } from './journal.ts';
import { join } from 'node:path';
import { acquireLock, LOCK_FILE } from './state-lock.ts';
import { KEY_KINDS, type KeyKind, type KeyRecord } from './key-record.ts';
import { generateKeyMaterial, toPkcs8Pem } from './keys.ts';
import { resolveLeafKey } from './leaf-key.ts';
import { applyActivate, applyPrepare, applyPrune, applyRevoke, applyTaint, type Transition } from './lifecycle.ts';
import { loadLiveKey, withMaterial, type LiveKey } from './live-key.ts';
import { silentLogger, type CaLogger } from './logger.ts';
import { decide, Rotator } from './rotator.ts';
import { keyTimes, needsActiveKey, resolveTiming, slotOf, type Slot, type Timing } from './slot.ts';
import { FederatedBundles } from './federation.ts';
import { applyPeerKeys, checkPeerKey, type PeerKey } from './peer-keys.ts';
import type { ActivationGate, CaEvent, IdentityServerOptions, IssuedEvent, IssuedWic, KeyInfo, PublicKeyInfo, WicRequest, WitRequest } from './types.ts';
import { buildWic } from './wic.ts';
import { checkCnfJwk, signWit, type MintedWit } from './wit.ts';
import { createCaCertificate, NOT_BEFORE_CUSHION_MS, X509_LAST_TIME_MS } from './x509-ca.ts';

const DNS_NAME = /^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const KEY = (kind: KeyKind, kid: string) => `${kind}/${kid}`;

export class IdentityServer {
  readonly trustDomain: string;
  readonly timing: Timing;
  readonly rotator: Rotator;
  readonly #opts: IdentityServerOptions;
  readonly #clock: Clock;
  readonly #log: CaLogger;
  readonly #path: string;
  readonly #release: () => Promise<void>;
  #records: KeyRecord[];
  #live = new Map<string, LiveKey>();
  #sequence: number;
  #own!: TrustDomainBundle;
  #ownLocal!: TrustDomainBundle;
  readonly #federated: FederatedBundles;
  #federationFiles: readonly FederatedBundleFile[];
  #listeners = new Set<(e: CaEvent) => void>();
  #issuedListeners = new Set<(e: IssuedEvent) => void>();
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #gate: ActivationGate | undefined;
  readonly #gateWaits = new Set<AbortController>();
  #closing = false;

  private constructor(
    opts: IdentityServerOptions,
    path: string,
    release: () => Promise<void>,
    body: { sequence: number; keys: KeyRecord[] },
    federated: Map<string, TrustDomainBundle>,
  ) {
    this.#opts = opts;
    this.trustDomain = opts.trustDomain;
    this.timing = resolveTiming(opts.timing);
    this.#clock = opts.clock;
    this.#log = opts.logger ?? silentLogger;
    this.#path = path;
    this.#release = release;
    this.#records = body.keys;
    this.#sequence = body.sequence;
    this.#federated = new FederatedBundles(federated);
    this.#federationFiles = [...(opts.federatedBundleFiles ?? [])];
    this.#live = loadOwnKeys(path, this.#records);
    this.#rebuildBundle();
    this.rotator = new Rotator({ target: this, clock: this.#clock, intervalMs: this.timing.rotateIntervalSec * 1000, logger: this.#log });
  }

  /**
   * Load the journal (or start fresh when there is none), check every key, make sure each kind
   * has an active key. A damaged journal throws `JournalCorruptError` and nothing is written.
   */
  static async open(opts: IdentityServerOptions): Promise<IdentityServer> {
    checkOptions(opts);
    const dir = await ensureJournalDir(opts.stateDir);
    const release = await acquireLock(dir, {
      ...(opts.lockStaleMs !== undefined ? { staleMs: opts.lockStaleMs } : {}),
      onLeaseWait: (why, waitMs) =>
        (opts.logger ?? silentLogger).warn({ lock: join(dir, LOCK_FILE), why, waitMs }, 'state directory lock: waiting out its lease before taking it over'),
    });
    try {
      await removeStaleTemps(dir);
      const path = journalPath(opts.stateDir);
      const body = await readOwnJournal(path, opts.trustDomain);
      const federated = await loadFederatedBundles(opts.federatedBundleFiles ?? [], opts.trustDomain);
      const ca = new IdentityServer(opts, path, release, { sequence: body?.sequence ?? 0, keys: [...(body?.keys ?? [])] }, federated);
      (opts.logger ?? silentLogger).info({ path, keys: ca.#records.length, fresh: !body }, 'key journal loaded');
      for (const kind of KEY_KINDS) for (const verb of decide(ca.slot(kind), ca.#clock.now())) await ca[verb](kind);
      await ca.prune();
      return ca;
    } catch (e) {
      await release();
      throw e;
    }
  }

  // ---- reading ---------------------------------------------------------------------------

  slot(kind: KeyKind): Slot {
    return slotOf(kind, this.#records);
  }

  keys(): KeyInfo[] {
    return this.#records.map((r) => ({
      kind: r.kind,
      kid: r.kid,
      alg: r.alg,
      status: r.status,
      notBefore: r.notBefore,
      notAfter: r.notAfter,
      ...(r.activatedAt !== undefined ? { activatedAt: r.activatedAt } : {}),
      ...(r.taintedAt !== undefined ? { taintedAt: r.taintedAt } : {}),
      ...(r.revokedAt !== undefined ? { revokedAt: r.revokedAt } : {}),
      ...(r.origin !== undefined ? { origin: r.origin } : {}),
    }));
  }

  /** Every key's public half (ours and other nodes'), for the cluster to publish. */
  publicKeys(): PublicKeyInfo[] {
    return this.keys().map((k, i) => {
      const r = this.#records[i]!;
      return { ...k, publicJwk: { ...r.publicJwk }, ...(r.certPem !== undefined ? { certPem: r.certPem } : {}) };
    });
  }

  /** The journal's sequence (the trust bundle's `sequence`): bumped on every bundle change. */
  get sequence(): number {
    return this.#sequence;
  }

  /** Our own trust domain's bundle. */
  bundle(): TrustDomainBundle {
    return this.#own;
  }

  /** Own + federated trust domains. */
  bundles(): TrustBundleSet {
    return bundleSet(this.#own, this.#federated.view);
  }

  /**
   * The bundles this node vouches for by itself: its own keys and its federation files' bundles;
   * nothing learned from other nodes (their keys, federated bundles they shared). A node that
   * cannot confirm its peers' state (a partition) verifies with these alone.
   */
  localBundles(): TrustBundleSet {
    return bundleSet(this.#ownLocal, this.#federated.files);
  }

  /**
   * A federated trust domain's bundle received from another node (or undefined to forget it).
   * Where a federation file also names the trust domain, the bundle with the higher sequence
   * wins (the cluster's on a tie). Our own trust domain is refused. Emits `bundle-changed` when
   * the served set changes.
   */
  setFederatedBundle(trustDomain: string, bundle: TrustDomainBundle | undefined): boolean {
    if (trustDomain === this.trustDomain) throw new TypeError('a federated bundle cannot replace our own trust domain');
    if (bundle && bundle.trustDomain !== trustDomain) throw new TypeError('the bundle is for another trust domain');
    if (!this.#federated.setFromCluster(trustDomain, bundle)) return false;
    this.#emit({ type: 'bundle-changed', trustDomain, sequence: this.#federated.view.get(trustDomain)?.sequence ?? 0 });
    return true;
  }

  /** The federated bundles read from this node's own federation files. */
  fileFederatedBundles(): ReadonlyMap<string, TrustDomainBundle> {
    return this.#federated.files;
  }

  onChange(listener: (e: CaEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Called once for every WIC and WIT this CA signs, on every path (for metrics). */
  onIssued(listener: (e: IssuedEvent) => void): () => void {
    this.#issuedListeners.add(listener);
    return () => this.#issuedListeners.delete(listener);
  }

  // ---- issuing ---------------------------------------------------------------------------

  async issueWic(req: WicRequest): Promise<IssuedWic> {
    const id = this.#checkId(req.id);
    const dnsNames = [...(req.dnsNames ?? [])];
    for (const d of dnsNames)
      if (typeof d !== 'string' || !DNS_NAME.test(d)) throw new CaRequestError('ca.invalid_dns_name', `invalid DNS name ${JSON.stringify(d)}`);
    const ttlSec = ttl(req.ttlSec, this.#opts.wicTtlSec ?? 3600, 'ttlSec');
    const leaf = await resolveLeafKey(req.key ?? { generate: 'ES256' });
    const signer = this.#active('x509');
    const now = this.#clock.now();
    const notBefore = floorSec(now - NOT_BEFORE_CUSHION_MS);
    const notAfter = floorSec(Math.min(now + ttlSec * 1000, signer.record.notAfter));
    if (notAfter <= now) throw new NoActiveKeyError('x509');
    const built = buildWic({ signer: signer.wicSigner!, id, dnsNames, publicKey: leaf.publicKey, notBefore, notAfter });
    this.#issued('wic');
    return {
      id,
      certPem: built.pem,
      chainPem: built.pem,
      ...(leaf.privateKeyPem !== undefined ? { privateKeyPem: leaf.privateKeyPem } : {}),
      notBefore,
      notAfter,
      serial: built.serial.toUpperCase(),
      caKid: signer.record.kid,
    };
  }

  async mintWit(req: WitRequest): Promise<MintedWit> {
    const sub = this.#checkId(req.sub);
    const cnf = checkCnfJwk(req.cnf);
    const ttlSec = ttl(req.ttlSec, this.#opts.witTtlSec ?? 3600, 'ttlSec');
    const signer = this.#active('wit');
    const now = this.#clock.now();
    if (Math.floor(signer.record.notAfter / 1000) <= Math.floor(now / 1000)) throw new NoActiveKeyError('wit');
    const { record: r, material: m } = signer;
    const wit = await signWit({
      signer: { kid: r.kid, alg: r.alg, privateKey: m.privateKey, notAfter: r.notAfter },
      sub,
      cnf,
      nowMs: now,
      ttlSec,
      ...(this.#opts.witIssuer !== undefined ? { iss: this.#opts.witIssuer } : {}),
    });
    this.#issued('wit');
    return wit;
  }

  #issued(kind: IssuedEvent['kind']): void {
    for (const l of this.#issuedListeners)
      try {
        l({ kind });
      } catch (err) {
        this.#log.error({ kind, err: (err as Error).message }, 'issued listener failed');
      }
  }

  #checkId(id: string): string {
    const r = parseWorkloadId(id);
    if (!r.ok) throw new CaRequestError('ca.invalid_workload_id', `${r.reason}: ${r.message}`);
    // A CA speaks only for its own trust domain (mutual-tls-02; identifier-03 §4).
    if (r.value.trustDomain !== this.trustDomain)
      throw new CaRequestError('ca.wrong_trust_domain', `identifier is in trust domain "${r.value.trustDomain}", this CA issues for "${this.trustDomain}"`);
    return r.value.uri;
  }

  /** Only an ACTIVE, unexpired key signs; anything else fails closed. */
  #active(kind: KeyKind): LiveKey {
    if (this.#closed) throw new NoActiveKeyError(kind);
    const cur = this.slot(kind).current;
    const live = cur && this.#live.get(KEY(kind, cur.kid));
    if (!live || live.record.status !== 'active' || this.#clock.now() >= live.record.notAfter) throw new NoActiveKeyError(kind);
    return live;
  }

  // ---- operator verbs (also driven by the rotator) ---------------------------------------

  async prepare(kind: KeyKind): Promise<KeyInfo> {
    const live = await this.#newKey(kind);
    await this.#serial(() => this.#commit(applyPrepare(this.#records, live.record), [live], [{ type: 'key-prepared', kind, kid: live.record.kid }]));
    return this.#info(kind, live.record.kid);
  }

  /**
   * Gate activations (cluster: wait until every live node trusts the key). Not consulted when
   * there is no usable active key at all: then nothing could sign without activating.
   */
  setActivationGate(gate: ActivationGate | undefined): void {
    this.#gate = gate;
  }

  /**
   * Activate the prepared key of `kind`, after the activation gate when one is set. The gate is
   * waited for outside the journal's queue, so taint and revoke go ahead meanwhile; the key that
   * passed the gate is the one activated (if the prepared key changed during the wait, the new
   * one goes through the gate; if a taint activated the awaited key, that is the answer).
   */
  async activate(kind: KeyKind): Promise<KeyInfo> {
    for (;;) {
      const slot = this.slot(kind);
      const gated = this.#gate && slot.next && !needsActiveKey(slot, this.#clock.now()) ? slot.next.kid : undefined;
      if (gated !== undefined) await this.#passGate(kind, gated);
      const kid = await this.#serial(async () => {
        if (gated !== undefined && this.slot(kind).next?.kid !== gated) return undefined;
        const t = applyActivate(this.#records, kind, this.#clock.now());
        await this.#commit(t, [], [{ type: 'key-activated', kind, kid: t.activated! }]);
        return t.activated!;
      });
      if (kid !== undefined) return this.#info(kind, kid);
      if (gated !== undefined && this.slot(kind).current?.kid === gated) return this.#info(kind, gated);
    }
  }

  /** Wait at the gate for `kid`; stop waiting when it is no longer the prepared key, or on close. */
  async #passGate(kind: KeyKind, kid: string): Promise<void> {
    const ac = new AbortController();
    const superseded = () => this.slot(kind).next?.kid !== kid;
    const off = this.onChange(() => superseded() && ac.abort());
    this.#gateWaits.add(ac);
    try {
      const aborted = new Promise<void>((resolve) => ac.signal.addEventListener('abort', () => resolve(), { once: true }));
      await Promise.race([this.#gate!(kind, kid, ac.signal), aborted]);
    } finally {
      off();
      this.#gateWaits.delete(ac);
    }
    if (this.#closing) throw new Error('identity server is closed');
  }

  /** Stop trusting a key for signing now; SDS re-issues what it signed (event `key-tainted`). */
  async taint(kind: KeyKind, kid: string): Promise<KeyInfo> {
    const replacement = this.slot(kind).current?.kid === kid ? await this.#newKey(kind) : undefined;
    await this.#serial(async () => {
      const t = applyTaint(this.#records, kind, kid, this.#clock.now(), replacement?.record);
      const added = replacement && t.records.some((r) => r.kind === kind && r.kid === replacement.record.kid) ? [replacement] : [];
      const events: CaEvent[] = [];
      if (added.length) events.push({ type: 'key-prepared', kind, kid: replacement!.record.kid });
      if (t.activated) events.push({ type: 'key-activated', kind, kid: t.activated });
      events.push({ type: 'key-tainted', kind, kid });
      await this.#commit(t, added, events);
    });
    return this.#info(kind, kid);
  }

  /** Remove a tainted key from the bundle and erase its private key. */
  async revoke(kind: KeyKind, kid: string): Promise<KeyInfo> {
    await this.#serial(() => this.#commit(applyRevoke(this.#records, kind, kid, this.#clock.now()), [], [{ type: 'key-revoked', kind, kid }]));
    return this.#info(kind, kid);
  }

  /** Drop keys whose trust has run out (see lifecycle.ts). */
  async prune(): Promise<number> {
    return this.#serial(async () => {
      const t = applyPrune(this.#records, this.#clock.now(), this.timing.pruneGraceSec * 1000);
      if (t.removed.length === 0) return 0;
      await this.#commit(t, [], t.removed.map((r) => ({ type: 'key-removed', kind: r.kind, kid: r.kid }) as const));
      return t.removed.length;
    });
  }

  /**
   * Take in the complete public key set of another node (`origin`): journaled with the origin
   * before it is published, so a restart trusts the peer's keys without the bus. Keys that do
   * not check out are left out and reported. Revoked keys leave the bundle; tainted ones stay.
   */
  async setPeerKeys(origin: string, keys: readonly PeerKey[]): Promise<{ changed: boolean; refused: { kid: string; errors: string[] }[] }> {
    if (typeof origin !== 'string' || origin === '') throw new TypeError('"origin" must be a non-empty string');
    const refused: { kid: string; errors: string[] }[] = [];
    const accepted: KeyRecord[] = [];
    for (const k of keys) {
      const c = checkPeerKey(origin, k);
      if (c.ok) accepted.push(c.value);
      else refused.push({ kid: String(k.kid), errors: c.errors });
    }
    const changed = await this.#serial(async () => {
      const t = applyPeerKeys(this.#records, origin, accepted, this.#clock.now(), this.timing.pruneGraceSec * 1000);
      if (!t) return false;
      await this.#commit(t, [], []);
      this.#log.info({ origin, keys: accepted.length, bundleChanged: t.bundleChanged }, 'peer keys applied');
      return true;
    });
    return { changed, refused };
  }

  /** Re-read the federation files; the bundle set changes only if they all load. */
  async reloadFederation(): Promise<void> {
    const next = await loadFederatedBundles(this.#federationFiles, this.trustDomain);
    this.#federated.setFiles(next);
    this.#emit({ type: 'bundle-changed', trustDomain: this.trustDomain, sequence: this.#sequence });
  }

  /** The federation files in use (at open, or as last set). */
  federatedBundleFiles(): readonly FederatedBundleFile[] {
    return this.#federationFiles;
  }

  /**
   * Replace the list of federation files at run time (federation added or removed by an
   * operator). All of them must load, else this throws `FederationBundleError` and nothing changes.
   */
  async setFederatedBundleFiles(files: readonly FederatedBundleFile[]): Promise<void> {
    const next = await loadFederatedBundles(files, this.trustDomain);
    this.#federationFiles = [...files];
    this.#federated.setFiles(next);
    this.#emit({ type: 'bundle-changed', trustDomain: this.trustDomain, sequence: this.#sequence });
  }

  start(): void {
    this.rotator.start();
  }

  async stop(): Promise<void> {
    await this.rotator.stop();
  }

  /** Stop the rotator, wait for writes in flight, release the state directory. */
  async close(): Promise<void> {
    this.#closing = true;
    for (const ac of this.#gateWaits) ac.abort();
    await this.stop();
    await this.#queue.catch(() => {});
    this.#closed = true;
    await this.#release();
  }

  // ---- internals -------------------------------------------------------------------------

  async #newKey(kind: KeyKind): Promise<LiveKey> {
    const alg = (kind === 'x509' ? this.#opts.x509Alg : this.#opts.witAlg) ?? this.#opts.alg ?? 'ES256';
    const material = generateKeyMaterial(alg);
    const times = keyTimes(this.#clock.now(), this.timing);
    if (!(times.notAfter <= X509_LAST_TIME_MS))
      throw new RangeError(`a ${kind} key made now would end after ${new Date(X509_LAST_TIME_MS).toISOString()}, the last time X.509 can name: lower timing.keyTtlSec`);
    const certPem =
      kind === 'x509' ? await createCaCertificate({ trustDomain: this.trustDomain, material, notBefore: times.notBefore, notAfter: times.notAfter }) : undefined;
    const record: KeyRecord = {
      kind,
      kid: material.kid,
      alg,
      status: 'prepared',
      ...times,
      publicJwk: material.publicJwk,
      privateKeyPem: toPkcs8Pem(material.privateKey),
      ...(certPem !== undefined ? { certPem } : {}),
    };
    return withMaterial(record, material);
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('identity server is closed'));
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Journal first (durable), then swap the in-memory state, then publish events. */
  async #commit(t: Transition, added: readonly LiveKey[], events: CaEvent[]): Promise<void> {
    const sequence = t.bundleChanged ? this.#sequence + 1 : this.#sequence;
    // Read back as a start would (every own key loads) before it replaces the journal.
    await writeJournal(this.#path, { trustDomain: this.trustDomain, sequence, keys: t.records }, (b) => void loadOwnKeys(this.#path, b.keys));
    for (const l of added) this.#live.set(KEY(l.record.kind, l.record.kid), l);
    const live = new Map<string, LiveKey>();
    for (const r of t.records) {
      const l = this.#live.get(KEY(r.kind, r.kid));
      if (l && r.status !== 'revoked') live.set(KEY(r.kind, r.kid), { ...l, record: r });
    }
    this.#live = live;
    this.#records = t.records;
    this.#sequence = sequence;
    for (const e of events) {
      // Every state transition is logged with the key id and its validity (never key material).
      const r = 'kid' in e ? t.records.find((k) => k.kind === e.kind && k.kid === e.kid) : undefined;
      this.#log.info(
        r ? { ...e, status: r.status, alg: r.alg, notBefore: new Date(r.notBefore).toISOString(), notAfter: new Date(r.notAfter).toISOString() } : e,
        'key lifecycle',
      );
    }
    if (t.bundleChanged) {
      this.#rebuildBundle();
      events.push({ type: 'bundle-changed', trustDomain: this.trustDomain, sequence });
    }
    for (const e of events) this.#emit(e);
  }

  #rebuildBundle(): void {
    this.#own = buildOwnBundle(this.trustDomain, this.#records, this.#sequence, this.#opts.refreshHintSec);
    const own = this.#records.filter((r) => r.origin === undefined);
    this.#ownLocal = own.length === this.#records.length ? this.#own : buildOwnBundle(this.trustDomain, own, this.#sequence, this.#opts.refreshHintSec);
  }

  #emit(e: CaEvent): void {
    for (const l of this.#listeners)
      try {
        l(e);
      } catch (err) {
        this.#log.error({ event: e.type, err: (err as Error).message }, 'change listener failed');
      }
  }

  #info(kind: KeyKind, kid: string): KeyInfo {
    const k = this.keys().find((x) => x.kind === kind && x.kid === kid);
    if (!k) throw new Error(`${kind} key ${kid} vanished`);
    return k;
  }
}

/**
 * Check the journal of `stateDir` as `open` does (header, checksum, schema, trust domain, every
 * own key) without taking the lock or writing anything: what `wimse-server validate` runs.
 * Throws `JournalCorruptError` or `JournalMismatchError`; undefined when there is no journal yet.
 */
export async function checkJournal(stateDir: string, trustDomain: string): Promise<JournalBody | undefined> {
  const path = journalPath(stateDir);
  const body = await readOwnJournal(path, trustDomain);
  if (body) loadOwnKeys(path, body.keys);
  return body;
}

async function readOwnJournal(path: string, trustDomain: string): Promise<JournalBody | undefined> {
  const body = await readJournal(path);
  if (body && body.trustDomain !== trustDomain) throw new JournalMismatchError(path, `journal is for trust domain "${body.trustDomain}", not "${trustDomain}"`);
  return body;
}

/** Load and check every own live key of a journal, as a start does; a key that fails is a corrupt journal. */
function loadOwnKeys(path: string, records: readonly KeyRecord[]): Map<string, LiveKey> {
  const live = new Map<string, LiveKey>();
  records.forEach((r, i) => {
    if (r.status === 'revoked' || r.origin !== undefined) return;
    try {
      live.set(KEY(r.kind, r.kid), loadLiveKey(r));
    } catch (e) {
      throw new JournalCorruptError(path, 'bad_body', `keys[${i}] (${r.kind} ${r.kid}): ${(e as Error).message}`);
    }
  });
  return live;
}

function checkOptions(o: IdentityServerOptions): void {
  if (typeof o.stateDir !== 'string' || !o.stateDir) throw new TypeError('"stateDir" must be a non-empty string');
  const td = parseTrustDomain(o.trustDomain);
  if (!td.ok) throw new TypeError(`"trustDomain" is invalid: ${td.message}`);
  if (!o.clock || typeof o.clock.now !== 'function') throw new TypeError('"clock" is required');
  for (const f of ['alg', 'x509Alg', 'witAlg'] as const)
    if (o[f] !== undefined && o[f] !== 'ES256' && o[f] !== 'EdDSA') throw new TypeError(`"${f}" must be ES256 or EdDSA`);
  for (const f of ['wicTtlSec', 'witTtlSec'] as const) if (o[f] !== undefined) ttl(o[f], 1, f);
  resolveTiming(o.timing);
}

function ttl(v: number | undefined, dflt: number, name: string): number {
  const t = v ?? dflt;
  if (!Number.isSafeInteger(t) || t <= 0) throw new TypeError(`"${name}" must be a positive integer (seconds)`);
  return t;
}

const floorSec = (ms: number): number => Math.floor(ms / 1000) * 1000;
