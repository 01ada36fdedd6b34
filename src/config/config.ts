/**
 * The node's configuration: YAML in, a validated `NodeConfig` out. `wimse-server` with no
 * `--config` runs `embeddedDefaults()`: trust domain `example.org`, state in `./state`, no NATS.
 */
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { resolve, dirname } from 'node:path';
import YAML from 'yaml';
import { NODE_ID } from '../identity/node-tokens.ts';
import { uriPrefixProblem } from '../identity/node-certificate.ts';
import { parseTrustDomain, parseWorkloadId } from '../identity/workload-id.ts';
import type { Checked } from '../identity/result.ts';
import { DEFAULT_TIMING, keyTimes, MAX_KEY_TTL_SEC } from '../ca/slot.ts';
import { check, formatDuration, MAX_TIMER_MS, type Field } from './schema.ts';

export const DEFAULT_GRPC_PORT = 8443;
export const DEFAULT_ADMIN_PORT = 8081;
export const MAX_CONFIG_BYTES = 1 << 20;
/** Longest signing-key lifetime (100 years): keeps every CA certificate's notAfter far inside X.509's year 9999. */
const MAX_KEY_TTL_MS = MAX_KEY_TTL_SEC * 1000;
/** Largest in-memory cache (entries); each entry costs about 100 bytes or more. */
const MAX_CACHE_ENTRIES = 10_000_000;
/** A Unix socket path is at most 107 bytes (sun_path holds 108 with its terminating NUL). */
const MAX_UNIX_PATH_BYTES = 107;

const trustDomain = (v: string): string | undefined => {
  const r = parseTrustDomain(v);
  return r.ok ? undefined : `not a valid trust domain (${r.reason}): ${r.message}`;
};
const workloadId = (v: string): string | undefined => {
  const r = parseWorkloadId(v);
  return r.ok ? undefined : `not a valid workload identifier (${r.reason}): ${r.message}`;
};
/** `HOST:PORT` with the port in 0-65535 and an IP literal that is one. `orElse`: the other forms the field takes, for the message. */
const hostPort = (v: string, orElse = ''): string | undefined => {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
  if (!m) return `must be HOST:PORT (port 0 picks a free port)${orElse}`;
  if (Number(m[2]) > 65535) return `port ${m[2]} is out of range (0-65535; 0 picks a free port)`;
  const host = m[1]!;
  if (host.startsWith('[') && !isIPv6(host.slice(1, -1))) return `${host} is not an IPv6 address`;
  if (/^[\d.]+$/.test(host) && !isIPv4(host)) return `${host} is not an IPv4 address`;
  return undefined;
};
const listenAddress = (v: string): string | undefined => {
  if (!v.startsWith('unix:')) return hostPort(v, ' or unix:/path/to/socket');
  const path = unixSocketPath(v);
  if (path === '') return 'unix: needs a socket path';
  if (Buffer.byteLength(path) > MAX_UNIX_PATH_BYTES) return `the socket path is ${Buffer.byteLength(path)} bytes; at most ${MAX_UNIX_PATH_BYTES} fit in a Unix socket address`;
  return undefined;
};

/** The file system path of a `unix:` listen address (`unix:/p` and `unix:///p` name the same socket). */
export const unixSocketPath = (listen: string): string => listen.slice('unix:'.length).replace(/^\/\/+/, '/');

