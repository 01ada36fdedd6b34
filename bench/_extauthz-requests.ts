/**
 * The CheckRequests the ext_authz benchmarks send, built as Envoy fills them
 * (test/helpers/envoy-pep.ts): mTLS only, WIT + a fresh WPT, or WIT + a fresh HTTP signature
 * over a JSON body.
 */
import type { generateKeyPairSync } from 'node:crypto';
import { createWpt } from '../src/authn/wpt.ts';
import { signWimseRequest } from '../src/authn/httpsig/index.ts';
import { systemClock } from '../src/identity/clock.ts';
import { envoyCheckRequest } from '../test/helpers/envoy-pep.ts';

export type Kind = 'mtls' | 'wpt' | 'httpsig';

export const DEST = 'spiffe://example.org/ns/shop/sa/orders';
export const AUD = 'https://orders.shop.example.org';
export const EXT = { destination_workload: DEST, audience: AUD };

/** The route policy the benchmark node serves: every bench workload may call the destination. */
export const BENCH_POLICY = `version: 1
destinations:
  - workload: ${DEST}
    audiences: [${AUD}]
    rules:
      - name: bench
        paths: [{prefix: /orders/}]
        methods: [GET, POST]
        callers: [{prefix: spiffe://example.org/ns/bench/}]
        authn: [any]
`;

export interface Workload {
  sub: string;
  privateKey: ReturnType<typeof generateKeyPairSync>['privateKey'];
  wit: string;
  certPem: string;
}

const BASE: Array<[string, string]> = [['Host', 'orders.shop.example.org'], ['User-Agent', 'bench/1'], ['Accept', 'application/json']];
const BODY = Buffer.from(JSON.stringify({ sku: 'sku-42', quantity: 3, note: 'benchmark order line' }));

/** Request `i` of a kind, for workload `i mod n`; proofs live `lifetimeSec`. */
export function checkRequestFor(workloads: readonly Workload[], kind: Kind, i: number, lifetimeSec: number): Record<string, unknown> {
  const w = workloads[i % workloads.length]!;
  const path = `/orders/${i}`;
  if (kind === 'mtls')
    return envoyCheckRequest({ method: 'GET', path, headers: BASE, source: { address: '10.0.0.2', port: 40000 + (i % 1000), principal: w.sub, certificatePem: w.certPem }, contextExtensions: EXT });
  if (kind === 'wpt') {
    const wpt = createWpt({ wit: w.wit, privateKey: w.privateKey, alg: 'ES256', aud: AUD, nowSec: Math.floor(Date.now() / 1000), lifetimeSec });
    return envoyCheckRequest({ method: 'GET', path, headers: [...BASE, ['Workload-Identity-Token', w.wit], ['Authorization', `WPT ${wpt}`]], contextExtensions: EXT });
  }
  const signed = signWimseRequest({
    method: 'POST',
    path,
    query: '',
    headers: [['workload-identity-token', w.wit], ['content-type', 'application/json']],
    body: BODY,
    key: { privateKey: w.privateKey, alg: 'ES256' },
    audience: AUD,
    clock: systemClock,
    ttlSec: lifetimeSec,
  });
  const headers: Array<[string, string]> = [...BASE];
  for (const [k, vs] of signed.headers) for (const v of vs) headers.push([k, v]);
  return envoyCheckRequest({ method: 'POST', path, headers, body: BODY, contextExtensions: EXT });
}
