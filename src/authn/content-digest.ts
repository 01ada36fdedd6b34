/**
 * Content-Digest (RFC 9530 §2): a Dictionary of algorithm -> Byte Sequence, computed over the
 * message content. The WIMSE HTTP-signature profile (draft-ietf-wimse-http-signature-07)
 * requires the recipient to recompute it over the content it received: a valid signature
 * over the header string alone proves nothing about the body.
 *
 * Supported algorithms: `sha-256` and `sha-512` (RFC 9530 §5, "standard"). Unknown algorithms
 * are ignored (RFC 9530 §2); insecure ones (`md5`, `sha`, ...) are treated as unknown. At least
 * one supported algorithm must be present, and every supported one present must match.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { AuthnError } from './errors.ts';
import { parseDictionary } from './httpsig/sf-parse.ts';
import { SfError } from './httpsig/sf-types.ts';

export const DIGEST_ALGORITHMS = ['sha-256', 'sha-512'] as const;
export type DigestAlgorithm = (typeof DIGEST_ALGORITHMS)[number];

const NODE_HASH: Record<DigestAlgorithm, { name: string; bytes: number }> = {
  'sha-256': { name: 'sha256', bytes: 32 },
  'sha-512': { name: 'sha512', bytes: 64 },
};

/** Longest accepted Content-Digest field value (all lines joined). */
export const CONTENT_DIGEST_MAX_LENGTH = 8192;

const isSupported = (alg: string): alg is DigestAlgorithm => (DIGEST_ALGORITHMS as readonly string[]).includes(alg);

export function digestOf(body: Uint8Array, alg: DigestAlgorithm): Buffer {
  return createHash(NODE_HASH[alg].name).update(body).digest();
}

/** The `Content-Digest` field value for `body`, e.g. `sha-256=:X48E9q...=:`. */
export function contentDigestValue(body: Uint8Array, algs: readonly DigestAlgorithm[] = ['sha-256']): string {
  if (algs.length === 0) throw new TypeError('"algs" must name at least one digest algorithm');
  return algs.map((a) => `${a}=:${digestOf(body, a).toString('base64')}:`).join(', ');
}

/**
 * Parse a Content-Digest value (field lines are joined with ", " first). Returns every member
 * whose value is a Byte Sequence, by algorithm name. Throws AuthnError `httpsig.digest_malformed`.
 */
export function parseContentDigest(fieldLines: string | readonly string[]): Map<string, Uint8Array> {
  const joined = typeof fieldLines === 'string' ? fieldLines : fieldLines.join(', ');
  let dict;
  try {
    dict = parseDictionary(joined, { maxLength: CONTENT_DIGEST_MAX_LENGTH, maxMembers: 32 });
  } catch (e) {
    if (e instanceof SfError) throw new AuthnError('httpsig.digest_malformed', 400, `Content-Digest is not a valid dictionary: ${e.message}`);
    throw e;
  }
  const out = new Map<string, Uint8Array>();
  for (const [alg, member] of dict) {
    // RFC 9530 §2: each value is a Byte Sequence.
    if (member.kind !== 'item' || member.value.type !== 'binary') {
      throw new AuthnError('httpsig.digest_malformed', 400, `Content-Digest member ${alg} is not a byte sequence`);
    }
    out.set(alg, member.value.value);
  }
  return out;
}

/**
 * Recompute the digest over the received `body` and compare. Returns the algorithms checked.
 * Throws AuthnError: `httpsig.digest_malformed`, `httpsig.digest_unsupported` (no supported
 * algorithm), `httpsig.digest_mismatch`.
 */
export function verifyContentDigest(fieldLines: string | readonly string[], body: Uint8Array): DigestAlgorithm[] {
  const members = parseContentDigest(fieldLines);
  const checked: DigestAlgorithm[] = [];
  for (const [alg, expected] of members) {
    if (!isSupported(alg)) continue;
    const actual = digestOf(body, alg);
    if (expected.length !== NODE_HASH[alg].bytes || !timingSafeEqual(actual, expected)) {
      throw new AuthnError('httpsig.digest_mismatch', 400, `Content-Digest ${alg} does not match the received body`);
    }
    checked.push(alg);
  }
  if (checked.length === 0) {
    throw new AuthnError('httpsig.digest_unsupported', 400, `Content-Digest carries no supported algorithm (${DIGEST_ALGORITHMS.join(', ')})`);
  }
  return checked;
}
