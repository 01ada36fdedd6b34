import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { parse, parseDocument } from 'yaml';
import { validateBootstrap, validateMessage } from '../../src/envoy/validate-config.ts';
import { envoyProtos, TYPE_URL } from '../../src/envoy/protos.ts';
import { sdsReferences } from './helpers/sds-references.ts';

const envoyDir = new URL('../../envoy/', import.meta.url);
const yamlFiles = readdirSync(envoyDir).filter((f) => f.endsWith('.yaml')).sort();
const load = (f: string): any => parse(readFileSync(new URL(f, envoyDir), 'utf8'), { maxAliasCount: 100 });

test('envoy config - the envoy/ folder has the three sidecar bootstraps', (t) => {
  t.deepEqual(yamlFiles, ['sidecar-callee.yaml', 'sidecar-caller-uds.yaml', 'sidecar-caller.yaml']);
});

for (const f of yamlFiles) {
  test(`envoy config - ${f} validates strictly as a Bootstrap`, (t) => {
    const r = validateBootstrap(load(f));
    t.deepEqual(r.ok ? [] : r.errors, []);
  });

  test(`envoy config - ${f} uses one byte-stable sds_config for every secret`, (t) => {
    const doc = parseDocument(readFileSync(new URL(f, envoyDir), 'utf8'));
    t.deepEqual(doc.errors, []);
    const refs = sdsReferences(doc.toJS({ maxAliasCount: 100 }));
    const configs = refs.map((r) => r.sdsConfig);
    const names = refs.map((r) => r.name);
    t.deepEqual(names.sort(), ['ALL', 'default']);
    const first = JSON.stringify(configs[0]);
    for (const c of configs) t.is(JSON.stringify(c), first);
    t.regex(first, /"cluster_name":"control_plane"/);
  });
}

test('envoy config - callee wires ext_authz fail-closed with body bytes and the peer certificate', (t) => {
  const doc = load('sidecar-callee.yaml');
  const hcm = doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  t.false(hcm.normalize_path);
  t.false(hcm.merge_slashes);
  t.is(hcm.path_with_escaped_slashes_action, 'KEEP_UNCHANGED');
  const authz = hcm.http_filters[0];
  t.is(authz.name, 'envoy.filters.http.ext_authz');
  const c = authz.typed_config;
  t.is(c.grpc_service.timeout, '0.5s');
  t.false(c.failure_mode_allow);
  t.is(c.status_on_error.code, 'ServiceUnavailable');
  t.deepEqual(c.with_request_body, { max_request_bytes: 1048576, allow_partial_message: false, pack_as_bytes: true });
  t.true(c.include_peer_certificate);
  t.is(hcm.http_filters.at(-1).name, 'envoy.filters.http.router');
  const route = hcm.route_config.virtual_hosts[0].routes[0];
  const ext = route.typed_per_filter_config['envoy.filters.http.ext_authz'].check_settings.context_extensions;
  t.is(ext.destination_workload, 'spiffe://example.org/ns/shop/sa/orders');
  t.truthy(ext.audience);
  const tls = doc.static_resources.listeners[0].filter_chains[0].transport_socket.typed_config;
  t.true(tls.require_client_certificate);
});

test('envoy config - control plane cluster speaks HTTP/2 on port 8443 (TCP) or a pipe (UDS)', (t) => {
  for (const f of yamlFiles) {
    const cp = load(f).static_resources.clusters.find((c: any) => c.name === 'control_plane');
    t.truthy(cp.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config.http2_protocol_options);
    const addr = cp.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address;
    if (f.includes('uds')) t.is(addr.pipe.path, '/run/wimse/sds.sock');
    else t.is(addr.socket_address.port_value, 8443);
  }
});

// Negative cases: each mistake is caught and reported at its field path.
const mutate = (fn: (d: any) => void): any => {
  const d = load('sidecar-callee.yaml');
  fn(d);
  return d;
};
const errorsOf = (doc: unknown): string[] => {
  const r = validateBootstrap(doc);
  return r.ok ? [] : r.errors;
};

test('envoy config validate - a misspelled field is reported with its path', (t) => {
  const errs = errorsOf(mutate((d) => {
    d.static_resources.clusters[0].conect_timeout = '1s';
  }));
  t.deepEqual(errs, ['static_resources.clusters[0].conect_timeout: unknown field in envoy.config.cluster.v3.Cluster']);
});

test('envoy config validate - a misspelled field inside a nested typed_config is caught', (t) => {
  const errs = errorsOf(mutate((d) => {
    d.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.with_request_body.pack_as_byte = true;
  }));
  t.is(errs.length, 1);
  t.regex(errs[0]!, /http_filters\[0\]\.typed_config\.with_request_body\.pack_as_byte: unknown field/);
});

