/**
 * Rules of the WIMSE HTTP-signature profile (draft-ietf-wimse-http-signature-07) shared by the
 * request and response verifiers: selection by tag, parameters, coverage, time window, digest.
 */
import { AuthnError } from '../errors.ts';
import { verifyContentDigest, type DigestAlgorithm } from '../content-digest.ts';
import { fieldLines, httpsigError, type HttpMessage } from './message.ts';
import { parseSignatureInputs, type SignatureInput } from './signature-base.ts';
import type { BareItem } from './sf-types.ts';

export const WIMSE_TAG = 'wimse-workload-to-workload';
/** Default allowed clock skew, seconds (our choice: the draft gives no number). */
export const DEFAULT_MAX_SKEW_SEC = 60;
/** Default longest `expires - created`, seconds (our choice: the draft gives no number). */
export const DEFAULT_MAX_WINDOW_SEC = 300;
/** Longest accepted nonce, characters. */
export const MAX_NONCE_LENGTH = 256;

/** §4.1: always covered on a request. */
export const REQUEST_REQUIRED = ['"@method"', '"@path"', '"@query"'] as const;
/** §4.1: covered on a request whenever the field is present. */
export const REQUEST_FIELDS_IF_PRESENT = ['content-type', 'content-digest', 'authorization', 'txn-token', 'workload-identity-token'] as const;
/** §4.2: always covered on a signed response. */
export const RESPONSE_REQUIRED = ['"@status"', '"workload-identity-token"', '"@method";req', '"@path";req', '"@query";req'] as const;
/** §4.2: covered on a response whenever the field is present. */
export const RESPONSE_FIELDS_IF_PRESENT = ['content-type', 'content-digest'] as const;

export interface WindowOptions {
  nowSec: number;
  maxSkewSec: number;
  maxWindowSec: number;
}

export function checkWindowOptions(o: { nowSec: unknown; maxSkewSec?: unknown; maxWindowSec?: unknown }): WindowOptions {
  if (typeof o !== 'object' || o === null) throw new TypeError('options are required');
  if (typeof o.nowSec !== 'number' || !Number.isFinite(o.nowSec)) throw new TypeError('"nowSec" must be a finite number');
  const maxSkewSec = o.maxSkewSec ?? DEFAULT_MAX_SKEW_SEC;
  const maxWindowSec = o.maxWindowSec ?? DEFAULT_MAX_WINDOW_SEC;
  if (typeof maxSkewSec !== 'number' || !Number.isInteger(maxSkewSec) || maxSkewSec < 0) throw new TypeError('"maxSkewSec" must be a non-negative integer');
  if (typeof maxWindowSec !== 'number' || !Number.isInteger(maxWindowSec) || maxWindowSec < 1) throw new TypeError('"maxWindowSec" must be a positive integer');
  return { nowSec: Math.floor(o.nowSec), maxSkewSec, maxWindowSec };
}

const isWimseTag = (v: BareItem | undefined): boolean => (v?.type === 'string' || v?.type === 'token') && v.value === WIMSE_TAG;

/**
 * §4.4: the WIMSE signature is the one tagged `wimse-workload-to-workload`, whatever its label.
 * Returns undefined when there is none; two or more is `httpsig.multiple`.
 */
export function selectWimseSignature(msg: HttpMessage): SignatureInput | undefined {
  const inputs = parseSignatureInputs(msg.headers);
  if (!inputs) return undefined;
  let found: SignatureInput | undefined;
  for (const input of inputs.values()) {
    if (!isWimseTag(input.params.get('tag'))) continue;
    if (found) throw httpsigError('httpsig.multiple', 'more than one signature is tagged wimse-workload-to-workload');
    found = input;
  }
  if (found?.problem) throw found.problem;
  return found;
}

export interface WimseParams {
  created: number;
  expires: number;
  nonce: string;
}

/**
 * §4.3: `created`, `expires`, `nonce`, `tag` (and per message kind `wimse-aud` or
 * `wimse-req-nonce`) are required; `keyid` and `alg` are forbidden.
 */
