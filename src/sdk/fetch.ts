/**
 * `wimseFetch`: the global fetch with the workload's credentials on the request and, for an
 * HTTP-signature request, the response signature checked (http-signature-07 §4.6):
 * - a signed response is always verified: the server's WIT against the trust bundles (the WIT
 *   first, §4.5), then the signature with its `cnf.jwk`, including `wimse-req-nonce`;
 * - a response to a request that carried `wimse-sign-response` must be signed: an unsigned one
 *   rejects with AuthnError `httpsig.response_unsigned`.
 */
import { nowSeconds, systemClock, type Clock } from '../identity/clock.ts';
import type { TrustBundleSet } from '../identity/trust-bundle.ts';
import { AuthnError } from '../authn/errors.ts';
import { headersFrom, type AuthnRequest } from '../authn/request.ts';
import { hasWimseSignature, verifyWimseResponseSignature, type HttpResponseMessage, type VerifiedHttpSignature } from '../authn/httpsig/index.ts';
import { resolveSettings, type AuthnSettings } from '../authn/options.ts';
import { PublicKeyCache } from '../authn/jws.ts';
import { verifyWit } from '../authn/wit.ts';
import { bodyBytes, signRequestHttpSig, WIT_HEADER, type CredentialSource, type OutgoingRequest, type SignedRequestContext } from './outgoing.ts';
import { signRequestWpt } from './sign-wpt.ts';

export interface WimseFetchOptions {
  mode: 'wpt' | 'httpsig';
  /** WPT `aud` / `wimse-aud`; default: the target URI without query or fragment. */
  audience?: string;
  /** HTTP signature only: require the server to sign its response. */
  signResponse?: boolean;
  /** When set, a signed response must come from this workload identifier. */
  expectedServer?: string;
  /** Trust bundles for the server's WIT; default: the source's own (a WorkloadClient watches them). */
  bundles?: TrustBundleSet | (() => TrustBundleSet);
  clock?: Clock;
  /** Default: the global fetch. */
  fetch?: typeof globalThis.fetch;
}

export interface WimseResponseInfo {
  /** The server's verified identity, when the response was signed. */
  server?: string;
  signature?: VerifiedHttpSignature;
}

export type WimseResponse = Response & { wimse: WimseResponseInfo };

export type WimseFetchSource = CredentialSource & { bundles?(): TrustBundleSet };

const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);
const cnfKeys = new PublicKeyCache(1000);
let defaultSettings: AuthnSettings | undefined;

export async function wimseFetch(source: WimseFetchSource, url: string | URL, init: RequestInit = {}, opts: WimseFetchOptions): Promise<WimseResponse> {
  if (opts?.mode !== 'wpt' && opts?.mode !== 'httpsig') throw new TypeError('"mode" must be "wpt" or "httpsig"');
  if (opts.signResponse && opts.mode !== 'httpsig') throw new TypeError('"signResponse" needs mode "httpsig"');
  const clock = opts.clock ?? systemClock;
  const headers = new Headers(init.headers);
  const method = (init.method ?? 'GET').toUpperCase();
  const doFetch = opts.fetch ?? globalThis.fetch;

  if (opts.mode === 'wpt') {
    signRequestWpt(source, { method, url, headers }, { clock, ...(opts.audience ? { audience: opts.audience } : {}) });
    const res = await doFetch(url, { ...init, method, headers });
    return Object.assign(res, { wimse: {} });
  }

  const body = init.body;
  if (body !== undefined && body !== null && typeof body !== 'string' && !(body instanceof Uint8Array))
    throw new TypeError('with an HTTP signature the body must be a string or a Uint8Array (its digest is signed)');
  const req: OutgoingRequest = { method, url, headers, ...(body !== undefined ? { body } : {}) };
  const ctx = signRequestHttpSig(source, req, {
    clock,
    signResponse: opts.signResponse ?? false,
    ...(opts.audience ? { audience: opts.audience } : {}),
  });
  const bytes = bodyBytes(body as string | Uint8Array | null | undefined);
  const res = await doFetch(url, { ...init, method, headers, ...(bytes ? { body: bytes } : {}) });
  const resBody = new Uint8Array(await res.arrayBuffer());
  const info = verifyResponse(source, res, resBody, ctx, opts, nowSeconds(clock));
  const copy = new Response(NULL_BODY_STATUS.has(res.status) || resBody.length === 0 ? null : resBody, { status: res.status, statusText: res.statusText, headers: res.headers });
  return Object.assign(copy, { wimse: info });
}

function verifyResponse(source: WimseFetchSource, res: Response, body: Uint8Array, ctx: SignedRequestContext, opts: WimseFetchOptions, nowSec: number): WimseResponseInfo {
  const message: HttpResponseMessage = { status: res.status, headers: headersFrom(res.headers), ...(body.length > 0 ? { body } : {}) };
  // A response with no WIMSE signature is acceptable only when none was asked for (§4.6).
  if (!hasWimseSignature(message as unknown as AuthnRequest)) {
    if (ctx.signResponse) throw new AuthnError('httpsig.response_unsigned', 400, `the response (status ${res.status}) is not signed`);
    return {};
  }
  const wit = res.headers.get(WIT_HEADER);
  if (wit === null) throw new AuthnError('wit.missing', 400, 'the signed response carries no Workload-Identity-Token');
  const b = opts.bundles ?? (() => source.bundles?.() ?? new Map());
  const bundles = typeof b === 'function' ? b() : b;
  // §4.5: the server's WIT first, then its signature.
  defaultSettings ??= resolveSettings({});
  const verified = verifyWit(wit, { bundles, nowSec, settings: defaultSettings, cnfKeys, status: 400 });
  if (opts.expectedServer !== undefined && verified.sub.uri !== opts.expectedServer)
    throw new AuthnError('httpsig.unexpected_server', 400, 'the response is signed by another workload');
  const sig = verifyWimseResponseSignature(message, { jwk: verified.cnf.jwk, alg: verified.cnf.alg }, ctx, { nowSec });
  return sig ? { server: verified.sub.uri, signature: sig } : {};
}
