/**
 * HTTP Message Signatures (RFC 9421) and their WIMSE profile (draft-ietf-wimse-http-signature-07).
 * See docs/httpsig.md for what is verified, in which order, the defaults and the error codes.
 */
export {
  hasWimseSignature,
  verifyWimseRequestSignature,
  type HttpSigVerifyOptions,
  type VerifiedHttpSignature,
} from './wimse-verify.ts';
export {
  verifyWimseResponseSignature,
  type HttpSigResponseVerifyOptions,
  type WimseRequestContext,
} from './wimse-response.ts';
export {
  signWimseRequest,
  signWimseResponse,
  DEFAULT_SIGNATURE_TTL_SEC,
  type SignWimseRequestInput,
  type SignWimseResponseInput,
  type SignedWimseMessage,
  type WimseSigningKey,
  type HeaderInput,
} from './wimse-sign.ts';
export { DEFAULT_MAX_SKEW_SEC, DEFAULT_MAX_WINDOW_SEC, MAX_NONCE_LENGTH, WIMSE_TAG } from './wimse-profile.ts';
export { importWimseKey, type ImportedKey } from './wimse-key.ts';

// The generic RFC 9421 engine.
export { verifyMessageSignature, verifyInput, signMessage, type MessageKey, type MessageSignature, type SignMessageInput } from './engine.ts';
export {
  buildSignatureBase,
  parseSignatureInputs,
  signatureBytes,
  serializeSignatureParams,
  type SignatureInput,
} from './signature-base.ts';
export { component, componentFromItem, componentValue, KNOWN_SF_TYPES, type ComponentId, type ComponentOptions, type SfKind } from './components.ts';
export { RFC9421_ALGS, isRfc9421Alg, rfcAlgForJws, signBytes, verifyBytes, keyFitsAlg, type Rfc9421Alg } from './algorithms.ts';
export type { HeaderMap, HttpMessage, HttpRequestMessage, HttpResponseMessage, SignatureContext } from './message.ts';

// RFC 8941 structured fields.
export * from './sf-types.ts';
export { parseDictionary, parseDictionaryWithRaw, parseList, parseItem, SF_MAX_LENGTH, SF_MAX_MEMBERS, type SfParseLimits, type DictionaryWithRaw } from './sf-parse.ts';
export {
  serializeBareItem,
  serializeDictionary,
  serializeInnerList,
  serializeItem,
  serializeKey,
  serializeList,
  serializeMember,
  serializeParameters,
} from './sf-serialize.ts';