export const configSchema: Field = {
  kind: 'object',
  doc: 'The node configuration.',
  fields: {
    trustDomain: { kind: 'string', doc: 'The trust domain this node issues identities for (lower-case DNS-like name, no scheme).', default: 'example.org', check: trustDomain },
    nodeName: { kind: 'string', doc: 'This node\'s name, unique among the control-plane nodes of a cluster. Defaults to the host name.', pattern: /^[A-Za-z0-9._-]{1,64}$/, patternHelp: 'must be 1-64 characters of [A-Za-z0-9._-]' },
    stateDir: { kind: 'string', doc: 'Directory holding this node\'s key journal and state (created with mode 0700). Relative paths are relative to the config file.', default: './state' },
    keys: {
      kind: 'object',
      doc: 'Signing keys of this node and their lifecycle (SPIRE\'s model: prepared, active, old).',
      fields: {
        algorithm: { kind: 'enum', doc: 'Algorithm of the X.509 CA and WIT signing keys.', values: ['ES256', 'EdDSA'], default: 'ES256' },
        ttl: { kind: 'duration', doc: 'Lifetime of each signing key (X.509 CA key with its root certificate, and WIT key).', default: '24h', minMs: 1000, maxMs: MAX_KEY_TTL_MS },
        prepareAt: { kind: 'number', doc: 'Fraction of the active key\'s life after which the next key is prepared (published in bundles, not yet signing).', default: 0.5, min: 0, max: 1, exclusiveMin: true },
        activateAt: { kind: 'number', doc: 'Fraction of the active key\'s life after which the prepared key becomes active. Must be greater than prepareAt and less than 1.', default: 5 / 6, min: 0, max: 1, exclusiveMin: true },
        rotationInterval: { kind: 'duration', doc: 'How often the rotator checks whether a key must be prepared or activated. At most half of the shorter of keys.ttl × (activateAt − prepareAt) and keys.ttl × (1 − activateAt), so that no rotation step is missed.', default: '10s', minMs: 10, maxMs: MAX_TIMER_MS },
      },
    },
    credentials: {
      kind: 'object',
      doc: 'Credentials issued to workloads.',
      fields: {
        wicTtl: { kind: 'duration', doc: 'Lifetime of workload X.509 certificates (WICs). At most keys.ttl × (1 − keys.activateAt), the least life an active signing key has left (SPIRE\'s rule: a sixth of the key lifetime by default).', default: '1h', minMs: 1000, maxMs: MAX_KEY_TTL_MS, wholeSeconds: true },
        witTtl: { kind: 'duration', doc: 'Lifetime of Workload Identity Tokens (WITs). At most keys.ttl × (1 − keys.activateAt), as wicTtl.', default: '1h', minMs: 1000, maxMs: MAX_KEY_TTL_MS, wholeSeconds: true },
        issuer: { kind: 'string', doc: 'Value of the WIT `iss` claim; omitted when unset.' },
      },
    },
    federation: {
      kind: 'list',
      doc: 'Other trust domains this node trusts. Each bundle file is a SPIFFE trust bundle (JWKS) for that trust domain.',
      of: {
        kind: 'object',
        doc: 'A federated trust domain.',
        requires: ['trustDomain', 'bundleFile'],
        fields: {
          trustDomain: { kind: 'string', doc: 'The federated trust domain.', check: trustDomain },
          bundleFile: { kind: 'string', doc: 'Path of its SPIFFE bundle (JWKS) file; re-read when it changes.' },
        },
      },
    },
    grpc: {
      kind: 'object',
      doc: 'The gRPC listener serving Envoy SDS, Envoy ext_authz, the Workload API and the admin API.',
      fields: {
        listen: { kind: 'string', doc: 'HOST:PORT, or unix:/path for a Unix domain socket. `wimse-server --grpc-listen` or `WIMSE_GRPC_LISTEN` overrides it.', default: `127.0.0.1:${DEFAULT_GRPC_PORT}`, check: listenAddress },
        socketMode: { kind: 'string', doc: 'File mode of the Unix socket (0600: only the owner; 0660: the owner\'s group too).', default: '0600', pattern: /^0?[0-7]{3}$/, patternHelp: 'must be an octal mode such as 0600 or 0660' },
        tls: {
          kind: 'object',
          optional: true,
          doc: 'TLS for a TCP listener. Without it the listener is plaintext and must only be reachable from trusted hosts (loopback).',
          requires: ['certFile', 'keyFile'],
          fields: {
            certFile: { kind: 'string', doc: 'PEM certificate chain of the control plane.' },
            keyFile: { kind: 'string', doc: 'PEM private key of the control plane.' },
            clientCaFile: {
              kind: 'string',
              doc: 'PEM roots for client certificates; needs requireClientCert. A connection must then present a certificate these roots sign (admission to the listener). Calls still authenticate with node tokens (the admin API with the admin token), unless nodeIdFromCertificate lets the certificate name the calling node.',
            },
            requireClientCert: { kind: 'bool', doc: 'Refuse connections without a client certificate signed by clientCaFile (grpc-js cannot ask for an optional one).', default: false },
            nodeIdFromCertificate: {
              kind: 'object',
              optional: true,
              doc:
                'Lets a client certificate authenticate the calling node on SDS, ext_authz and the Workload API without a node token (SPIFFE-style node identities, as SPIRE\'s x509pop attestation names an agent by its certificate). Needs clientCaFile and requireClientCert: true. ' +
                'The certificate names node X when exactly one of its URI SANs starts with uriPrefix and the rest of it is X, a valid node id taken as written; otherwise it names no node, and a call without a node token is refused (UNAUTHENTICATED, logged at warn). ' +
                'With a node token as well, the token authenticates; the call is refused if the certificate names another node, or carries URI SANs under uriPrefix that name none validly (docs/sds.md "Client certificate"). ' +
                'A certificate authenticates until its notAfter, also on a connection opened before (its streams end then, and the connection gets a GOAWAY and is closed 5 s later), cannot be revoked, and stays valid on a stale cluster node: issue short-lived node certificates.',
              requires: ['uriPrefix'],
              fields: {
                uriPrefix: { kind: 'string', doc: 'The URI SAN prefix that names a node, for example spiffe://nodes.example.org/envoy/: an absolute URI with a host, ending in /, scheme and host in lower case; compared byte for byte. Its host must not be this node\'s trust domain or a federated one (workload certificates would then name nodes).', check: uriPrefixProblem },
              },
            },
          },
        },
      },
    },
    admin: {
      kind: 'object',
      doc: 'The admin HTTP listener: /healthz, /readyz, /metrics.',
      fields: {
        listen: { kind: 'string', doc: 'HOST:PORT of the admin HTTP listener; empty string disables it. `wimse-server --admin-listen` or `WIMSE_ADMIN_LISTEN` overrides it.', default: `127.0.0.1:${DEFAULT_ADMIN_PORT}`, check: (v) => (v === '' ? undefined : hostPort(v)) },
        tokenFile: { kind: 'string', doc: 'File holding the admin bearer token for the admin API. Generated (mode 0600) in stateDir when unset.' },
      },
    },
    sds: {
      kind: 'object',
      doc: 'Envoy SDS: who may receive which identity.',
      fields: {
        nodeTokensFile: { kind: 'string', doc: 'File of hashed node tokens, written by the node on every change (`wimsectl token`, and in a cluster the tokens and revocations other nodes share). Defaults to <stateDir>/node-tokens.json.' },
        expiredTokenRetention: {
          kind: 'duration',
          doc: 'How long the record of an expired node token (revoked or not) is kept after the token expired, before it is dropped from memory, from the node-token file and, in a cluster, from the shared store (docs/operations-cluster.md "Expired node tokens are pruned"). A revoked token that has not expired is kept until it has; a token without expiry is never dropped. Use the same value on every node of a cluster.',
          default: '24h',
          minMs: 1000,
          maxMs: 3650 * 86_400_000,
        },
        registrations: {
          kind: 'list',
          doc: 'Registration entries: an Envoy node id and the workload identifiers it may receive.',
          of: {
            kind: 'object',
            doc: 'A registration entry.',
            requires: ['nodeId', 'workloads'],
            fields: {
              nodeId: { kind: 'string', doc: 'The Envoy `node.id` this entry applies to.', pattern: NODE_ID, patternHelp: 'must be 1-256 printable ASCII characters' },
              workloads: { kind: 'list', doc: 'Workload identifiers this node may receive; the first is its `default`.', of: { kind: 'string', doc: 'A workload identifier.', check: workloadId }, minItems: 1 },
              dnsNames: { kind: 'list', doc: 'DNS SANs added to its certificates.', of: { kind: 'string', doc: 'A DNS name.', pattern: /^[A-Za-z0-9*.-]{1,253}$/, patternHelp: 'must be a DNS name' } },
            },
          },
        },
      },
    },
    authn: {
      kind: 'object',
      doc: 'Verification of callers (ext_authz).',
      fields: {
        maxClockSkew: { kind: 'duration', doc: 'Clock skew tolerated on exp, created and expires.', default: '60s', maxMs: 600_000, wholeSeconds: true },
        maxWptLifetime: { kind: 'duration', doc: 'A WPT whose exp is further ahead than this is rejected.', default: '5m', minMs: 1000, maxMs: 86_400_000, wholeSeconds: true },
        maxSignatureWindow: { kind: 'duration', doc: 'Longest accepted expires - created of an HTTP message signature, before the maxClockSkew allowance (the window may exceed it by up to maxClockSkew).', default: '5m', minMs: 1000, maxMs: 86_400_000, wholeSeconds: true },
        replayCacheSize: {
          kind: 'int',
          doc: 'Entries each replay cache (WPT jti, signature nonce) holds. A token is held until it can no longer be accepted; when the cache is full of such tokens a new one is refused with 503 (never evicted). Size: accepted tokens per second x (token lifetime + maxClockSkew); about 110 bytes per entry.',
          default: 1_000_000,
          min: 100,
          max: MAX_CACHE_ENTRIES,
        },
        witCacheSize: { kind: 'int', doc: 'Verified WITs cached (keyed by the exact token); 0 disables the cache.', default: 10_000, min: 0, max: MAX_CACHE_ENTRIES },
      },
    },
    workloadApi: {
      kind: 'object',
      doc: 'The Workload API (FetchWIT, WatchBundles).',
      fields: {
        replayCacheSize: {
          kind: 'int',
          doc: 'Entries the FetchWIT proof replay cache (proof jti) holds. A proof is held until it can no longer be accepted (its iat plus 120 s: 60 s of proof age and 60 s of clock skew); when the cache is full of such proofs a new FetchWIT is refused with UNAVAILABLE `proof.replay_cache_full` (never evicted). Size: FetchWIT calls per second x 120 s; about 130 bytes per entry.',
          default: 100_000,
          min: 100,
          max: MAX_CACHE_ENTRIES,
        },
      },
    },
    policy: {
      kind: 'object',
      doc: 'Route policy (the PDP).',
      fields: {
        file: { kind: 'string', doc: 'Policy YAML file, hot-reloaded on change. Without one, or while it is missing or refused, every request is denied (default deny); the node still starts, and `validate` reports a file it would refuse.' },
        external: {
          kind: 'object',
          optional: true,
          doc: 'An external PDP asked over HTTP. Any timeout, error or malformed answer denies.',
          requires: ['url'],
          fields: {
            mode: { kind: 'enum', doc: '`both`: asked only after the local policy allows (both must allow); `external`: it alone decides.', values: ['both', 'external'], default: 'both' },
            url: { kind: 'string', doc: 'http(s) URL the decision request is POSTed to.', pattern: /^https?:\/\/\S+$/, patternHelp: 'must be an http:// or https:// URL' },
            timeout: { kind: 'duration', doc: 'Deadline for its answer; a timeout denies.', default: '200ms', minMs: 1, maxMs: 10_000 },
          },
        },
      },
    },
    cluster: {
      kind: 'object',
      optional: true,
      doc: 'Several nodes sharing key rotations, bundles, policy and revocations over NATS. Absent: a single node with an in-process bus.',
      requires: ['servers'],
      fields: {
        servers: { kind: 'list', doc: 'NATS server URLs.', of: { kind: 'string', doc: 'A NATS URL.', pattern: /^(nats|tls):\/\/\S+$/, patternHelp: 'must be a nats:// or tls:// URL' }, minItems: 1 },
        credsFile: { kind: 'string', doc: 'NATS credentials (.creds) file.' },
        tlsCaFile: { kind: 'string', doc: 'PEM roots to verify the NATS servers.' },
        replicas: { kind: 'int', doc: 'Replicas of the JetStream KV bucket holding the shared state (3 for a 3-server NATS cluster).', default: 1, min: 1, max: 5 },
        activationTimeout: { kind: 'duration', doc: 'How long a prepared key waits for every known node (live, or with keys journaled here: down and cut-off nodes count until forgotten with wimsectl cluster forget) to trust it before it is activated anyway, with a warning and wimse_activation_gate_timeouts_total. Less than keys.ttl × (1 − keys.activateAt) − keys.rotationInterval, so that the active key cannot expire while its successor waits.', default: '5m', maxMs: MAX_TIMER_MS },
        reconcileInterval: { kind: 'duration', doc: 'How often a node re-reads the shared state to repair drift.', default: '30s', minMs: 100, maxMs: MAX_TIMER_MS },
        maxStaleness: {
          kind: 'duration',
          doc: 'How long a node may go without confirmed contact with the shared store (bus lost, or the store not answering) before its cluster state counts as stale: /readyz turns unready, calls authenticated by node tokens get UNAVAILABLE, and ext_authz denies (503) credentials that rest on other nodes\' keys, until the node has reconnected and caught up (docs/operations-cluster.md "Partitions and staleness").',
          default: '30s',
          minMs: 1000,
          maxMs: MAX_TIMER_MS,
        },
      },
    },
    logging: {
      kind: 'object',
      doc: 'Structured JSON logs.',
      fields: {
        level: { kind: 'enum', doc: 'Minimum level.', values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], default: 'info' },
      },
    },
  },
};

