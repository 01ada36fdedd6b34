import test from 'ava';
import { readFileSync } from 'node:fs';
import { parseConfig, embeddedDefaults, checkConfig } from '../../src/config/config.ts';
import { formatDuration, parseDuration } from '../../src/config/schema.ts';
import { configReferenceMarkdown } from '../../src/config/reference.ts';

test('config - embedded defaults: example.org, ./state, no NATS, SPIRE timing', (t) => {
  const c = embeddedDefaults('/srv');
  t.is(c.trustDomain, 'example.org');
  t.is(c.stateDir, '/srv/state');
  t.is(c.cluster, undefined);
  t.is(c.keys.algorithm, 'ES256');
  t.is(c.keys.ttl, 24 * 3600_000);
  t.is(c.keys.prepareAt, 0.5);
  t.is(c.keys.activateAt, 5 / 6);
  t.is(c.credentials.wicTtl, 3600_000);
  t.is(c.credentials.witTtl, 3600_000);
  t.is(c.grpc.listen, '127.0.0.1:8443');
});

test('config - an empty file is the embedded defaults', (t) => {
  const r = parseConfig('', '/srv');
  t.true(r.ok);
  if (r.ok) t.deepEqual(r.value, embeddedDefaults('/srv'));
});

test('config - relative paths resolve against the config file directory', (t) => {
  const r = parseConfig('stateDir: data\npolicy:\n  file: policy.yaml\nfederation:\n  - {trustDomain: partner.example, bundleFile: b/p.json}\n', '/etc/wimse');
  t.true(r.ok, JSON.stringify(r));
  if (!r.ok) return;
  t.is(r.value.stateDir, '/etc/wimse/data');
  t.is(r.value.policy.file, '/etc/wimse/policy.yaml');
  t.is(r.value.federation[0]!.bundleFile, '/etc/wimse/b/p.json');
});

/** A TLS listener that requires and verifies client certificates (grpc.tls fields, one flow mapping line). */
const MTLS = 'certFile: a\n    keyFile: b\n    clientCaFile: c\n    requireClientCert: true';

