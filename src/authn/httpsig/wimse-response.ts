/**
 * Verifying a response's WIMSE HTTP message signature, on the client side
 * (draft-ietf-wimse-http-signature-07).
 *
 * - A signed response is always validated, including `wimse-req-nonce` == the request's nonce.
 * - A response with no WIMSE signature is `httpsig.response_unsigned` when the request carried
 *   `wimse-sign-response` (or the client requires signing); otherwise it is accepted as unsigned
 *   (undefined is returned: stripping cannot be detected when signing was not asked for).
 * Order: parse -> select by tag -> parameters (incl. wimse-req-nonce) -> coverage -> window
 *   -> signature -> Content-Digest over the body -> replay.
 */
import type { PublicJwk } from '../../identity/jwk.ts';
import type { ReplayGuard } from '../replay.ts';
import { verifyInput } from './engine.ts';
import { httpsigError, type HttpRequestMessage, type HttpResponseMessage } from './message.ts';
import { signatureBytes } from './signature-base.ts';
import type { VerifiedHttpSignature } from './wimse-verify.ts';
import { importWimseKey } from './wimse-key.ts';
import {
  RESPONSE_FIELDS_IF_PRESENT,
  RESPONSE_REQUIRED,
  checkCoverage,
  checkDigestOverBody,
  checkDigestPresent,
  checkWimseParams,
  checkWindow,
  checkWindowOptions,
  guarded,
  selectWimseSignature,
  stringParam,
} from './wimse-profile.ts';

/** What the client knows about the request this response answers. */
export interface WimseRequestContext {
  /** The request as it was signed: method, path, query (and headers, for `;req` fields). */
  request: HttpRequestMessage;
  /** The `nonce` of the request's signature. */
  nonce: string;
  /** The request carried `wimse-sign-response`. */
  signResponse: boolean;
}

export interface HttpSigResponseVerifyOptions {
  nowSec: number;
  maxSkewSec?: number;
  maxWindowSec?: number;
  /** Client policy: require a signed response even when the request did not ask for one. */
  requireSigned?: boolean;
  /** Optional replay cache for response nonces. */
  replay?: ReplayGuard;
}

/**
 * Verify the response signature with the server's key (its WIT's `cnf.jwk` and `alg`).
 * Returns undefined for an acceptable unsigned response. Throws AuthnError (`httpsig.*`).
 */
export function verifyWimseResponseSignature(
  res: HttpResponseMessage,
  key: { jwk: PublicJwk; alg: string },
  ctx: WimseRequestContext,
  opts: HttpSigResponseVerifyOptions,
): VerifiedHttpSignature | undefined {
  const window = checkWindowOptions(opts);
  if (typeof key !== 'object' || key === null) throw new TypeError('"key" must be { jwk, alg }');
  if (typeof ctx?.nonce !== 'string' || ctx.nonce === '') throw new TypeError('"ctx.nonce" must be the request nonce');
  return guarded(() => {
    const input = selectWimseSignature(res);
    if (!input) {
      // §4.6: the client MUST reject an unsigned response if it sent wimse-sign-response.
      if (ctx.signResponse || opts.requireSigned) throw httpsigError('httpsig.response_unsigned', 'the response is not signed');
      return undefined;
    }
    const signature = signatureBytes(res.headers, input.label);

    const params = checkWimseParams(input, ['wimse-req-nonce']);
    // §4.3: the response names the request it answers.
    if (stringParam(input, 'wimse-req-nonce') !== ctx.nonce) {
      throw httpsigError('httpsig.req_nonce_mismatch', 'wimse-req-nonce does not match the request nonce');
    }
    checkCoverage(input, res, RESPONSE_REQUIRED, RESPONSE_FIELDS_IF_PRESENT);
    checkDigestPresent(res);
    checkWindow(params, window);

    const k = importWimseKey(key.jwk, key.alg);
    verifyInput({ message: res, request: ctx.request }, input, k, undefined, signature);
    const digestAlgorithms = checkDigestOverBody(res);

    if (opts.replay && !opts.replay.checkAndStore(`httpsig:${params.nonce}`, params.expires + window.maxSkewSec, window.nowSec)) {
      throw httpsigError('httpsig.nonce_replay', 'the nonce was already used');
    }
    return {
      label: input.label,
      nonce: params.nonce,
      created: params.created,
      expires: params.expires,
      signResponse: false,
      covered: input.components.map((c) => c.id),
      alg: k.jwsAlg,
      digestAlgorithms,
    };
  });
}