export interface NodeConfig {
  trustDomain: string;
  nodeName?: string;
  stateDir: string;
  keys: { algorithm: 'ES256' | 'EdDSA'; ttl: number; prepareAt: number; activateAt: number; rotationInterval: number };
  credentials: { wicTtl: number; witTtl: number; issuer?: string };
  federation: Array<{ trustDomain: string; bundleFile: string }>;
  grpc: {
    listen: string;
    socketMode: string;
    tls?: { certFile: string; keyFile: string; clientCaFile?: string; requireClientCert: boolean; nodeIdFromCertificate?: { uriPrefix: string } };
  };
  admin: { listen: string; tokenFile?: string };
  sds: { nodeTokensFile?: string; expiredTokenRetention: number; registrations: Array<{ nodeId: string; workloads: string[]; dnsNames: string[] }> };
  authn: {
    maxClockSkew: number;
    maxWptLifetime: number;
    maxSignatureWindow: number;
    replayCacheSize: number;
    witCacheSize: number;
  };
  workloadApi: { replayCacheSize: number };
  policy: { file?: string; external?: { mode: 'both' | 'external'; url: string; timeout: number } };
  cluster?: { servers: string[]; credsFile?: string; tlsCaFile?: string; replicas: number; activationTimeout: number; reconcileInterval: number; maxStaleness: number };
  logging: { level: string };
}

