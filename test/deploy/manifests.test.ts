/**
 * deploy/kubernetes: every manifest as kubectl reads it, and what the files promise to each other
 * and to deploy/kubernetes/README.md.
 *
 * The manifests are parsed by kubectl itself (`kubectl label --local`: no cluster needed), whose
 * YAML is go-yaml in YAML 1.1 mode (sigs.k8s.io/yaml). The `yaml` package, even with
 * `version: '1.1'`, accepts constructs go-yaml refuses (a `?` inside a flow mapping) and reads
 * others differently (`0440` is octal 288 in YAML 1.1), so every property below is checked on
 * kubectl's own reading.
 */
import 'reflect-metadata';
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import * as x509 from '@peculiar/x509';
import YAML from 'yaml';
import { NatsBus } from '../../src/cluster/index.ts';
import { parseConfig, DEFAULT_GRPC_PORT, DEFAULT_ADMIN_PORT, type NodeConfig } from '../../src/config/config.ts';
import { validateBootstrap } from '../../src/envoy/validate-config.ts';
import { main as wimsectl } from '../../src/cli/wimsectl.ts';
import { eventually, policyRecord } from '../cluster/fixtures.ts';
import { makeNatsAuth } from '../helpers/nats-jwt.ts';
import { makeNatsPki } from '../helpers/nats-pki.ts';
import { freePort, NATS_SERVER_BIN, NatsServer } from '../helpers/nats-server.ts';
import { ROOT } from '../helpers/process.ts';

type Doc = Record<string, any>;
const KUBECTL = process.env.KUBECTL ?? 'kubectl';
const PARSED_LABEL = 'wimse.test/parsed';
const dir = join(ROOT, 'deploy/kubernetes');
const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
const readme = readFileSync(join(dir, 'README.md'), 'utf8');

/** kubectl's reading of a file: its objects as JSON, or its error. */
function kubectl(file: string): { docs: Doc[] } | { error: string } {
  const r = spawnSync(KUBECTL, ['label', '--local', '-o', 'json', '-f', file, `${PARSED_LABEL}=kubectl`], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`cannot run ${KUBECTL} (${r.error.message}): the test parses manifests with kubectl itself; set KUBECTL to its path`);
  if (r.status !== 0) return { error: r.stderr.trim() };
  // One pretty-printed JSON object per manifest, one after another.
  const docs: Doc[] = [];
  for (const chunk of r.stdout.split(/\n(?=\{\n)/)) {
    if (!chunk.trim()) continue;
    const d = JSON.parse(chunk) as Doc;
    delete d.metadata.labels[PARSED_LABEL];
    if (Object.keys(d.metadata.labels).length === 0) delete d.metadata.labels;
    docs.push(d);
  }
  return { docs };
}

const readings = new Map(files.map((f) => [f, kubectl(join(dir, f))]));
const docs: Doc[] = [...readings.values()].flatMap((r) => ('docs' in r ? r.docs : []));
const find = (kind: string, name: string): Doc => {
  const d = docs.find((x) => x.kind === kind && x.metadata?.name === name);
  if (!d) throw new Error(`${kind}/${name} missing`);
  return d;
};
const container = (d: Doc, name: string): Doc => d.spec.template.spec.containers.find((c: Doc) => c.name === name);
const workloads = (): Doc[] => docs.filter((d) => d.kind === 'StatefulSet' || d.kind === 'Deployment');

// Looked up when a test runs, so that a file kubectl refuses fails the parsing test with kubectl's message.
const parsedConfig = () => parseConfig(find('ConfigMap', 'wimse-server-config').data['node.yaml'], '/etc/wimse/config');
const nodeConfig = (): NodeConfig => {
  const parsed = parsedConfig();
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  return parsed.value;
};
const natsConfOf = (): string => find('ConfigMap', 'nats-config').data['nats.conf'];
const sampleEnvoyYamlOf = (): string => find('ConfigMap', 'orders-envoy').data['envoy.yaml'];

/** The ```sh block that follows `heading` in README.md. */
function readmeBlock(heading: string): string {
  const at = readme.indexOf(`${heading}\n`);
  if (at < 0) throw new Error(`README.md has no heading ${heading}`);
  const m = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!m) throw new Error(`README.md: no sh block after ${heading}`);
  return m[1]!;
}

