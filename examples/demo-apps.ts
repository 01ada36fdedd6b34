/**
 * The demo's applications and its mTLS client. Each application listens on loopback behind its
 * sidecar, prints what its sidecar told it (`x-wimse-caller`, `x-wimse-auth`) and records it.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';

/** What reached an application, as its sidecar passed it on. */
export interface Seen {
  method: string;
  path: string;
  caller: string | undefined;
  auth: string | undefined;
  decisionId: string | undefined;
  /** `Content-Digest` as received (RFC 9530), when the request had one. */
  contentDigest: string | undefined;
  body: string;
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface App {
  readonly name: string;
  readonly port: number;
  readonly seen: Seen[];
  close(): Promise<void>;
}

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** Start application `name`; `handler` answers each request after it has been recorded. */
export async function startApp(name: string, handler: (s: Seen) => Promise<{ status: number; body: unknown }>, log: (line: string) => void): Promise<App> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = {
        method: req.method ?? '',
        path: req.url ?? '',
        caller: one(req.headers['x-wimse-caller']),
        auth: one(req.headers['x-wimse-auth']),
        decisionId: one(req.headers['x-wimse-decision-id']),
        contentDigest: one(req.headers['content-digest']),
        body: Buffer.concat(chunks).toString('utf8'),
      };
      seen.push(s);
      const body = s.body.length > 0 ? `  (${Buffer.byteLength(s.body)}-byte body${s.contentDigest ? `, content-digest ${s.contentDigest.split('=')[0]}` : ''})` : '';
      log(`  [${name} app] ${s.method} ${s.path}  x-wimse-caller=${s.caller ?? '-'}  x-wimse-auth=${s.auth ?? '-'}${body}`);
      handler(s).then(
        (r) => res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify(r.body)),
        (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String((e as Error).message ?? e)),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    name,
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * An HTTPS GET with a client certificate, as the caller's Envoy originates mTLS: its WIC from
 * SDS, the callee's certificate checked against the roots and its URI SAN against the workload
 * identifier the caller expects (`match_typed_subject_alt_names` in envoy/sidecar-caller.yaml).
 */
export function mtlsGet(url: string, tls: { certPem: string; keyPem: string; caPem: string; expectServer: string }): Promise<Reply> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        hostname: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method: 'GET',
        cert: tls.certPem,
        key: tls.keyPem,
        ca: tls.caPem,
        agent: false,
        checkServerIdentity: (_host, cert) =>
          (cert.subjectaltname ?? '').split(', ').includes(`URI:${tls.expectServer}`) ? undefined : new Error(`the server is not ${tls.expectServer}`),
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A denial as the PEP returns it: status and the problem document's `code`. */
export async function denialOf(res: Response | Reply): Promise<{ status: number; code: string }> {
  const body = res instanceof Response ? await res.text() : res.body;
  let code = '-';
  try {
    const doc = JSON.parse(body) as { code?: unknown };
    if (typeof doc.code === 'string') code = doc.code;
  } catch {
    // Not a problem document: no code to show.
  }
  return { status: res.status, code };
}

/** Whether `Content-Digest` carries a sha-256 that matches `body` (RFC 9530 §2). */
export function digestMatches(contentDigest: string | undefined, body: string): boolean {
  const want = `sha-256=:${createHash('sha256').update(body, 'utf8').digest('base64')}:`;
  return (contentDigest ?? '').split(/,\s*/).includes(want);
}
