/** Documents (configs, bundles, policies) report every problem with its field path. */
export type Checked<T> = { ok: true; value: T } | { ok: false; errors: string[] };

export const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
export const fail = <T = never>(errors: string[]): Checked<T> => ({ ok: false, errors });