/** `kubectl -n NS create secret generic|configmap NAME --from-file=KEY=FILE --from-literal=KEY=...` lines of README.md. */
interface Documented {
  readonly kind: 'Secret' | 'ConfigMap';
  readonly namespace: string;
  readonly name: string;
  readonly files: Map<string, string>;
  readonly literals: Set<string>;
}
const documented: Documented[] = [...readme.matchAll(/^kubectl -n (\S+) create (secret generic|configmap) (\S+)(.*)$/gm)].map((m) => {
  const files = new Map<string, string>();
  const literals = new Set<string>();
  for (const f of m[4]!.matchAll(/--from-file=([^=\s]+)=(\S+)/g)) files.set(f[1]!, f[2]!);
  for (const f of m[4]!.matchAll(/--from-literal=([^=\s]+)=/g)) literals.add(f[1]!);
  return { kind: m[2] === 'configmap' ? 'ConfigMap' : 'Secret', namespace: m[1]!, name: m[3]!, files, literals };
});

/** Is the key of this Secret/ConfigMap defined in the manifests or created by a documented command? */
function provided(kind: 'Secret' | 'ConfigMap', namespace: string, name: string, key?: string): string | undefined {
  const def = docs.find((d) => d.kind === kind && d.metadata.name === name && d.metadata.namespace === namespace);
  if (def) {
    const keys = Object.keys({ ...def.data, ...def.stringData, ...def.binaryData });
    return key === undefined || keys.includes(key) ? undefined : `${kind} ${namespace}/${name} is defined without key ${key}`;
  }
  const doc = documented.find((d) => d.kind === kind && d.name === name && d.namespace === namespace);
  if (!doc) return `${kind} ${namespace}/${name} is neither defined in deploy/kubernetes nor created by a command in its README.md`;
  return key === undefined || doc.files.has(key) || doc.literals.has(key) ? undefined : `the README's command for ${kind} ${namespace}/${name} does not create key ${key}`;
}