const bad: Array<[string, string[]]> = [
  ['grpc:\n  listn: 1.2.3.4:5\n', ['grpc.listn: unknown field']],
  ['trustDomain: Example.org\n', ['trustDomain: not a valid trust domain (trust_domain_uppercase)']],
  ['keys:\n  prepareAt: 0.9\n  activateAt: 0.5\n', ['keys.activateAt: must be greater than keys.prepareAt']],
  ['keys:\n  ttl: 24 hours\n', ['keys.ttl: must be a duration']],
  ['keys:\n  activateAt: 1\n', ['keys.activateAt: must be less than 1']],
  ['keys:\n  algorithm: RS256\n', ['keys.algorithm: must be one of ES256, EdDSA']],
  ['grpc:\n  listen: localhost\n', ['grpc.listen: must be HOST:PORT']],
  ['sds:\n  registrations:\n    - nodeId: a\n      workloads: [wimse://example.org/pay/../admin]\n', ['sds.registrations[0].workloads[0]: not a valid workload identifier (path_dot_segment)']],
  ['sds:\n  registrations:\n    - nodeId: a\n      workloads: [wimse://other.org/x]\n', ['sds.registrations[0].workloads[0]: belongs to trust domain "other.org"']],
  ['sds:\n  registrations:\n    - workloads: [wimse://example.org/x]\n', ['sds.registrations[0].nodeId: required']],
  ['sds:\n  registrations:\n    - {nodeId: a, workloads: [wimse://example.org/x]}\n    - {nodeId: a, workloads: [wimse://example.org/y]}\n', ['sds.registrations[1].nodeId: duplicate node id "a"']],
  ['federation:\n  - {trustDomain: example.org, bundleFile: x}\n', ['federation[0].trustDomain: is this node\'s own trust domain']],
  ['cluster:\n  servers: []\n', ['cluster.servers: must have at least 1 item(s)']],
  ['cluster:\n  servers: [http://x]\n', ['cluster.servers[0]: must be a nats:// or tls:// URL']],
  ['grpc:\n  listen: unix:/tmp/s.sock\n  tls: {certFile: a, keyFile: b}\n', ['grpc.tls: TLS applies to TCP listeners only']],
  ['grpc:\n  tls: {certFile: a, keyFile: b, clientCaFile: c}\n', ['grpc.tls: clientCaFile and requireClientCert: true go together']],
  // A client certificate names a node only on a listener that verified it, under a usable URI prefix.
  ['grpc:\n  tls: {certFile: a, keyFile: b, nodeIdFromCertificate: {uriPrefix: "spiffe://nodes.example.org/envoy/"}}\n', ['grpc.tls.nodeIdFromCertificate: needs grpc.tls.clientCaFile and requireClientCert: true (only a client certificate the listener verified may name a node)']],
  [`grpc:\n  tls:\n    ${MTLS}\n    nodeIdFromCertificate: {}\n`, ['grpc.tls.nodeIdFromCertificate.uriPrefix: required']],
  [`grpc:\n  tls:\n    ${MTLS}\n    nodeIdFromCertificate: {uriPrefix: "spiffe://nodes.example.org/envoy"}\n`, ['grpc.tls.nodeIdFromCertificate.uriPrefix: must be an absolute URI with a host, ending in / (for example spiffe://nodes.example.org/envoy/): the node id follows the last /']],
  [`grpc:\n  tls:\n    ${MTLS}\n    nodeIdFromCertificate: {uriPrefix: "nodes/envoy/"}\n`, ['grpc.tls.nodeIdFromCertificate.uriPrefix: must be an absolute URI with a host, ending in /']],
  [`grpc:\n  tls:\n    ${MTLS}\n    nodeIdFromCertificate: {uriPrefix: "spiffe:///envoy/"}\n`, ['grpc.tls.nodeIdFromCertificate.uriPrefix: must be an absolute URI with a host, ending in / (for example spiffe://nodes.example.org/envoy/)', '(no host)']],
  [`grpc:\n  tls:\n    ${MTLS}\n    nodeIdFromCertificate: {uriPrefix: "spiffe://nodes.example.org/envoy/?n=/"}\n`, ['grpc.tls.nodeIdFromCertificate.uriPrefix: must be an absolute URI with a host, ending in / (for example spiffe://nodes.example.org/envoy/), without query or fragment']],
  [`grpc:\n  tls:\n    ${MTLS}\n    nodeIdFromCertificate: {uriPrefix: "spiffe://Nodes.example.org/envoy/"}\n`, ['grpc.tls.nodeIdFromCertificate.uriPrefix: must be an absolute URI with a host, ending in / (for example spiffe://nodes.example.org/envoy/): write the scheme and host in lower case']],
  [`grpc:\n  tls:\n    ${MTLS}\n    nodeIdFromCertificate: {uriPrefix: "spiffe://nodes.example.org/en voy/"}\n`, ['grpc.tls.nodeIdFromCertificate.uriPrefix: must be an absolute URI with a host, ending in / (for example spiffe://nodes.example.org/envoy/), of at most 2048 printable ASCII characters']],
  [`grpc:\n  tls:\n    ${MTLS}\n    nodeIdFromCertificate: {uriPrefix: "spiffe://nodes.example.org/envoy/", idFrom: cn}\n`, ['grpc.tls.nodeIdFromCertificate.idFrom: unknown field']],
  // A prefix in the trust domain this node issues workload certificates for, or in a federated one.
  [`grpc:\n  tls:\n    ${MTLS}\n    nodeIdFromCertificate: {uriPrefix: "spiffe://example.org/envoy/"}\n`, ['grpc.tls.nodeIdFromCertificate.uriPrefix: its host "example.org" is this node\'s own trust domain, whose workload certificates would then name nodes; give node certificates a host of their own (for example nodes.example.org)']],
  [`federation:\n  - {trustDomain: partner.example, bundleFile: p.json}\ngrpc:\n  tls:\n    ${MTLS}\n    nodeIdFromCertificate: {uriPrefix: "wimse://partner.example/nodes/"}\n`, ['grpc.tls.nodeIdFromCertificate.uriPrefix: its host "partner.example" is a federated trust domain']],
  ['trustDomain: a\ntrustDomain: b\n', ['yaml: Map keys must be unique']],
  ['- a\n- b\n', ['(root): must be a mapping']],
  ['authn:\n  replayCacheSize: 1.5\n', ['authn.replayCacheSize: must be an integer']],
  ['keys:\n  prepareAt: 0\n  activateAt: 0.5\n', ['keys.prepareAt: must be greater than 0']],
  // Values the node cannot honour: Date and X.509 overflow, Node timer limits, seconds-only settings.
  ['keys:\n  ttl: 99999999999999d\n', ['keys.ttl: must be at most 36500d']],
  [`keys:\n  ttl: ${'9'.repeat(400)}d\n`, ['keys.ttl: must be at most 36500d', '(400 digits)']],
  ['keys:\n  rotationInterval: 30d\n', ['keys.rotationInterval: must be at most 24d']],
  ['cluster:\n  servers: [nats://n:4222]\n  activationTimeout: 30d\n', ['cluster.activationTimeout: must be at most 24d']],
  ['cluster:\n  servers: [nats://n:4222]\n  reconcileInterval: 25d\n', ['cluster.reconcileInterval: must be at most 24d']],
  ['credentials:\n  wicTtl: 1500ms\n', ['credentials.wicTtl: must be a whole number of seconds']],
  ['credentials:\n  witTtl: 99999999999999d\n', ['credentials.witTtl: must be at most 36500d']],
  ['authn:\n  maxWptLifetime: 2d\n', ['authn.maxWptLifetime: must be at most 1d']],
  ['authn:\n  maxSignatureWindow: 1500ms\n', ['authn.maxSignatureWindow: must be a whole number of seconds']],
  ['authn:\n  maxClockSkew: 500ms\n', ['authn.maxClockSkew: must be a whole number of seconds']],
  ['authn:\n  replayCacheSize: 1e300\n', ['authn.replayCacheSize: must be at most 10000000']],
  ['workloadApi:\n  replayCacheSize: 99\n', ['workloadApi.replayCacheSize: must be at least 100']],
  ['workloadApi:\n  replayCacheSize: 10000001\n', ['workloadApi.replayCacheSize: must be at most 10000000']],
  ['workloadApi:\n  replayCacheSize: 1.5\n', ['workloadApi.replayCacheSize: must be an integer']],
  // The key schedule: credentials, rotator ticks and the activation wait must fit the key's windows.
  ['keys:\n  ttl: 1h\n', ['credentials.wicTtl: must be at most 10m with keys.ttl 1h', 'credentials.witTtl: must be at most 10m with keys.ttl 1h']],
  ['keys:\n  ttl: 30h\n  activateAt: 0.9\ncredentials: {wicTtl: 4h}\n', ['credentials.wicTtl: must be at most 3h with keys.ttl 1d6h (keys.ttl × (1 − keys.activateAt): the least life an active signing key has left), or credentials are cut short; lower it, or raise keys.ttl to at least 1d16h']],
  ['keys:\n  ttl: 6s\ncredentials: {wicTtl: 1s, witTtl: 1s}\n', ['keys.rotationInterval: must be at most 500ms with keys.ttl 6s']],
  ['keys:\n  ttl: 60s\n  rotationInterval: 1s\ncredentials: {wicTtl: 10s, witTtl: 10s}\ncluster:\n  servers: [nats://n:4222]\n', ['cluster.activationTimeout: must be less than 9s with keys.ttl 1m']],
  // Listen addresses that cannot be bound.
  ['grpc:\n  listen: 999.1.1.1:8443\n', ['grpc.listen: 999.1.1.1 is not an IPv4 address']],
  ['grpc:\n  listen: 127.0.0.1:70000\n', ['grpc.listen: port 70000 is out of range (0-65535']],
  [`grpc:\n  listen: unix:/tmp/${'s'.repeat(120)}\n`, ['grpc.listen: the socket path is 125 bytes; at most 107']],
  ['admin:\n  listen: unix:/tmp/admin.sock\n', ['admin.listen: must be HOST:PORT']],
  // The message names the forms each field takes: grpc.listen also takes a Unix socket.
  ['grpc:\n  listen: localhost\n', ['grpc.listen: must be HOST:PORT (port 0 picks a free port) or unix:/path/to/socket']],
  ['admin:\n  listen: \'[::1]:99999\'\n', ['admin.listen: port 99999 is out of range']],
];

