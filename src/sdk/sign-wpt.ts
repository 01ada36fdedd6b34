/**
 * Outgoing requests with a Workload Proof Token (draft-ietf-wimse-wpt-02): the WIT in
 * `Workload-Identity-Token` and `Authorization: WPT <jwt>` (§3.1). The WPT binds the WIT (`wth`),
 * the audience and, when the request carries one, a Txn-Token (`tth`).
 */
import { nowSeconds, systemClock, type Clock } from '../identity/clock.ts';
import { createWpt } from '../authn/wpt.ts';
import { credentialOf, defaultAudience, WIT_HEADER, type CredentialSource, type OutgoingRequest } from './outgoing.ts';
import type { WorkloadCredential } from './workload-client.ts';

export interface WptOptions {
  /** The WPT `aud`; default: the target URI without query or fragment. */
  audience?: string;
  /** Seconds until the WPT's `exp` ("minutes or seconds", §3). Default 60. */
  lifetimeSec?: number;
  clock?: Clock;
}

/**
 * Add `Workload-Identity-Token` and `Authorization: WPT <wpt>` to `req`. A request carries at
 * most one Authorization field (§3.1), so an existing one is a TypeError rather than being
 * silently replaced. A `Txn-Token` already on the request is bound through `tth`.
 */
export function signRequestWpt(cred: WorkloadCredential | CredentialSource, req: OutgoingRequest, opts: WptOptions = {}): void {
  const c = credentialOf(cred);
  if (req.headers.has('authorization')) throw new TypeError('the request already has an Authorization field; a WPT request carries only the WPT');
  const txn = req.headers.get('txn-token');
  const wpt = createWpt({
    wit: c.wit,
    privateKey: c.key.privateKey,
    alg: c.key.alg,
    aud: opts.audience ?? defaultAudience(req.url),
    nowSec: nowSeconds(opts.clock ?? systemClock),
    ...(opts.lifetimeSec !== undefined ? { lifetimeSec: opts.lifetimeSec } : {}),
    ...(txn !== null ? { txnToken: txn } : {}),
  });
  req.headers.set(WIT_HEADER, c.wit);
  req.headers.set('authorization', `WPT ${wpt}`);
}
