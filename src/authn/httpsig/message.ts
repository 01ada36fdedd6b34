/**
 * The HTTP messages the signature engine works on. A request is a superset of the normalized
 * AuthnRequest (src/authn/request.ts): an AuthnRequest can be passed as is.
 */
import { AuthnError } from '../errors.ts';

/** Header fields by lower-case name; each element is one field line as received. */
export type HeaderMap = ReadonlyMap<string, readonly string[]>;

export interface HttpRequestMessage {
  /** Upper-case method, e.g. `GET`. */
  readonly method: string;
  /** Lower-case scheme, when known (needed only for `@scheme` and `@target-uri`). */
  readonly scheme?: string;
  /** Host and optional port, when known; otherwise the single `host` field is used. */
  readonly authority?: string;
  /** The absolute path exactly as received; `/` when empty. */
  readonly path: string;
  /** The query exactly as received, with its leading `?`; `''` when there is none. */
  readonly query: string;
  readonly headers: HeaderMap;
  readonly body?: Uint8Array;
}

export interface HttpResponseMessage {
  readonly status: number;
  readonly headers: HeaderMap;
  readonly body?: Uint8Array;
}

export type HttpMessage = HttpRequestMessage | HttpResponseMessage;

/** The message a signature is on, and for a response the request it answers (`;req`). */
export interface SignatureContext {
  readonly message: HttpMessage;
  readonly request?: HttpRequestMessage;
}

export const isResponse = (m: HttpMessage): m is HttpResponseMessage => 'status' in m;

export function httpsigError(code: string, detail: string): AuthnError {
  return new AuthnError(code, 400, detail);
}

/**
 * The field lines of `name`, or undefined when the field is absent. Values carrying CR, LF or NUL
 * are refused (RFC 9110 §5.5): they would let one field forge lines of the signature base.
 */
export function fieldLines(headers: HeaderMap, name: string): readonly string[] | undefined {
  const lines = headers.get(name);
  if (lines === undefined || lines.length === 0) return undefined;
  for (const l of lines) {
    if (typeof l !== 'string' || /[\r\n\0]/.test(l)) throw httpsigError('httpsig.malformed', `field ${name} has an invalid value`);
  }
  return lines;
}

/** RFC 9421 §2.1: each line trimmed of outer SP/HTAB, lines joined with ", ". */
export function combinedFieldValue(lines: readonly string[]): string {
  return lines.map(trimOws).join(', ');
}

/** Trim outer SP and HTAB (a loop, not a regular expression: linear on any input). */
export function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--;
  return s.slice(a, b);
}