/** Where a file path inside a container comes from: the mount, the volume and the key. */
function sourceOf(w: Doc, containerName: string, path: string): { kind: 'Secret' | 'ConfigMap' | 'other'; name?: string; key?: string } {
  const c = container(w, containerName);
  const mount = (c.volumeMounts as Doc[]).filter((m) => path.startsWith(`${m.mountPath}/`)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  if (!mount) throw new Error(`${w.metadata.name}/${containerName}: ${path} is on no mounted volume`);
  const rel = path.slice(mount.mountPath.length + 1);
  const vol = (w.spec.template.spec.volumes as Doc[]).find((v) => v.name === mount.name)!;
  const pick = (items: Doc[] | undefined) => (items ? items.find((i) => i.path === rel)?.key : rel);
  if (vol.secret) return { kind: 'Secret', name: vol.secret.secretName, key: pick(vol.secret.items) };
  if (vol.configMap) return { kind: 'ConfigMap', name: vol.configMap.name, key: pick(vol.configMap.items) };
  return { kind: 'other' };
}

// ---- parsing -------------------------------------------------------------------------------

test('deploy - kubectl parses every manifest, and reads as many objects as the files hold', (t) => {
  t.deepEqual(files, ['control-plane.yaml', 'nats.yaml', 'sample-workload.yaml']);
  for (const f of files) {
    const r = readings.get(f)!;
    t.false('error' in r, `${f}: ${'error' in r ? r.error : ''}`);
    const count = YAML.parseAllDocuments(readFileSync(join(dir, f), 'utf8')).length;
    t.is('docs' in r ? r.docs.length : -1, count, f);
  }
  t.true(docs.length >= 14);
  for (const d of docs) {
    t.truthy(d.apiVersion, JSON.stringify(d).slice(0, 80));
    t.truthy(d.kind);
    t.truthy(d.metadata?.name);
  }
});

test('deploy - kubectl refuses an unquoted ? in a flow mapping (nats.yaml had one), which the yaml package accepts even in 1.1 mode', (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'wimse-kubectl-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const probe = (path: string) =>
    `apiVersion: v1\nkind: Pod\nmetadata: { name: p }\nspec:\n  containers:\n  - name: nats\n    image: nats\n    readinessProbe:\n      httpGet: { path: ${path}, port: 8222 }\n`;
  const bad = join(tmp, 'bad.yaml');
  writeFileSync(bad, probe('/healthz?js-enabled-only=true'));
  const r = kubectl(bad);
  t.true('error' in r);
  t.regex('error' in r ? r.error : '', /did not find expected ',' or '}'/);
  // What a YAML 1.2 (or the yaml package's 1.1) reading would have let through.
  for (const version of ['1.1', '1.2'] as const) t.deepEqual(YAML.parseDocument(readFileSync(bad, 'utf8'), { version, strict: true }).errors, []);
  const good = join(tmp, 'good.yaml');
  writeFileSync(good, probe('"/healthz?js-enabled-only=true"'));
  const g = kubectl(good);
  t.true('docs' in g);
  t.is('docs' in g ? g.docs[0]!.spec.containers[0].readinessProbe.httpGet.path : '', '/healthz?js-enabled-only=true');
});

test('deploy - file modes are read as YAML 1.1 octal, as kubectl does', (t) => {
  for (const w of workloads())
    for (const v of w.spec.template.spec.volumes as Doc[]) {
      const mode = v.secret?.defaultMode;
      if (mode !== undefined) t.is(mode, 0o440, `${w.metadata.name}/${v.name}`);
    }
});

// ---- the control plane ---------------------------------------------------------------------

test('deploy - the control-plane config is valid against the config schema', (t) => {
  const parsed = parsedConfig();
  t.true(parsed.ok, parsed.ok ? '' : parsed.errors.join('\n'));
});

test('deploy - three control-plane nodes run the server with the mounted config', (t) => {
  const ss = find('StatefulSet', 'wimse-server');
  t.is(ss.spec.replicas, 3);
  const c = container(ss, 'wimse-server');
  const i = c.args.indexOf('--config');
  t.true(i >= 0);
  const configPath: string = c.args[i + 1];
  const mount = c.volumeMounts.find((m: Doc) => configPath.startsWith(m.mountPath + '/'));
  t.truthy(mount, 'the --config path is on a mounted volume');
  const vol = ss.spec.template.spec.volumes.find((v: Doc) => v.name === mount.name);
  t.is(vol.configMap.name, 'wimse-server-config');
  t.true(vol.configMap.items.some((it: Doc) => `${mount.mountPath}/${it.path}` === configPath && it.key === 'node.yaml'));
  // The state directory is a persistent volume per node.
  t.true(c.volumeMounts.some((m: Doc) => m.mountPath === nodeConfig().stateDir));
  t.true(ss.spec.volumeClaimTemplates.some((v: Doc) => v.metadata.name === 'state'));
});

test('deploy - ports agree between config, containers, services, probes and the image', (t) => {
  const cfg = nodeConfig();
  const grpcPort = Number(cfg.grpc.listen.split(':').pop());
  const adminPort = Number(cfg.admin.listen.split(':').pop());
  t.is(grpcPort, DEFAULT_GRPC_PORT);
  t.is(adminPort, DEFAULT_ADMIN_PORT);
  const c = container(find('StatefulSet', 'wimse-server'), 'wimse-server');
  const port = (name: string) => c.ports.find((p: Doc) => p.name === name).containerPort;
  t.is(port('grpc'), grpcPort);
  t.is(port('admin'), adminPort);
  t.is(find('Service', 'wimse-server').spec.ports[0].port, grpcPort);
  const dockerfile = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');
  t.regex(dockerfile, new RegExp(`EXPOSE ${grpcPort} ${adminPort}`));
  t.regex(dockerfile, /ENTRYPOINT \["node", "bin\/wimse-server\.mjs"\]/);
  t.true(existsSync(join(ROOT, 'bin/wimse-server.mjs')));
});

test('deploy - probes: the control plane is live on /healthz and ready on /readyz; NATS on its monitoring /healthz', (t) => {
  const c = container(find('StatefulSet', 'wimse-server'), 'wimse-server');
  t.deepEqual(c.startupProbe.httpGet, { path: '/healthz', port: 'admin' });
  t.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'admin' });
  t.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'admin' });
  const n = container(find('StatefulSet', 'nats'), 'nats');
  const monitor = n.ports.find((p: Doc) => p.name === 'monitor').containerPort;
  t.regex(natsConfOf(), new RegExp(`^http: ${monitor}$`, 'm'));
  for (const p of [n.startupProbe, n.livenessProbe, n.readinessProbe]) {
    t.is(p.httpGet.port, 'monitor');
    t.regex(p.httpGet.path, /^\/healthz\?js-(enabled|server)-only=true$/);
  }
});

