/**
 * Encoding of StreamSecrets responses, once per distinct content rather than once per stream.
 *
 * A DiscoveryResponse differs between streams only by its nonce. Protobuf lets fields appear in
 * any order and a message is the concatenation of its fields, so the response is encoded once
 * without the nonce (by the proto-loader serializer, inside a try: a message that fails to
 * encode is never written) and each stream appends its own `nonce` field (field 5,
 * length-delimited).
 */
import { envoyProtos, TYPE_URL } from './protos.ts';
import type { BuiltSecret } from './sds-secrets.ts';

const NONCE_FIELD_TAG = (5 << 3) | 2;
const CACHE_MAX = 64;

export class ResponseEncoder {
  readonly #cache = new Map<string, { version: string; prefix: Buffer }>();
  constructor(private readonly controlPlaneId?: string) {}

  /** The response bytes for `secrets` with `nonce`, and its version. Throws if encoding fails. */
  encode(secrets: readonly BuiltSecret[], version: string, nonce: string): Buffer {
    const key = `${version}\0${secrets.map((s) => `${s.name}\0${s.digest}`).join('\0')}`;
    let hit = this.#cache.get(key);
    if (!hit) {
      const prefix = envoyProtos().SecretDiscoveryService.StreamSecrets!.responseSerialize({
        version_info: version,
        resources: secrets.map((s) => s.any),
        type_url: TYPE_URL.secret,
        ...(this.controlPlaneId ? { control_plane: { identifier: this.controlPlaneId } } : {}),
      });
      hit = { version, prefix };
      if (this.#cache.size >= CACHE_MAX) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(key, hit);
    }
    return Buffer.concat([hit.prefix, nonceField(nonce)]);
  }
}

function nonceField(nonce: string): Buffer {
  const bytes = Buffer.from(nonce, 'utf8');
  const len: number[] = [];
  let n = bytes.length;
  while (n > 0x7f) {
    len.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  len.push(n);
  return Buffer.concat([Buffer.from([NONCE_FIELD_TAG, ...len]), bytes]);
}
