/**
 * Test issuers and clients: real keys, real signatures. Well-formed WITs are minted with jose
 * (an independent JOSE implementation); odd ones (duplicate members, raw header bytes) with
 * node:crypto over exactly the bytes given.
 */
import { createHmac, generateKeyPairSync, randomBytes, sign as cryptoSign, createPrivateKey, type KeyObject } from 'node:crypto';
import { SignJWT, importJWK } from 'jose';
import { createWpt, headersFrom, type AuthnRequest, type TransportPeer } from '../../src/authn/index.ts';
import { Authenticator, type AuthenticatorOptions } from '../../src/authn/authenticator.ts';
import { WIMSE_TAG, component, rfcAlgForJws, signMessage, type Parameters as SigParameters } from '../../src/authn/httpsig/index.ts';
import { ManualClock } from '../../src/identity/clock.ts';
import type { PublicJwk, SigningAlg } from '../../src/identity/jwk.ts';
import type { TrustDomainBundle, WitKey } from '../../src/identity/trust-bundle.ts';

export const NOW = 1_790_000_000;
export const AUD = 'https://svc-b.example.org/api';

export interface KeyPair {
  alg: SigningAlg;
  privateKey: KeyObject;
  publicJwk: PublicJwk & { alg: string };
}

export function keyPair(alg: SigningAlg = 'ES256'): KeyPair {
  const { privateKey, publicKey } =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'ES384'
        ? generateKeyPairSync('ec', { namedCurve: 'P-384' })
        : generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' }) as PublicJwk;
  return { alg, privateKey, publicJwk: { ...jwk, alg } };
}

export interface Issuer extends KeyPair {
  trustDomain: string;
  kid: string;
  witKey: WitKey;
}

export function issuer(trustDomain: string, alg: SigningAlg = 'ES256', kid = `${trustDomain}-k1`): Issuer {
  const kp = keyPair(alg);
  return { ...kp, trustDomain, kid, witKey: { ...kp.publicJwk, kid, alg } as WitKey };
}

export function bundleOf(trustDomain: string, witKeys: WitKey[], x509Authorities: Uint8Array[] = []): TrustDomainBundle {
  return { trustDomain, witKeys, x509Authorities };
}

export const bundleSet = (...bs: TrustDomainBundle[]): Map<string, TrustDomainBundle> => new Map(bs.map((b) => [b.trustDomain, b]));

const enc = (o: unknown): string => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');

/**
 * Sign exactly the given header/payload (objects are JSON-serialized; strings used verbatim):
 * ES256/ES384, EdDSA, and for attacks `none` (empty signature) and HS* with a secret `key`.
 */
export function signRaw(header: unknown, payload: unknown, key: KeyObject | Buffer, alg: string): string {
  const input = `${enc(header)}.${enc(payload)}`;
  let sig: Buffer;
  if (alg === 'none') sig = Buffer.alloc(0);
  else if (alg.startsWith('HS')) sig = createHmac(`sha${alg.slice(2)}`, key as Buffer).update(input).digest();
  else if (alg === 'ES256' || alg === 'ES384')
    sig = cryptoSign(alg === 'ES256' ? 'sha256' : 'sha384', Buffer.from(input), { key: key as KeyObject, dsaEncoding: 'ieee-p1363' });
  else sig = cryptoSign(null, Buffer.from(input), key as KeyObject);
  return `${input}.${sig.toString('base64url')}`;
}

export interface WitSpec {
  sub?: string;
  workload?: KeyPair;
  claims?: Record<string, unknown>;
  header?: Record<string, unknown>;
  /** Remove these claims / header parameters. */
  omit?: string[];
  omitHeader?: string[];
}

/** Claims and header of a good WIT, with overrides applied. */
export function witParts(iss: Issuer, spec: WitSpec = {}): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  const workload = spec.workload ?? keyPair('ES256');
  const claims: Record<string, unknown> = {
    sub: spec.sub ?? `spiffe://${iss.trustDomain}/ns/default/sa/client`,
    iat: NOW - 60,
    exp: NOW + 3600,
    jti: 'wit-jti-1',
    cnf: { jwk: workload.publicJwk },
    ...spec.claims,
  };
  const header: Record<string, unknown> = { alg: iss.alg, typ: 'wit+jwt', kid: iss.kid, ...spec.header };
  for (const k of spec.omit ?? []) delete claims[k];
  for (const k of spec.omitHeader ?? []) delete header[k];
  return { header, claims };
}

