/** One SDS server on loopback over a real-crypto test source, with Envoys made on demand. */
import type { ExecutionContext } from 'ava';
import { ManualClock } from '../../../src/identity/clock.ts';
import { NodeTokenStore } from '../../../src/identity/node-tokens.ts';
import type { SdsServerOptions } from '../../../src/envoy/sds.ts';
import { TestSecretSource } from './test-source.ts';
import { FakeEnvoy, startSds, type Harness } from './fake-envoy.ts';

export const ORDERS = 'spiffe://example.org/ns/shop/sa/orders';
export const ORDERS_ADMIN = 'spiffe://example.org/ns/shop/sa/orders-admin';
export const FRONTEND = 'spiffe://example.org/ns/shop/sa/frontend';
export const HOUR = 3_600_000;

export interface FixtureOptions extends Partial<Omit<SdsServerOptions, 'source' | 'clock' | 'auth'>> {
  readonly registrations?: Record<string, string[]>;
  readonly leafLifetimeMs?: number;
}

export interface Fixture {
  readonly clock: ManualClock;
  readonly source: TestSecretSource;
  readonly tokens: NodeTokenStore;
  readonly h: Harness;
  /** An Envoy for `nodeId` with a freshly issued token (or the given one; '' for none). */
  envoy(nodeId?: string, token?: string): FakeEnvoy;
}

export async function sdsFixture(t: ExecutionContext, o: FixtureOptions = {}): Promise<Fixture> {
  const clock = new ManualClock(Date.now());
  const source = await TestSecretSource.create({
    trustDomain: 'example.org',
    clock,
    registrations: o.registrations ?? { 'sidecar-orders-0': [ORDERS, ORDERS_ADMIN], 'sidecar-frontend-0': [FRONTEND] },
    leafLifetimeMs: o.leafLifetimeMs ?? HOUR,
  });
  const tokens = new NodeTokenStore([], { now: () => clock.now() });
  const { registrations: _r, leafLifetimeMs: _l, ...serverOptions } = o;
  const h = await startSds({ ...serverOptions, source, clock, auth: { tokens } });
  const clients: FakeEnvoy[] = [];
  t.teardown(async () => {
    clients.forEach((c) => c.close());
    await h.close();
  });
  const envoy = (nodeId = 'sidecar-orders-0', token?: string): FakeEnvoy => {
    const tok = token ?? tokens.issue(nodeId);
    const e = new FakeEnvoy(h.address, { nodeId, ...(tok ? { token: tok } : {}) });
    clients.push(e);
    return e;
  };
  return { clock, source, tokens, h, envoy };
}
