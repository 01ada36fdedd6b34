/**
 * `wimsectl authn check`: authenticate one request read as JSON, offline, against a SPIFFE
 * bundle map file. It runs the same `authenticate` as the PEP.
 *
 *   wimsectl authn check --bundle FILE [--audience URI]... [--now UNIX_SECONDS] [--max-skew SECONDS]
 *
 * stdin:  {"method","url":"https://host/path?query","headers":[["name","value"],...],
 *          "body":"<base64, optional>","peerCertificateChain":"<PEM, optional>"}
 * stdout: one JSON line, {"authenticated":true,"caller","via","transportPeer"?} or
 *         {"authenticated":false,"error":{"code","status","detail"}}
 * exit:   0 authenticated, 1 rejected, 2 usage, input or bundle-file error.
 */
import { readFileSync } from 'node:fs';
import { Authenticator } from '../authn/authenticator.ts';
import { isAuthnError } from '../authn/errors.ts';
import { headersFrom, isAuthority, type AuthnRequest } from '../authn/request.ts';
import { ManualClock, systemClock, type Clock } from '../identity/clock.ts';
import { MAX_BUNDLE_BYTES, parseSpiffeBundleMap } from '../identity/trust-bundle.ts';
import { AUTHN_CHECK_HELP } from './wimsectl-help.ts';

export const MAX_REQUEST_BYTES = 1 << 20;

const AUTHN_CHECK_USAGE = `usage: wimsectl ${AUTHN_CHECK_HELP.usage}`;

export interface AuthnCheckOutcome {
  exitCode: 0 | 1 | 2;
  stdoutLine: string;
}

export interface AuthnCheckIo {
  readFile?: (path: string) => string;
  /** The clock when `--now` is not given. */
  clock?: Clock;
}

interface Args {
  bundle: string;
  audiences: string[];
  now?: number;
  maxSkew?: number;
}

const failure = (code: string, detail: string, exitCode: 1 | 2, status?: number): AuthnCheckOutcome => ({
  exitCode,
  stdoutLine: JSON.stringify({ authenticated: false, error: { code, ...(status !== undefined ? { status } : {}), detail } }),
});
const usage = (detail: string) => failure('usage', `${detail}. ${AUTHN_CHECK_USAGE}`, 2);

/** Run the command on `argv` (the arguments after `authn check`) and the text of stdin. */
export function runAuthnCheck(argv: readonly string[], stdin: string, io: AuthnCheckIo = {}): AuthnCheckOutcome {
  const args = parseArgs(argv);
  if (typeof args === 'string') return usage(args);

  let bundleText: string;
  try {
    bundleText = (io.readFile ?? ((p) => readFileSync(p, 'utf8')))(args.bundle);
  } catch (e) {
    return failure('bundle.unreadable', `cannot read ${args.bundle}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, 2);
  }
  if (bundleText.length > MAX_BUNDLE_BYTES) return failure('bundle.invalid', `bundle exceeds ${MAX_BUNDLE_BYTES} bytes`, 2);
  const bundles = parseSpiffeBundleMap(bundleText);
  if (!bundles.ok) return failure('bundle.invalid', bundles.errors.join('; '), 2);

  const req = parseRequest(stdin);
  if (typeof req === 'string') return failure('input.invalid', req, 2);

  let auth: Authenticator;
  try {
    auth = new Authenticator({
      bundles: bundles.value,
      clock: args.now !== undefined ? new ManualClock(args.now * 1000) : (io.clock ?? systemClock),
      audiences: args.audiences,
      witCache: false,
      ...(args.maxSkew !== undefined ? { maxSkewSec: args.maxSkew } : {}),
    });
  } catch (e) {
    return usage((e as Error).message);
  }
  try {
    const r = auth.authenticate(req);
    return {
      exitCode: 0,
      stdoutLine: JSON.stringify({
        authenticated: true,
        caller: r.caller,
        via: r.via,
        ...(r.transportPeer !== undefined ? { transportPeer: r.transportPeer } : {}),
      }),
    };
  } catch (e) {
    if (isAuthnError(e)) return failure(e.code, e.detail, 1, e.status);
    return failure('internal.error', 'internal error', 1, 500);
  }
}

function parseArgs(argv: readonly string[]): Args | string {
  let bundle: string | undefined;
  const audiences: string[] = [];
  let now: number | undefined;
  let maxSkew: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    if (!['--bundle', '--audience', '--now', '--max-skew'].includes(flag)) return `unknown argument ${JSON.stringify(flag)}`;
    if (value === undefined) return `${flag} needs a value`;
    i++;
    if (flag === '--bundle') {
      if (bundle !== undefined) return '--bundle given twice';
      bundle = value;
    } else if (flag === '--audience') {
      if (value.length === 0) return '--audience must not be empty';
      audiences.push(value);
    } else {
      if (!/^\d{1,12}$/.test(value)) return `${flag} must be a non-negative integer`;
      if (flag === '--now') now = Number(value);
      else maxSkew = Number(value);
    }
  }
  if (bundle === undefined) return '--bundle is required';
  return { bundle, audiences, ...(now !== undefined ? { now } : {}), ...(maxSkew !== undefined ? { maxSkew } : {}) };
}

const URL_PARTS = /^(https?):\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(?:#.*)?$/i;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The request from its JSON form. Scheme, authority, path and query are taken exactly as written
 * in `url` (the authority for `@authority` / `@target-uri`, instead of a Host field).
 */
function parseRequest(text: string): AuthnRequest | string {
  if (text.length > MAX_REQUEST_BYTES) return `request exceeds ${MAX_REQUEST_BYTES} bytes`;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return 'request is not JSON';
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return 'request must be a JSON object';
  const d = doc as Record<string, unknown>;
  if (typeof d.method !== 'string' || !/^[A-Za-z]+$/.test(d.method)) return 'method: must be an HTTP method';
  if (typeof d.url !== 'string') return 'url: must be an absolute http(s) URL';
  const m = URL_PARTS.exec(d.url);
  if (!m) return 'url: must be an absolute http(s) URL';
  if (!isAuthority(m[2]!)) return 'url: the authority must be a host and optional port (no userinfo)';
  if (!Array.isArray(d.headers) || d.headers.some((h) => !Array.isArray(h) || h.length !== 2 || typeof h[0] !== 'string' || typeof h[1] !== 'string'))
    return 'headers: must be an array of [name, value] string pairs';
  let body: Buffer | undefined;
  if (d.body !== undefined) {
    if (typeof d.body !== 'string' || !BASE64.test(d.body)) return 'body: must be base64';
    body = Buffer.from(d.body, 'base64');
  }
  if (d.peerCertificateChain !== undefined && typeof d.peerCertificateChain !== 'string') return 'peerCertificateChain: must be PEM text';
  return {
    method: d.method.toUpperCase(),
    scheme: m[1]!.toLowerCase(),
    authority: m[2]!,
    path: m[3] || '/',
    query: m[4] ?? '',
    headers: headersFrom(d.headers as [string, string][]),
    ...(body ? { body } : {}),
    ...(typeof d.peerCertificateChain === 'string' ? { peer: { certificateChainPem: d.peerCertificateChain } } : {}),
  };
}