/**
 * The key schedule must be one the rotator can keep. A key's life has two windows (the same
 * arithmetic as `keyTimes` in src/ca/slot.ts): the preparation window, from prepareAt to
 * activateAt, in which the next key must be prepared and published; and the activation window,
 * from activateAt to the end of its life, in which the next key must become active. The rotator
 * must tick at least twice in each; a credential must not outlive the least life an active key
 * has left (SPIRE's rule: ca_ttl at least six times the SVID TTL); in a cluster, the wait for
 * every node to trust the next key must end inside the activation window.
 */
function keyScheduleCheck(c: NodeConfig): string[] {
  const errors: string[] = [];
  const ttl = formatDuration(c.keys.ttl);
  const t = keyTimes(0, { ...DEFAULT_TIMING, keyTtlSec: c.keys.ttl / 1000, prepareAt: c.keys.prepareAt, activateAt: c.keys.activateAt });
  const prepareWindow = t.activateNextAt - t.prepareNextAt;
  const activationWindow = t.notAfter - t.activateNextAt;
  const maxTick = Math.floor(Math.min(prepareWindow, activationWindow) / 2);
  if (c.keys.rotationInterval > maxTick)
    errors.push(
      `keys.rotationInterval: must be at most ${formatDuration(maxTick)} with keys.ttl ${ttl} (half the shorter of the preparation window ` +
        `${formatDuration(prepareWindow)} and the activation window ${formatDuration(activationWindow)}), or a rotation step can be missed; lower it or raise keys.ttl`,
    );
  for (const f of ['wicTtl', 'witTtl'] as const)
    if (c.credentials[f] > activationWindow)
      errors.push(
        `credentials.${f}: must be at most ${formatDuration(activationWindow)} with keys.ttl ${ttl} (keys.ttl × (1 − keys.activateAt): the least life an active ` +
          `signing key has left), or credentials are cut short; lower it, or raise keys.ttl to at least ${formatDuration(Math.ceil(c.credentials[f] / (1 - c.keys.activateAt) / 1000) * 1000)}`,
      );
  if (c.cluster && c.cluster.activationTimeout + c.keys.rotationInterval >= activationWindow)
    errors.push(
      `cluster.activationTimeout: must be less than ${formatDuration(Math.max(activationWindow - c.keys.rotationInterval, 1))} with keys.ttl ${ttl} (the activation window ` +
        `${formatDuration(activationWindow)} less keys.rotationInterval), or the active key can expire while its successor waits; lower it or raise keys.ttl`,
    );
  return errors;
}

