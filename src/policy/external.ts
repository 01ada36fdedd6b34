/**
 * An external PDP over HTTP (for operators who already run one, e.g. OPA's REST API behind a
 * small shim). We POST the decision input as JSON and expect `{"allow": boolean, "reason"?:
 * string}` back. Everything else denies (fail closed):
 *
 * - no answer (headers and whole body) within `timeoutMs` -> `pdp.timeout`;
 * - connection failure or a non-2xx status -> `pdp.error`;
 * - a body that is not that JSON, or larger than `maxBodyBytes` -> `pdp.malformed`;
 * - `allow` other than the JSON literal `true` -> `pdp.deny` (with the PDP's reason as detail).
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { ExternalPdp, ExternalRequest, ExternalVerdict } from './authorize.ts';

export interface HttpPdpOptions {
  readonly url: string;
  /** Default 200 ms. */
  readonly timeoutMs?: number;
  /** Default 64 KiB. */
  readonly maxBodyBytes?: number;
  /** Extra request headers (e.g. an Authorization for the PDP). */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface HttpPdp extends ExternalPdp {
  close(): void;
}

const MAX_DETAIL = 200;

export function createHttpPdp(opts: HttpPdpOptions): HttpPdp {
  let url: URL;
  try {
    url = new URL(opts.url);
  } catch {
    throw new TypeError('"url" must be an absolute http(s) URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError('"url" must be an http(s) URL');
  const timeoutMs = opts.timeoutMs ?? 200;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new TypeError('"timeoutMs" must be a positive integer');
  const maxBody = opts.maxBodyBytes ?? 64 * 1024;
  if (!Number.isInteger(maxBody) || maxBody <= 0) throw new TypeError('"maxBodyBytes" must be a positive integer');
  const https = url.protocol === 'https:';
  const agent = https ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  const send = https ? httpsRequest : httpRequest;

  const check = (req: ExternalRequest): Promise<ExternalVerdict> =>
    new Promise((resolve) => {
      const body = JSON.stringify({
        caller: req.caller,
        via: req.via,
        destination: req.destination,
        method: req.method,
        path: req.path,
        decisionId: req.decisionId,
        ...(req.transportPeer ? { transportPeer: req.transportPeer } : {}),
      });
      let done = false;
      let res: IncomingMessage | undefined;
      const finish = (v: ExternalVerdict): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        res?.destroy();
        r.destroy();
        resolve(v);
      };
      const timer = setTimeout(
        () => finish({ allow: false, reason: 'pdp.timeout', detail: `no answer within ${timeoutMs} ms` }),
        timeoutMs,
      );
      const r = send(
        url,
        {
          method: 'POST',
          agent,
          headers: {
            ...opts.headers,
            'content-type': 'application/json',
            accept: 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (response) => {
          res = response;
          const status = response.statusCode ?? 0;
          if (status < 200 || status > 299) return finish({ allow: false, reason: 'pdp.error', detail: `status ${status}` });
          const declared = Number(response.headers['content-length'] ?? 0);
          if (declared > maxBody) return finish(malformed(`body larger than ${maxBody} bytes`));
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (c: Buffer) => {
            size += c.length;
            if (size > maxBody) finish(malformed(`body larger than ${maxBody} bytes`));
            else chunks.push(c);
          });
          response.on('end', () => finish(verdictOf(Buffer.concat(chunks).toString('utf8'))));
          response.on('error', () => finish({ allow: false, reason: 'pdp.error', detail: 'response failed' }));
          response.on('close', () => finish({ allow: false, reason: 'pdp.error', detail: 'response cut short' }));
        },
      );
      r.on('error', (e: NodeJS.ErrnoException) =>
        finish({ allow: false, reason: 'pdp.error', detail: `request failed (${e.code ?? 'error'})` }),
      );
      r.end(body);
    });

  return { check, close: () => agent.destroy() };
}

const malformed = (detail: string): ExternalVerdict => ({ allow: false, reason: 'pdp.malformed', detail });

/** Parse the PDP's answer strictly. */
export function verdictOf(text: string): ExternalVerdict {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return malformed('body is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return malformed('body is not a JSON object');
  const o = v as Record<string, unknown>;
  if (typeof o.allow !== 'boolean') return malformed('"allow" must be a boolean');
  if (o.reason !== undefined && typeof o.reason !== 'string') return malformed('"reason" must be a string');
  if (o.allow) return { allow: true, reason: 'pdp.allow' };
  const why = typeof o.reason === 'string' ? o.reason.replace(/[^\x20-\x7e]/g, '?').slice(0, MAX_DETAIL) : '';
  return { allow: false, reason: 'pdp.deny', ...(why ? { detail: why } : {}) };
}