// ---- hardening -----------------------------------------------------------------------------

test('deploy - every pod runs non-root with numeric ids, no privilege escalation, no capabilities, a read-only root and RuntimeDefault seccomp', (t) => {
  const ws = workloads();
  t.deepEqual(ws.map((w) => w.metadata.name).sort(), ['nats', 'orders', 'wimse-server']);
  for (const w of ws) {
    const pod = w.spec.template.spec;
    const psc = pod.securityContext;
    t.false(pod.automountServiceAccountToken, w.metadata.name);
    t.true(psc.runAsNonRoot, w.metadata.name);
    for (const k of ['runAsUser', 'runAsGroup', 'fsGroup']) t.true(Number.isInteger(psc[k]) && psc[k] > 0, `${w.metadata.name} ${k}: ${psc[k]}`);
    t.deepEqual(psc.seccompProfile, { type: 'RuntimeDefault' });
    for (const c of pod.containers as Doc[]) {
      const sc = c.securityContext;
      const where = `${w.metadata.name}/${c.name}`;
      t.is(sc.allowPrivilegeEscalation, false, where);
      t.is(sc.readOnlyRootFilesystem, true, where);
      t.true(sc.runAsNonRoot, where);
      t.true(Number.isInteger(sc.runAsUser) && sc.runAsUser > 0, where);
      t.true(Number.isInteger(sc.runAsGroup) && sc.runAsGroup > 0, where);
      t.deepEqual(sc.capabilities, { drop: ['ALL'] }, where);
      t.deepEqual(sc.seccompProfile, { type: 'RuntimeDefault' }, where);
      for (const r of ['requests', 'limits']) for (const k of ['cpu', 'memory']) t.truthy(c.resources?.[r]?.[k], `${where} resources.${r}.${k}`);
    }
  }
  // The control-plane image's runtime user: `node` of node:20-bookworm-slim, uid and gid 1000.
  const cp = find('StatefulSet', 'wimse-server').spec.template.spec;
  t.is(cp.securityContext.runAsUser, 1000);
  t.is(container(find('StatefulSet', 'wimse-server'), 'wimse-server').securityContext.runAsUser, 1000);
});

test('deploy - a PodDisruptionBudget selects the control-plane pods and the NATS pods, and still lets one go', (t) => {
  const pdbs = docs.filter((d) => d.kind === 'PodDisruptionBudget');
  for (const name of ['wimse-server', 'nats']) {
    const ss = find('StatefulSet', name);
    const labels = ss.spec.template.metadata.labels as Record<string, string>;
    const matching = pdbs.filter(
      (p) => p.metadata.namespace === ss.metadata.namespace && Object.entries(p.spec.selector.matchLabels as Record<string, string>).every(([k, v]) => labels[k] === v),
    );
    t.is(matching.length, 1, name);
    const pdb = matching[0]!;
    t.is(pdb.apiVersion, 'policy/v1');
    // It selects only this workload's pods.
    for (const other of workloads().filter((w) => w !== ss && w.metadata.namespace === ss.metadata.namespace)) {
      const ol = other.spec.template.metadata.labels as Record<string, string>;
      t.false(Object.entries(pdb.spec.selector.matchLabels as Record<string, string>).every(([k, v]) => ol[k] === v), `${pdb.metadata.name} also selects ${other.metadata.name}`);
    }
    const allowed = pdb.spec.maxUnavailable ?? ss.spec.replicas - pdb.spec.minAvailable;
    t.is(allowed, 1, `${name}: one pod at a time may be disrupted (quorum of 3 kept, and a drain can proceed)`);
  }
});

test('deploy - anti-affinity spreads the control plane and NATS over Kubernetes nodes', (t) => {
  for (const name of ['wimse-server', 'nats']) {
    const ss = find('StatefulSet', name);
    const terms = ss.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution as Doc[];
    t.true(terms.some((x) => x.topologyKey === 'kubernetes.io/hostname' && Object.entries(x.labelSelector.matchLabels as Record<string, string>).every(([k, v]) => ss.spec.template.metadata.labels[k] === v)), name);
  }
});