/** Cross-field rules the per-field schema cannot express. */
function crossCheck(c: NodeConfig): string[] {
  const errors: string[] = [];
  if (c.keys.activateAt <= c.keys.prepareAt) errors.push('keys.activateAt: must be greater than keys.prepareAt');
  if (c.keys.activateAt >= 1) errors.push('keys.activateAt: must be less than 1 (the next key must be active before the current one expires)');
  else if (c.keys.activateAt > c.keys.prepareAt) errors.push(...keyScheduleCheck(c));
  if (c.grpc.tls && c.grpc.listen.startsWith('unix:')) errors.push('grpc.tls: TLS applies to TCP listeners only; remove it or listen on HOST:PORT');
  if (c.grpc.tls && (c.grpc.tls.clientCaFile === undefined) !== !c.grpc.tls.requireClientCert)
    errors.push('grpc.tls: clientCaFile and requireClientCert: true go together (a client certificate is either required and checked, or not asked for)');
  if (c.grpc.tls?.nodeIdFromCertificate && (c.grpc.tls.clientCaFile === undefined || !c.grpc.tls.requireClientCert))
    errors.push('grpc.tls.nodeIdFromCertificate: needs grpc.tls.clientCaFile and requireClientCert: true (only a client certificate the listener verified may name a node)');
  const prefixHost = c.grpc.tls?.nodeIdFromCertificate ? /^[a-z][a-z0-9+.-]*:\/\/([^/]+)\//.exec(c.grpc.tls.nodeIdFromCertificate.uriPrefix)?.[1] : undefined;
  // Workload identifiers are URIs whose host is their trust domain: a prefix in this node's own
  // trust domain (or a federated one) would let a workload certificate name a node.
  if (prefixHost !== undefined && (prefixHost === c.trustDomain || c.federation.some((f) => f.trustDomain === prefixHost)))
    errors.push(
      `grpc.tls.nodeIdFromCertificate.uriPrefix: its host "${prefixHost}" is ${prefixHost === c.trustDomain ? "this node's own trust domain" : 'a federated trust domain'}, whose workload certificates would then name nodes; give node certificates a host of their own (for example nodes.${c.trustDomain})`,
    );
  const seen = new Set<string>();
  c.sds.registrations.forEach((r, i) => {
    if (seen.has(r.nodeId)) errors.push(`sds.registrations[${i}].nodeId: duplicate node id "${r.nodeId}"`);
    seen.add(r.nodeId);
    r.workloads.forEach((w, j) => {
      const p = parseWorkloadId(w);
      if (p.ok && p.value.trustDomain !== c.trustDomain)
        errors.push(`sds.registrations[${i}].workloads[${j}]: belongs to trust domain "${p.value.trustDomain}", but this node issues for "${c.trustDomain}"`);
    });
  });
  const tds = new Set<string>();
  c.federation.forEach((f, i) => {
    if (f.trustDomain === c.trustDomain) errors.push(`federation[${i}].trustDomain: is this node's own trust domain`);
    if (tds.has(f.trustDomain)) errors.push(`federation[${i}].trustDomain: duplicate "${f.trustDomain}"`);
    tds.add(f.trustDomain);
  });
  return errors;
}

