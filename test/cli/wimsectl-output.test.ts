import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import YAML from 'yaml';
import { join } from 'node:path';
import { startAdminNode, newDir, writeFile, POLICY, type AdminNode } from '../admin/helpers.ts';
import { main } from '../../src/cli/wimsectl.ts';

/** wimsectl's main() in this process against `n` (the child-process path is covered by the other CLI tests). */
const inProcess =
  (n: AdminNode) =>
  async (args: string[], stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> => {
    let stdout = '';
    let stderr = '';
    const io = { stdout: (t: string) => void (stdout += t), stderr: (t: string) => void (stderr += t), readStdin: () => stdin, env: {} };
    const code = await main(['--server', n.node.grpcAddress, '--token-file', join(n.node.config.stateDir, 'admin-token'), ...args], io);
    return { code, stdout, stderr };
  };

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const TIME_KEY = /At$|^notBefore$|^notAfter$/;

/** Every key camelCase, every time an RFC 3339 string (or null: never); returns the problems. */
function problems(v: unknown, path = '$'): string[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => problems(x, `${path}[${i}]`));
  if (typeof v !== 'object' || v === null) return [];
  return Object.entries(v).flatMap(([k, x]) => [
    ...(/^[a-z][A-Za-z0-9]*$/.test(k) ? [] : [`${path}.${k}: not camelCase`]),
    ...(TIME_KEY.test(k) && !(x === null || (typeof x === 'string' && RFC3339.test(x))) ? [`${path}.${k}: ${JSON.stringify(x)} is not RFC 3339`] : []),
    ...problems(x, `${path}.${k}`),
  ]);
}