export function checkWimseParams(input: SignatureInput, required: readonly string[]): WimseParams {
  const p = input.params;
  for (const name of ['created', 'expires', 'nonce', 'tag', ...required]) {
    if (!p.has(name)) throw httpsigError('httpsig.param_missing', `signature parameter ${name} is missing`);
  }
  for (const name of ['keyid', 'alg']) {
    if (p.has(name)) throw httpsigError('httpsig.param_forbidden', `signature parameter ${name} is not allowed`);
  }
  if (p.get('tag')?.type !== 'string') throw httpsigError('httpsig.malformed', 'tag must be a string');
  const created = integerParam(input, 'created');
  const expires = integerParam(input, 'expires');
  const nonce = stringParam(input, 'nonce');
  if (nonce === '' || nonce.length > MAX_NONCE_LENGTH) throw httpsigError('httpsig.malformed', 'nonce is empty or too long');
  return { created, expires, nonce };
}

function integerParam(input: SignatureInput, name: string): number {
  const v = input.params.get(name);
  if (v?.type !== 'integer' || v.value < 0) throw httpsigError('httpsig.malformed', `${name} must be a non-negative integer`);
  return v.value;
}

export function stringParam(input: SignatureInput, name: string): string {
  const v = input.params.get(name);
  if (v?.type !== 'string') throw httpsigError('httpsig.malformed', `${name} must be a string`);
  return v.value;
}

/** §4.1 / §4.2: every required component is covered, exactly as named (no extra parameters). */
export function checkCoverage(input: SignatureInput, msg: HttpMessage, required: readonly string[], fieldsIfPresent: readonly string[]): void {
  const covered = new Set(input.components.map((c) => c.id));
  for (const id of required) {
    if (!covered.has(id)) throw httpsigError('httpsig.component_missing', `${id} is not covered`);
  }
  for (const name of fieldsIfPresent) {
    if (fieldLines(msg.headers, name) && !covered.has(`"${name}"`)) {
      throw httpsigError('httpsig.component_missing', `"${name}" is present but not covered`);
    }
  }
}

/**
 * §4.1: a message with content must carry Content-Digest. Content is known from the body the
 * adapter passed, or announced by Content-Length > 0 / Transfer-Encoding when it passed none.
 */
export function checkDigestPresent(msg: HttpMessage): void {
  if (fieldLines(msg.headers, 'content-digest')) return;
  if (hasContent(msg)) throw httpsigError('httpsig.digest_missing', 'the message has content but no Content-Digest');
}

function hasContent(msg: HttpMessage): boolean {
  if (msg.body !== undefined) return msg.body.length > 0;
  if (fieldLines(msg.headers, 'transfer-encoding')) return true;
  const cl = fieldLines(msg.headers, 'content-length');
  return cl !== undefined && cl.some((v) => v.trim() !== '0');
}

/** §4.1: recompute Content-Digest over the content as received. */
export function checkDigestOverBody(msg: HttpMessage): DigestAlgorithm[] {
  const lines = fieldLines(msg.headers, 'content-digest');
  if (!lines) return [];
  if (msg.body === undefined) {
    // Fail closed: a digest we cannot check proves nothing (the adapter must pass the body).
    throw httpsigError('httpsig.body_unavailable', 'Content-Digest is present but the body was not provided');
  }
  return verifyContentDigest(lines, msg.body);
}

/** The signature's validity window against the clock. */
export function checkWindow(p: WimseParams, o: WindowOptions): void {
  if (p.expires < p.created) throw httpsigError('httpsig.bad_window', 'expires is before created');
  if (p.expires - p.created > o.maxWindowSec) throw httpsigError('httpsig.window_too_long', `the validity window exceeds ${o.maxWindowSec} s`);
  if (p.created > o.nowSec + o.maxSkewSec) throw httpsigError('httpsig.created_in_future', 'created is in the future');
  if (o.nowSec > p.expires + o.maxSkewSec) throw httpsigError('httpsig.expired', 'the signature has expired');
}

/** Run `fn`; anything that is not an AuthnError becomes `httpsig.internal` (fail closed). */
export function guarded<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof AuthnError) throw e;
    throw new AuthnError('httpsig.internal', 500, 'the signature could not be processed');
  }
}
