/** Human-readable output of `wimsectl`: aligned tables and times. `-o json` bypasses all of it. */

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

/** Milliseconds since the epoch as ISO 8601 to the second. */
export const isoMs = (ms: number | undefined): string => (ms === undefined ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'));
/** Seconds since the epoch (0: never). */
export const isoSec = (s: number): string => (s === 0 ? 'never' : isoMs(s * 1000));

export const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;
