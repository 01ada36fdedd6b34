/**
 * From a node:http request to the normalized AuthnRequest (src/authn/request.ts): method, the
 * raw path and query exactly as received, header lines as received, the buffered body, and the
 * TLS peer chain when the server terminates mutual TLS itself.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket, PeerCertificate, DetailedPeerCertificate } from 'node:tls';
import { derToPem } from '../identity/trust-bundle.ts';
import { headersFrom, type AuthnRequest, type TransportPeer } from '../authn/request.ts';

export class BodyTooLarge extends Error {
  override readonly name = 'BodyTooLarge';
}

/** Read the whole body, refusing more than `maxBytes` (checked on Content-Length and on the bytes). */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.reject(new BodyTooLarge('body too large'));
  // Already read by an earlier handler: no bytes to check a Content-Digest against. The core
  // then refuses a signed body (fail closed) rather than trusting an unseen one.
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > maxBytes) {
        done = true;
        req.pause();
        reject(new BodyTooLarge('body too large'));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!done) {
        done = true;
        resolve(Buffer.concat(chunks));
      }
    });
    req.on('error', (e) => {
      if (!done) {
        done = true;
        reject(e);
      }
    });
  });
}

/**
 * `scheme`: what clients used to reach this service (for signatures covering `@scheme` or
 * `@target-uri`); default `https` when this server terminates TLS itself, else `http`. The
 * authority is left to the core, which takes the request's single `Host` (or `:authority`) line.
 */
export function toAuthnRequest(req: IncomingMessage, body: Uint8Array, scheme?: 'http' | 'https'): AuthnRequest {
  const target = req.url ?? '/';
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) pairs.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
  const peer = tlsPeer(req);
  return {
    method: (req.method ?? 'GET').toUpperCase(),
    scheme: scheme ?? ((req.socket as Partial<TLSSocket>).encrypted ? 'https' : 'http'),
    path: rawPath === '' ? '/' : rawPath,
    query: q < 0 ? '' : target.slice(q),
    headers: headersFrom(pairs),
    ...(body.length > 0 ? { body } : {}),
    ...(peer ? { peer } : {}),
  };
}

/** The client certificate chain, when this server terminates TLS and the client presented one. */
function tlsPeer(req: IncomingMessage): TransportPeer | undefined {
  const sock = req.socket as Partial<TLSSocket>;
  if (!sock.encrypted || typeof sock.getPeerCertificate !== 'function') return undefined;
  let cert: PeerCertificate | DetailedPeerCertificate = sock.getPeerCertificate(true);
  if (!cert || !cert.raw) return undefined;
  const pems: string[] = [];
  const certs: PeerCertificate[] = [];
  const seen = new Set<string>();
  while (cert && cert.raw && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    pems.push(derToPem(cert.raw));
    certs.push(cert);
    cert = (cert as DetailedPeerCertificate).issuerCertificate;
  }
  // The leaf and intermediates only: a self-issued root comes from the bundle, not the peer.
  const last = certs[certs.length - 1];
  if (certs.length > 1 && last && JSON.stringify(last.subject) === JSON.stringify(last.issuer)) pems.pop();
  return { certificateChainPem: pems.join('') };
}
