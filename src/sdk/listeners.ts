/** A small typed listener registry (no EventEmitter: an unheard `error` must not throw). */
export class Listeners<E extends Record<string, unknown>> {
  readonly #map = new Map<keyof E, Set<(v: never) => void>>();

  on<K extends keyof E>(event: K, fn: (value: E[K]) => void): () => void {
    let set = this.#map.get(event);
    if (!set) this.#map.set(event, (set = new Set()));
    set.add(fn as (v: never) => void);
    return () => set!.delete(fn as (v: never) => void);
  }

  emit<K extends keyof E>(event: K, value: E[K]): void {
    for (const fn of this.#map.get(event) ?? []) {
      try {
        (fn as (v: E[K]) => void)(value);
      } catch {
        // A listener's failure is its own; it must not stop renewal.
      }
    }
  }

  clear(): void {
    this.#map.clear();
  }
}
