/**
 * What a stale cluster node refuses (`NodeCluster.staleness`, docs/operations-cluster.md
 * "Partitions and staleness"), applied where the node's servers authenticate their callers:
 *
 * - Node tokens (SDS, the Workload API): revocations travel on the bus, so a stale node cannot
 *   tell a revoked token from a good one. Token-authenticated calls get UNAVAILABLE with the
 *   staleness reason (Envoy and the SDK retry, reaching a node that can confirm them).
 * - ext_authz: a credential passes only if it also verifies with the keys this node vouches for
 *   by itself (`IdentityServer.localBundles`: its own keys and its federation files). One that
 *   needs another node's key, whose revocation the node may have missed, is denied with 503
 *   `cluster.stale`. Credentials signed by the node's own keys, mTLS chains under its own roots
 *   and federated bundles from its files keep working.
 */
import type { Authenticated } from './envoy/extauthz.ts';
import { CheckUnavailable } from './envoy/extauthz.ts';
import { isAuthnError, type Authenticator, type AuthnRequest, type ReplayGuard } from './authn/index.ts';
import type { Staleness } from './node-cluster.ts';

/** Why node tokens cannot be trusted now (undefined: they can). */
export function tokenRefusal(staleness: Staleness): string | undefined {
  return staleness.stale ? `${staleness.reason}: node tokens cannot be confirmed on this node; retry on another node` : undefined;
}

/**
 * The replay guard of the second, local-keys-only pass: the first pass, with every key, has
 * already recorded the request's WPT `jti` or signature nonce; seeing it again is not a replay.
 */
export const ALREADY_CHECKED: ReplayGuard = { checkAndStore: () => 'fresh' };

/**
 * ext_authz authentication on a node that may be stale: `all` verifies with every trusted key (and
 * records replays); while stale, the request must also verify with `local` (the node's own keys
 * and federation files, replay guard `ALREADY_CHECKED`), else it is denied with 503.
 */
export function stalenessAwareAuthenticate(
  all: Authenticator,
  local: Authenticator,
  staleness: () => Staleness,
): (req: AuthnRequest, ctx: { audiences: readonly string[] }) => Authenticated {
  return (req, ctx) => {
    const who = all.authenticate(req, { audiences: ctx.audiences });
    const s = staleness();
    if (!s.stale) return who;
    try {
      local.authenticate(req, { audiences: ctx.audiences });
    } catch (e) {
      if (!isAuthnError(e)) throw e;
      throw new CheckUnavailable('cluster.stale', 'this node cannot confirm that the keys behind these credentials are still trusted; retry on another node');
    }
    return who;
  };
}
