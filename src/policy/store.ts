/**
 * The PDP's current policy, swapped atomically. A decision reads `store.current()` once and
 * keeps that snapshot to the end (also across the await of an external PDP), so a reload never
 * changes a decision half-way and never drops one. A bad new policy is refused and the old one
 * keeps serving; the refusal is reported with every error and its field path.
 */
import { compileChecked, denyAllPolicy, type CompiledPolicy } from './compile.ts';
import { decide, type DecideOptions } from './decide.ts';
import { watchPolicyFile, type PolicyWatch, type WatchOptions } from './file-watch.ts';
import { parsePolicyText, type LoadOptions } from './load.ts';
import type { Decision, DecisionInput, Policy } from './model.ts';
import { checkPolicy } from './validate.ts';

export type LoadResult =
  | { readonly ok: true; readonly version: number; readonly digest: string; readonly changed: boolean }
  | { readonly ok: false; readonly errors: readonly string[]; readonly serving: { readonly version: number; readonly digest: string; readonly status: CompiledPolicy['status'] } };

export type StoreListener = (event: { readonly result: LoadResult; readonly source?: string }) => void;

export class PolicyStore {
  #current: CompiledPolicy = denyAllPolicy('empty');
  #version = 0;
  #lastError: readonly string[] = [];
  readonly #listeners = new Set<StoreListener>();
  readonly #loadOpts: LoadOptions;

  constructor(opts: LoadOptions = {}) {
    if (opts.maxBytes !== undefined && (!Number.isInteger(opts.maxBytes) || opts.maxBytes <= 0))
      throw new TypeError('"maxBytes" must be a positive integer');
    this.#loadOpts = opts;
  }

  /** The snapshot to decide with; capture it once per request. */
  current(): CompiledPolicy {
    return this.#current;
  }

  get version(): number {
    return this.#current.version;
  }

  get digest(): string {
    return this.#current.digest;
  }

  /** Errors of the last refused load (empty after a successful one). */
  get lastErrors(): readonly string[] {
    return this.#lastError;
  }

  /** Validate YAML/JSON text or a policy object, then swap it in; refuse it with reasons otherwise. */
  load(input: string | unknown, source?: string): LoadResult {
    const checked = typeof input === 'string' ? parsePolicyText(input, this.#loadOpts) : checkPolicy(input);
    const result = checked.ok ? this.#accept(checked.value) : this.#refuse(checked.errors);
    for (const l of this.#listeners) l({ result, ...(source ? { source } : {}) });
    return result;
  }

  /** Decide against the current snapshot. */
  decide(input: DecisionInput, opts?: DecideOptions): Decision {
    return decide(input, this.#current, opts);
  }

  /** Keep this store in step with a policy file (fs.watch plus polling, debounced). */
  watchFile(path: string, opts?: WatchOptions): PolicyWatch {
    return watchPolicyFile(this, path, opts);
  }

  /** Called after every load attempt (accepted or refused). Returns an unsubscribe function. */
  onLoad(l: StoreListener): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  #accept(policy: Policy): LoadResult {
    this.#lastError = [];
    const compiled = compileChecked(policy, this.#version + 1);
    if (compiled.digest === this.#current.digest)
      return { ok: true, version: this.#current.version, digest: compiled.digest, changed: false };
    this.#version += 1;
    this.#current = compiled; // the swap: one reference assignment
    return { ok: true, version: compiled.version, digest: compiled.digest, changed: true };
  }

  #refuse(errors: readonly string[]): LoadResult {
    this.#lastError = errors;
    // Nothing valid was ever served: say "invalid" rather than "empty" from now on.
    if (this.#current.status !== 'ok' && this.#current.digest === '')
      this.#current = denyAllPolicy('invalid', errors, this.#current.version);
    const c = this.#current;
    return { ok: false, errors, serving: { version: c.version, digest: c.digest, status: c.status } };
  }
}
