/**
 * The composition root: builds one control-plane node from a validated config. Only this file
 * (and the CLI) reads the system clock and the environment; everything below gets them injected.
 */
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { watchFile, unwatchFile, type Stats } from 'node:fs';
import { hostname } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { ConfigError, unixSocketPath, type NodeConfig } from './config/config.ts';
import { systemClock, type Clock } from './identity/clock.ts';
import { createLogger, type Logger } from './log.ts';
import { NodeMetrics } from './admin/metrics.ts';
import { startAdminHttp, type AdminHttp, type Readiness } from './admin/http.ts';
import { IdentityServer } from './ca/index.ts';
import { Authenticator } from './authn/authenticator.ts';
import { ReplayCache } from './authn/replay.ts';
import { PolicyStore } from './policy/store.ts';
import { authorize as pdpAuthorize } from './policy/authorize.ts';
import { createHttpPdp } from './policy/external.ts';
import type { PolicyWatch } from './policy/file-watch.ts';
import { audiencesFor } from './policy/compile.ts';
import { envoyProtos } from './envoy/protos.ts';
import { extAuthzService } from './envoy/extauthz.ts';
import { authorizationService } from './envoy/check-codec.ts';
import { MAX_CHECK_REQUEST_BYTES } from './envoy/check-request.ts';
import { SdsServer } from './envoy/sds.ts';
import { CaSecretSource } from './envoy/sds-ca-source.ts';
import { NodeTokenStore, type CallerAuthOptions } from './identity/node-tokens.ts';
import { authenticateCall } from './caller-streams.ts';
import { nodeIdFromCertificate } from './identity/node-certificate.ts';
import { WorkloadApiServer } from './workload-api/server.ts';
import { adminApiService, adminServiceDefinition } from './admin/api.ts';
import type { NodeBundleStatus } from './admin/api-deps.ts';
import { AdminTokens, loadAdminToken } from './admin/admin-token.ts';
import { loadAdminState, loadNodeTokens, nodeTokensFileOf, SnapshotFile, POLICY_FILE } from './admin/api-state.ts';
import { preflight } from './node-preflight.ts';
import { NodeCluster, type NodeClusterTuning } from './node-cluster.ts';
import { ALREADY_CHECKED, stalenessAwareAuthenticate, tokenRefusal } from './node-staleness.ts';
import { CERTIFICATE_EXPIRY_GRACE_MS, closeSessionsAtCertificateExpiry, refuseRepeatedAuthorization, type CertificateExpiryOptions } from './grpc-guard.ts';
import { join } from 'node:path';

/** How often federated bundle files are checked for changes. */
export const FEDERATION_POLL_MS = 1000;

/**
 * How often node-token records past `sds.expiredTokenRetention` are pruned: a tenth of the
 * retention, at least every 10 minutes and at most every second.
 */
export const nodeTokenPruneIntervalMs = (retentionMs: number): number => Math.min(Math.max(Math.floor(retentionMs / 10), 1000), 600_000);

export interface NodeOptions {
  clock?: Clock;
  logger?: Logger;
  /** Cluster timings for tests and benchmarks (heartbeats, NATS client); defaults otherwise. */
  cluster?: NodeClusterTuning;
}

export interface RunningNode {
  readonly name: string;
  /** Where gRPC listens: `127.0.0.1:8443` or `unix:/path`. */
  readonly grpcAddress: string;
  readonly adminUrl: string | undefined;
  readonly metrics: NodeMetrics;
  readonly ca: IdentityServer;
  readonly policy: PolicyStore;
  readonly authenticator: Authenticator;
  readonly sds: SdsServer;
  readonly workloadApi: WorkloadApiServer;
  readonly nodeTokens: NodeTokenStore;
  /** Registration entries (node id -> workload identifiers), as SDS and the Workload API use them. */
  readonly registrations: CaSecretSource;
  /** What travels between nodes (keys, presence, policy, registrations, revocations). */
  readonly cluster: NodeCluster;
  /** The gRPC server, for the services added below. */
  readonly grpcServer: grpc.Server;
  readonly config: NodeConfig;
  readiness(): Readiness;
  close(): Promise<void>;
}

async function grpcCredentials(cfg: NodeConfig['grpc']): Promise<grpc.ServerCredentials> {
  if (!cfg.tls) return grpc.ServerCredentials.createInsecure();
  const [cert, key, ca] = await Promise.all([
    readFile(cfg.tls.certFile),
    readFile(cfg.tls.keyFile),
    cfg.tls.clientCaFile ? readFile(cfg.tls.clientCaFile) : Promise.resolve(null),
  ]);
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], cfg.tls.requireClientCert);
}

