/**
 * RFC 9421 §2.5: the signature base, and §4: the Signature-Input / Signature fields.
 *
 * The `"@signature-params"` line reuses the Signature-Input member value exactly as received
 * (RFC 9421 §2.3): re-serializing it could change bytes the signer signed.
 */
import { AuthnError } from '../errors.ts';
import { componentFromItem, componentValue, type ComponentId, type ComponentOptions } from './components.ts';
import { fieldLines, httpsigError, type HeaderMap, type SignatureContext } from './message.ts';
import { parseDictionaryWithRaw, type DictionaryWithRaw } from './sf-parse.ts';
import { serializeInnerList } from './sf-serialize.ts';
import { SfError, type Parameters } from './sf-types.ts';

/** Longest accepted Signature-Input or Signature value (all lines joined). */
export const SIGNATURE_FIELD_MAX_LENGTH = 8192;
/** Most signatures per message, and most covered components per signature. */
export const MAX_SIGNATURES = 16;
export const MAX_COMPONENTS = 64;

/** One member of Signature-Input. */
export interface SignatureInput {
  readonly label: string;
  readonly components: readonly ComponentId[];
  readonly params: Parameters;
  /** The member value exactly as received: the value of the `"@signature-params"` line. */
  readonly raw: string;
  /** Why this member cannot be verified, if it cannot (thrown when it is selected). */
  readonly problem?: AuthnError;
}

/**
 * Build the signature base. `signatureParams` is the `"@signature-params"` value (the received
 * member text when verifying). Duplicate components and `@signature-params` itself are refused.
 */
export function buildSignatureBase(
  ctx: SignatureContext,
  components: readonly ComponentId[],
  signatureParams: string,
  opts?: ComponentOptions,
): string {
  if (components.length > MAX_COMPONENTS) throw httpsigError('httpsig.malformed', 'too many covered components');
  const seen = new Set<string>();
  let base = '';
  for (const c of components) {
    // §2.5 step 2.1: a component identifier appears at most once.
    if (seen.has(c.id)) throw httpsigError('httpsig.malformed', `duplicate covered component ${c.id}`);
    seen.add(c.id);
    base += `${c.id}: ${componentValue(c, ctx, opts)}\n`;
  }
  // §2.5 step 3: the last line, with no trailing newline.
  return `${base}"@signature-params": ${signatureParams}`;
}

function readField(headers: HeaderMap, name: string): DictionaryWithRaw | undefined {
  const lines = fieldLines(headers, name);
  if (!lines) return undefined;
  const joined = lines.join(', ');
  try {
    return parseDictionaryWithRaw(joined, { maxLength: SIGNATURE_FIELD_MAX_LENGTH, maxMembers: MAX_SIGNATURES });
  } catch (e) {
    if (e instanceof SfError) throw httpsigError('httpsig.malformed', `${name} is not a valid dictionary: ${e.message}`);
    throw e;
  }
}

/**
 * All Signature-Input members with their covered components. A field that is not a valid
 * Dictionary throws `httpsig.malformed`; a member that is not a valid signature description
 * (not an inner list, an unknown or duplicate component) is kept with its `problem`, which is
 * thrown only if that signature is the one being verified (RFC 9421 §3.2: a verifier may ignore
 * signatures it does not use).
 */
export function parseSignatureInputs(headers: HeaderMap): Map<string, SignatureInput> | undefined {
  const field = readField(headers, 'signature-input');
  if (!field) return undefined;
  const out = new Map<string, SignatureInput>();
  for (const [label, member] of field.dict) {
    const raw = field.raw.get(label) as string;
    try {
      // §4.1: each member is an Inner List of component identifiers with parameters.
      if (member.kind !== 'inner-list') throw httpsigError('httpsig.malformed', `Signature-Input ${label} is not an inner list`);
      if (member.items.length > MAX_COMPONENTS) throw httpsigError('httpsig.malformed', 'too many covered components');
      const components = member.items.map(componentFromItem);
      // §2.5 step 2.1 / §3.2: a component identifier appears at most once.
      const ids = new Set(components.map((c) => c.id));
      if (ids.size !== components.length) throw httpsigError('httpsig.malformed', `Signature-Input ${label} covers a component twice`);
      out.set(label, { label, components, params: member.params, raw });
    } catch (e) {
      if (!(e instanceof AuthnError)) throw e;
      out.set(label, { label, components: [], params: member.params, raw, problem: e });
    }
  }
  return out;
}

/** The Signature member for `label` as bytes. Throws `httpsig.malformed`. */
export function signatureBytes(headers: HeaderMap, label: string): Uint8Array {
  const field = readField(headers, 'signature');
  const member = field?.dict.get(label);
  if (!member) throw httpsigError('httpsig.malformed', `no Signature member for label ${label}`);
  // §4.2: each member is a Byte Sequence.
  if (member.kind !== 'item' || member.value.type !== 'binary') {
    throw httpsigError('httpsig.malformed', `Signature ${label} is not a byte sequence`);
  }
  return member.value.value;
}

/** The Signature-Input member value for `components` + `params`, as a signer writes it. */
export function serializeSignatureParams(components: readonly ComponentId[], params: Parameters): string {
  try {
    return serializeInnerList({
      kind: 'inner-list',
      items: components.map((c) => ({ kind: 'item', value: { type: 'string', value: c.name }, params: c.params })),
      params,
    });
  } catch (e) {
    if (e instanceof SfError) throw new TypeError(`signature parameters cannot be serialized: ${e.message}`);
    throw e;
  }
}
