/**
 * Envoy sidecar bootstraps, generated: options in, a Bootstrap document (and its YAML or JSON
 * text) out. Pure: no files, no network. `wimsectl envoy bootstrap` is its command line.
 *
 * Two roles, the two shapes of envoy/:
 * - `callee` (envoy/sidecar-callee.yaml): an mTLS listener whose certificate (`default`) and
 *   trust (`ALL`) come over SDS, every request checked by ext_authz, then the local app;
 * - `caller` (envoy/sidecar-caller.yaml): a loopback listener for the app, and mTLS to one
 *   upstream whose certificate must carry exactly the upstream workload identifier.
 * Both reach the control plane over TCP+TLS (`HOST:PORT`: the server certificate is checked
 * against a CA file, and SNI and the DNS SAN are the same name) or over a Unix socket
 * (`unix:/path`, envoy/sidecar-caller-uds.yaml: no TLS on that hop).
 *
 * With `defaultBootstrapOptions(role)` the document equals the shipped envoy/ file
 * (test/envoy/bootstrap.test.ts). Envoy's `initial_metadata` is a literal: it cannot read a
 * file, so the node token is in the document, either a real one (write the file mode 0600) or a
 * placeholder that the installer substitutes (deploy/kubernetes/sample-workload.yaml).
 *
 * Instead of a node token, over TCP+TLS, Envoy can present a client certificate to the control
 * plane (`controlPlaneClientCert`: `tls_certificates` of the `control_plane` cluster, read from
 * files on the Envoy host), for a node that maps it to the node id
 * (`grpc.tls.nodeIdFromCertificate`). Then no SDS source and no ext_authz call carries
 * `initial_metadata`, and the document holds no secret. Envoy reads static certificates at start
 * only: a renewed certificate takes effect at Envoy's next (hot) restart.
 *
 * Or, with `controlPlaneClientCert.sds`, the cluster takes that certificate through a file-based
 * SDS source (`tls_certificate_sds_secret_configs` with a `path_config_source`): the SDS that the
 * control plane serves cannot deliver the credentials of the connection to the control plane
 * itself, but Envoy can read a Secret from a file and reload the certificate and key it names
 * when their directory changes by an atomic move (a Kubernetes Secret volume's `..data` symlink
 * swap). `controlPlaneCertSds` builds that file, a DiscoveryResponse holding one Secret. Upstream
 * connections to the control plane then last at most `maxConnectionSeconds`: a connection keeps
 * the certificate of its handshake, and the node refuses calls on it once that one expires.
 */
import { isIP } from 'node:net';
import { posix } from 'node:path';
import { stringify } from 'yaml';
import { NODE_ID } from '../identity/node-tokens.ts';
import { parseWorkloadId } from '../identity/workload-id.ts';
import { fail, ok, type Checked } from '../identity/result.ts';

export type SidecarRole = 'callee' | 'caller';

export interface BootstrapOptions {
  readonly role: SidecarRole;
  /** The Envoy `node.id`: the registration entry and the node token are keyed on it. */
  readonly nodeId: string;
  /** `node.cluster`; defaults to the workload identifier's last path segment. */
  readonly nodeCluster?: string | undefined;
  /** The workload this sidecar fronts. The callee's ext_authz `destination_workload`. */
  readonly workload: string;
  /** Callee: the audience a WPT or HTTP signature must name (ext_authz `audience`). */
  readonly audience?: string | undefined;
  /** `HOST:PORT` (TLS) or `unix:/path` (no TLS). */
  readonly controlPlane: string;
  /** TLS: the SNI sent and the exact DNS SAN required of the control plane's certificate. Default: HOST. */
  readonly controlPlaneSni?: string | undefined;
  /** TLS: PEM roots for the control plane's certificate, a path on the Envoy host. */
  readonly controlPlaneCaFile: string;
  /** Envoy's admin listener, on 127.0.0.1. */
  readonly adminPort: number;
  /** Callee: the inbound mTLS port (0.0.0.0). Caller: the app's loopback port. */
  readonly listenerPort: number;
  /** Callee: the local app's port on 127.0.0.1. */
  readonly appPort?: number | undefined;
  /** Caller: the upstream (callee sidecar) it calls. */
  readonly upstream?: { readonly host: string; readonly port: number; readonly workload: string } | undefined;
  /** The node token sent as `authorization: Bearer <token>`, or a placeholder for an installer to replace. Absent with `controlPlaneClientCert`. */
  readonly nodeToken?: string | undefined;
  /**
   * TLS: instead of a node token, the client certificate chain and private key (PEM files on the
   * Envoy host) Envoy presents to the control plane; the node maps the certificate to `nodeId`.
   */
  readonly controlPlaneClientCert?: ControlPlaneClientCert | undefined;
}

