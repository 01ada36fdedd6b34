/**
 * The generic RFC 9421 engine: verify one labelled signature with a known key and algorithm
 * (§3.2), and create one (§3.1). No profile rules here: the WIMSE profile builds on these parts.
 */
import type { KeyObject } from 'node:crypto';
import { signBytes, verifyBytes, type Rfc9421Alg } from './algorithms.ts';
import type { ComponentId, ComponentOptions } from './components.ts';
import { httpsigError, type SignatureContext } from './message.ts';
import { buildSignatureBase, parseSignatureInputs, serializeSignatureParams, signatureBytes, type SignatureInput } from './signature-base.ts';
import { SfError, type Parameters } from './sf-types.ts';
import { serializeKey } from './sf-serialize.ts';

export interface MessageKey {
  /** Public key (or secret key for HMAC) to verify; private key (or secret) to sign. */
  key: KeyObject;
  alg: Rfc9421Alg;
}

export interface VerifiedMessageSignature {
  input: SignatureInput;
  base: string;
}

/**
 * Verify the signature labelled `label` (RFC 9421 §3.2). Throws AuthnError: `httpsig.missing`,
 * `httpsig.malformed`, `httpsig.component_missing`, `httpsig.alg_unsupported`,
 * `httpsig.bad_signature`.
 */
export function verifyMessageSignature(
  ctx: SignatureContext,
  label: string,
  key: MessageKey,
  opts?: ComponentOptions,
): VerifiedMessageSignature {
  const input = parseSignatureInputs(ctx.message.headers)?.get(label);
  if (!input) throw httpsigError('httpsig.missing', `no signature labelled ${label}`);
  return verifyInput(ctx, input, key, opts);
}

/** Verify an already selected Signature-Input member (`signature`: its Signature bytes, if already read). */
export function verifyInput(
  ctx: SignatureContext,
  input: SignatureInput,
  key: MessageKey,
  opts?: ComponentOptions,
  signature?: Uint8Array,
): VerifiedMessageSignature {
  if (input.problem) throw input.problem;
  // §3.2 step 6: an `alg` parameter, when present, must name the algorithm the key is used with.
  const alg = input.params.get('alg');
  if (alg !== undefined && (alg.type !== 'string' || alg.value !== key.alg)) {
    throw httpsigError('httpsig.alg_unsupported', 'the alg parameter does not match the key');
  }
  const base = buildSignatureBase(ctx, input.components, input.raw, opts);
  const sig = signature ?? signatureBytes(ctx.message.headers, input.label);
  if (!verifyBytes(key.alg, key.key, Buffer.from(base, 'utf8'), sig)) {
    throw httpsigError('httpsig.bad_signature', 'the signature does not verify');
  }
  return { input, base };
}

export interface SignMessageInput {
  label: string;
  components: readonly ComponentId[];
  /** Signature parameters in the order they are to be serialized. */
  params: Parameters;
  key: MessageKey;
  opts?: ComponentOptions;
}

export interface MessageSignature {
  label: string;
  /** The Signature-Input member, `label=(...);params`. */
  signatureInput: string;
  /** The Signature member, `label=:base64:`. */
  signature: string;
  base: string;
}

/** Create a signature (RFC 9421 §3.1). Misuse throws TypeError; absent components AuthnError. */
export function signMessage(ctx: SignatureContext, input: SignMessageInput): MessageSignature {
  try {
    serializeKey(input.label);
  } catch (e) {
    if (e instanceof SfError) throw new TypeError(`"label" is not a valid key: ${input.label}`);
    throw e;
  }
  const paramsValue = serializeSignatureParams(input.components, input.params);
  const base = buildSignatureBase(ctx, input.components, paramsValue, input.opts);
  const sig = signBytes(input.key.alg, input.key.key, Buffer.from(base, 'utf8'));
  return {
    label: input.label,
    signatureInput: `${input.label}=${paramsValue}`,
    signature: `${input.label}=:${sig.toString('base64')}:`,
    base,
  };
}
