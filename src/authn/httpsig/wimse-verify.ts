/**
 * Verifying a request's WIMSE HTTP message signature (draft-ietf-wimse-http-signature-07).
 *
 * The caller has already validated the WIT (§4.5: the WIT first) and passes its `cnf.jwk` and
 * `alg`. Checks run in a fixed order, each failure one AuthnError with status 400:
 *   parse -> select by tag -> parameters -> coverage -> time window -> audience -> signature
 *   -> Content-Digest over the body -> nonce replay.
 * The nonce is recorded only after the signature verified, so forged messages cannot burn nonces.
 */
import type { PublicJwk } from '../../identity/jwk.ts';
import type { AuthnRequest } from '../request.ts';
import type { ReplayGuard } from '../replay.ts';
import type { DigestAlgorithm } from '../content-digest.ts';
import { verifyInput } from './engine.ts';
import { httpsigError, type HttpRequestMessage } from './message.ts';
import { parseSignatureInputs, signatureBytes } from './signature-base.ts';
import type { BareItem } from './sf-types.ts';
import { importWimseKey } from './wimse-key.ts';
import {
  REQUEST_FIELDS_IF_PRESENT,
  REQUEST_REQUIRED,
  WIMSE_TAG,
  checkCoverage,
  checkNonce,
  checkDigestOverBody,
  checkDigestPresent,
  checkWimseParams,
  checkWindow,
  checkWindowOptions,
  guarded,
  selectWimseSignature,
  stringParam,
} from './wimse-profile.ts';

export interface HttpSigVerifyOptions {
  /** Accepted `wimse-aud` values for this destination (trusted configuration, never `Host`). */
  audiences: readonly string[];
  /** Verification time, seconds since the epoch. */
  nowSec: number;
  /** Allowed clock skew in seconds. Default 60. */
  maxSkewSec?: number;
  /** Longest accepted `expires - created`, seconds. Default 300. */
  maxWindowSec?: number;
  /** Nonce replay cache; nonces are rejected on reuse regardless of sender. */
  replay?: ReplayGuard;
}

export interface VerifiedHttpSignature {
  label: string;
  nonce: string;
  created: number;
  expires: number;
  /** The request asked for a signed response (`wimse-sign-response`). */
  signResponse: boolean;
  /** Covered component identifiers, in order, e.g. `"@method"`. */
  covered: string[];
  /** The JWS algorithm the signature was verified with. */
  alg: string;
  /** The `wimse-aud` value (requests only). */
  audience?: string;
  /** Content-Digest algorithms checked against the body (empty when there is no body). */
  digestAlgorithms: DigestAlgorithm[];
}

/** True if the request carries a Signature-Input member tagged `wimse-workload-to-workload`. */
export function hasWimseSignature(req: AuthnRequest): boolean {
  try {
    const inputs = parseSignatureInputs(req.headers);
    if (!inputs) return false;
    for (const input of inputs.values()) {
      const tag = input.params.get('tag');
      if ((tag?.type === 'string' || tag?.type === 'token') && tag.value === WIMSE_TAG) return true;
    }
    return false;
  } catch {
    // Unparseable: report it as present when it mentions the tag, so that the verifier runs and
    // answers with the precise error instead of the request being treated as unsigned.
    return (req.headers.get('signature-input') ?? []).some((v) => typeof v === 'string' && v.includes(WIMSE_TAG));
  }
}

/**
 * Verify the request's WIMSE HTTP message signature with the caller's key (the WIT's `cnf.jwk`,
 * whose `alg` is the algorithm). Throws AuthnError (`httpsig.*`, status 400); bad options throw
 * TypeError.
 */
export function verifyWimseRequestSignature(
  req: AuthnRequest | HttpRequestMessage,
  key: { jwk: PublicJwk; alg: string },
  opts: HttpSigVerifyOptions,
): VerifiedHttpSignature {
  const window = checkWindowOptions(opts);
  if (typeof key !== 'object' || key === null) throw new TypeError('"key" must be { jwk, alg }');
  if (!Array.isArray(opts.audiences) || opts.audiences.length === 0 || !opts.audiences.every((a) => typeof a === 'string' && a !== '')) {
    throw new TypeError('"audiences" must be a non-empty list of non-empty strings');
  }
  return guarded(() => {
    // Parse and select (§4.4).
    const input = selectWimseSignature(req);
    if (!input) throw httpsigError('httpsig.missing', 'no signature is tagged wimse-workload-to-workload');
    const signature = signatureBytes(req.headers, input.label);

    // Parameters (§4.3).
    const params = checkWimseParams(input, ['wimse-aud']);
    const audience = stringParam(input, 'wimse-aud');
    const signResponse = signResponseParam(input.params.get('wimse-sign-response'));

    // Coverage (§4.1), including Content-Digest for a body.
    checkCoverage(input, req, REQUEST_REQUIRED, REQUEST_FIELDS_IF_PRESENT);
    checkDigestPresent(req);

    // Time window, then audience from trusted configuration only (§4.3).
    checkWindow(params, window);
    if (!opts.audiences.includes(audience)) throw httpsigError('httpsig.aud_mismatch', 'wimse-aud is not an audience of this service');

    // Signature with cnf.jwk; the algorithm is cnf.jwk.alg (RFC 9421 §3.3.7).
    const k = importWimseKey(key.jwk, key.alg);
    verifyInput({ message: req }, input, k, undefined, signature);

    // The body against the (now authenticated) Content-Digest (§4.1).
    const digestAlgorithms = checkDigestOverBody(req);

    // Replay (§4.5): nonces are unique regardless of sender; recorded only once verified.
    checkNonce(opts.replay, params, window);
    return {
      label: input.label,
      nonce: params.nonce,
      created: params.created,
      expires: params.expires,
      signResponse,
      covered: input.components.map((c) => c.id),
      alg: k.jwsAlg,
      audience,
      digestAlgorithms,
    };
  });
}

/** `wimse-sign-response` is an sf-boolean; absent means false. */
function signResponseParam(v: BareItem | undefined): boolean {
  if (v === undefined) return false;
  if (v.type !== 'boolean') throw httpsigError('httpsig.malformed', 'wimse-sign-response must be a boolean');
  return v.value;
}
