/**
 * Generated sidecar bootstraps (src/envoy/bootstrap.ts): the defaults are the shipped envoy/
 * files, and every variant passes the same strict Bootstrap validation as envoy/.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { parse, parseDocument } from 'yaml';
import {
  buildBootstrap,
  CONTROL_PLANE_CERT_SECRET,
  controlPlaneCertSds,
  defaultBootstrapOptions,
  renderBootstrap,
  type BootstrapOptions,
} from '../../src/envoy/bootstrap.ts';
import { MESSAGE, messageType, TYPE_URL } from '../../src/envoy/protos.ts';
import { decodeSecret } from '../../src/envoy/sds-secrets.ts';
import { validateBootstrap, validateMessage } from '../../src/envoy/validate-config.ts';
import { sdsReferences } from './helpers/sds-references.ts';

type Doc = Record<string, any>;
const shipped = (f: string): Doc => parse(readFileSync(new URL(`../../envoy/${f}`, import.meta.url), 'utf8'), { maxAliasCount: 100 });
const build = (o: BootstrapOptions): Doc => {
  const r = buildBootstrap(o);
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.value;
};
const errorsOf = (o: BootstrapOptions): string[] => {
  const r = buildBootstrap(o);
  return r.ok ? [] : r.errors;
};
const callee = defaultBootstrapOptions('callee');
const CLIENT_CERT = { certFile: '/etc/wimse/node.crt', keyFile: '/etc/wimse/node.key' };
const RELOADED = { certFile: '/etc/wimse/node-cert/tls.crt', keyFile: '/etc/wimse/node-cert/tls.key', sds: { file: '/etc/wimse/sds/control-plane-cert.yaml' } };
const caller = defaultBootstrapOptions('caller');

test('envoy bootstrap - the default options reproduce the shipped envoy/ files', (t) => {
  const same = (doc: Doc) => JSON.parse(JSON.stringify(doc));
  t.deepEqual(same(build(callee)), shipped('sidecar-callee.yaml'));
  t.deepEqual(same(build(caller)), shipped('sidecar-caller.yaml'));
  t.deepEqual(same(build({ ...caller, controlPlane: 'unix:/run/wimse/sds.sock' })), shipped('sidecar-caller-uds.yaml'));
});

const variants: [string, BootstrapOptions][] = [
  ['callee, defaults', callee],
  ['caller, defaults', caller],
  ['callee, Kubernetes Service control plane', { ...callee, controlPlane: 'wimse-server.wimse-system.svc.cluster.local:8443', controlPlaneSni: 'wimse-server.wimse-system.svc.cluster.local', controlPlaneCaFile: '/etc/wimse/ca/ca.crt', nodeToken: '%NODE_TOKEN%' }],
  ['callee, Unix socket, other ports and ids', { ...callee, controlPlane: 'unix:/run/wimse/sds.sock', nodeId: 'payments-7', nodeCluster: 'payments', workload: 'wimse://pay.example.com/svc/payments', audience: 'https://payments.example.com', listenerPort: 9443, appPort: 3000, adminPort: 19000, nodeToken: 'wnt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
  ['caller, IPv6 control plane, IP upstream', { ...caller, controlPlane: '[::1]:9443', controlPlaneSni: 'cp.example.org', upstream: { host: '10.1.2.3', port: 8443, workload: 'spiffe://example.org/ns/pay/sa/ledger' }, listenerPort: 15101 }],
  ['callee, a client certificate to the control plane instead of a token', { ...callee, nodeToken: undefined, controlPlaneClientCert: CLIENT_CERT }],
  ['caller, a client certificate to the control plane instead of a token', { ...caller, nodeToken: undefined, controlPlaneClientCert: CLIENT_CERT }],
  ['callee, a client certificate reloaded through a file-based SDS source', { ...callee, nodeToken: undefined, controlPlaneClientCert: RELOADED }],
  ['caller, a client certificate reloaded through a file-based SDS source (JSON, 15m connections)', { ...caller, nodeToken: undefined, controlPlaneClientCert: { ...RELOADED, sds: { file: '/run/wimse/cp-cert.json', maxConnectionSeconds: 900 } } }],
];

for (const [name, o] of variants) {
  test(`envoy bootstrap - ${name}: validates strictly as a Bootstrap, as YAML and as JSON`, (t) => {
    const doc = build(o);
    for (const format of ['yaml', 'json'] as const) {
      const text = renderBootstrap(doc, format, 'a header');
      const back = format === 'json' ? JSON.parse(text) : parse(text, { maxAliasCount: 100 });
      const v = validateBootstrap(back);
      t.deepEqual(v.ok ? [] : v.errors, [], format);
      t.deepEqual(back, JSON.parse(JSON.stringify(doc)), format);
    }
  });

  test(`envoy bootstrap - ${name}: one byte-identical sds_config for default and ALL, carrying the node token`, (t) => {
    const yamlText = renderBootstrap(build(o), 'yaml');
    const d = parseDocument(yamlText);
    t.deepEqual(d.errors, []);
    // The control plane's SDS; a reloaded client certificate has a file-based source of its own.
    const all = sdsReferences(d.toJS({ maxAliasCount: 100 }));
    const refs = all.filter((r) => r.name !== CONTROL_PLANE_CERT_SECRET);
    t.is(all.length - refs.length, o.controlPlaneClientCert?.sds ? 1 : 0);
    const configs = refs.map((r) => JSON.stringify(r.sdsConfig));
    const names = refs.map((r) => r.name);
    t.deepEqual(names.sort(), ['ALL', 'default']);
    t.is(new Set(configs).size, 1);
    if (o.nodeToken !== undefined) t.true(configs[0]!.includes(`"value":"Bearer ${o.nodeToken}"`));
    else t.false(configs[0]!.includes('initial_metadata'), 'no token, no metadata');
    // Written once in the YAML, referenced by an alias (and once in the file-based source).
    t.is(yamlText.split('resource_api_version').length - 1, o.controlPlaneClientCert?.sds ? 2 : 1);
  });
}

test('envoy bootstrap - the control plane: TLS checks SNI and the DNS SAN as one name; a DNS name is resolved, an IP is static; a socket has no TLS', (t) => {
  const cpOf = (d: Doc) => d.static_resources.clusters.find((c: Doc) => c.name === 'control_plane');
  const dns = cpOf(build({ ...callee, controlPlane: 'cp.internal:8443', controlPlaneSni: undefined }));
  t.is(dns.type, 'STRICT_DNS');
  t.is(dns.transport_socket.typed_config.sni, 'cp.internal');
  t.deepEqual(dns.transport_socket.typed_config.common_tls_context.validation_context.match_typed_subject_alt_names, [{ san_type: 'DNS', matcher: { exact: 'cp.internal' } }]);
  const ip = cpOf(build({ ...callee, controlPlane: '192.0.2.1:8443', controlPlaneSni: 'cp.example.org' }));
  t.is(ip.type, 'STATIC');
  t.is(ip.transport_socket.typed_config.sni, 'cp.example.org');
  const uds = cpOf(build({ ...callee, controlPlane: 'unix:/run/wimse/sds.sock' }));
  t.deepEqual(uds.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address, { pipe: { path: '/run/wimse/sds.sock' } });
  t.is(uds.transport_socket, undefined);
});

test('envoy bootstrap - the callee names its workload and audience to ext_authz; the caller requires exactly the upstream identifier', (t) => {
  const c = build({ ...callee, workload: 'spiffe://example.org/ns/a/sa/b', audience: 'https://b.example.org' });
  const route = c.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0];
  t.deepEqual(route.typed_per_filter_config['envoy.filters.http.ext_authz'].check_settings.context_extensions, { destination_workload: 'spiffe://example.org/ns/a/sa/b', audience: 'https://b.example.org' });
  t.is(c.node.cluster, 'b');
  const r = build({ ...caller, upstream: { host: 'ledger.pay.svc', port: 15006, workload: 'spiffe://example.org/ns/pay/sa/ledger' } });
  const up = r.static_resources.clusters[0];
  t.is(up.name, 'ledger');
  t.is(up.transport_socket.typed_config.sni, 'ledger.pay.svc');
  t.deepEqual(up.transport_socket.typed_config.common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names, [
    { san_type: 'URI', matcher: { exact: 'spiffe://example.org/ns/pay/sa/ledger' } },
  ]);
  t.deepEqual(r.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].domains, ['ledger.pay.svc', 'ledger.pay.svc:*']);
});

test('envoy bootstrap - with a client certificate, the control_plane cluster presents it from files and no call carries a token', (t) => {
  const d = build({ ...callee, controlPlane: 'cp.internal:8443', controlPlaneSni: undefined, nodeToken: undefined, controlPlaneClientCert: CLIENT_CERT });
  const cp = d.static_resources.clusters.find((c: Doc) => c.name === 'control_plane');
  const ctx = cp.transport_socket.typed_config.common_tls_context;
  t.deepEqual(ctx.tls_certificates, [{ certificate_chain: { filename: '/etc/wimse/node.crt' }, private_key: { filename: '/etc/wimse/node.key' } }]);
  // The server is still checked as with a token: its CA file and its DNS SAN.
  t.deepEqual(ctx.validation_context, { trusted_ca: { filename: callee.controlPlaneCaFile }, match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'cp.internal' } }] });
  const text = JSON.stringify(d);
  t.false(text.includes('initial_metadata') || text.includes('authorization'), 'neither SDS nor ext_authz sends a token');
  const extAuthz = d.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config;
  t.deepEqual(extAuthz.grpc_service, { envoy_grpc: { cluster_name: 'control_plane' }, timeout: '0.5s' });
  // A token bootstrap has no client certificate.
  t.is(build(callee).static_resources.clusters.find((c: Doc) => c.name === 'control_plane').transport_socket.typed_config.common_tls_context.tls_certificates, undefined);
});

test('envoy bootstrap - a reloaded client certificate comes through a file-based SDS source that watches its directory, and connections to the control plane are bounded', (t) => {
  const d = build({ ...callee, controlPlane: 'cp.internal:8443', controlPlaneSni: undefined, nodeToken: undefined, controlPlaneClientCert: RELOADED });
  const cp = d.static_resources.clusters.find((c: Doc) => c.name === 'control_plane');
  const ctx = cp.transport_socket.typed_config.common_tls_context;
  t.is(ctx.tls_certificates, undefined, 'no static certificate: Envoy would ignore the SDS source');
  t.deepEqual(ctx.tls_certificate_sds_secret_configs, [
    {
      name: CONTROL_PLANE_CERT_SECRET,
      sds_config: { resource_api_version: 'V3', path_config_source: { path: '/etc/wimse/sds/control-plane-cert.yaml', watched_directory: { path: '/etc/wimse/sds' } } },
    },
  ]);
  // The server is checked as with a static certificate, and no call carries a token.
  t.deepEqual(ctx.validation_context.match_typed_subject_alt_names, [{ san_type: 'DNS', matcher: { exact: 'cp.internal' } }]);
  t.false(JSON.stringify(d).includes('initial_metadata'));
  const protocol = cp.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
  t.deepEqual(protocol.common_http_protocol_options, { max_connection_duration: '3600s' });
  t.deepEqual(protocol.explicit_http_config, { http2_protocol_options: {} });
  const shorter = build({ ...callee, nodeToken: undefined, controlPlaneClientCert: { ...RELOADED, sds: { ...RELOADED.sds, maxConnectionSeconds: 900 } } });
  t.is(shorter.static_resources.clusters[1].typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].common_http_protocol_options.max_connection_duration, '900s');
  // A static certificate, or a token, leaves the connections unbounded, as before.
  for (const o of [callee, { ...callee, nodeToken: undefined, controlPlaneClientCert: CLIENT_CERT }])
    t.is(build(o).static_resources.clusters[1].typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].common_http_protocol_options, undefined);
});

for (const format of ['yaml', 'json'] as const) {
  test(`envoy bootstrap - the SDS file (${format}) validates strictly as a DiscoveryResponse whose one resource is a Secret`, (t) => {
    const r = controlPlaneCertSds({ ...callee, nodeToken: undefined, controlPlaneClientCert: RELOADED });
    if (!r.ok) return t.fail(r.errors.join('; '));
    const text = renderBootstrap(r.value, format, 'a header');
    const back = format === 'json' ? JSON.parse(text) : parse(text);
    const v = validateMessage(MESSAGE.discoveryResponse, back);
    t.deepEqual(v.ok ? [] : v.errors, []);
    t.deepEqual(back, JSON.parse(JSON.stringify(r.value)));
    t.is(back.resources.length, 1);
    t.is(back.resources[0]['@type'], TYPE_URL.secret);
    // The strict check is not vacuous: a misspelt field, or a second type in the oneof, fails it.
    const misspelt = validateMessage(MESSAGE.discoveryResponse, { resources: [{ ...back.resources[0], tls_certificates: {} }] });
    t.deepEqual(misspelt.ok ? [] : misspelt.errors, ['resources[0].tls_certificates: unknown field in envoy.extensions.transport_sockets.tls.v3.Secret']);
    const two = validateMessage(MESSAGE.discoveryResponse, { resources: [{ ...back.resources[0], validation_context: {} }] });
    t.false(two.ok);
  });
}

test('envoy bootstrap - the SDS file, read with Envoy`s protos, yields the Secret the bootstrap asks for, naming the files given and watching their directory', (t) => {
  const o: BootstrapOptions = {
    ...caller,
    nodeToken: undefined,
    controlPlaneClientCert: { certFile: '/var/run/secrets/wimse/node/tls.crt', keyFile: '/var/run/secrets/wimse/node/tls.key', sds: { file: '/etc/envoy/cp-cert.json' } },
  };
  const r = controlPlaneCertSds(o);
  if (!r.ok) return t.fail(r.errors.join('; '));
  // As Envoy reads a path config source: the file as a DiscoveryResponse, each resource an Any.
  const type = messageType(MESSAGE.discoveryResponse);
  const text = renderBootstrap(r.value, 'json');
  const wire = type.encode(type.fromObject(JSON.parse(text))).finish();
  const response = type.toObject(type.decode(wire), { bytes: Buffer }) as { resources: { type_url: string; value: Buffer }[] };
  t.is(response.resources.length, 1, 'Envoy takes exactly one secret from an SDS update');
  t.is(response.resources[0]!.type_url, TYPE_URL.secret);
  const secret = decodeSecret(response.resources[0]!);
  t.deepEqual(secret, {
    name: CONTROL_PLANE_CERT_SECRET,
    tls_certificate: {
      certificate_chain: { filename: '/var/run/secrets/wimse/node/tls.crt' },
      private_key: { filename: '/var/run/secrets/wimse/node/tls.key' },
      watched_directory: { path: '/var/run/secrets/wimse/node' },
    },
  });
  // Envoy refuses a secret whose name is not the one the bootstrap subscribed to, from the file it names.
  const ref = build(o).static_resources.clusters[1].transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0];
  t.is(ref.name, secret.name);
  t.is(ref.sds_config.path_config_source.path, '/etc/envoy/cp-cert.json');
});

test('envoy bootstrap - bad options are refused, each with what is wrong, and nothing is built', (t) => {
  t.deepEqual(errorsOf({ ...callee, workload: 'https://example.org/x' }), ['workload: not a valid workload identifier (scheme_unsupported): scheme must be spiffe or wimse']);
  t.deepEqual(errorsOf({ ...callee, audience: undefined }), ['audience: the callee needs one (1-2048 printable ASCII characters), the value a WPT or HTTP signature must name']);
  t.deepEqual(errorsOf({ ...caller, upstream: undefined }), ['upstream: the caller needs the host, port and workload identifier it calls']);
  t.deepEqual(errorsOf({ ...callee, controlPlane: 'cp.example.org' }), ['control plane: must be HOST:PORT or unix:/path/to/socket']);
  t.deepEqual(errorsOf({ ...callee, controlPlane: 'unix:relative.sock' }), ['control plane: unix: needs an absolute socket path (unix:/run/wimse/sds.sock)']);
  t.deepEqual(errorsOf({ ...callee, controlPlaneCaFile: 'ca.pem' }), ['control-plane CA file: must be an absolute path (Envoy resolves it on its host)']);
  t.deepEqual(errorsOf({ ...callee, nodeToken: 'two words' }), ['node token: must be 1-4096 printable ASCII characters without spaces']);
  t.deepEqual(errorsOf({ ...callee, listenerPort: 70000, appPort: 0 }), ['listener port: must be a port, 1-65535 (got 70000)', 'app port: must be a port, 1-65535 (got 0)']);
  t.deepEqual(errorsOf({ ...callee, appPort: 15006 }), ['ports: the admin, listener and app ports must differ']);
  t.deepEqual(errorsOf({ ...callee, nodeId: '' }), ['node id: must be 1-256 printable ASCII characters']);
  t.deepEqual(errorsOf({ ...caller, upstream: { host: 'a b', port: 1, workload: 'spiffe://example.org/x' } }), ['upstream host: must be a DNS name or an IP address']);
  t.deepEqual(errorsOf({ ...callee, controlPlaneClientCert: CLIENT_CERT }), ['node credentials: a node token or a control-plane client certificate, not both (a node that maps the certificate refuses a token for another node)']);
  t.deepEqual(errorsOf({ ...callee, nodeToken: undefined }), ['node credentials: a node token, or a control-plane client certificate, is needed']);
  t.deepEqual(errorsOf({ ...callee, nodeToken: undefined, controlPlane: 'unix:/run/wimse/sds.sock', controlPlaneClientCert: CLIENT_CERT }), ['control-plane client certificate: needs a TCP control plane (HOST:PORT); a Unix socket has no TLS']);
  t.deepEqual(errorsOf({ ...callee, nodeToken: undefined, controlPlaneClientCert: { certFile: 'node.crt', keyFile: '/etc/wimse/my key' } }), [
    'control-plane client certificate file: must be an absolute path without spaces (Envoy resolves it on its host)',
    'control-plane client key file: must be an absolute path without spaces (Envoy resolves it on its host)',
  ]);
  const reloaded = (sds: { file: string; maxConnectionSeconds?: number }, files: { certFile: string; keyFile: string } = RELOADED): string[] => errorsOf({ ...callee, nodeToken: undefined, controlPlaneClientCert: { ...files, sds } });
  const notAFile = 'control-plane certificate SDS file: must be an absolute path without spaces ending in .yaml or .json (Envoy parses the file by its name)';
  t.deepEqual(reloaded({ file: 'cp-cert.yaml' }), [notAFile]);
  t.deepEqual(reloaded({ file: '/etc/wimse/cp-cert.yml' }), [notAFile]);
  t.deepEqual(reloaded({ file: '/etc/wimse/cp-cert.pb' }), [notAFile]);
  t.deepEqual(reloaded({ file: '/etc/wimse/cp-cert.yaml', maxConnectionSeconds: 30 }), ['control-plane max connection duration: must be whole seconds, at least 60 (got 30)']);
  t.deepEqual(reloaded({ file: '/etc/wimse/cp-cert.yaml' }, { certFile: '/etc/wimse/certs/node.crt', keyFile: '/etc/wimse/keys/node.key' }), [
    'control-plane client certificate and key: must be in one directory to be reloaded (Envoy reloads both when an entry of that directory is moved), not /etc/wimse/certs and /etc/wimse/keys',
  ]);
  t.deepEqual(reloaded({ file: '/etc/wimse/cp-cert.yaml' }, { certFile: '/etc/wimse/node.crt', keyFile: '/etc/wimse/node.key' }), []);
  // Only a bootstrap with a file-based source has an SDS file.
  const none = controlPlaneCertSds({ ...callee, nodeToken: undefined, controlPlaneClientCert: CLIENT_CERT });
  t.deepEqual(none.ok ? [] : none.errors, ['control-plane certificate SDS file: the options name none (controlPlaneClientCert.sds)']);
});