export interface ControlPlaneClientCert {
  /** The PEM certificate chain, an absolute path on the Envoy host. */
  readonly certFile: string;
  /** Its PEM private key, likewise. */
  readonly keyFile: string;
  /**
   * Reload instead of reading once: the cluster takes the certificate through the file-based SDS
   * source `file` (an absolute path on the Envoy host, `.yaml` or `.json`: Envoy parses it by its
   * name), which names `certFile` and `keyFile`; Envoy reloads them when an entry of their
   * directory (they must share one) is moved. Upstream connections to the control plane last at
   * most `maxConnectionSeconds` (default `DEFAULT_MAX_CONNECTION_SECONDS`), so a renewed
   * certificate is in use on every connection within that time.
   */
  readonly sds?: { readonly file: string; readonly maxConnectionSeconds?: number | undefined } | undefined;
}

/** The Secret's name in the file-based SDS source; Envoy requires the file's Secret to carry it. */
export const CONTROL_PLANE_CERT_SECRET = 'control_plane_client_cert';
/** How long an upstream connection to the control plane lasts with a reloaded certificate. */
export const DEFAULT_MAX_CONNECTION_SECONDS = 3600;
const MIN_MAX_CONNECTION_SECONDS = 60;
/**
 * The format of the SDS file, from its name, which is how Envoy picks its parser: `.yaml` YAML,
 * `.json` JSON. Other names are refused (`.yml` is YAML to recent Envoys only, `.pb` binary).
 */
export const sdsFileFormat = (path: string): 'yaml' | 'json' | undefined => (path.endsWith('.yaml') ? 'yaml' : path.endsWith('.json') ? 'json' : undefined);

export const TOKEN_PLACEHOLDER = 'REPLACE_WITH_NODE_TOKEN';

/** The options that reproduce envoy/sidecar-callee.yaml and envoy/sidecar-caller.yaml. */
export function defaultBootstrapOptions(role: SidecarRole): BootstrapOptions {
  const common = { controlPlane: '127.0.0.1:8443', controlPlaneSni: 'control-plane.example.org', controlPlaneCaFile: '/etc/wimse/control-plane-ca.pem', nodeToken: TOKEN_PLACEHOLDER };
  return role === 'callee'
    ? { ...common, role, nodeId: 'sidecar-orders-0', workload: 'spiffe://example.org/ns/shop/sa/orders', audience: 'https://orders.shop.example.org', adminPort: 9901, listenerPort: 15006, appPort: 8080 }
    : {
        ...common,
        role,
        nodeId: 'sidecar-frontend-0',
        workload: 'spiffe://example.org/ns/shop/sa/frontend',
        adminPort: 9902,
        listenerPort: 15001,
        upstream: { host: 'orders.shop.example.org', port: 15006, workload: 'spiffe://example.org/ns/shop/sa/orders' },
      };
}

const HEADER_SAFE = /^[\x21-\x7e]{1,4096}$/;
const HOST = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253})$/;
const NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** The workload identifier's last path segment, as a name Envoy accepts for a cluster. */
function shortName(workload: string): string {
  const seg = workload.split('/').filter(Boolean).pop() ?? 'workload';
  return seg.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);
}