async function bindGrpc(server: grpc.Server, cfg: NodeConfig['grpc'], onCertificateExpired: CertificateExpiryOptions['onClose']): Promise<string> {
  const creds = await grpcCredentials(cfg);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(cfg.listen, creds, (err, p) => {
      if (err) return reject(err);
      // In the callback itself: from listening to here no I/O has run, so no call is served unguarded.
      try {
        refuseRepeatedAuthorization(server);
        // Wall clock: the timers run on real time, whatever clock the node judges tokens by.
        closeSessionsAtCertificateExpiry(server, { now: Date.now, graceMs: CERTIFICATE_EXPIRY_GRACE_MS, onClose: onCertificateExpired });
      } catch (e) {
        return reject(e);
      }
      resolve(p);
    }),
  );
  if (cfg.listen.startsWith('unix:')) {
    await chmod(unixSocketPath(cfg.listen), parseInt(cfg.socketMode, 8));
    return cfg.listen;
  }
  return cfg.listen.replace(/:\d+$/, `:${port}`);
}

/** A listener could not be opened: which config field, which address, and the errno code (EADDRINUSE, ...). */
export class ListenError extends Error {
  override readonly name = 'ListenError';
  constructor(
    readonly field: 'grpc.listen' | 'admin.listen',
    readonly address: string,
    readonly code: string | undefined,
    cause: unknown,
  ) {
    super(`${field}: cannot listen on ${address}: ${(cause as Error).message}`, { cause });
  }
}

/** Run `open`, turning its failure into a `ListenError` (grpc-js puts the errno code only in its message). */
async function listening<T>(field: ListenError['field'], address: string, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? /\b(E[A-Z]{3,})\b/.exec((e as Error).message ?? '')?.[1];
    throw new ListenError(field, address, code, e);
  }
}

function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) };
}

/** Every live node's bundle view, from the cluster's heartbeats (kids classified by our own key table). */
function clusterBundleStatus(cluster: NodeCluster, ca: IdentityServer, now: number): NodeBundleStatus[] {
  const kinds = new Map(ca.keys().map((k) => [k.kid, k.kind]));
  return cluster.presence.liveNodes(now).map((n) => ({
    node: n.node,
    trustDomains: [
      {
        trustDomain: ca.trustDomain,
        x509Authorities: n.trustedKids.filter((k) => kinds.get(k) === 'x509'),
        witKeys: n.trustedKids.filter((k) => kinds.get(k) === 'wit'),
      },
    ],
  }));
}

/** Run closers in reverse order of creation; a failing closer does not stop the others. */
async function unwind(undo: Array<() => unknown>): Promise<void> {
  for (const u of undo.splice(0).reverse()) {
    try {
      await u();
    } catch {
      // keep closing the rest
    }
  }
}

/**
 * Build and start one node. If any step fails, everything already started is closed again
 * (the CA's lock released, the bus closed, listeners shut) before the error is thrown.
 */
export async function startNode(config: NodeConfig, opts: NodeOptions = {}): Promise<RunningNode> {
  const undo: Array<() => unknown> = [];
  try {
    return await assembleNode(config, opts, undo);
  } catch (e) {
    await unwind(undo);
    throw e;
  }
}

