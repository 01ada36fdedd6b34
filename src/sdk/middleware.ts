/**
 * Authentication for Node HTTP servers that are not behind Envoy: a node:http style
 * `(req, res, next)` middleware (plain `http.createServer` or Express-like frameworks) running the
 * same core as ext_authz (src/authn `authenticate`), so a service gets the same answers either way.
 *
 * Per request: buffer the body (size-capped; the Content-Digest of a signed request is checked
 * against it), build the normalized AuthnRequest, authenticate, then either attach the verified
 * caller to `req.wimse` and call `next()`, or answer with the AuthnError's status, its
 * `WWW-Authenticate` challenge and an RFC 9457 problem body. When the request asked for a signed
 * response (`wimse-sign-response`, http-signature-07 §4.6), the response is signed with the
 * server's own WIT and key, or refused with 501 when it has none: never an unsigned success.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { systemClock, type Clock } from '../identity/clock.ts';
import { AuthnError, isAuthnError } from '../authn/errors.ts';
import type { AuthnRequest } from '../authn/request.ts';
import { Authenticator } from '../authn/authenticator.ts';
import type { SettingsInput } from '../authn/options.ts';
import type { TrustBundleSet } from '../identity/trust-bundle.ts';
import { BodyTooLarge, readBody, toAuthnRequest } from './node-request.ts';
import { holdAndSignResponse } from './response-signing.ts';
import type { WorkloadCredential } from './workload-client.ts';

/** The verified caller, as the core returns it (src/authn AuthnResult). */
export interface WimseCaller {
  /** The caller's workload identifier. */
  readonly caller: string;
  readonly via: string;
  readonly transportPeer?: string;
  readonly httpSignature?: { readonly nonce: string; readonly signResponse: boolean };
}

/** What the middleware needs from the authentication core (the consumer owns the port). */
export interface RequestAuthenticator {
  authenticate(req: AuthnRequest, call: { audiences?: readonly string[] }): WimseCaller;
}

export interface WimseMiddlewareOptions extends SettingsInput {
  /**
   * The trust bundles (a set, or a getter for the live one such as `() => client.bundles()`).
   * Used to build the core Authenticator when `authenticator` is not given.
   */
  bundles?: TrustBundleSet | (() => TrustBundleSet);
  /** A ready Authenticator (src/authn), shared with other entry points. */
  authenticator?: RequestAuthenticator;
  /**
   * Accepted WPT `aud` / `wimse-aud` values, matched exactly: trusted configuration, never Host
   * (wpt-02 §3.1 "Audience validation").
   */
  audiences?: readonly string[];
  /**
   * This service's origins (`https://svc.example.org`), from trusted configuration. Each one
   * accepts the audience `<origin><path>` for a request to `<path>`: the default audience a
   * client derives from the target URI without query or fragment.
   */
  origins?: readonly string[];
  /**
   * The scheme clients use to reach this service, for signatures covering `@scheme` or
   * `@target-uri` (RFC 9421 §2.2). Default: `https` when this server terminates TLS itself, else
   * `http`. Set `https` behind a proxy that terminates TLS, from trusted configuration (never
   * from a request header such as `X-Forwarded-Proto`).
   */
  scheme?: 'http' | 'https';
  clock?: Clock;
  /** Largest body buffered, bytes. Default 1 MiB; larger requests get 413. */
  maxBodyBytes?: number;
  /** This server's own WIT and key (for signed responses), e.g. `() => client.credential`. */
  credential?: () => WorkloadCredential | undefined;
  /** Called on every refusal (for logs and metrics; never given tokens). */
  onDenied?: (err: AuthnError, req: IncomingMessage) => void;
}

export type WimseIncomingMessage = IncomingMessage & { wimse?: WimseCaller; rawBody?: Buffer };
export type Next = (err?: unknown) => void;

const DEFAULT_MAX_BODY = 1 << 20;

