/**
 * The node's verified-chain cache over real gRPC: a workload's chain is verified once and then
 * served from the cache, and a federated bundle update that withdraws the root stops the very
 * next check of a cached chain.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toSpiffeBundle } from '../../src/identity/trust-bundle.ts';
import { leaf, rootCa } from '../authn/pki.ts';
import { PARTNER, PARTNER_TD, envoyRequest, expectAllowed, expectDenied, startAdversarialNode, type Ctx } from './fixtures.ts';

let ctx: Ctx;
test.before(async () => {
  ctx = await startAdversarialNode();
});
test.after.always(async () => {
  await ctx?.close();
});

test('extauthz mtls cache - a cached peer chain is refused as soon as its root leaves the bundle', async (t) => {
  const pem = await leaf(ctx.partner.root, Date.now(), { uris: [PARTNER] });
  const call = () => ctx.check(envoyRequest({ source: { address: '10.1.2.3', port: 41000, principal: PARTNER, certificatePem: pem } }));
  const cache = ctx.node.authenticator.mtlsCache!;
  expectAllowed(t, await call(), PARTNER, 'mtls');
  const hits = cache.hits;
  expectAllowed(t, await call(), PARTNER, 'mtls');
  t.is(cache.hits, hits + 1, 'the second check is served from the cache');

  // The partner rotates to a new root and withdraws the old one.
  const next = await rootCa('partner root 2', Date.now());
  writeFileSync(
    join(ctx.dir, 'partner.json'),
    JSON.stringify(
      toSpiffeBundle({
        trustDomain: PARTNER_TD,
        x509Authorities: [next.der],
        witKeys: [{ ...ctx.partner.wit.publicJwk, kid: ctx.partner.wit.kid, alg: 'ES256' }],
      }),
    ),
  );
  await ctx.node.ca.reloadFederation();
  expectDenied(t, await call(), 401, 'mtls.untrusted');
  t.is(cache.hits, hits + 1);
});
