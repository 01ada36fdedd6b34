/**
 * Signing requests and responses with the WIMSE profile (draft-ietf-wimse-http-signature-07),
 * for clients, servers and tests. The key is the workload's own private key; its JWS `alg` is the
 * one in its WIT's `cnf.jwk`. Misuse (no WIT header, a key that does not fit the algorithm)
 * throws TypeError.
 */
import { createPrivateKey, randomBytes, type JsonWebKey, type KeyObject } from 'node:crypto';
import { nowSeconds, type Clock } from '../../identity/clock.ts';
import { contentDigestValue } from '../content-digest.ts';
import { rfcAlgForJws } from './algorithms.ts';
import { component, type ComponentId } from './components.ts';
import { signMessage } from './engine.ts';
import type { HeaderMap, HttpRequestMessage, SignatureContext } from './message.ts';
import type { Parameters } from './sf-types.ts';
import { REQUEST_FIELDS_IF_PRESENT, RESPONSE_FIELDS_IF_PRESENT, WIMSE_TAG } from './wimse-profile.ts';

export interface WimseSigningKey {
  /** The private key, as a KeyObject or a private JWK (with `d`). */
  privateKey: KeyObject | JsonWebKey;
  /** The JWS algorithm of the WIT's `cnf.jwk`: ES256, ES384, EdDSA or Ed25519. */
  alg: string;
}

export type HeaderInput = HeaderMap | Iterable<readonly [string, string]>;

export interface SignWimseRequestInput {
  method: string;
  path: string;
  /** With its leading `?`, or `''`. */
  query: string;
  headers: HeaderInput;
  body?: Uint8Array;
  key: WimseSigningKey;
  /** `wimse-aud`: the target URI without query or fragment, or a deployment audience. */
  audience: string;
  /** Ask the server to sign its response (`wimse-sign-response`). */
  signResponse?: boolean;
  clock: Clock;
  /** `expires - created`, seconds. Default 60. */
  ttlSec?: number;
  /** Fixed nonce (tests); default 16 random bytes, base64url. */
  nonce?: string;
  /** Default `wimse`. Verifiers select by tag, never by label. */
  label?: string;
}

export interface SignedWimseMessage {
  /** The input headers plus Content-Digest (when there is a body), Signature-Input, Signature. */
  headers: Map<string, string[]>;
  nonce: string;
  created: number;
  expires: number;
  label: string;
  signatureInput: string;
  signature: string;
  contentDigest?: string;
  /** The signature base that was signed. */
  base: string;
}

export const DEFAULT_SIGNATURE_TTL_SEC = 60;

export function signWimseRequest(input: SignWimseRequestInput): SignedWimseMessage {
  if (typeof input.audience !== 'string' || input.audience === '') throw new TypeError('"audience" must be a non-empty string');
  const headers = copyHeaders(input.headers);
  const contentDigest = addContentDigest(headers, input.body);
  const request: HttpRequestMessage = { method: input.method, path: input.path, query: input.query, headers, ...(input.body ? { body: input.body } : {}) };
  // §4.1: @method, @path, @query always; the listed fields whenever present.
  const components: ComponentId[] = [component('@method'), component('@path'), component('@query')];
  for (const name of orderedFields(REQUEST_FIELDS_IF_PRESENT)) if (headers.has(name)) components.push(component(name));
  return finish(input, headers, contentDigest, { message: request }, components, (params) => {
    params.set('wimse-aud', { type: 'string', value: input.audience });
    if (input.signResponse) params.set('wimse-sign-response', { type: 'boolean', value: true });
  });
}

export interface SignWimseResponseInput {
  status: number;
  headers: HeaderInput;
  body?: Uint8Array;
  /** The request being answered (method, path, query as received). */
  request: HttpRequestMessage;
  /** The request signature's nonce: becomes `wimse-req-nonce`. */
  requestNonce: string;
  key: WimseSigningKey;
  clock: Clock;
  ttlSec?: number;
  nonce?: string;
  label?: string;
}