export function wimseMiddleware(opts: WimseMiddlewareOptions): (req: IncomingMessage, res: ServerResponse, next: Next) => void {
  if (typeof opts !== 'object' || opts === null) throw new TypeError('options must be an object');
  const clock = opts.clock ?? systemClock;
  const authenticator = buildAuthenticator(opts, clock);
  const audiences = stringList('audiences', opts.audiences);
  const origins = stringList('origins', opts.origins).map(checkOrigin);
  if (audiences.length + origins.length === 0) throw new TypeError('"audiences" or "origins" must name this service');
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  if (!Number.isInteger(maxBody) || maxBody < 0) throw new TypeError('"maxBodyBytes" must be a non-negative integer');
  if (opts.credential !== undefined && typeof opts.credential !== 'function') throw new TypeError('"credential" must be a function');
  if (opts.scheme !== undefined && opts.scheme !== 'http' && opts.scheme !== 'https') throw new TypeError('"scheme" must be "http" or "https"');
  const audiencesFor = (path: string): string[] => (origins.length === 0 ? audiences : [...audiences, ...origins.map((o) => o + path)]);

  const deny = (req: IncomingMessage, res: ServerResponse, err: AuthnError): void => {
    opts.onDenied?.(err, req);
    sendProblem(res, err.status, err.code, err.detail, err.challenge);
  };

  return (req, res, next) => {
    readBody(req, maxBody).then(
      (body) => {
        const areq = toAuthnRequest(req, body, opts.scheme);
        let caller: WimseCaller;
        try {
          caller = authenticator.authenticate(areq, { audiences: audiencesFor(areq.path) });
        } catch (e) {
          // Fail closed: anything that is not an AuthnError is our failure, never an allow.
          deny(req, res, isAuthnError(e) ? e : new AuthnError('internal.error', 500, 'internal error while authenticating'));
          return;
        }
        const sig = caller.httpSignature;
        if (sig?.signResponse) {
          // §4.6: asked to sign; without our own WIT the only honest answer is a refusal.
          if (!opts.credential?.()) {
            deny(req, res, new AuthnError('httpsig.cannot_sign_response', 400, 'the server cannot sign its response'));
            return;
          }
          holdAndSignResponse(res, areq, sig.nonce, opts.credential, clock, (status, code, detail) => sendProblem(res, status, code, detail));
        }
        const r = req as WimseIncomingMessage;
        r.wimse = caller;
        r.rawBody = body;
        next();
      },
      (err: unknown) => {
        if (err instanceof BodyTooLarge) {
          res.setHeader('connection', 'close');
          sendProblem(res, 413, 'request.body_too_large', `the body exceeds ${maxBody} bytes`);
        } else sendProblem(res, 400, 'request.body_unreadable', 'the request body could not be read');
      },
    );
  };
}

function buildAuthenticator(opts: WimseMiddlewareOptions, clock: Clock): RequestAuthenticator {
  if (opts.authenticator !== undefined) {
    if (typeof opts.authenticator?.authenticate !== 'function') throw new TypeError('"authenticator" must have authenticate()');
    return opts.authenticator;
  }
  if (opts.bundles === undefined) throw new TypeError('"bundles" is required when no "authenticator" is given');
  const { authenticator: _a, audiences: _au, origins: _o, maxBodyBytes: _m, credential: _c, onDenied: _d, scheme: _s, ...rest } = opts;
  return new Authenticator({ ...rest, bundles: opts.bundles, clock });
}

function stringList(name: string, v: unknown): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((a) => typeof a !== 'string' || a === '')) throw new TypeError(`"${name}" must be a list of non-empty strings`);
  return [...(v as string[])];
}

/** `scheme://authority` with no path, as the WHATWG URL parser serializes it. */
function checkOrigin(o: string): string {
  let u: URL;
  try {
    u = new URL(o);
  } catch {
    throw new TypeError(`"origins": ${o} is not a URL`);
  }
  if (u.origin === 'null' || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) throw new TypeError(`"origins": ${o} must be scheme://host[:port] only`);
  return u.origin;
}

/** An RFC 9457 problem answer; it names the code, never token contents. */
export function sendProblem(res: ServerResponse, status: number, code: string, detail: string, challenge?: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ type: 'about:blank', title: TITLES[status] ?? 'Error', status, code, detail });
  res.statusCode = status;
  res.setHeader('content-type', 'application/problem+json');
  res.setHeader('cache-control', 'no-store');
  if (challenge) res.setHeader('www-authenticate', challenge);
  // 503 from authentication (a replay cache full of live tokens) is temporary: retry shortly.
  if (status === 503) res.setHeader('retry-after', '1');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  413: 'Content Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};
