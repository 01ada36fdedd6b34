/**
 * A real node for ext_authz tests, with a federated trust domain whose keys the test holds (so it
 * can sign WITs and certificates with any defect under a *trusted* key), credential builders and
 * the assertions every denial must pass.
 */
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { parseConfig } from '../../src/config/config.ts';
import { startNode, type RunningNode } from '../../src/node.ts';
import { silentLogger } from '../../src/log.ts';
import { createWpt } from '../../src/authn/wpt.ts';
import { signWimseRequest } from '../../src/authn/httpsig/index.ts';
import { systemClock, type Clock } from '../../src/identity/clock.ts';
import { toSpiffeBundle } from '../../src/identity/trust-bundle.ts';
import type { SigningAlg } from '../../src/identity/jwk.ts';
import { keyPair, signRaw, type KeyPair } from '../authn/helpers.ts';
import { rootCa, type Ca } from '../authn/pki.ts';
import { authzClient, callCheck, CHECK_DEADLINE_MS, envoyCheckRequest, type AuthzClient, type DownstreamRequest } from '../helpers/envoy-pep.ts';
import { envoyProtos } from '../../src/envoy/protos.ts';

export const TD = 'example.org';
export const PARTNER_TD = 'partner.example';
export const ORDERS = 'spiffe://example.org/ns/shop/sa/orders';
export const WEB = 'spiffe://example.org/ns/shop/sa/web';
export const PAYER = 'spiffe://example.org/ns/pay/sa/checkout';
export const PARTNER = 'spiffe://partner.example/ns/ext/sa/client';
export const AUD = 'https://orders.shop.example.org';
export const HOST = 'orders.shop.example.org';
/** The route's trusted settings, as envoy/sidecar-callee.yaml sets them. */
export const EXT = { destination_workload: ORDERS, audience: AUD };

export const POLICY = `version: 1
destinations:
  - workload: ${ORDERS}
    audiences: [${AUD}]
    rules:
      - name: read-orders
        paths: [{prefix: /orders/}]
        methods: [GET, POST]
        callers: [${WEB}, {trustDomain: ${PARTNER_TD}}]
        authn: [any]
      - name: pay
        paths: [{exact: /pay}]
        methods: [POST]
        callers: [{prefix: spiffe://example.org/ns/pay/}]
        authn: [httpsig]
      - name: admin-over-mtls
        paths: [{prefix: /admin/}]
        callers: [${WEB}]
        authn: [mtls]
`;

/** The federated trust domain: its X.509 root and its WIT signing key, both held by the test. */
export interface Partner {
  root: Ca;
  wit: KeyPair & { kid: string };
}

export interface Ctx {
  node: RunningNode;
  /** Checks with the callee sidecar's node token (`proxyToken`). */
  client: AuthzClient;
  proxyToken: string;
  partner: Partner;
  dir: string;
  check(req: unknown): Promise<any>;
  close(): Promise<void>;
}

export async function startAdversarialNode(opts: { policy?: string; yaml?: string; clock?: Clock } = {}): Promise<Ctx> {
  const dir = mkdtempSync(join(tmpdir(), 'wimse-extauthz-'));
  const root = await rootCa('partner root', Date.now());
  const wit = { ...keyPair('ES256'), kid: 'partner-k1' };
  writeFileSync(
    join(dir, 'partner.json'),
    JSON.stringify(
      toSpiffeBundle({ trustDomain: PARTNER_TD, x509Authorities: [root.der], witKeys: [{ ...wit.publicJwk, kid: wit.kid, alg: 'ES256' }] }),
    ),
  );
  writeFileSync(join(dir, 'policy.yaml'), opts.policy ?? POLICY);
  const yaml = `nodeName: extauthz-test
trustDomain: ${TD}
grpc:
  listen: 127.0.0.1:0
admin:
  listen: ''
federation:
  - trustDomain: ${PARTNER_TD}
    bundleFile: partner.json
policy:
  file: policy.yaml
${opts.yaml ?? ''}`;
  const cfg = parseConfig(yaml, dir);
  if (!cfg.ok) throw new Error(cfg.errors.join('; '));
  const node = await startNode(cfg.value, { logger: silentLogger(), clock: opts.clock ?? systemClock });
  const proxyToken = node.nodeTokens.issue('sidecar-orders-0');
  const client = authzClient(node.grpcAddress, proxyToken);
  return {
    node,
    client,
    proxyToken,
    partner: { root, wit },
    dir,
    check: (req) => callCheck(client, req, CHECK_DEADLINE_MS),
    async close() {
      client.close();
      await node.close();
    },
  };
}

// ---- credentials ---------------------------------------------------------------------------

export const nowSec = (): number => Math.floor(Date.now() / 1000);

export interface WitSpec {
  sub?: string;
  workload?: KeyPair;
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  omit?: string[];
  omitHeader?: string[];
  /** Sign with this key/alg instead of the partner's WIT key. */
  signWith?: { key: KeyObject | Buffer; alg: string };
}

/** A WIT of the federated trust domain, signed by its (trusted) key, with any defect asked for. */
export function partnerWit(p: Partner, spec: WitSpec = {}): { token: string; workload: KeyPair } {
  const workload = spec.workload ?? keyPair('ES256');
  const now = nowSec();
  const claims: Record<string, unknown> = {
    sub: spec.sub ?? PARTNER,
    iat: now - 10,
    exp: now + 3600,
    jti: `wit-${Math.random().toString(36).slice(2)}`,
    cnf: { jwk: workload.publicJwk },
    ...spec.claims,
  };
  const header: Record<string, unknown> = { alg: 'ES256', typ: 'wit+jwt', kid: p.wit.kid, ...spec.header };
  for (const k of spec.omit ?? []) delete claims[k];
  for (const k of spec.omitHeader ?? []) delete header[k];
  const signer = spec.signWith ?? { key: p.wit.privateKey, alg: 'ES256' };
  return { token: signRaw(header, claims, signer.key, signer.alg), workload };
}