export function signWimseResponse(input: SignWimseResponseInput): SignedWimseMessage {
  if (typeof input.requestNonce !== 'string' || input.requestNonce === '') throw new TypeError('"requestNonce" must be a non-empty string');
  const headers = copyHeaders(input.headers);
  const contentDigest = addContentDigest(headers, input.body);
  // §4.2: @status, the server's WIT, content-type/content-digest when present, the request's
  // @method, @path and @query.
  const components: ComponentId[] = [component('@status'), component('workload-identity-token')];
  for (const name of RESPONSE_FIELDS_IF_PRESENT) if (headers.has(name)) components.push(component(name));
  components.push(component('@method', { req: true }), component('@path', { req: true }), component('@query', { req: true }));
  const response = { status: input.status, headers, ...(input.body ? { body: input.body } : {}) };
  return finish(input, headers, contentDigest, { message: response, request: input.request }, components, (params) => {
    params.set('wimse-req-nonce', { type: 'string', value: input.requestNonce });
  });
}

/** Request fields in the order the drafts' examples use: the WIT first. */
function orderedFields(names: readonly string[]): string[] {
  return ['workload-identity-token', ...names.filter((n) => n !== 'workload-identity-token')];
}

function finish(
  input: { key: WimseSigningKey; clock: Clock; ttlSec?: number; nonce?: string; label?: string },
  headers: Map<string, string[]>,
  contentDigest: string | undefined,
  ctx: SignatureContext,
  components: ComponentId[],
  extra: (params: Parameters) => void,
): SignedWimseMessage {
  if (!headers.has('workload-identity-token')) throw new TypeError('the message must carry a Workload-Identity-Token field');
  const alg = rfcAlgForJws(input.key.alg);
  if (!alg) throw new TypeError(`unsupported algorithm ${input.key.alg}`);
  const ttl = input.ttlSec ?? DEFAULT_SIGNATURE_TTL_SEC;
  if (!Number.isInteger(ttl) || ttl < 1) throw new TypeError('"ttlSec" must be a positive integer');
  const created = nowSeconds(input.clock);
  const expires = created + ttl;
  const nonce = input.nonce ?? randomBytes(16).toString('base64url');
  const label = input.label ?? 'wimse';
  // §4.3: created, expires, nonce, tag, then the message-specific parameters; no keyid, no alg.
  const params: Parameters = new Map();
  params.set('created', { type: 'integer', value: created });
  params.set('expires', { type: 'integer', value: expires });
  params.set('nonce', { type: 'string', value: nonce });
  params.set('tag', { type: 'string', value: WIMSE_TAG });
  extra(params);
  const key = toPrivateKey(input.key.privateKey);
  const sig = signMessage(ctx, { label, components, params, key: { key, alg } });
  append(headers, 'signature-input', sig.signatureInput);
  append(headers, 'signature', sig.signature);
  return {
    headers,
    nonce,
    created,
    expires,
    label,
    signatureInput: sig.signatureInput,
    signature: sig.signature,
    base: sig.base,
    ...(contentDigest ? { contentDigest } : {}),
  };
}

function toPrivateKey(k: KeyObject | JsonWebKey): KeyObject {
  if (typeof (k as KeyObject).type === 'string' && typeof (k as KeyObject).export === 'function') return k as KeyObject;
  return createPrivateKey({ key: k as JsonWebKey, format: 'jwk' });
}

function copyHeaders(h: HeaderInput): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (h instanceof Map) {
    for (const [name, lines] of h as HeaderMap) out.set(name.toLowerCase(), [...lines]);
    return out;
  }
  for (const [name, value] of h as Iterable<readonly [string, string]>) append(out, name.toLowerCase(), value);
  return out;
}

function append(h: Map<string, string[]>, name: string, value: string): void {
  const lines = h.get(name);
  if (lines) lines.push(value);
  else h.set(name, [value]);
}

/** §4.1: a body is sent with its Content-Digest (sha-256), replacing any given one. */
function addContentDigest(headers: Map<string, string[]>, body: Uint8Array | undefined): string | undefined {
  if (!body || body.length === 0) return undefined;
  const value = contentDigestValue(body, ['sha-256']);
  headers.set('content-digest', [value]);
  return value;
}
