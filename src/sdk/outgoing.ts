/**
 * Outgoing requests (flow 3, the caller's side): the request shape the signers work on, the
 * default audience, and the HTTP message signature (draft-ietf-wimse-http-signature-07).
 */
import { systemClock, type Clock } from '../identity/clock.ts';
import { signWimseRequest } from '../authn/httpsig/index.ts';
import type { HttpRequestMessage } from '../authn/httpsig/index.ts';
import type { WorkloadCredential } from './workload-client.ts';

/** A request about to be sent. Its `headers` are changed in place by the signers. */
export interface OutgoingRequest {
  /** Default GET. */
  method?: string;
  url: string | URL;
  headers: Headers;
  /** The exact bytes that will be sent (a string is sent as UTF-8). */
  body?: Uint8Array | string | null;
}

/** Anything that hands out the current credential (a WorkloadClient does). */
export interface CredentialSource {
  current(): WorkloadCredential;
}

export const WIT_HEADER = 'workload-identity-token';

/**
 * The default audience: the target URI without query or fragment (wpt-02 §3 `aud`,
 * http-signature-07 `wimse-aud`), as the WHATWG URL parser serializes it.
 */
export function defaultAudience(url: string | URL): string {
  const u = new URL(url);
  u.search = '';
  u.hash = '';
  return u.href;
}

export const bodyBytes = (body: Uint8Array | string | null | undefined): Uint8Array | undefined =>
  body === undefined || body === null ? undefined : typeof body === 'string' ? Buffer.from(body, 'utf8') : body;

export const credentialOf = (c: WorkloadCredential | CredentialSource): WorkloadCredential =>
  typeof (c as CredentialSource).current === 'function' ? (c as CredentialSource).current() : (c as WorkloadCredential);

export interface HttpSigOptions {
  /** `wimse-aud`; default: the target URI without query or fragment. */
  audience?: string;
  /** Ask the server to sign its response (`wimse-sign-response`). */
  signResponse?: boolean;
  /** Signature lifetime, seconds (`expires - created`). Default 60. */
  ttlSec?: number;
  clock?: Clock;
}

/** What the client needs to verify the response to a signed request. */
export interface SignedRequestContext {
  /** The request as signed (method, path, query, headers). */
  request: HttpRequestMessage;
  /** The request signature's nonce: the response's `wimse-req-nonce` must equal it. */
  nonce: string;
  signResponse: boolean;
}

/**
 * Sign `req` with the workload's key: adds `Workload-Identity-Token`, `Content-Digest` (when
 * there is a body), `Signature-Input` and `Signature`. The body, when present, must be the exact
 * bytes sent; a body without `Content-Type` is given one first, because a field a client library
 * adds later would be uncovered and the recipient must then refuse the signature.
 */
export function signRequestHttpSig(cred: WorkloadCredential | CredentialSource, req: OutgoingRequest, opts: HttpSigOptions = {}): SignedRequestContext {
  const c = credentialOf(cred);
  const url = new URL(req.url);
  const method = (req.method ?? 'GET').toUpperCase();
  const body = bodyBytes(req.body);
  if (body && body.length > 0 && !req.headers.has('content-type'))
    req.headers.set('content-type', typeof req.body === 'string' ? 'text/plain;charset=UTF-8' : 'application/octet-stream');
  req.headers.set(WIT_HEADER, c.wit);
  for (const h of ['signature', 'signature-input', 'content-digest']) req.headers.delete(h);
  const query = url.search;
  const signed = signWimseRequest({
    method,
    path: url.pathname || '/',
    query,
    headers: [...req.headers],
    ...(body && body.length > 0 ? { body } : {}),
    key: { privateKey: c.key.privateKey, alg: c.key.alg },
    audience: opts.audience ?? defaultAudience(url),
    signResponse: opts.signResponse ?? false,
    clock: opts.clock ?? systemClock,
    ...(opts.ttlSec !== undefined ? { ttlSec: opts.ttlSec } : {}),
  });
  if (signed.contentDigest) req.headers.set('content-digest', signed.contentDigest);
  req.headers.set('signature-input', signed.signatureInput);
  req.headers.set('signature', signed.signature);
  return {
    request: { method, path: url.pathname || '/', query, headers: signed.headers },
    nonce: signed.nonce,
    signResponse: opts.signResponse ?? false,
  };
}