for (const [yaml, expected] of bad) {
  test(`config - rejects with field path: ${expected.join(' ')}`, (t) => {
    const r = parseConfig(yaml, '/srv');
    t.false(r.ok);
    if (r.ok) return;
    for (const e of expected.filter((x) => !x.startsWith('(')))
      t.true(r.errors.some((x) => x.startsWith(e)), `expected "${e}" in ${JSON.stringify(r.errors)}`);
  });
}

test('config - a compressed key schedule that the rotator can keep is accepted (SPIRE rotation suite: ca_ttl 1m, SVID 10s)', (t) => {
  const r = parseConfig('keys:\n  ttl: 1m\n  rotationInterval: 5s\ncredentials: {wicTtl: 10s, witTtl: 10s}\ncluster:\n  servers: [nats://n:4222]\n  activationTimeout: 4s\n', '/srv');
  t.true(r.ok, JSON.stringify(r));
});

test('config - the limits are inclusive: the largest accepted values pass', (t) => {
  const r = parseConfig(
    'keys:\n  ttl: 36500d\n  rotationInterval: 24d\ncredentials: {wicTtl: 6083d, witTtl: 6083d}\n' +
      'authn: {maxWptLifetime: 1d, maxSignatureWindow: 1d, maxClockSkew: 10m, replayCacheSize: 10000000, witCacheSize: 10000000}\n' +
      'workloadApi: {replayCacheSize: 10000000}\n' +
      "grpc:\n  listen: '[::1]:65535'\n",
    '/srv',
  );
  t.true(r.ok, JSON.stringify(r));
});

