/**
 * The authenticator a PEP holds: settings validated once (TypeError on misuse), the trust bundles
 * (a fixed set or a getter for the live one), the clock, and the caches, around `authenticate`.
 */
import { authenticate, type AuthnContext, type AuthnResult } from './authenticate.ts';
import { PublicKeyCache } from './jws.ts';
import { checkAudiences, resolveSettings, type AuthnSettings, type SettingsInput } from './options.ts';
import { ReplayCache, type ReplayGuard } from './replay.ts';
import type { AuthnRequest } from './request.ts';
import { MtlsChainCache, type MtlsCacheOptions } from './mtls-cache.ts';
import { WitCache } from './wit-cache.ts';
import { nowSeconds, type Clock } from '../identity/clock.ts';
import type { TrustBundleSet } from '../identity/trust-bundle.ts';

export interface AuthenticatorOptions extends SettingsInput {
  /** The trust bundles, or a getter returning the current ones (read once per request). */
  bundles: TrustBundleSet | (() => TrustBundleSet);
  clock: Clock;
  /** Default accepted audiences, when a call does not name its own. */
  audiences?: readonly string[];
  /** The verified-WIT cache; `false` disables it. Default 10,000 entries. */
  witCache?: { maxEntries?: number } | false;
  /** The verified mTLS chain cache; `false` disables it. Default 1,000 chains, 8 MiB of PEM. */
  mtlsCache?: MtlsCacheOptions | false;
  /** WPT `jti` replay cache. Default: a new ReplayCache. */
  replay?: ReplayGuard;
  /** HTTP-signature nonce replay cache. Default: a new ReplayCache. */
  nonceReplay?: ReplayGuard;
}

export class Authenticator {
  readonly settings: AuthnSettings;
  readonly witCache: WitCache | undefined;
  readonly mtlsCache: MtlsChainCache | undefined;
  readonly #bundles: () => TrustBundleSet;
  readonly #clock: Clock;
  readonly #audiences: readonly string[];
  readonly #replay: ReplayGuard;
  readonly #nonceReplay: ReplayGuard;
  readonly #cnfKeys = new PublicKeyCache();

  constructor(opts: AuthenticatorOptions) {
    if (typeof opts !== 'object' || opts === null) throw new TypeError('options must be an object');
    this.settings = resolveSettings(opts);
    const b = opts.bundles;
    if (typeof b === 'function') this.#bundles = b;
    else if (b instanceof Map) this.#bundles = () => b;
    else throw new TypeError('"bundles" must be a Map of trust domain -> bundle, or a function returning one');
    if (typeof opts.clock?.now !== 'function') throw new TypeError('"clock" must be a Clock');
    this.#clock = opts.clock;
    this.#audiences = opts.audiences === undefined ? [] : checkAudiences('audiences', opts.audiences);
    if (opts.witCache !== undefined && opts.witCache !== false && (typeof opts.witCache !== 'object' || opts.witCache === null))
      throw new TypeError('"witCache" must be false or { maxEntries }');
    this.witCache = opts.witCache === false ? undefined : new WitCache(opts.witCache ?? {});
    if (opts.mtlsCache !== undefined && opts.mtlsCache !== false && (typeof opts.mtlsCache !== 'object' || opts.mtlsCache === null))
      throw new TypeError('"mtlsCache" must be false or { maxEntries, maxBytes }');
    this.mtlsCache = opts.mtlsCache === false ? undefined : new MtlsChainCache(opts.mtlsCache ?? {});
    for (const k of ['replay', 'nonceReplay'] as const)
      if (opts[k] !== undefined && typeof opts[k]?.checkAndStore !== 'function') throw new TypeError(`"${k}" must be a ReplayGuard`);
    this.#replay = opts.replay ?? new ReplayCache();
    this.#nonceReplay = opts.nonceReplay ?? new ReplayCache();
  }

  /**
   * Authenticate one request. `audiences` names what this destination accepts (for example from
   * the route's trusted configuration); by default the constructor's. Throws AuthnError only.
   */
  authenticate(req: AuthnRequest, call: { audiences?: readonly string[] } = {}): AuthnResult {
    return authenticate(req, this.context(call.audiences ?? this.#audiences));
  }

  /** The context `authenticate` runs with, at the clock's current time. */
  context(audiences: readonly string[] = this.#audiences): AuthnContext {
    return {
      bundles: this.#bundles(),
      nowSec: nowSeconds(this.#clock),
      audiences,
      settings: this.settings,
      replay: this.#replay,
      nonceReplay: this.#nonceReplay,
      cnfKeys: this.#cnfKeys,
      witCache: this.witCache,
      mtlsCache: this.mtlsCache,
    };
  }
}
