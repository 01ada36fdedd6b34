/**
 * Output of `wimsectl`. Tables and lines for people; with `-o json` or `-o yaml`, a document for
 * programs: keys in camelCase and times as RFC 3339 strings (UTC, to the second), in every
 * command (docs/cli.md). The admin API's own messages use the proto field names; the commands
 * map them to these views.
 */
/** Columns padded to their widest cell; an empty table prints its header and "(none)". */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...rows.map(line)];
  if (rows.length === 0) out.push('(none)');
  return `${out.join('\n')}\n`;
}

/** Milliseconds since the epoch as RFC 3339, UTC, to the second: every time wimsectl prints. */
export const rfc3339 = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
/** Seconds since the epoch as RFC 3339; 0 (never) is null. */
export const rfc3339Sec = (s: number): string | null => (s === 0 ? null : rfc3339(s * 1000));

/** For tables: a time, or `-` when there is none. */
export const isoMs = (ms: number | undefined): string => (ms === undefined ? '-' : rfc3339(ms));
/** For tables: seconds since the epoch (0: never). */
export const isoSec = (s: number): string => rfc3339Sec(s) ?? 'never';

export const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;

/** `-o yaml`: the document `-o json` prints, as YAML, long strings unfolded. */
export const YAML_OPTIONS = { lineWidth: 0 } as const;

/** The same object with each named time (milliseconds since the epoch) as RFC 3339. */
export function withTimes<T extends object>(o: T, fields: readonly string[]): Record<string, unknown> {
  const out = { ...o } as Record<string, unknown>;
  for (const f of fields) if (typeof out[f] === 'number') out[f] = rfc3339(out[f] as number);
  return out;
}