test('config - grpc.tls.nodeIdFromCertificate on a listener that requires client certificates', (t) => {
  const r = parseConfig(`grpc:\n  listen: 0.0.0.0:8443\n  tls:\n    ${MTLS}\n    nodeIdFromCertificate:\n      uriPrefix: spiffe://nodes.example.org/envoy/\n`, '/srv');
  t.true(r.ok, JSON.stringify(r));
  if (!r.ok) return;
  t.deepEqual(r.value.grpc.tls, {
    certFile: '/srv/a',
    keyFile: '/srv/b',
    clientCaFile: '/srv/c',
    requireClientCert: true,
    nodeIdFromCertificate: { uriPrefix: 'spiffe://nodes.example.org/envoy/' },
  });
  // Absent: certificates admit connections and name no node.
  const plain = parseConfig(`grpc:\n  tls:\n    ${MTLS}\n`, '/srv');
  t.true(plain.ok);
  if (plain.ok) t.is(plain.value.grpc.tls!.nodeIdFromCertificate, undefined);
});

test('config - every problem is reported, not just the first', (t) => {
  const r = checkConfig({ trustDomain: 'A', keys: { algorithm: 'x' }, bogus: 1 });
  t.false(r.ok);
  if (!r.ok) t.true(r.errors.length >= 3, JSON.stringify(r.errors));
});

test('config - durations', (t) => {
  t.is(parseDuration('500ms'), 500);
  t.is(parseDuration('1h30m'), 5_400_000);
  t.is(parseDuration('7d'), 604_800_000);
  t.is(parseDuration('10'), undefined);
  t.is(parseDuration('10s '), undefined);
  t.is(parseDuration('s'), undefined);
  t.is(formatDuration(14_390_000), '3h59m50s');
  t.is(parseDuration(formatDuration(90_061_001)), 90_061_001);
});

test('config - docs/config.md is generated from the schema and up to date', (t) => {
  const onDisk = readFileSync(new URL('../../docs/config.md', import.meta.url), 'utf8');
  t.is(onDisk, configReferenceMarkdown(), 'run `npm run docs:config`');
});