function checkOptions(o: BootstrapOptions): string[] {
  const errors: string[] = [];
  const port = (name: string, v: number | undefined) => {
    if (v === undefined || !Number.isInteger(v) || v < 1 || v > 65535) errors.push(`${name}: must be a port, 1-65535 (got ${String(v)})`);
  };
  const workload = (name: string, v: string) => {
    const r = parseWorkloadId(v);
    if (!r.ok) errors.push(`${name}: not a valid workload identifier (${r.reason}): ${r.message}`);
  };
  if (o.role !== 'callee' && o.role !== 'caller') errors.push(`role: must be callee or caller (got ${JSON.stringify(o.role)})`);
  if (!NODE_ID.test(o.nodeId)) errors.push('node id: must be 1-256 printable ASCII characters');
  if (o.nodeCluster !== undefined && !NAME.test(o.nodeCluster)) errors.push('node cluster: must be 1-64 characters of [A-Za-z0-9._-]');
  workload('workload', o.workload);
  if (o.nodeToken !== undefined && o.controlPlaneClientCert !== undefined)
    errors.push('node credentials: a node token or a control-plane client certificate, not both (a node that maps the certificate refuses a token for another node)');
  else if (o.nodeToken === undefined && o.controlPlaneClientCert === undefined) errors.push('node credentials: a node token, or a control-plane client certificate, is needed');
  if (o.nodeToken !== undefined && !HEADER_SAFE.test(o.nodeToken)) errors.push('node token: must be 1-4096 printable ASCII characters without spaces');
  port('admin port', o.adminPort);
  port('listener port', o.listenerPort);
  const cp = parseControlPlane(o.controlPlane);
  if (typeof cp === 'string') errors.push(`control plane: ${cp}`);
  else if (cp.kind === 'tcp') {
    if (o.controlPlaneSni !== undefined && !/^[A-Za-z0-9.-]{1,253}$/.test(o.controlPlaneSni)) errors.push('control-plane SNI: must be a DNS name');
    if (!o.controlPlaneCaFile.startsWith('/')) errors.push('control-plane CA file: must be an absolute path (Envoy resolves it on its host)');
  }
  if (o.controlPlaneClientCert !== undefined) {
    if (typeof cp !== 'string' && cp.kind === 'unix') errors.push('control-plane client certificate: needs a TCP control plane (HOST:PORT); a Unix socket has no TLS');
    const { certFile, keyFile, sds } = o.controlPlaneClientCert;
    for (const [name, file] of [['certificate', certFile], ['key', keyFile]] as const)
      if (!absolute(file)) errors.push(`control-plane client ${name} file: must be an absolute path without spaces (Envoy resolves it on its host)`);
    if (sds !== undefined) {
      if (!absolute(sds.file) || sdsFileFormat(sds.file) === undefined)
        errors.push('control-plane certificate SDS file: must be an absolute path without spaces ending in .yaml or .json (Envoy parses the file by its name)');
      if (absolute(certFile) && absolute(keyFile) && posix.dirname(certFile) !== posix.dirname(keyFile))
        errors.push(`control-plane client certificate and key: must be in one directory to be reloaded (Envoy reloads both when an entry of that directory is moved), not ${posix.dirname(certFile)} and ${posix.dirname(keyFile)}`);
      const max = sds.maxConnectionSeconds;
      if (max !== undefined && (!Number.isSafeInteger(max) || max < MIN_MAX_CONNECTION_SECONDS))
        errors.push(`control-plane max connection duration: must be whole seconds, at least ${MIN_MAX_CONNECTION_SECONDS} (got ${String(max)})`);
    }
  }
  if (o.role === 'callee') {
    port('app port', o.appPort);
    if (o.audience === undefined || !/^[\x21-\x7e]{1,2048}$/.test(o.audience)) errors.push('audience: the callee needs one (1-2048 printable ASCII characters), the value a WPT or HTTP signature must name');
    if (o.adminPort === o.listenerPort || o.appPort === o.listenerPort) errors.push('ports: the admin, listener and app ports must differ');
  } else if (o.role === 'caller') {
    if (!o.upstream) errors.push('upstream: the caller needs the host, port and workload identifier it calls');
    else {
      if (!HOST.test(o.upstream.host)) errors.push('upstream host: must be a DNS name or an IP address');
      port('upstream port', o.upstream.port);
      workload('upstream workload', o.upstream.workload);
    }
    if (o.adminPort === o.listenerPort) errors.push('ports: the admin and listener ports must differ');
  }
  return errors;
}

