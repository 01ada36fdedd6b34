/**
 * The proof of possession sent with FetchWIT (proto/wimse/workload/v1/workload.proto): a compact
 * JWS, `typ: wit-request+jwt`, whose header carries the public key (`jwk`, with `alg`), with
 * claims `{sub, aud: "wimse:workload-api", iat, jti}`, signed by the private key the WIT will be
 * bound to. The server side is src/workload-api/proof.ts.
 */
import { randomBytes, sign } from 'node:crypto';
import { PROOF_AUDIENCE, PROOF_TYP } from '../workload-api/proof.ts';
import type { WorkloadKeyPair } from './keys.ts';

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');

export function createWitRequestProof(key: WorkloadKeyPair, workloadId: string, nowSec: number, jti = randomBytes(16).toString('base64url')): string {
  const header = { alg: key.alg, typ: PROOF_TYP, jwk: key.publicJwk };
  const claims = { sub: workloadId, aud: PROOF_AUDIENCE, iat: nowSec, jti };
  const signingInput = `${b64(header)}.${b64(claims)}`;
  const digest = key.alg === 'ES256' ? 'sha256' : key.alg === 'ES384' ? 'sha384' : null;
  // JWS ECDSA signatures are raw r||s (RFC 7518 §3.4), not DER.
  const sig = digest
    ? sign(digest, Buffer.from(signingInput), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
    : sign(null, Buffer.from(signingInput), key.privateKey);
  return `${signingInput}.${sig.toString('base64url')}`;
}
