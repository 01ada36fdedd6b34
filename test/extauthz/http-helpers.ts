/** Real HTTP(S) clients and recording applications on loopback, for the chain tests. */
import { request as httpRequest, createServer, type IncomingMessage, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

export type Pairs = Array<[string, string]>;

export function send(url: string, o: { method?: string; headers?: Pairs; body?: Buffer; tls?: { cert?: string; key?: string; ca: string; expect?: string } } = {}): Promise<Reply> {
  const u = new URL(url);
  // Array-form headers: Node adds no Host of its own then.
  const flat: string[] = ['host', u.host];
  for (const [k, v] of o.headers ?? []) flat.push(k, v);
  if (o.body) flat.push('content-length', String(o.body.length));
  return new Promise((resolve, reject) => {
    const onRes = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    };
    const base = { hostname: u.hostname, port: u.port, path: u.pathname + u.search, method: o.method ?? 'GET', headers: flat, agent: false as const };
    const req = o.tls
      ? httpsRequest(
          {
            ...base,
            ...(o.tls.cert ? { cert: o.tls.cert, key: o.tls.key } : {}),
            ca: o.tls.ca,
            // What the caller's Envoy checks of the callee: its workload identifier (URI SAN).
            checkServerIdentity: (_host, cert) =>
              o.tls!.expect && !(cert.subjectaltname ?? '').split(', ').includes(`URI:${o.tls!.expect}`) ? new Error('unexpected server identity') : undefined,
          },
          onRes,
        )
      : httpRequest(base, onRes);
    req.on('error', reject);
    req.end(o.body);
  });
}

export function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

/** An application that records what reached it and answers with `handler`. */
export async function app(seen: Seen[], handler: (s: Seen) => Promise<Reply>): Promise<{ port: number; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(s);
      handler(s).then(
        (r) => res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers }).end(r.body),
        (e) => res.writeHead(500).end(String(e)),
      );
    });
  });
  return { port: await listen(server), server };
}