const absolute = (path: string): boolean => path.startsWith('/') && !/\s/.test(path);

type ControlPlane = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

function parseControlPlane(v: string): ControlPlane | string {
  if (v.startsWith('unix:')) {
    const path = v.slice(5);
    return path.startsWith('/') && !/\s/.test(path) ? { kind: 'unix', path } : 'unix: needs an absolute socket path (unix:/run/wimse/sds.sock)';
  }
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) return 'must be HOST:PORT or unix:/path/to/socket';
  return { kind: 'tcp', host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

const TYPE = 'type.googleapis.com/envoy.extensions';
const socket = (address: string, port_value: number) => ({ socket_address: { address, port_value } });
const endpoint = (cluster_name: string, address: object) => ({ cluster_name, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] });
/** STATIC needs an IP address; a DNS name is resolved (and re-resolved) by STRICT_DNS. */
const discovery = (host: string) => (isIP(host) ? 'STATIC' : 'STRICT_DNS');

/** The control_plane cluster's client certificate: static files, or a file-based SDS source that reloads them. */
function clientCertificate(cert: ControlPlaneClientCert | undefined): object {
  if (!cert) return {};
  if (!cert.sds) return { tls_certificates: [{ certificate_chain: { filename: cert.certFile }, private_key: { filename: cert.keyFile } }] };
  const sds_config = { resource_api_version: 'V3', path_config_source: { path: cert.sds.file, watched_directory: { path: posix.dirname(cert.sds.file) } } };
  return { tls_certificate_sds_secret_configs: [{ name: CONTROL_PLANE_CERT_SECRET, sds_config }] };
}

function controlPlaneCluster(o: BootstrapOptions, cp: ControlPlane): object {
  const sds = cp.kind === 'tcp' ? o.controlPlaneClientCert?.sds : undefined;
  const http2 = {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': `${TYPE}.upstreams.http.v3.HttpProtocolOptions`,
      // A connection keeps the certificate of its handshake: with a reloaded one, new connections
      // take over before the old certificate expires and the node refuses calls on its connection.
      ...(sds ? { common_http_protocol_options: { max_connection_duration: `${sds.maxConnectionSeconds ?? DEFAULT_MAX_CONNECTION_SECONDS}s` } } : {}),
      explicit_http_config: { http2_protocol_options: {} },
    },
  };
  if (cp.kind === 'unix')
    return { name: 'control_plane', type: 'STATIC', connect_timeout: '0.25s', typed_extension_protocol_options: http2, load_assignment: endpoint('control_plane', { pipe: { path: cp.path } }) };
  const sni = o.controlPlaneSni ?? cp.host;
  return {
    name: 'control_plane',
    type: discovery(cp.host),
    connect_timeout: '1s',
    typed_extension_protocol_options: http2,
    load_assignment: endpoint('control_plane', socket(cp.host, cp.port)),
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': `${TYPE}.transport_sockets.tls.v3.UpstreamTlsContext`,
        sni,
        common_tls_context: {
          alpn_protocols: ['h2'],
          ...clientCertificate(o.controlPlaneClientCert),
          validation_context: {
            trusted_ca: { filename: o.controlPlaneCaFile },
            match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: sni } }],
          },
        },
      },
    },
  };
}

/** `initial_metadata` carrying the node token, when there is one (none with a client certificate). */
const withToken = (nodeToken: readonly object[]): object => (nodeToken.length ? { initial_metadata: nodeToken } : {});

