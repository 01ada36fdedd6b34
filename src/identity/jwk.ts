/**
 * Public JWK checks shared by issuance (a workload hands us its key) and verification
 * (a WIT's `cnf.jwk`). Only asymmetric signature algorithms are ever accepted.
 */

/** Algorithms a workload key may carry. `EdDSA` and `Ed25519` (RFC 9864) name the same curve. */
export const SIGNING_ALGS = ['ES256', 'ES384', 'EdDSA', 'Ed25519'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

export interface PublicJwk {
  kty: string;
  crv?: string;
  x?: string;
  y?: string;
  n?: string;
  e?: string;
  alg?: string;
  kid?: string;
  use?: string;
  [k: string]: unknown;
}

/** Members that only a private (or symmetric) key has. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

export type JwkProblem =
  | 'not_an_object'
  | 'private_key'
  | 'alg_missing'
  | 'alg_not_allowed'
  | 'kty_mismatch'
  | 'crv_mismatch'
  | 'malformed';

const B64URL = /^[A-Za-z0-9_-]+$/;

const expectations: Record<SigningAlg, { kty: string; crv: string; coordBytes: number; hasY: boolean }> = {
  ES256: { kty: 'EC', crv: 'P-256', coordBytes: 32, hasY: true },
  ES384: { kty: 'EC', crv: 'P-384', coordBytes: 48, hasY: true },
  EdDSA: { kty: 'OKP', crv: 'Ed25519', coordBytes: 32, hasY: false },
  Ed25519: { kty: 'OKP', crv: 'Ed25519', coordBytes: 32, hasY: false },
};

export const isSigningAlg = (alg: unknown): alg is SigningAlg =>
  typeof alg === 'string' && (SIGNING_ALGS as readonly string[]).includes(alg);

const b64urlLength = (s: string): number => Buffer.from(s, 'base64url').length;

/**
 * Check that `jwk` is a public key usable with its own `alg` (or `alg` given separately).
 * Returns undefined when it is, or the first problem found.
 */
export function checkPublicJwk(jwk: unknown, opts: { requireAlg?: boolean; allowedAlgs?: readonly string[] } = {}): JwkProblem | undefined {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return 'not_an_object';
  const k = jwk as Record<string, unknown>;
  for (const m of PRIVATE_MEMBERS) if (m in k) return 'private_key';
  const alg = k.alg;
  if (alg === undefined) {
    if (opts.requireAlg ?? true) return 'alg_missing';
    return checkShape(k, undefined);
  }
  if (!isSigningAlg(alg)) return 'alg_not_allowed';
  if (opts.allowedAlgs && !opts.allowedAlgs.includes(alg)) return 'alg_not_allowed';
  return checkShape(k, alg);
}

function checkShape(k: Record<string, unknown>, alg: SigningAlg | undefined): JwkProblem | undefined {
  if (typeof k.kty !== 'string') return 'malformed';
  if (alg === undefined) {
    // Without an alg, accept only the shapes we know.
    const match = Object.values(expectations).find((e) => e.kty === k.kty && e.crv === k.crv);
    if (!match) return 'malformed';
    return checkCoords(k, match);
  }
  const e = expectations[alg];
  if (k.kty !== e.kty) return 'kty_mismatch';
  if (k.crv !== e.crv) return 'crv_mismatch';
  return checkCoords(k, e);
}

function checkCoords(k: Record<string, unknown>, e: { coordBytes: number; hasY: boolean }): JwkProblem | undefined {
  if (typeof k.x !== 'string' || !B64URL.test(k.x) || b64urlLength(k.x) !== e.coordBytes) return 'malformed';
  if (e.hasY) {
    if (typeof k.y !== 'string' || !B64URL.test(k.y) || b64urlLength(k.y) !== e.coordBytes) return 'malformed';
  } else if ('y' in k) return 'malformed';
  return undefined;
}

/** The members that identify a public key (RFC 7638 order), for thumbprints and comparisons. */
export function publicMembers(jwk: PublicJwk): PublicJwk {
  return jwk.kty === 'EC'
    ? { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }
    : { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
}