test('envoy config validate - wrong scalar types are caught', (t) => {
  const errs = errorsOf(mutate((d) => {
    d.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value = 'http';
    d.static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.require_client_certificate = 'yes';
    d.static_resources.clusters[1].connect_timeout = 1;
  }));
  t.is(errs.length, 3);
  t.true(errs.some((e) => e.includes('socket_address.port_value: expected an integer')));
  t.true(errs.some((e) => e.includes('require_client_certificate: expected a boolean')));
  t.true(errs.some((e) => e.startsWith('static_resources.clusters[1].connect_timeout: not a Duration')));
});

test('envoy config validate - an out-of-range uint32 wrapper is caught', (t) => {
  const errs = errorsOf(mutate((d) => {
    d.static_resources.listeners[0].per_connection_buffer_limit_bytes = -1;
  }));
  t.deepEqual(errs, ['static_resources.listeners[0].per_connection_buffer_limit_bytes: uint32 out of range: -1']);
});

test('envoy config validate - an unresolvable typed_config is caught', (t) => {
  const errs = errorsOf(mutate((d) => {
    d.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[1].typed_config['@type'] =
      'type.googleapis.com/envoy.extensions.filters.http.router.v3.Routr';
  }));
  t.is(errs.length, 1);
  t.regex(errs[0]!, /http_filters\[1\]\.typed_config\.@type: type .* does not resolve/);
});

test('envoy config validate - an invalid enum name is caught', (t) => {
  const errs = errorsOf(mutate((d) => {
    d.static_resources.clusters[0].type = 'STATIK';
  }));
  t.deepEqual(errs, ['static_resources.clusters[0].type: invalid enum value "STATIK" for envoy.config.cluster.v3.Cluster.DiscoveryType']);
});

test('envoy config validate - two members of a oneof are caught', (t) => {
  const errs = errorsOf(mutate((d) => {
    const tls = d.static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.common_tls_context;
    tls.validation_context = { trusted_ca: { filename: '/x.pem' } };
  }));
  t.is(errs.length, 1);
  t.regex(errs[0]!, /common_tls_context: oneof validation_context_type: at most one/);
});

test('envoy config validate - a missing required field (PGV) is caught', (t) => {
  const errs = errorsOf(mutate((d) => {
    delete d.static_resources.clusters[0].name;
  }));
  t.deepEqual(errs, ['static_resources.clusters[0].name: required (min_len 1)']);
});

test('envoy config validate - Duration, wrappers and Struct follow the proto3 JSON mapping', (t) => {
  t.true(validateMessage('envoy.config.core.v3.GrpcService', { envoy_grpc: { cluster_name: 'x' }, timeout: '0.250s' }).ok);
  t.false(validateMessage('envoy.config.core.v3.GrpcService', { envoy_grpc: { cluster_name: 'x' }, timeout: '250ms' }).ok);
  // UInt32Value as a bare number, not {value: n}
  t.true(validateMessage('envoy.config.listener.v3.Listener', { name: 'l', per_connection_buffer_limit_bytes: 1024 }).ok);
  t.false(validateMessage('envoy.config.listener.v3.Listener', { name: 'l', per_connection_buffer_limit_bytes: { value: 1 } }).ok);
  // Struct is free-form
  t.true(validateMessage('envoy.config.core.v3.Node', { id: 'n', metadata: { a: [1, { b: null }], c: 'x' } }).ok);
  // JSON names are accepted as Envoy does
  t.true(validateMessage('envoy.config.core.v3.Node', { id: 'n', userAgentName: 'envoy' }).ok);
});

test('envoy config validate - an SDS Secret resource validates, with the SPIFFE config as a nested Any', (t) => {
  envoyProtos();
  const secret = {
    name: 'ALL',
    validation_context: {
      custom_validator_config: {
        name: 'envoy.tls.cert_validator.spiffe',
        typed_config: {
          '@type': TYPE_URL.spiffeValidatorConfig,
          trust_domains: [{ name: 'example.org', trust_bundle: { inline_bytes: Buffer.from('pem').toString('base64') } }],
        },
      },
    },
  };
  t.true(validateMessage('envoy.extensions.transport_sockets.tls.v3.Secret', secret).ok);
  const empty = structuredClone(secret);
  empty.validation_context.custom_validator_config.typed_config.trust_domains = [];
  const r = validateMessage('envoy.extensions.transport_sockets.tls.v3.Secret', empty);
  t.false(r.ok);
  t.deepEqual(r.ok ? [] : r.errors, ['validation_context.custom_validator_config.typed_config.trust_domains: needs at least 1 item(s)']);
});
