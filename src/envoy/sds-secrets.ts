/**
 * Building Envoy `Secret` resources
 * (https://www.envoyproxy.io/docs/envoy/latest/configuration/security/secret) from our types,
 * validated and encoded before anything is written to a stream (a message that fails to serialize
 * inside a stream write kills the stream).
 *
 * Resource names (docs/sds.md):
 * - `default`: the node's first registered identity, as `tls_certificate` (chain + key);
 * - a workload identifier: that identity, when the node is registered for it;
 * - `ROOTCA`: our own trust domain's roots as `validation_context.trusted_ca`;
 * - `ALL`: every trusted trust domain, federated ones included, as a SPIFFE certificate
 *   validator config, trust domains sorted by name.
 */
import { createHash } from 'node:crypto';
import type { Checked } from '../identity/result.ts';
import { rootsPem, type TrustBundleSet, type TrustDomainBundle } from '../identity/trust-bundle.ts';
import { MESSAGE, SPIFFE_VALIDATOR_NAME, TYPE_URL, messageType } from './protos.ts';
import { validateMessage } from './validate-config.ts';
import type { IssuedLeaf } from './sds-source.ts';

export const SECRET_DEFAULT = 'default';
export const SECRET_ROOTCA = 'ROOTCA';
export const SECRET_ALL = 'ALL';

/** A Secret ready to put in a DiscoveryResponse. */
export interface BuiltSecret {
  readonly name: string;
  /** The Any: exact type URL and the encoded Secret. */
  readonly any: { readonly type_url: string; readonly value: Buffer };
  /** Digest of the encoded bytes; equal digests mean equal content. */
  readonly digest: string;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** `tls_certificate` with inline PEM chain and key. */
export function tlsCertificateSecret(name: string, leaf: Pick<IssuedLeaf, 'chainPem' | 'keyPem'>): Checked<BuiltSecret> {
  return encodeSecret({
    name,
    tls_certificate: {
      certificate_chain: { inline_bytes: b64(leaf.chainPem) },
      private_key: { inline_bytes: b64(leaf.keyPem) },
    },
  });
}

/** `validation_context.trusted_ca` with the PEM roots of one trust domain. */
export function rootCaSecret(name: string, bundle: TrustDomainBundle | undefined): Checked<BuiltSecret> {
  if (!bundle || bundle.x509Authorities.length === 0)
    return { ok: false, errors: [`${name}: no X.509 roots for our trust domain`] };
  return encodeSecret({ name, validation_context: { trusted_ca: { inline_bytes: b64(rootsPem(bundle)) } } });
}

/** A SPIFFE certificate validator config over every trust domain that has X.509 roots. */
export function spiffeValidatorSecret(name: string, bundles: TrustBundleSet): Checked<BuiltSecret> {
  const trust_domains = [...bundles.keys()]
    .sort()
    .map((td) => bundles.get(td)!)
    .filter((b) => b.x509Authorities.length > 0)
    .map((b) => ({ name: b.trustDomain, trust_bundle: { inline_bytes: b64(rootsPem(b)) } }));
  // The validator needs at least one trust domain (PGV min_items: 1).
  if (trust_domains.length === 0) return { ok: false, errors: [`${name}: no trust domain has X.509 roots`] };
  return encodeSecret({
    name,
    validation_context: {
      custom_validator_config: {
        name: SPIFFE_VALIDATOR_NAME,
        typed_config: { '@type': TYPE_URL.spiffeValidatorConfig, trust_domains },
      },
    },
  });
}

/** Validate the JSON form strictly, then encode. */
export function encodeSecret(json: Record<string, unknown>): Checked<BuiltSecret> {
  const checked = validateMessage(MESSAGE.secret, json);
  if (!checked.ok) return checked;
  try {
    const type = messageType(MESSAGE.secret);
    const value = Buffer.from(type.encode(type.fromObject(json)).finish());
    const digest = createHash('sha256').update(value).digest('base64url').slice(0, 22);
    return { ok: true, value: { name: String(json.name), any: { type_url: TYPE_URL.secret, value }, digest } };
  } catch (e) {
    return { ok: false, errors: [`encoding failed: ${(e as Error).message}`] };
  }
}

/** Decode a Secret Any (tests and diagnostics). */
export function decodeSecret(any: { type_url: string; value: Uint8Array }): Record<string, any> {
  if (any.type_url !== TYPE_URL.secret) throw new Error(`unexpected type URL ${any.type_url}`);
  const type = messageType(MESSAGE.secret);
  return type.toObject(type.decode(any.value), { bytes: Buffer, longs: String, enums: String }) as Record<string, any>;
}