/** Resolve relative paths against `baseDir` (the config file's directory). */
function resolvePaths(c: NodeConfig, baseDir: string): NodeConfig {
  const r = (p: string | undefined): string | undefined => (p === undefined ? undefined : resolve(baseDir, p));
  return {
    ...c,
    stateDir: r(c.stateDir)!,
    federation: c.federation.map((f) => ({ ...f, bundleFile: r(f.bundleFile)! })),
    grpc: c.grpc.tls
      ? { ...c.grpc, tls: { ...c.grpc.tls, certFile: r(c.grpc.tls.certFile)!, keyFile: r(c.grpc.tls.keyFile)!, ...(c.grpc.tls.clientCaFile ? { clientCaFile: r(c.grpc.tls.clientCaFile)! } : {}) } }
      : c.grpc,
    admin: c.admin.tokenFile ? { ...c.admin, tokenFile: r(c.admin.tokenFile)! } : c.admin,
    sds: c.sds.nodeTokensFile ? { ...c.sds, nodeTokensFile: r(c.sds.nodeTokensFile)! } : c.sds,
    policy: c.policy.file ? { ...c.policy, file: r(c.policy.file)! } : c.policy,
    ...(c.cluster
      ? { cluster: { ...c.cluster, ...(c.cluster.credsFile ? { credsFile: r(c.cluster.credsFile)! } : {}), ...(c.cluster.tlsCaFile ? { tlsCaFile: r(c.cluster.tlsCaFile)! } : {}) } }
      : {}),
  };
}