// ---- Secrets, ConfigMaps and the files the programs read -----------------------------------

test('deploy - every Secret and ConfigMap a pod uses is defined in the manifests or created by a command in README.md', (t) => {
  t.true(documented.length >= 6);
  for (const w of workloads()) {
    const ns = w.metadata.namespace;
    const pod = w.spec.template.spec;
    for (const v of pod.volumes as Doc[]) {
      if (v.secret) for (const key of [undefined, ...(v.secret.items ?? []).map((i: Doc) => i.key)]) t.is(provided('Secret', ns, v.secret.secretName, key), undefined);
      if (v.configMap) for (const key of [undefined, ...(v.configMap.items ?? []).map((i: Doc) => i.key)]) t.is(provided('ConfigMap', ns, v.configMap.name, key), undefined);
      t.falsy(v.projected, 'projected volumes are not checked here');
    }
    for (const c of pod.containers as Doc[]) {
      for (const e of (c.env ?? []) as Doc[]) {
        if (e.valueFrom?.secretKeyRef) t.is(provided('Secret', ns, e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key), undefined);
        if (e.valueFrom?.configMapKeyRef) t.is(provided('ConfigMap', ns, e.valueFrom.configMapKeyRef.name, e.valueFrom.configMapKeyRef.key), undefined);
      }
      t.falsy(c.envFrom);
    }
  }
  // The README's Secrets are not also defined (an apply would overwrite the real ones).
  for (const d of documented) t.false(docs.some((x) => x.kind === d.kind && x.metadata.name === d.name && x.metadata.namespace === d.namespace), d.name);
  t.false(docs.some((d) => d.kind === 'Secret'), 'no Secret with a placeholder value is applied over a real one');
});

