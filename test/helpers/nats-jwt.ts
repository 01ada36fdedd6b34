/**
 * NATS decentralized-auth material for tests, in the formats `nsc` writes: an operator with a
 * system account, an account with JetStream, a user, the server's memory-resolver include
 * (`nsc generate config --mem-resolver`) and the user's `.creds` file (`nsc generate creds`).
 * JWTs are NATS v2 JWTs: header `{"typ":"JWT","alg":"ed25519-nkey"}`, signed with the issuer's
 * NKey (the nkeys shipped inside the `nats` package).
 */
import { createHash } from 'node:crypto';
import { nkeys } from 'nats';

type KeyPair = ReturnType<typeof nkeys.createOperator>;

const b64u = (b: Uint8Array | string): string => Buffer.from(b).toString('base64url');
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
function base32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

function encodeJwt(claims: Record<string, unknown>, issuer: KeyPair): string {
  const body: Record<string, unknown> = { ...claims, iat: Math.floor(Date.now() / 1000), iss: issuer.getPublicKey() };
  body.jti = base32(createHash('sha256').update(JSON.stringify(body)).digest());
  const signing = `${b64u(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }))}.${b64u(JSON.stringify(body))}`;
  return `${signing}.${b64u(issuer.sign(new TextEncoder().encode(signing)))}`;
}

/** JetStream reservations of an account, bytes. */
export interface JetStreamLimits {
  readonly memStorage: number;
  readonly diskStorage: number;
}

const accountLimits = (js: JetStreamLimits | undefined) => ({
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
  mem_storage: js ? js.memStorage : 0,
  disk_storage: js ? js.diskStorage : 0,
  streams: js ? 10 : 0,
  consumer: js ? 100 : 0,
});

export interface NatsAuth {
  /** The server include: operator, system account, MEMORY resolver and its preloaded account JWTs. */
  readonly resolverConf: string;
  /** A `.creds` file for a user of the JetStream account. */
  readonly creds: string;
  /** A `.creds` file for a user signed by an account key the operator never issued. */
  readonly foreignCreds: string;
}

const credsFile = (jwt: string, user: KeyPair): string =>
  `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n` +
  `************************* IMPORTANT *************************\nNKEY Seed printed below can be used to sign and prove identity.\nNKEYs are sensitive and should be treated as secrets.\n\n` +
  `-----BEGIN USER NKEY SEED-----\n${new TextDecoder().decode(user.getSeed())}\n------END USER NKEY SEED------\n`;

/** Operator `wimse`, system account `SYS`, account `WIMSE` (JetStream) and its user `wimse-server`. */
export function makeNatsAuth(js: JetStreamLimits = { memStorage: 16 << 20, diskStorage: 512 << 20 }): NatsAuth {
  const operator = nkeys.createOperator();
  const sys = nkeys.createAccount();
  const account = nkeys.createAccount();
  const user = nkeys.createUser();
  const operatorJwt = encodeJwt({ sub: operator.getPublicKey(), name: 'wimse', nats: { type: 'operator', version: 2, system_account: sys.getPublicKey() } }, operator);
  const accountJwt = (kp: KeyPair, name: string, jetstream: JetStreamLimits | undefined) =>
    encodeJwt({ sub: kp.getPublicKey(), name, nats: { limits: accountLimits(jetstream), default_permissions: { pub: {}, sub: {} }, type: 'account', version: 2 } }, operator);
  const userJwt = (kp: KeyPair, issuer: KeyPair) =>
    encodeJwt({ sub: kp.getPublicKey(), name: 'wimse-server', nats: { pub: {}, sub: {}, subs: -1, data: -1, payload: -1, type: 'user', version: 2 } }, issuer);
  const resolverConf = [
    '// Operator "wimse"',
    `operator: ${operatorJwt}`,
    '// System Account "SYS"',
    `system_account: ${sys.getPublicKey()}`,
    'resolver: MEMORY',
    'resolver_preload: {',
    '\t// Account "SYS"',
    `\t${sys.getPublicKey()}: ${accountJwt(sys, 'SYS', undefined)}`,
    '\t// Account "WIMSE"',
    `\t${account.getPublicKey()}: ${accountJwt(account, 'WIMSE', js)}`,
    '}',
    '',
  ].join('\n');
  const stranger = nkeys.createAccount();
  const other = nkeys.createUser();
  return { resolverConf, creds: credsFile(userJwt(user, account), user), foreignCreds: credsFile(userJwt(other, stranger), other) };
}