/** A WIT signed with jose (independent implementation). */
export async function mintWit(iss: Issuer, spec: WitSpec = {}): Promise<string> {
  const { header, claims } = witParts(iss, spec);
  const key = await importJWK(iss.privateKey.export({ format: 'jwk' }) as never, iss.alg);
  return new SignJWT(claims).setProtectedHeader(header as never).sign(key as never);
}

/** A WIT signed over exactly these parts with node:crypto (for shapes jose refuses to produce). */
export function mintWitRaw(iss: Issuer, spec: WitSpec = {}, signWith: KeyObject = iss.privateKey, alg: string = iss.alg): string {
  const { header, claims } = witParts(iss, spec);
  return signRaw(header, claims, signWith, alg);
}

export interface ReqSpec {
  headers?: [string, string][];
  peer?: TransportPeer;
  method?: string;
  path?: string;
}

export function request(spec: ReqSpec = {}): AuthnRequest {
  return {
    method: spec.method ?? 'GET',
    path: spec.path ?? '/api',
    query: '',
    headers: headersFrom(spec.headers ?? []),
    ...(spec.peer ? { peer: spec.peer } : {}),
  };
}

/** A WIT+WPT request from `workload`. */
export function wptRequest(wit: string, workload: KeyPair, extra: Partial<Parameters<typeof createWpt>[0]> = {}, headers: [string, string][] = []): AuthnRequest {
  const wpt = createWpt({ wit, privateKey: workload.privateKey, alg: workload.alg, aud: AUD, nowSec: NOW, ...extra });
  return request({ headers: [['Workload-Identity-Token', wit], ['Authorization', `WPT ${wpt}`], ...headers] });
}

export interface Env {
  clock: ManualClock;
  auth: Authenticator;
  iss: Issuer;
  workload: KeyPair;
}

/** One trust domain `example.org` with one ES256 WIT key, clock at NOW. */
export function env(opts: Partial<AuthenticatorOptions> = {}, issuerAlg: SigningAlg = 'ES256', workloadAlg: SigningAlg = 'ES256'): Env {
  const iss = issuer('example.org', issuerAlg);
  const clock = new ManualClock(NOW * 1000);
  const auth = new Authenticator({ bundles: bundleSet(bundleOf('example.org', [iss.witKey])), clock, audiences: [AUD], ...opts });
  return { clock, auth, iss, workload: keyPair(workloadAlg) };
}

export const privateFromJwk = (jwk: Record<string, unknown>): KeyObject => createPrivateKey({ key: jwk as never, format: 'jwk' });

export interface CoveringSpec {
  method?: string;
  /** What the client signs for `@scheme` / `@target-uri` / `@authority`. */
  scheme: string;
  authority: string;
  path?: string;
  /** With its leading `?`, or `''`. */
  query?: string;
  headers: [string, string][];
  key: KeyPair;
  audience: string;
  nowSec: number;
  /** Derived components covered on top of the profile's, e.g. `@authority`, `@target-uri`. */
  extra: string[];
  nonce?: string;
}

/**
 * A WIMSE-profile request signature (http-signature-07: `@method @path @query` and the WIT)
 * that also covers `extra` derived components, as a client that binds the authority signs it
 * (RFC 9421 lets a signer cover more than the profile asks). Returns the field lines to send.
 */
export function signCovering(s: CoveringSpec): [string, string][] {
  const headers = headersFrom(s.headers);
  const message = { method: s.method ?? 'GET', scheme: s.scheme, authority: s.authority, path: s.path ?? '/api', query: s.query ?? '', headers };
  const components = ['@method', '@path', '@query', ...s.extra, 'workload-identity-token'].map((n) => component(n));
  const params: SigParameters = new Map([
    ['created', { type: 'integer', value: s.nowSec }],
    ['expires', { type: 'integer', value: s.nowSec + 60 }],
    ['nonce', { type: 'string', value: s.nonce ?? randomBytes(16).toString('base64url') }],
    ['tag', { type: 'string', value: WIMSE_TAG }],
    ['wimse-aud', { type: 'string', value: s.audience }],
  ]);
  const sig = signMessage({ message }, { label: 'wimse', components, params, key: { key: s.key.privateKey, alg: rfcAlgForJws(s.key.alg)! } });
  return [...s.headers, ['Signature-Input', sig.signatureInput], ['Signature', sig.signature]];
}
