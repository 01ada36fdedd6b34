/**
 * A node id from a verified TLS client certificate (`grpc.tls.nodeIdFromCertificate`), the way
 * SPIFFE-style node identities name a host (SPIRE's x509pop node attestation names an agent by
 * its certificate): the certificate carries a URI SAN under a configured prefix, and the rest of
 * that URI is the node id.
 *
 * The rule: exactly one URI SAN starts with the prefix (compared byte for byte), and what follows
 * the prefix is a valid node id (`NODE_ID`), taken as written (no percent-decoding). Anything else
 * names no node:
 * - `no_node_uri`: no URI SAN under the prefix (the certificate does not claim a node);
 * - `several_node_uris`: two or more (which one would be meant is not for the node to guess);
 * - `bad_node_id`: one, but the rest is not a node id (empty, too long, not printable ASCII);
 * - `unreadable`: the certificate's extensions could not be read.
 * The listener verified the certificate before it gets here (grpc-js requires and checks client
 * certificates against `grpc.tls.clientCaFile`); this only reads it.
 */
import type { PeerCertificate } from 'node:tls';
import { readCertExtensions } from '../authn/x509-extensions.ts';
import { NODE_ID } from './node-tokens.ts';

/** Why a certificate names no node. */
export type CertificateProblem = 'no_node_uri' | 'several_node_uris' | 'bad_node_id' | 'unreadable';

/** What a verified client certificate says about the node: its id, or why it names none (with the URI SANs under the prefix). */
export type CertificateNodeId =
  | { readonly ok: true; readonly nodeId: string }
  | { readonly ok: false; readonly problem: CertificateProblem; readonly uris: readonly string[] };

/** Longest accepted prefix. */
const MAX_PREFIX = 2048;

/**
 * Why `v` is not a usable URI prefix, or undefined: an absolute URI with a host, ending in `/`,
 * without query or fragment, its scheme and host in lower case (SANs are compared byte for byte,
 * and certificates carry them in lower case).
 */
export function uriPrefixProblem(v: string): string | undefined {
  const help = 'must be an absolute URI with a host, ending in / (for example spiffe://nodes.example.org/envoy/)';
  if (v.length > MAX_PREFIX || !/^[\x21-\x7e]+$/.test(v)) return `${help}, of at most ${MAX_PREFIX} printable ASCII characters`;
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]+)\/[^?#]*$/.exec(v);
  if (!m) return v.includes('?') || v.includes('#') ? `${help}, without query or fragment` : help;
  if (!v.endsWith('/')) return `${help}: the node id follows the last /`;
  if (m[1] !== m[1]!.toLowerCase() || m[2] !== m[2]!.toLowerCase()) return `${help}: write the scheme and host in lower case (SANs are compared byte for byte)`;
  try {
    new URL(v);
  } catch {
    return help;
  }
  return undefined;
}

/** The node id the URI SANs `uris` name under `uriPrefix` (the rule above). */
export function nodeIdFromUris(uris: readonly string[], uriPrefix: string): CertificateNodeId {
  const named = uris.filter((u) => u.startsWith(uriPrefix));
  if (named.length === 0) return { ok: false, problem: 'no_node_uri', uris: [] };
  if (named.length > 1) return { ok: false, problem: 'several_node_uris', uris: named };
  const nodeId = named[0]!.slice(uriPrefix.length);
  return NODE_ID.test(nodeId) ? { ok: true, nodeId } : { ok: false, problem: 'bad_node_id', uris: named };
}

/**
 * The mapping `authenticateCaller` applies to a verified client certificate
 * (`CallerAuthOptions.nodeIdFromCertificate`): its URI SANs, read from the DER, under `uriPrefix`.
 */
export function nodeIdFromCertificate(uriPrefix: string): (cert: PeerCertificate) => CertificateNodeId {
  const problem = uriPrefixProblem(uriPrefix);
  if (problem) throw new TypeError(`"uriPrefix" ${problem}`);
  return (cert) => {
    let uris: string[];
    try {
      uris = readCertExtensions(cert.raw).uriSans;
    } catch {
      return { ok: false, problem: 'unreadable', uris: [] };
    }
    return nodeIdFromUris(uris, uriPrefix);
  };
}