test('deploy - every file the programs read is on a volume that provides it', (t) => {
  const cfg = nodeConfig();
  const cpPaths = [cfg.grpc.tls!.certFile, cfg.grpc.tls!.keyFile, cfg.admin.tokenFile!, cfg.policy.file!, cfg.cluster!.credsFile!, cfg.cluster!.tlsCaFile!];
  const natsPaths = [...natsConfOf().matchAll(/^\s*(?:cert_file|key_file|ca_file): (\S+)$/gm)].map((m) => m[1]!);
  const include = /^include (\S+)$/m.exec(natsConfOf())![1]!;
  const natsArgs = container(find('StatefulSet', 'nats'), 'nats').args as string[];
  const natsConfPath = natsArgs[natsArgs.indexOf('-c') + 1]!;
  natsPaths.push(posix.join(posix.dirname(natsConfPath), include), natsConfPath);
  const envoy = YAML.parse(sampleEnvoyYamlOf()) as Doc;
  const cpCluster = envoy.static_resources.clusters.find((c: Doc) => c.name === 'control_plane');
  const envoyArgs = (container(find('Deployment', 'orders'), 'envoy').args as string[]).join(' ');
  const envoyPaths = [cpCluster.transport_socket.typed_config.common_tls_context.validation_context.trusted_ca.filename, ...[...envoyArgs.matchAll(/(\/etc\/\S+?)[)"\s]/g)].map((m) => m[1]!)];
  t.true(envoyPaths.includes('/etc/wimse/token/token') && envoyPaths.includes('/etc/envoy/envoy.yaml'));
  const checks: [Doc, string, string[]][] = [
    [find('StatefulSet', 'wimse-server'), 'wimse-server', cpPaths],
    [find('StatefulSet', 'nats'), 'nats', natsPaths],
    [find('Deployment', 'orders'), 'envoy', envoyPaths],
  ];
  for (const [w, c, paths] of checks)
    for (const p of paths) {
      const s = sourceOf(w, c, p);
      t.not(s.kind, 'other', `${c}: ${p}`);
      t.truthy(s.key, `${c}: ${p} is not among the volume's items`);
      if (s.kind !== 'other') t.is(provided(s.kind, w.metadata.namespace, s.name!, s.key), undefined, `${c}: ${p}`);
    }
});

// ---- names and certificates ----------------------------------------------------------------

/** Runs README.md's certificate commands in a fresh directory. */
function readmeCertificates(t: { teardown(fn: () => void): void }): string {
  const tmp = mkdtempSync(join(tmpdir(), 'wimse-deploy-certs-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  execFileSync('bash', ['-euo', 'pipefail', '-c', readmeBlock('### Certificates')], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
  return tmp;
}
const sans = (pem: string): string[] => {
  const ext = new x509.X509Certificate(pem).getExtension(x509.SubjectAlternativeNameExtension);
  return (ext?.names.toJSON() ?? []).map((n) => `${n.type}:${n.value}`);
};
const ekus = (pem: string): string[] => Array.from(new x509.X509Certificate(pem).getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? [], String);
const hostOf = (url: string): string => new URL(url.replace(/^tls:/, 'https:').replace(/^nats:/, 'http:')).hostname;

test('deploy - the sidecar dials the Service name, sends it as SNI, and accepts exactly that SAN, which the documented certificate carries', (t) => {
  const svc = find('Service', 'wimse-server');
  const serviceName = `${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local`;
  const envoy = YAML.parse(sampleEnvoyYamlOf()) as Doc;
  const cp = envoy.static_resources.clusters.find((c: Doc) => c.name === 'control_plane');
  const addr = cp.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
  t.is(addr.address, serviceName);
  t.is(addr.port_value, svc.spec.ports[0].port);
  t.is(cp.type, 'STRICT_DNS');
  const tls = cp.transport_socket.typed_config;
  t.is(tls.sni, serviceName);
  t.deepEqual(tls.common_tls_context.validation_context.match_typed_subject_alt_names, [{ san_type: 'DNS', matcher: { exact: serviceName } }]);

  const certs = readmeCertificates(t);
  const serverPem = readFileSync(join(certs, 'wimse-server.crt'), 'utf8');
  t.true(sans(serverPem).includes(`dns:${serviceName}`), sans(serverPem).join(','));
  t.deepEqual(ekus(serverPem), [x509.ExtendedKeyUsage.serverAuth]);
  // The key names the README stores it under are the ones node.yaml reads.
  const secret = documented.find((d) => d.name === 'wimse-server-tls')!;
  t.is(secret.files.get('tls.crt'), 'wimse-server.crt');
  t.is(secret.files.get('tls.key'), 'wimse-server.key');
  execFileSync('openssl', ['verify', '-CAfile', join(certs, 'ca.crt'), join(certs, 'wimse-server.crt')], { stdio: 'pipe' });
});

test('deploy - the NATS certificate names every server the nodes and the routes dial, for both TLS directions', (t) => {
  const certs = readmeCertificates(t);
  const pem = readFileSync(join(certs, 'nats.crt'), 'utf8');
  const names = sans(pem);
  const routes = [...natsConfOf().matchAll(/nats:\/\/(\S+):6222/g)].map((m) => m[1]!);
  t.is(routes.length, 3);
  for (const h of [...routes, ...nodeConfig().cluster!.servers.map(hostOf)]) t.true(names.includes(`dns:${h}`), h);
  t.deepEqual(ekus(pem).sort(), [x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth].sort());
  execFileSync('openssl', ['verify', '-CAfile', join(certs, 'ca.crt'), join(certs, 'nats.crt')], { stdio: 'pipe' });
});

// ---- NATS ----------------------------------------------------------------------------------

test('deploy - NATS is a 3-server JetStream cluster and the nodes name all three over TLS with credentials', (t) => {
  const ss = find('StatefulSet', 'nats');
  t.is(ss.spec.replicas, 3);
  t.regex(natsConfOf(), /jetstream \{/);
  const routes = [...natsConfOf().matchAll(/nats:\/\/(nats-\d)\.nats\.wimse-system\.svc\.cluster\.local:6222/g)].map((m) => m[1]);
  t.deepEqual(routes, ['nats-0', 'nats-1', 'nats-2']);
  const cluster = nodeConfig().cluster!;
  t.deepEqual(cluster.servers, routes.map((r) => `tls://${r}.nats.wimse-system.svc.cluster.local:4222`));
  t.truthy(cluster.credsFile);
  t.truthy(cluster.tlsCaFile);
  t.is(cluster.replicas, 3);
});

/** The account's JetStream reservations from the README's `nsc edit account`, and the server's limits from nats.conf. */
function jetStreamLimits(): { account: { memStorage: number; diskStorage: number }; server: { memStorage: number; diskStorage: number } } {
  const size = (v: string) => Number(v.slice(0, -1)) * { M: 1 << 20, G: 1 << 30 }[v.slice(-1) as 'M' | 'G'];
  const nsc = /--js-mem-storage (\d+[MG]) --js-disk-storage (\d+[MG])/.exec(readmeBlock('### NATS accounts (operator mode)'))!;
  return {
    account: { memStorage: size(nsc[1]!), diskStorage: size(nsc[2]!) },
    server: { memStorage: size(/max_memory_store: (\d+[MG])/.exec(natsConfOf())![1]!), diskStorage: size(/max_file_store: (\d+[MG])/.exec(natsConfOf())![1]!) },
  };
}

test('deploy - the NATS server JetStream limits hold the WIMSE account reservation (NATS refuses JetStream to an account that does not fit)', (t) => {
  const { account, server } = jetStreamLimits();
  t.true(account.memStorage < server.memStorage);
  t.true(account.diskStorage < server.diskStorage);
  const pvc = find('StatefulSet', 'nats').spec.volumeClaimTemplates[0].spec.resources.requests.storage as string;
  t.true(server.diskStorage < Number(/^(\d+)Gi$/.exec(pvc)![1]) * (1 << 30), 'the file store fits its volume');
});

/** The NATS volumes laid out under `root` as the pod sees them under /etc/nats and /data. */
function natsLayout(root: string, tls: { cert: string; key: string; ca: string }, resolverConf: string, conf: string): string {
  for (const d of ['config', 'auth', 'tls', 'data']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'tls/tls.crt'), readFileSync(tls.cert));
  writeFileSync(join(root, 'tls/tls.key'), readFileSync(tls.key));
  writeFileSync(join(root, 'tls/ca.crt'), readFileSync(tls.ca));
  writeFileSync(join(root, 'auth/resolver.conf'), resolverConf);
  const path = join(root, 'config/nats.conf');
  const local = conf.replaceAll('/etc/nats/', `${root}/`).replace(/^(\s*store_dir:) \/data$/m, `$1 ${root}/data`);
  if (/\s\/(etc|data)\b/.test(local)) throw new Error(`nats.conf names a path outside the volumes laid out here:\n${local}`);
  writeFileSync(path, local);
  return path;
}

test('deploy - nats-server accepts the whole nats.conf with the README certificates and an nsc-style resolver include', (t) => {
  const certs = readmeCertificates(t);
  const tls = documented.find((d) => d.name === 'nats-server-tls')!;
  const root = mkdtempSync(join(tmpdir(), 'wimse-deploy-nats-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const path = natsLayout(root, { cert: join(certs, tls.files.get('tls.crt')!), key: join(certs, tls.files.get('tls.key')!), ca: join(certs, tls.files.get('ca.crt')!) }, makeNatsAuth(jetStreamLimits().account).resolverConf, natsConfOf());
  const r = spawnSync(NATS_SERVER_BIN, ['-t', '-c', path], { encoding: 'utf8', env: { ...process.env, SERVER_NAME: 'nats-0' }, timeout: 30_000 });
  t.is(r.status, 0, r.stderr + r.stdout);
  t.regex(r.stderr + r.stdout, /is valid/);
});

test('deploy - a control-plane node with the .creds and the CA joins the NATS of nats.conf; without valid credentials nobody does', async (t) => {
  t.timeout(90_000);
  const root = mkdtempSync(join(tmpdir(), 'wimse-deploy-nats-live-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const pki = await makeNatsPki(root);
  const auth = makeNatsAuth(jetStreamLimits().account);
  // One server here: the cluster block names the Kubernetes peers (checked by nats-server -t above).
  const single = natsConfOf().replace(/^cluster \{[\s\S]*?\n\}\n/m, '');
  t.notRegex(single, /routes/);
  const confPath = natsLayout(join(root, 'nats'), { cert: pki.certFile, key: pki.keyFile, ca: pki.caFile }, auth.resolverConf, single);
  // nats.conf as it is; only the listen address and ports are set on the command line (loopback, free ports).
  process.env.SERVER_NAME = 'nats-0';
  const server = new (class extends NatsServer {
    override args(): string[] {
      return ['-c', confPath, '-a', '127.0.0.1', '-p', String(this.spec.port), '-m', String(this.spec.monitorPort)];
    }
  })({ name: 'nats-0', port: await freePort(), monitorPort: await freePort(), storeDir: join(root, 'nats/data') });
  t.teardown(() => server.kill());
  await server.start({ timeoutMs: 30_000 });
  const url = `tls://127.0.0.1:${server.spec.port}`;
  const secrets = join(root, 'secrets');
  mkdirSync(secrets);
  const write = (name: string, text: string) => {
    const p = join(secrets, name);
    writeFileSync(p, text, { mode: 0o600 });
    return p;
  };
  const creds = write('nats.creds', auth.creds);
  const foreign = write('foreign.creds', auth.foreignCreds);
  const mk = (nodeName: string, credsFile: string | undefined, startTimeoutMs: number) =>
    new NatsBus({ servers: [url], trustDomain: 'deploy.example.org', nodeName, tlsCaFile: pki.caFile, ...(credsFile ? { credsFile } : {}), startTimeoutMs, reconnectWaitMs: 200 });
  const a = mk('wimse-server-0', creds, 30_000);
  const b = mk('wimse-server-1', creds, 30_000);
  const anonymous = mk('anonymous', undefined, 1_000);
  const stranger = mk('stranger', foreign, 1_000);
  for (const x of [a, b, anonymous, stranger]) t.teardown(() => x.close());
  await Promise.all([a.start(), b.start(), anonymous.start(), stranger.start()]);
  t.true(a.connected && b.connected, server.log);
  t.false(anonymous.connected);
  t.false(stranger.connected);
  await a.put('policy', 'current', policyRecord('deployed'));
  await eventually('the second node reads what the first wrote', () => b.get('policy', 'current') !== undefined, 20_000);
  t.is(b.get('policy', 'current')?.record.version, 'deployed');
  t.false(anonymous.connected || stranger.connected);
  t.regex(server.log, /authentication error/);
});

// ---- the sample workload -------------------------------------------------------------------

test('deploy - the sample sidecar bootstrap is a valid Envoy config wired to this control plane', (t) => {
  const bootstrap = YAML.parse(sampleEnvoyYamlOf(), { merge: true }) as Doc;
  const v = validateBootstrap(bootstrap);
  t.true(v.ok, v.ok ? '' : v.errors.join('\n'));
  const cp = bootstrap.static_resources.clusters.find((c: Doc) => c.name === 'control_plane');
  const addr = cp.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
  t.is(addr.port_value, DEFAULT_GRPC_PORT);
  t.is(addr.address, 'wimse-server.wimse-system.svc.cluster.local');
  // The sidecar's node id has a registration entry for the workload its routes name.
  const reg = nodeConfig().sds.registrations.find((r) => r.nodeId === bootstrap.node.id);
  t.truthy(reg, 'a registration entry exists for the sidecar node id');
  t.true(sampleEnvoyYamlOf().includes(`destination_workload: ${reg!.workloads[0]}`));
  // The token placeholder is what the container substitutes.
  const args = (container(find('Deployment', 'orders'), 'envoy').args as string[]).join(' ');
  const placeholder = /s\|([^|]+)\|/.exec(args)![1]!;
  t.true(sampleEnvoyYamlOf().includes(`Bearer ${placeholder}`));
});

test('deploy - the sample sidecar bootstrap is what the README`s wimsectl envoy bootstrap command prints', async (t) => {
  const argv = readmeBlock("## The sample sidecar's bootstrap").replace(/\\\n/g, ' ').trim().split(/\s+/);
  t.is(argv.shift(), 'wimsectl');
  let out = '';
  let err = '';
  const code = await wimsectl(argv, { stdout: (s) => void (out += s), stderr: (s) => void (err += s), readStdin: () => '', env: {} });
  t.is(code, 0, err);
  t.deepEqual(YAML.parse(out), YAML.parse(sampleEnvoyYamlOf()));
});

test('deploy - the README`s files exist where it says', (t) => {
  t.true(existsSync(join(dirname(dir), 'Dockerfile')));
  for (const f of files) t.true(readme.includes(`\`${f}\``), f);
});
