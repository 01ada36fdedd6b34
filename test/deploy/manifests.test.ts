import test from 'ava';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { parseConfig, DEFAULT_GRPC_PORT, DEFAULT_ADMIN_PORT, type NodeConfig } from '../../src/config/config.ts';
import { validateBootstrap } from '../../src/envoy/validate-config.ts';
import { ROOT } from '../helpers/process.ts';

type Doc = Record<string, any>;
const dir = join(ROOT, 'deploy/kubernetes');
const docs: Doc[] = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => YAML.parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS() as Doc));
const find = (kind: string, name: string): Doc => {
  const d = docs.find((x) => x.kind === kind && x.metadata?.name === name);
  if (!d) throw new Error(`${kind}/${name} missing`);
  return d;
};
const container = (d: Doc, name: string): Doc => d.spec.template.spec.containers.find((c: Doc) => c.name === name);

const cm = find('ConfigMap', 'wimse-server-config');
const parsed = parseConfig(cm.data['node.yaml'], '/etc/wimse/config');
const nodeConfig = (): NodeConfig => {
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  return parsed.value;
};

test('deploy - every manifest has apiVersion, kind and a name', (t) => {
  t.true(docs.length >= 10);
  for (const d of docs) {
    t.truthy(d.apiVersion, JSON.stringify(d).slice(0, 80));
    t.truthy(d.kind);
    t.truthy(d.metadata?.name);
  }
});

test('deploy - the control-plane config is valid against the config schema', (t) => {
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
  t.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'admin' });
  t.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'admin' });
  t.is(find('Service', 'wimse-server').spec.ports[0].port, grpcPort);
  const dockerfile = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');
  t.regex(dockerfile, new RegExp(`EXPOSE ${grpcPort} ${adminPort}`));
  t.regex(dockerfile, /ENTRYPOINT \["node", "bin\/wimse-server\.mjs"\]/);
  t.true(existsSync(join(ROOT, 'bin/wimse-server.mjs')));
});

test('deploy - NATS is a 3-server JetStream cluster and the nodes name all three', (t) => {
  const ss = find('StatefulSet', 'nats');
  t.is(ss.spec.replicas, 3);
  const conf: string = find('ConfigMap', 'nats-config').data['nats.conf'];
  t.regex(conf, /jetstream \{/);
  const routes = [...conf.matchAll(/nats:\/\/(nats-\d)\.nats\.wimse-system\.svc\.cluster\.local:6222/g)].map((m) => m[1]);
  t.deepEqual(routes, ['nats-0', 'nats-1', 'nats-2']);
  const servers = nodeConfig().cluster!.servers;
  t.deepEqual(servers, routes.map((r) => `nats://${r}.nats.wimse-system.svc.cluster.local:4222`));
});

test('deploy - the sample sidecar bootstrap is a valid Envoy config wired to this control plane', (t) => {
  const envoyYaml: string = find('ConfigMap', 'orders-envoy').data['envoy.yaml'];
  const bootstrap = YAML.parse(envoyYaml, { merge: true }) as Doc;
  const v = validateBootstrap(bootstrap);
  t.true(v.ok, v.ok ? '' : v.errors.join('\n'));
  const cp = bootstrap.static_resources.clusters.find((c: Doc) => c.name === 'control_plane');
  const addr = cp.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
  t.is(addr.port_value, DEFAULT_GRPC_PORT);
  t.is(addr.address, 'wimse-server.wimse-system.svc.cluster.local');
  // The sidecar's node id has a registration entry for the workload its routes name.
  const reg = nodeConfig().sds.registrations.find((r) => r.nodeId === bootstrap.node.id);
  t.truthy(reg, 'a registration entry exists for the sidecar node id');
  t.true(envoyYaml.includes(`destination_workload: ${reg!.workloads[0]}`));
});
