/**
 * The demo's control plane: one real node (src/node.ts) in a temporary state directory, gRPC and
 * admin HTTP on free loopback ports, a registration entry per sidecar and a policy file that
 * grants exactly the three hops of the chain and nothing else.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/config.ts';
import { startNode, type RunningNode } from '../src/node.ts';
import { silentLogger } from '../src/log.ts';

export const TRUST_DOMAIN = 'example.org';

/** The four workloads: who they are, which Envoy node id fronts them, what audience names them. */
export const WORKLOADS = {
  A: { id: 'spiffe://example.org/ns/shop/sa/frontend', sidecar: 'sidecar-frontend', audience: 'https://frontend.shop.example.org' },
  B: { id: 'spiffe://example.org/ns/shop/sa/orders', sidecar: 'sidecar-orders', audience: 'https://orders.shop.example.org' },
  C: { id: 'spiffe://example.org/ns/shop/sa/inventory', sidecar: 'sidecar-inventory', audience: 'https://inventory.shop.example.org' },
  D: { id: 'spiffe://example.org/ns/shop/sa/ledger', sidecar: 'sidecar-ledger', audience: 'https://ledger.shop.example.org' },
} as const;

export type WorkloadName = keyof typeof WORKLOADS;

const { A, B, C, D } = WORKLOADS;

/** Exactly three grants: A -> B over mTLS, B -> C with a WPT, C -> D with an HTTP signature. */
export const POLICY = `version: 1
destinations:
  - workload: ${B.id}
    audiences: [${B.audience}]
    rules:
      - name: frontend-reads-orders
        paths: [{prefix: /orders/}]
        methods: [GET]
        callers: [${A.id}]
        authn: [mtls]
  - workload: ${C.id}
    audiences: [${C.audience}]
    rules:
      - name: orders-reads-stock
        paths: [{template: "/stock/{sku}"}]
        methods: [GET]
        callers: [${B.id}]
        authn: [wpt]
  - workload: ${D.id}
    audiences: [${D.audience}]
    rules:
      - name: inventory-writes-entries
        paths: [{exact: /entries}]
        methods: [POST]
        callers: [${C.id}]
        authn: [httpsig]
`;

function configYaml(): string {
  const entries = Object.values(WORKLOADS)
    .map((w) => `    - nodeId: ${w.sidecar}\n      workloads: [${w.id}]\n`)
    .join('');
  return `nodeName: demo-node
trustDomain: ${TRUST_DOMAIN}
stateDir: state
grpc:
  listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
policy:
  file: policy.yaml
sds:
  registrations:
${entries}`;
}

export interface DemoMesh {
  node: RunningNode;
  dir: string;
  /** A node token per sidecar node id (what `wimsectl token create` hands out). */
  tokens: Record<WorkloadName, string>;
  close(): Promise<void>;
}

/** Start the node; `policy` replaces the demo's policy document (to try another one against the chain). */
export async function startDemoMesh(opts: { policy?: string } = {}): Promise<DemoMesh> {
  const dir = await mkdtemp(join(tmpdir(), 'wimse-demo-'));
  try {
    await writeFile(join(dir, 'policy.yaml'), opts.policy ?? POLICY);
    const cfg = parseConfig(configYaml(), dir);
    if (!cfg.ok) throw new Error(`demo config: ${cfg.errors.join('; ')}`);
    const node = await startNode(cfg.value, { logger: silentLogger() });
    const tokens = {
      A: node.nodeTokens.issue(A.sidecar),
      B: node.nodeTokens.issue(B.sidecar),
      C: node.nodeTokens.issue(C.sidecar),
      D: node.nodeTokens.issue(D.sidecar),
    };
    return {
      node,
      dir,
      tokens,
      async close() {
        await node.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
