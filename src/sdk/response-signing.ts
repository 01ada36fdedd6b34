/**
 * Signing a node:http response (draft-ietf-wimse-http-signature-07): the response is
 * held until `end()`, then signed over `@status`, the server's WIT, `content-type` and
 * `content-digest` when present, and the request's `@method`, `@path` and `@query`, with
 * `wimse-req-nonce` naming the request's signature.
 */
import type { ServerResponse, OutgoingHttpHeaders } from 'node:http';
import type { Clock } from '../identity/clock.ts';
import { signWimseResponse, type HttpRequestMessage } from '../authn/httpsig/index.ts';
import type { WorkloadCredential } from './workload-client.ts';
import { WIT_HEADER } from './outgoing.ts';

type WriteCb = ((err?: Error | null) => void) | undefined;

/**
 * Buffer everything the handler writes to `res` and sign it when the handler ends the response.
 * `credential` is read at that moment, so a renewal in between is picked up; when there is no
 * valid credential by then the handler's answer is replaced by a 501 problem (never an unsigned
 * success, §4.6).
 */
export function holdAndSignResponse(
  res: ServerResponse,
  request: HttpRequestMessage,
  requestNonce: string,
  credential: () => WorkloadCredential | undefined,
  clock: Clock,
  onProblem: (status: number, code: string, detail: string) => void,
): void {
  const chunks: Buffer[] = [];
  const origWriteHead = res.writeHead.bind(res) as (status: number, headers?: OutgoingHttpHeaders) => ServerResponse;
  const origEnd = res.end.bind(res) as (body?: Buffer) => ServerResponse;
  const toBuf = (chunk: unknown, enc?: unknown): Buffer =>
    typeof chunk === 'string' ? Buffer.from(chunk, (typeof enc === 'string' ? enc : 'utf8') as BufferEncoding) : Buffer.from(chunk as Uint8Array);

  res.writeHead = ((status: number, ...rest: unknown[]) => {
    res.statusCode = status;
    const headers = rest.find((r) => typeof r === 'object' && r !== null) as OutgoingHttpHeaders | unknown[] | undefined;
    if (Array.isArray(headers)) {
      for (let i = 0; i + 1 < headers.length; i += 2) res.setHeader(String(headers[i]), String(headers[i + 1]));
    } else if (headers) for (const [k, v] of Object.entries(headers)) if (v !== undefined) res.setHeader(k, v);
    const msg = rest.find((r) => typeof r === 'string');
    if (typeof msg === 'string') res.statusMessage = msg;
    return res;
  }) as typeof res.writeHead;

  res.write = ((chunk: unknown, enc?: unknown, cb?: unknown): boolean => {
    chunks.push(toBuf(chunk, enc));
    const done = (typeof enc === 'function' ? enc : cb) as WriteCb;
    if (done) queueMicrotask(() => done());
    return true;
  }) as typeof res.write;

  res.end = ((chunk?: unknown, enc?: unknown, cb?: unknown): ServerResponse => {
    if (typeof chunk === 'function') cb = chunk;
    else if (chunk !== undefined && chunk !== null) chunks.push(toBuf(chunk, enc));
    if (typeof enc === 'function') cb = enc;
    if (typeof cb === 'function') res.once('finish', cb as () => void);
    const body = Buffer.concat(chunks);
    const c = credential();
    if (!c) {
      res.writeHead = origWriteHead as typeof res.writeHead;
      res.end = origEnd as typeof res.end;
      for (const h of res.getHeaderNames()) res.removeHeader(h);
      onProblem(501, 'httpsig.response_unsigned', 'the server cannot sign this response');
      return res;
    }
    res.setHeader(WIT_HEADER, c.wit);
    res.removeHeader('content-digest');
    const headers: [string, string][] = [];
    for (const [name, value] of Object.entries(res.getHeaders()))
      if (value !== undefined) for (const v of Array.isArray(value) ? value : [value]) headers.push([name, String(v)]);
    const signed = signWimseResponse({
      status: res.statusCode,
      headers,
      ...(body.length > 0 ? { body } : {}),
      request,
      requestNonce,
      key: { privateKey: c.key.privateKey, alg: c.key.alg },
      clock,
    });
    if (signed.contentDigest) res.setHeader('content-digest', signed.contentDigest);
    res.setHeader('signature-input', signed.signatureInput);
    res.setHeader('signature', signed.signature);
    res.setHeader('content-length', body.length);
    origWriteHead(res.statusCode);
    return origEnd(body);
  }) as typeof res.end;
}