/** The one ConfigSource every SDS reference shares (Envoy keys subscriptions on it). */
function sdsConfig(nodeToken: readonly object[]): object {
  return {
    resource_api_version: 'V3',
    initial_fetch_timeout: '0s',
    api_config_source: {
      api_type: 'GRPC',
      transport_api_version: 'V3',
      set_node_on_first_message_only: true,
      grpc_services: [{ envoy_grpc: { cluster_name: 'control_plane' }, ...withToken(nodeToken) }],
    },
  };
}

const router = { name: 'envoy.filters.http.router', typed_config: { '@type': `${TYPE}.filters.http.router.v3.Router` } };
const keepPath = { normalize_path: false, merge_slashes: false, path_with_escaped_slashes_action: 'KEEP_UNCHANGED' };

function callee(o: BootstrapOptions, sds: object, nodeToken: readonly object[]): object {
  return {
    name: 'inbound',
    address: socket('0.0.0.0', o.listenerPort),
    filter_chains: [
      {
        transport_socket: {
          name: 'envoy.transport_sockets.tls',
          typed_config: {
            '@type': `${TYPE}.transport_sockets.tls.v3.DownstreamTlsContext`,
            require_client_certificate: true,
            common_tls_context: {
              tls_params: { tls_minimum_protocol_version: 'TLSv1_3' },
              alpn_protocols: ['h2', 'http/1.1'],
              tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: sds }],
              combined_validation_context: {
                validation_context_sds_secret_config: { name: 'ALL', sds_config: sds },
                default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: 'spiffe://' } }] },
              },
            },
          },
        },
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': `${TYPE}.filters.network.http_connection_manager.v3.HttpConnectionManager`,
              stat_prefix: 'inbound_http',
              codec_type: 'AUTO',
              ...keepPath,
              forward_client_cert_details: 'SANITIZE',
              access_log: [{ name: 'envoy.access_loggers.stdout', typed_config: { '@type': `${TYPE}.access_loggers.stream.v3.StdoutAccessLog` } }],
              route_config: {
                name: 'inbound',
                virtual_hosts: [
                  {
                    name: o.nodeCluster ?? shortName(o.workload),
                    domains: ['*'],
                    routes: [
                      {
                        match: { prefix: '/' },
                        route: { cluster: 'local_app' },
                        typed_per_filter_config: {
                          'envoy.filters.http.ext_authz': {
                            '@type': `${TYPE}.filters.http.ext_authz.v3.ExtAuthzPerRoute`,
                            check_settings: { context_extensions: { destination_workload: o.workload, audience: o.audience } },
                          },
                        },
                      },
                    ],
                  },
                ],
              },
              http_filters: [
                {
                  name: 'envoy.filters.http.ext_authz',
                  typed_config: {
                    '@type': `${TYPE}.filters.http.ext_authz.v3.ExtAuthz`,
                    transport_api_version: 'V3',
                    grpc_service: { envoy_grpc: { cluster_name: 'control_plane' }, timeout: '0.5s', ...withToken(nodeToken) },
                    failure_mode_allow: false,
                    status_on_error: { code: 'ServiceUnavailable' },
                    with_request_body: { max_request_bytes: 1048576, allow_partial_message: false, pack_as_bytes: true },
                    include_peer_certificate: true,
                    encode_raw_headers: true,
                  },
                },
                router,
              ],
            },
          },
        ],
      },
    ],
  };
}

function callerListener(o: BootstrapOptions, upstreamName: string): object {
  const host = o.upstream!.host;
  return {
    name: 'outbound',
    address: socket('127.0.0.1', o.listenerPort),
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': `${TYPE}.filters.network.http_connection_manager.v3.HttpConnectionManager`,
              stat_prefix: 'outbound_http',
              codec_type: 'AUTO',
              ...keepPath,
              route_config: {
                name: 'outbound',
                virtual_hosts: [{ name: upstreamName, domains: [host, `${host}:*`], routes: [{ match: { prefix: '/' }, route: { cluster: upstreamName } }] }],
              },
              http_filters: [router],
            },
          },
        ],
      },
    ],
  };
}