/**
 * Values given outside the file (`wimse-server` flags and environment), by dotted field path
 * (`grpc.listen`). They replace the file's values and are checked as the file's are.
 */
export type ConfigOverrides = Readonly<Record<string, string>>;

function withOverrides(doc: unknown, overrides: ConfigOverrides): unknown {
  const paths = Object.keys(overrides);
  if (paths.length === 0 || typeof doc !== 'object' || doc === null || Array.isArray(doc)) return doc;
  const out = structuredClone(doc) as Record<string, unknown>;
  for (const path of paths) {
    const keys = path.split('.');
    let at: Record<string, unknown> | undefined = out;
    for (const k of keys.slice(0, -1)) {
      at[k] ??= {};
      const next: unknown = at[k];
      at = typeof next === 'object' && next !== null && !Array.isArray(next) ? (next as Record<string, unknown>) : undefined;
      if (!at) break; // not a mapping in the file: the schema reports that
    }
    if (at) at[keys.at(-1)!] = overrides[path];
  }
  return out;
}

/**
 * A configuration the node cannot run with: every problem, each with its field path. `stage`:
 * the file itself (`schema`), or what it names on this host (`environment`: files, state
 * directory, host names; src/node-preflight.ts).
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly errors: readonly string[],
    readonly stage: 'schema' | 'environment',
  ) {
    super(errors.join('; '));
  }
}

/** Validate an already-parsed document. */
export function checkConfig(doc: unknown, baseDir = process.cwd(), overrides: ConfigOverrides = {}): Checked<NodeConfig> {
  const r = check<NodeConfig>(configSchema, withOverrides(doc ?? {}, overrides));
  if (!r.ok) return r;
  const errors = crossCheck(r.value);
  if (errors.length) return { ok: false, errors };
  return { ok: true, value: resolvePaths(r.value, baseDir) };
}

/** Parse and validate YAML text. Duplicate keys and non-mapping roots are errors. */
export function parseConfig(text: string, baseDir = process.cwd(), overrides: ConfigOverrides = {}): Checked<NodeConfig> {
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) return { ok: false, errors: [`config exceeds ${MAX_CONFIG_BYTES} bytes`] };
  const doc = YAML.parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length) {
    return {
      ok: false,
      errors: doc.errors.map((e) => `yaml: ${e.message.split('\n')[0]}${e.linePos ? ` (line ${e.linePos[0].line}, column ${e.linePos[0].col})` : ''}`),
    };
  }
  const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
  if (value !== null && value !== undefined && (typeof value !== 'object' || Array.isArray(value)))
    return { ok: false, errors: ['(root): must be a mapping'] };
  return checkConfig(value, baseDir, overrides);
}

export function loadConfigFile(path: string, overrides: ConfigOverrides = {}): Checked<NodeConfig> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return { ok: false, errors: [`${path}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}: cannot read the config file`] };
  }
  return parseConfig(text, dirname(resolve(path)), overrides);
}

/** The embedded default: what `wimse-server` with no config runs. */
export function embeddedDefaults(cwd = process.cwd()): NodeConfig {
  const r = checkConfig({}, cwd);
  if (!r.ok) throw new Error(`embedded defaults are invalid: ${r.errors.join('; ')}`);
  return r.value;
}
