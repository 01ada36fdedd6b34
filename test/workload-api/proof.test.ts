import test from 'ava';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { CompactSign } from 'jose';
import { verifyProof, PROOF_AUDIENCE, PROOF_TYP, type ProofError } from '../../src/workload-api/proof.ts';
import { ReplayCache } from '../../src/authn/replay.ts';

const NOW = 1_800_000_000;

function keyPair(alg: 'ES256' | 'EdDSA') {
  const kp = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  const jwk: Record<string, unknown> = { ...(kp.publicKey.export({ format: "jwk" }) as Record<string, unknown>), alg };
  return { privateKey: kp.privateKey, jwk };
}

async function proof(opts: { alg?: 'ES256' | 'EdDSA'; claims?: Record<string, unknown>; header?: Record<string, unknown>; signWith?: ReturnType<typeof keyPair> } = {}) {
  const alg = opts.alg ?? 'ES256';
  const k = keyPair(alg);
  const claims = { sub: 'wimse://example.org/svc/a', aud: PROOF_AUDIENCE, iat: NOW, jti: randomBytes(16).toString('base64url'), ...opts.claims };
  const token = await new CompactSign(Buffer.from(JSON.stringify(claims)))
    .setProtectedHeader({ alg, typ: PROOF_TYP, jwk: k.jwk, ...opts.header })
    .sign((opts.signWith ?? k).privateKey);
  return { token, k };
}

const expectCode = async (t: any, p: Promise<unknown>, code: string) => {
  const err = (await t.throwsAsync(p)) as ProofError;
  t.is(err.code, code);
};

test('workload proof - a fresh ES256 or EdDSA proof yields the public key with its alg', async (t) => {
  for (const alg of ['ES256', 'EdDSA'] as const) {
    const { token, k } = await proof({ alg });
    const v = await verifyProof(token, { nowSec: NOW, replay: new ReplayCache() });
    t.is(v.sub, 'wimse://example.org/svc/a');
    t.is(v.jwk.alg, alg);
    t.is(v.jwk.x, k.jwk.x as string);
    t.false('d' in v.jwk);
  }
});

test('workload proof - a proof signed by another key than its header key is rejected', async (t) => {
  const other = keyPair('ES256');
  const { token } = await proof({ signWith: other });
  await expectCode(t, verifyProof(token, { nowSec: NOW, replay: new ReplayCache() }), 'proof.bad_signature');
});

test('workload proof - replay, stale iat, wrong audience and typ are rejected', async (t) => {
  const replay = new ReplayCache();
  const { token } = await proof();
  await verifyProof(token, { nowSec: NOW, replay });
  await expectCode(t, verifyProof(token, { nowSec: NOW, replay }), 'proof.replay');
  await expectCode(t, verifyProof((await proof({ claims: { iat: NOW - 3600 } })).token, { nowSec: NOW, replay }), 'proof.stale');
  await expectCode(t, verifyProof((await proof({ claims: { iat: NOW + 3600 } })).token, { nowSec: NOW, replay }), 'proof.stale');
  await expectCode(t, verifyProof((await proof({ claims: { aud: 'x' } })).token, { nowSec: NOW, replay }), 'proof.aud');
  await expectCode(t, verifyProof((await proof({ header: { typ: 'JWT' } })).token, { nowSec: NOW, replay }), 'proof.typ');
  await expectCode(t, verifyProof((await proof({ claims: { jti: 'short' } })).token, { nowSec: NOW, replay }), 'proof.jti');
});

test('workload proof - a replay cache full of live proofs refuses a new one and still refuses the held one', async (t) => {
  const replay = new ReplayCache({ maxEntries: 1 });
  const { token } = await proof();
  await verifyProof(token, { nowSec: NOW, replay });
  await expectCode(t, verifyProof((await proof()).token, { nowSec: NOW, replay }), 'proof.replay_cache_full');
  await expectCode(t, verifyProof(token, { nowSec: NOW + 1, replay }), 'proof.replay');
});

test('workload proof - a private key in the header, or a key without alg, is refused', async (t) => {
  const k = keyPair('ES256');
  const priv = k.privateKey.export({ format: 'jwk' }) as Record<string, unknown>;
  await expectCode(t, verifyProof((await proof({ header: { jwk: { ...priv, alg: 'ES256' } } })).token, { nowSec: NOW, replay: new ReplayCache() }), 'proof.bad_key');
  const { alg: _a, ...noAlg } = k.jwk;
  await expectCode(t, verifyProof((await proof({ header: { jwk: noAlg } })).token, { nowSec: NOW, replay: new ReplayCache() }), 'proof.bad_key');
});

test('workload proof - garbage is a typed error, never a crash', async (t) => {
  for (const g of ['', 'a.b.c', 'x'.repeat(5000), '....', 'eyJ9.eyJ9.AA']) {
    const err = (await t.throwsAsync(verifyProof(g, { nowSec: NOW, replay: new ReplayCache() }))) as ProofError;
    t.is(err.name, 'ProofError', g.slice(0, 20));
  }
});