test('wimsectl -o json|yaml - every command prints camelCase keys and RFC 3339 times, the same document in JSON and YAML', async (t) => {
  const n = await startAdminNode(t, newDir(), 'sds:\n  registrations:\n    - {nodeId: from-config, workloads: [wimse://example.org/svc/config]}\n');
  const partner = await startAdminNode(t, newDir(), 'trustDomain: partner.example\n');
  const w = inProcess(n);
  const partnerBundle = writeFile(n.dir, 'partner.json', (await inProcess(partner)(['bundle', 'export', '--trust-domain', 'partner.example'])).stdout);
  const policy = writeFile(n.dir, 'policy.yaml', POLICY);
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = writeFile(n.dir, 'key.jwk', JSON.stringify({ ...(publicKey.export({ format: 'jwk' }) as object), alg: 'ES256' }));
  const x509 = () => n.node.ca.keys().find((k) => k.kind === 'x509' && k.status === 'active')!.kid;
  const REQ = ['--from', 'wimse://example.org/svc/frontend', '--to', 'wimse://example.org/svc/orders', '--method', 'GET', '--path', '/orders/1'];
  // In order: later commands act on what earlier ones made. The JSON run first, then YAML (an
  // idempotent repeat, or a second object of the same kind).
  const commands: Array<{ args: string[]; yamlArgs?: string[]; times?: string[] }> = [
    { args: ['entry', 'create', '--node-id', 'sidecar-a', '--workload', 'wimse://example.org/svc/a', '--dns', 'a.example.org'], yamlArgs: ['entry', 'create', '--node-id', 'sidecar-y', '--workload', 'wimse://example.org/svc/y', '--dns', 'y.example.org'] },
    { args: ['entry', 'update', 'sidecar-a', '--workload', 'wimse://example.org/svc/b'] },
    { args: ['entry', 'list'] },
    { args: ['entry', 'show', 'sidecar-a'] },
    { args: ['token', 'create', '--node-id', 'sidecar-a', '--ttl', '1h'], times: ['expiresAt'] },
    { args: ['token', 'create', '--node-id', 'sidecar-b'] },
    { args: ['token', 'list'], times: ['expiresAt'] },
    { args: ['token', 'revoke', '--node-id', 'sidecar-b'] },
    { args: ['bundle', 'show'], times: ['notAfter'] },
    { args: ['bundle', 'status'] },
    { args: ['authority', 'show'], times: ['notBefore', 'notAfter', 'activatedAt'] },
    { args: ['authority', 'prepare', '--kind', 'wit'], times: ['notBefore', 'notAfter'] },
    { args: ['federation', 'add', '--trust-domain', 'partner.example', '--bundle', partnerBundle] },
    { args: ['federation', 'list'] },
    { args: ['mint', 'wit', '--id', 'wimse://example.org/svc/debug', '--public-key', jwk, '--ttl', '5m'], times: ['issuedAt', 'expiresAt'] },
    { args: ['mint', 'cert', '--id', 'wimse://example.org/svc/debug'], times: ['notBefore', 'notAfter'] },
    { args: ['policy', 'apply', policy] },
    { args: ['policy', 'show'] },
    { args: ['policy', 'test', ...REQ] },
    { args: ['policy', 'test', ...REQ, '--file', policy] },
    { args: ['cluster', 'nodes'], times: ['lastHeartbeatAt'] },
    { args: ['envoy', 'bootstrap', '--node-id', 'sidecar-a', '--workload', 'wimse://example.org/svc/b', '--audience', 'https://b.example.org', '--out', join(n.dir, 'envoy.yaml')] },
  ];
  const seen = new Set<string>();
  for (const c of commands) {
    const asJson = await w([...c.args, '-o', 'json']);
    const asYaml = await w(['-o', 'yaml', ...(c.yamlArgs ?? c.args)]);
    const name = c.args.slice(0, 2).join(' ');
    t.is(asJson.code, 0, `${name}: ${asJson.stderr}`);
    t.is(asYaml.code, 0, `${name}: ${asYaml.stderr}`);
    const doc = JSON.parse(asJson.stdout) as unknown;
    const fromYaml = YAML.parse(asYaml.stdout) as unknown;
    t.deepEqual(problems(doc), [], name);
    t.deepEqual(problems(fromYaml), [], name);
    // The same shape in both (values differ where each run made its own object).
    t.deepEqual(shape(fromYaml), shape(doc), name);
    for (const k of c.times ?? []) t.true(containsTime(doc, k), `${name}: ${k} is an RFC 3339 time`);
    seen.add(name);
  }
  const deterministic = await Promise.all([w(['entry', 'list', '-o', 'json']), w(['entry', 'list', '-o', 'yaml'])]);
  t.deepEqual(YAML.parse(deterministic[1].stdout), JSON.parse(deterministic[0].stdout));
  // Tables stay the default, and the times in them are the same RFC 3339 strings.
  const table = await w(['token', 'list']);
  t.regex(table.stdout, /sidecar-a\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+no/);
  t.regex(table.stdout, /sidecar-b\s+never\s+yes/);
  // The documents `bundle export` prints are the files themselves, whatever -o says.
  const exported = await Promise.all([w(['bundle', 'export']), w(['bundle', 'export', '-o', 'yaml'])]);
  t.is(exported[1].stdout, exported[0].stdout);
  t.true(seen.size >= 20);
  t.is((await w(['federation', 'remove', 'partner.example', '-o', 'yaml'])).stdout, 'removed:\n  trustDomain: partner.example\n');
  t.is((await w(['entry', 'delete', 'sidecar-a', '-o', 'json'])).stdout, '{\n  "deleted": {\n    "nodeId": "sidecar-a"\n  }\n}\n');
  // authn check: one JSON line by default; -o yaml prints the same result as YAML.
  const bundleMap = writeFile(n.dir, 'map.json', (await w(['bundle', 'export'])).stdout);
  const req = JSON.stringify({ method: 'GET', url: 'https://orders.example.org/orders/1', headers: [['host', 'orders.example.org']] });
  const line = await w(['authn', 'check', '--bundle', bundleMap], req);
  const yaml = await w(['authn', 'check', '--bundle', bundleMap, '-o', 'yaml'], req);
  t.is(line.code, 1);
  t.is(yaml.code, 1);
  t.deepEqual(YAML.parse(yaml.stdout), JSON.parse(line.stdout));
});

/** Keys and value types, not values. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.length ? [shape(v[0])] : [];
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)]).sort());
  return v === null ? 'null' : typeof v;
}

function containsTime(v: unknown, key: string): boolean {
  if (Array.isArray(v)) return v.some((x) => containsTime(x, key));
  if (typeof v !== 'object' || v === null) return false;
  return Object.entries(v).some(([k, x]) => (k === key && typeof x === 'string' && RFC3339.test(x)) || containsTime(x, key));
}