function callerUpstream(o: BootstrapOptions, upstreamName: string, sds: object): object {
  const up = o.upstream!;
  return {
    name: upstreamName,
    type: discovery(up.host),
    connect_timeout: '1s',
    load_assignment: endpoint(upstreamName, socket(up.host, up.port)),
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': `${TYPE}.transport_sockets.tls.v3.UpstreamTlsContext`,
        sni: up.host,
        common_tls_context: {
          tls_params: { tls_minimum_protocol_version: 'TLSv1_3' },
          tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: sds }],
          combined_validation_context: {
            validation_context_sds_secret_config: { name: 'ALL', sds_config: sds },
            default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: up.workload } }] },
          },
        },
      },
    },
  };
}

/** The Bootstrap document for `o`, or every problem with the options. */
export function buildBootstrap(o: BootstrapOptions): Checked<Record<string, unknown>> {
  const errors = checkOptions(o);
  if (errors.length) return fail(errors);
  const cp = parseControlPlane(o.controlPlane) as ControlPlane;
  const nodeToken = o.nodeToken === undefined ? [] : [{ key: 'authorization', value: `Bearer ${o.nodeToken}` }];
  const sds = sdsConfig(nodeToken);
  const node = { id: o.nodeId, cluster: o.nodeCluster ?? shortName(o.workload) };
  const admin = { address: socket('127.0.0.1', o.adminPort) };
  if (o.role === 'callee') {
    const localApp = { name: 'local_app', type: 'STATIC', connect_timeout: '1s', load_assignment: endpoint('local_app', socket('127.0.0.1', o.appPort!)) };
    return ok({ node, admin, static_resources: { listeners: [callee(o, sds, nodeToken)], clusters: [localApp, controlPlaneCluster(o, cp)] } });
  }
  const upstreamName = shortName(o.upstream!.workload);
  return ok({ node, admin, static_resources: { listeners: [callerListener(o, upstreamName)], clusters: [callerUpstream(o, upstreamName, sds), controlPlaneCluster(o, cp)] } });
}

/**
 * The file-based SDS source that a bootstrap with `controlPlaneClientCert.sds` names: a
 * DiscoveryResponse (Envoy reads a path config source as one) with one Secret, named
 * `CONTROL_PLANE_CERT_SECRET` as the bootstrap asks for it, whose `tls_certificate` names the
 * certificate and key files and watches their directory. Write it where `sds.file` says, in the
 * format `sdsFileFormat(sds.file)`; it holds paths only, no secret.
 */
export function controlPlaneCertSds(o: BootstrapOptions): Checked<Record<string, unknown>> {
  const errors = checkOptions(o);
  const cert = o.controlPlaneClientCert;
  if (!cert?.sds) errors.push('control-plane certificate SDS file: the options name none (controlPlaneClientCert.sds)');
  if (errors.length || !cert) return fail(errors);
  return ok({
    resources: [
      {
        '@type': `${TYPE}.transport_sockets.tls.v3.Secret`,
        name: CONTROL_PLANE_CERT_SECRET,
        tls_certificate: {
          certificate_chain: { filename: cert.certFile },
          private_key: { filename: cert.keyFile },
          watched_directory: { path: posix.dirname(cert.certFile) },
        },
      },
    ],
  });
}

/**
 * The document as text. YAML writes the shared ConfigSource and token once, with anchors and
 * aliases, as the shipped files do; JSON repeats them (identical bytes either way).
 */
export function renderBootstrap(doc: Record<string, unknown>, format: 'yaml' | 'json', header?: string): string {
  if (format === 'json') return `${JSON.stringify(doc, null, 2)}\n`;
  const comment = header ? `${header.split('\n').map((l) => (l ? `# ${l}` : '#')).join('\n')}\n` : '';
  return comment + stringify(doc, { lineWidth: 0, aliasDuplicateObjects: true });
}