async function assembleNode(config: NodeConfig, opts: NodeOptions, undo: Array<() => unknown>): Promise<RunningNode> {
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? createLogger({ level: config.logging.level });
  const name = config.nodeName ?? hostname();
  // The checks `wimse-server validate` runs: nothing is created or written before they pass.
  const problems = await preflight(config);
  if (problems.length) throw new ConfigError(problems, 'environment');
  await mkdir(config.stateDir, { recursive: true, mode: 0o700 });
  // What the admin API persisted: entries, federation, policy (src/admin/api-state.ts).
  const adminState = await loadAdminState(config);
  const adminToken = await loadAdminToken({ tokenFile: config.admin.tokenFile, stateDir: config.stateDir });
  if (adminToken.created) logger.info({ path: adminToken.path }, 'admin token generated (wimsectl --token-file)');
  // This node's admin token, and in a cluster every other node's (by digest, from the bus).
  const adminTokens = new AdminTokens(adminToken.token);

  const ca = await IdentityServer.open({
    stateDir: config.stateDir,
    trustDomain: config.trustDomain,
    clock,
    alg: config.keys.algorithm,
    timing: {
      keyTtlSec: config.keys.ttl / 1000,
      prepareAt: config.keys.prepareAt,
      activateAt: config.keys.activateAt,
      rotateIntervalSec: config.keys.rotationInterval / 1000,
    },
    wicTtlSec: config.credentials.wicTtl / 1000,
    witTtlSec: config.credentials.witTtl / 1000,
    ...(config.credentials.issuer ? { witIssuer: config.credentials.issuer } : {}),
    federatedBundleFiles: [...config.federation.map((f) => ({ trustDomain: f.trustDomain, path: f.bundleFile })), ...adminState.federationFiles],
    logger: logger.child({ component: 'ca' }),
  });
  undo.push(() => ca.close());
  ca.start();
  // Federated bundle files are re-read when they change (polled: survives atomic replacement).
  // A file that does not load is reported and the bundles in force stay (reloadFederation is
  // all-or-nothing).
  for (const f of config.federation) {
    const onChange = (cur: Stats, prev: Stats) => {
      if (cur.mtimeMs === prev.mtimeMs && cur.size === prev.size) return;
      ca.reloadFederation().then(
        () => logger.info({ trustDomain: f.trustDomain, file: f.bundleFile }, 'federated bundle reloaded'),
        (e: unknown) => logger.error({ trustDomain: f.trustDomain, file: f.bundleFile, err: (e as Error).message }, 'federated bundle refused; the previous one stays'),
      );
    };
    watchFile(f.bundleFile, { interval: FEDERATION_POLL_MS, persistent: false }, onChange);
    undo.push(() => unwatchFile(f.bundleFile, onChange));
  }

  // Replay caches fail closed: full of live tokens, they refuse new ones (503, or UNAVAILABLE on
  // the Workload API) and count it. Metrics label them by what they hold.
  const replayCaches = {
    wpt: new ReplayCache({ maxEntries: config.authn.replayCacheSize }),
    httpsig: new ReplayCache({ maxEntries: config.authn.replayCacheSize }),
    wit_request: new ReplayCache({ maxEntries: config.workloadApi.replayCacheSize }),
  };
  const metrics = new NodeMetrics({
    defaultMetrics: true,
    replayCaches: () => Object.entries(replayCaches).map(([cache, c]) => ({ cache, ...c.stats() })),
    keyExpiries: () =>
      ca.keys().filter((k) => k.status !== 'revoked').map((k) => ({ kind: k.kind, kid: k.kid, state: k.status, notAfter: k.notAfter })),
    servedWicExpiry: () => sds.catalog.earliestLeafExpiry(),
    nodeTokens: () => nodeTokens.counts(),
    workloadApiStreams: () => workloadApi.stats().streams,
    clusterFreshness: () => cluster.staleness(),
  });
  // Every credential the CA signs, whichever path asked (SDS, Workload API, admin mint).
  undo.push(ca.onIssued((e) => metrics.issued.inc({ kind: e.kind })));
  const readiness = (): Readiness => {
    const reasons: string[] = [];
    const now = clock.now();
    for (const kind of ['x509', 'wit'] as const)
      if (!ca.keys().some((k) => k.kind === kind && k.status === 'active' && k.origin === undefined && k.notAfter > now)) reasons.push(`no active ${kind} key`);
    const own = ca.bundle();
    if (own.x509Authorities.length === 0 || own.witKeys.length === 0) reasons.push('trust bundle is empty');
    reasons.push(...cluster.readinessReasons());
    return { ready: reasons.length === 0, reasons };
  };

  // Authentication (the PEP's first half) and route policy (the PDP).
  const authnSettings = {
    clock,
    maxSkewSec: config.authn.maxClockSkew / 1000,
    maxWptLifetimeSec: config.authn.maxWptLifetime / 1000,
    maxHttpSigWindowSec: config.authn.maxSignatureWindow / 1000,
    witCache: config.authn.witCacheSize > 0 ? { maxEntries: config.authn.witCacheSize } : (false as const),
  };
  const authenticator = new Authenticator({
    ...authnSettings,
    bundles: () => ca.bundles(),
    replay: replayCaches.wpt,
    nonceReplay: replayCaches.httpsig,
  });
  // While the cluster state is stale, a credential must also verify with this node's own keys and
  // federation files (src/node-staleness.ts).
  const localAuthenticator = new Authenticator({ ...authnSettings, bundles: () => ca.localBundles(), replay: ALREADY_CHECKED, nonceReplay: ALREADY_CHECKED });
  const policy = new PolicyStore();
  const policyLog = logger.child({ component: 'policy' });
  policy.onLoad(({ result, source }) => {
    if (result.ok) policyLog.info({ source, version: result.version, digest: result.digest, changed: result.changed }, 'policy loaded');
    else policyLog.error({ source, errors: result.errors, serving: result.serving }, 'policy refused; the previous one keeps serving');
  });
  let policyWatch: PolicyWatch | undefined;
  if (adminState.policyFile) {
    policyWatch = policy.watchFile(adminState.policyFile);
    undo.push(() => policyWatch?.close());
    await policyWatch.initial;
  } else policyLog.warn({}, 'no policy file configured: every request is denied');
  const externalPdp = config.policy.external
    ? createHttpPdp({ url: config.policy.external.url, timeoutMs: config.policy.external.timeout })
    : undefined;

  // SDS: credentials and trust bundles to Envoy, for the node ids the registrations name.
  const tokensFile = nodeTokensFileOf(config);
  const nodeTokens = await loadNodeTokens(tokensFile, clock, config.sds.expiredTokenRetention);
  // The file follows the store: tokens issued or revoked here, and what the cluster shares, so
  // that a revocation heard from another node holds after a restart without the bus.
  const tokenJournal = new SnapshotFile(tokensFile, () => `${JSON.stringify(nodeTokens.toJSON(), null, 2)}\n`);
  const saveTokens = () =>
    void tokenJournal.save().catch((e: unknown) => logger.error({ file: tokensFile, err: (e as Error).message }, 'node tokens not written; the next change retries'));
  nodeTokens.onChange(saveTokens);
  // Records of tokens expired for longer than the retention leave the store and the file: at
  // start (before the cluster shares anything) and periodically.
  nodeTokens.onPrune((gone) => {
    metrics.nodeTokensPruned.inc(gone.length);
    logger.info({ pruned: gone.length, retentionMs: nodeTokens.retentionMs }, 'node tokens expired longer than sds.expiredTokenRetention ago dropped');
    saveTokens();
  });
  undo.push(() => tokenJournal.idle());
  nodeTokens.prune();
  const pruneTimer = setInterval(() => nodeTokens.prune(), nodeTokenPruneIntervalMs(nodeTokens.retentionMs));
  pruneTimer.unref();
  undo.push(() => clearInterval(pruneTimer));
  if (adminState.shadowed.length) logger.warn({ nodeIds: adminState.shadowed }, 'entries created through the admin API are shadowed by config entries');
  const sdsSource = new CaSecretSource(ca, [...config.sds.registrations, ...adminState.entries]);
  undo.push(() => sdsSource.close());
  const cluster = await NodeCluster.start({
    name, config, clock, logger, ca, policy, registrations: sdsSource, nodeTokens, adminTokens, metrics, ...(opts.cluster ? { tuning: opts.cluster } : {}),
  });
  undo.push(() => cluster.close());
  // How every Envoy-facing call (SDS, ext_authz, the Workload API) authenticates its caller: a
  // node token, or a client certificate naming the node (grpc.tls.nodeIdFromCertificate); and why
  // node tokens cannot be trusted while the cluster state is stale (SDS, the Workload API). A
  // certificate's validity does not rest on the bus, so staleness does not touch it.
  const certificateIds = config.grpc.tls?.nodeIdFromCertificate;
  const callerAuth: CallerAuthOptions = {
    tokens: nodeTokens,
    ...(certificateIds ? { nodeIdFromCertificate: nodeIdFromCertificate(certificateIds.uriPrefix) } : {}),
    now: () => clock.now(),
    logger: logger.child({ component: 'caller-auth' }),
  };
  const tokensUnconfirmed = () => tokenRefusal(cluster.staleness());
  const sds = new SdsServer({
    source: sdsSource,
    auth: callerAuth,
    clock,
    logger: logger.child({ component: 'sds' }),
    controlPlaneId: name,
    tokensUnconfirmed,
    hooks: {
      streamOpened: () => metrics.sdsStreams.inc(),
      streamClosed: () => metrics.sdsStreams.dec(),
      pushed: (resource) => metrics.sdsPushes.inc({ resource }),
      nack: () => metrics.sdsNacks.inc(),
    },
  });

  // channelz is not served, so its per-call bookkeeping is switched off.
  const server = new grpc.Server({
    'grpc.max_concurrent_streams': 100_000,
    'grpc.max_receive_message_length': MAX_CHECK_REQUEST_BYTES,
    'grpc.enable_channelz': 0,
  });
  sds.register(server);
  // The Workload API: applications get WITs for keys they hold; callers authenticate as Envoys do.
  const workloadApi = new WorkloadApiServer({
    auth: callerAuth,
    tokensUnconfirmed,
    entitled: (caller, id) => sdsSource.identitiesFor(caller.nodeId).includes(id),
    mintWit: async (sub, jwk) => {
      const wit = await ca.mintWit({ sub, cnf: jwk });
      return { token: wit.token, exp: wit.exp };
    },
    bundles: () => ca.bundles(),
    onBundlesChange: (listener) => ca.onChange((e) => e.type === 'bundle-changed' && listener()),
    clock,
    logger: logger.child({ component: 'workload-api' }),
    replay: replayCaches.wit_request,
  });
  workloadApi.register(server);
  // SDS and WatchBundles streams are long-lived: end them first, or the server's graceful
  // shutdown would wait on them.
  undo.push(async () => {
    sds.close();
    workloadApi.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  });
  server.addService(
    authorizationService(),
    extAuthzService({
      // The asking Envoy, as on SDS: its node token (envoy/sidecar-callee.yaml sends it) or its
      // client certificate. Unlike SDS, a stale node still answers a token-authenticated proxy: a
      // Check grants the proxy nothing, and the credentials it asks about are held to the node's
      // own keys (stalenessAwareAuthenticate).
      authenticateProxy: (call) => {
        const who = authenticateCall(call, callerAuth);
        return who.ok ? who.nodeId : undefined;
      },
      authenticate: stalenessAwareAuthenticate(authenticator, localAuthenticator, () => cluster.staleness()),
      authorize: (input) =>
        pdpAuthorize(input, policy.current(), {
          newId: () => input.decisionId,
          ...(input.transportPeer ? { transportPeer: input.transportPeer } : {}),
          ...(externalPdp ? { mode: config.policy.external!.mode, external: externalPdp } : {}),
        }),
      audiencesFor: (destination) => audiencesFor(policy.current(), destination) ?? [],
      logger: logger.child({ component: 'ext_authz' }),
      onCheck: (o) => {
        metrics.checks.inc({ result: o.allowed ? 'allow' : 'deny', reason: o.code, via: o.via ?? 'none' });
        metrics.checkDuration.observe({ result: o.allowed ? 'allow' : 'deny' }, o.seconds);
      },
    }),
  );
  // The admin API (wimsectl) is added here, before the server starts listening.
  server.addService(
    adminServiceDefinition(),
    adminApiService({
      nodeName: name,
      stateDir: config.stateDir,
      adminTokens,
      ca,
      policy,
      policyFile: config.policy.file ?? join(config.stateDir, POLICY_FILE),
      // An entry change made here reaches every node: publishRegistrations applies it locally
      // and puts it on the bus (in-process for a single node).
      registrations: {
        setRegistrations: (regs) =>
          void cluster.publishRegistrations(regs).catch((e: unknown) => logger.error({ err: (e as Error).message }, 'entries not shared with the cluster')),
        registrations: () => sdsSource.registrations(),
      },
      cluster,
      ...(cluster.clustered ? { bundleStatus: async () => clusterBundleStatus(cluster, ca, clock.now()) } : {}),
      configEntries: config.sds.registrations,
      apiEntries: adminState.entries,
      configFederation: config.federation.map((f) => f.trustDomain),
      nodeTokens,
      saveNodeTokens: () => tokenJournal.save(),
      clock,
      logger: logger.child({ component: 'admin-api' }),
    }),
  );

  const grpcAddress = await listening('grpc.listen', config.grpc.listen, () =>
    bindGrpc(server, config.grpc, (s) => {
      metrics.grpcSessionsClosed.inc({ reason: 'client_certificate_expired' });
      logger.info(
        { fingerprint256: s.fingerprint256, serialNumber: s.serialNumber, validTo: s.validTo, remoteAddress: s.remoteAddress, atStart: s.atStart, graceMs: CERTIFICATE_EXPIRY_GRACE_MS },
        'client certificate expired: its connection is closing (GOAWAY); streams still open on it are reset after the grace',
      );
    }),
  );

  sds.start();
  workloadApi.start();

  let admin: AdminHttp | undefined;
  if (config.admin.listen !== '') {
    admin = await listening('admin.listen', config.admin.listen, () => startAdminHttp({ ...splitHostPort(config.admin.listen), readiness, registry: metrics.registry }));
    undo.push(() => admin?.close());
  }
  logger.info({ node: name, trustDomain: config.trustDomain, grpc: grpcAddress, admin: admin?.url }, 'node started');

  return {
    name,
    grpcAddress,
    adminUrl: admin?.url,
    metrics,
    ca,
    policy,
    authenticator,
    sds,
    workloadApi,
    nodeTokens,
    registrations: sdsSource,
    cluster,
    grpcServer: server,
    config,
    readiness,
    async close() {
      await unwind(undo);
      logger.info({ node: name }, 'node stopped');
    },
  };
}