/** A WIT minted by the node's own Identity Server for `sub`, and the workload key it binds. */
export async function nodeWit(node: RunningNode, sub: string, alg: SigningAlg = 'ES256'): Promise<{ token: string; workload: KeyPair }> {
  const workload = keyPair(alg);
  const wit = await node.ca.mintWit({ sub, cnf: workload.publicJwk as never });
  return { token: wit.token, workload };
}

export function wptFor(wit: { token: string; workload: KeyPair }, extra: Partial<Parameters<typeof createWpt>[0]> = {}): string {
  return createWpt({ wit: wit.token, privateKey: wit.workload.privateKey, alg: wit.workload.alg, aud: AUD, nowSec: nowSec(), ...extra });
}

export interface Call {
  method?: string;
  /** Path with query. */
  path?: string;
  headers?: Array<[string, string]>;
  body?: Uint8Array;
  source?: DownstreamRequest['source'];
  contextExtensions?: Record<string, string>;
}

/** The CheckRequest B's Envoy sends for this call (Host: the callee's name). */
export function envoyRequest(c: Call): Record<string, unknown> {
  return envoyCheckRequest({
    method: c.method ?? 'GET',
    path: c.path ?? '/orders/1',
    headers: [['Host', HOST], ['User-Agent', 'test-client/1'], ['Accept', '*/*'], ...(c.headers ?? [])],
    ...(c.body ? { body: c.body } : {}),
    ...(c.source ? { source: c.source } : {}),
    contextExtensions: c.contextExtensions ?? EXT,
  });
}

/** A WIT+WPT call. */
export function wptCall(wit: string, wpt: string, c: Call = {}): Record<string, unknown> {
  return envoyRequest({ ...c, headers: [['Workload-Identity-Token', wit], ['Authorization', `WPT ${wpt}`], ...(c.headers ?? [])] });
}

/** A WIT + HTTP-signature call, signed as a client would; `tamper` edits the signed request. */
export function sigCall(
  wit: { token: string; workload: KeyPair },
  c: Call & { clock?: Clock; ttlSec?: number; nonce?: string; audience?: string } = {},
  tamper: (r: { path: string; headers: Array<[string, string]>; body?: Uint8Array }) => void = () => {},
): Record<string, unknown> {
  const full = c.path ?? '/orders/1';
  const q = full.indexOf('?');
  const signed = signWimseRequest({
    method: c.method ?? 'GET',
    path: q < 0 ? full : full.slice(0, q),
    query: q < 0 ? '' : full.slice(q),
    headers: [['workload-identity-token', wit.token], ...(c.headers ?? [])],
    ...(c.body ? { body: c.body } : {}),
    key: { privateKey: wit.workload.privateKey, alg: wit.workload.alg },
    audience: c.audience ?? AUD,
    clock: c.clock ?? systemClock,
    ...(c.ttlSec !== undefined ? { ttlSec: c.ttlSec } : {}),
    ...(c.nonce !== undefined ? { nonce: c.nonce } : {}),
  });
  const headers: Array<[string, string]> = [];
  for (const [k, vs] of signed.headers) for (const v of vs) headers.push([k, v]);
  const r: { path: string; headers: Array<[string, string]>; body?: Uint8Array } = { path: full, headers, ...(c.body ? { body: c.body } : {}) };
  tamper(r);
  return envoyRequest({ ...c, path: r.path, headers: r.headers, ...(r.body ? { body: r.body } : {}) });
}


// ---- assertions ----------------------------------------------------------------------------

let statusNumbers: Map<string, number> | undefined;
export function httpStatus(name: unknown): number {
  statusNumbers ??= new Map(Object.entries(envoyProtos().root.lookupEnum('envoy.type.v3.StatusCode').values));
  return statusNumbers.get(String(name)) ?? -1;
}

export const headerMap = (list: any[] | undefined): Record<string, string> =>
  Object.fromEntries((list ?? []).map((h: any) => [h.header.key, h.header.value]));

/**
 * The response denies with this HTTP status and problem code: not OK at the gRPC level, no
 * ok_response, an application/problem+json body naming the code, and for 401 the challenge.
 */
export function expectDenied(t: ExecutionContext, res: any, status: number, code: string, challenge?: 'WPT'): void {
  t.not(res.status?.code, 0, 'the gRPC status must not be OK');
  t.falsy(res.ok_response, 'no ok_response on a denial');
  t.truthy(res.denied_response, 'a denied_response is present');
  t.is(httpStatus(res.denied_response.status.code), status, `HTTP status for ${code}`);
  const h = headerMap(res.denied_response.headers);
  t.is(h['content-type'], 'application/problem+json');
  const problem = JSON.parse(res.denied_response.body);
  t.is(problem.code, code);
  t.is(problem.status, status);
  t.is(h['www-authenticate'], challenge, 'WWW-Authenticate');
  t.is(res.dynamic_metadata?.fields?.code?.stringValue, code);
}

export function expectAllowed(t: ExecutionContext, res: any, caller: string, via: string): void {
  t.is(res.status?.code, 0, res.denied_response?.body);
  const h = headerMap(res.ok_response?.headers);
  t.is(h['x-wimse-caller'], caller);
  t.is(h['x-wimse-auth'], via);
}
