/**
 * Reading single-valued header fields strictly. A JWT never contains a comma, and a proxy that
 * merges repeated field lines joins them with commas (RFC 9110 §5.3), so a comma in a
 * token-carrying field means it was sent more than once.
 */
import type { AuthnRequest } from './request.ts';

export type SingleField = { kind: 'absent' } | { kind: 'one'; value: string } | { kind: 'many' };

/** The one value of field `name` (lower case), trimmed of optional whitespace (RFC 9110 §5.5). */
export function singleField(req: AuthnRequest, name: string): SingleField {
  const lines = req.headers.get(name);
  if (lines === undefined || lines.length === 0) return { kind: 'absent' };
  if (lines.length > 1) return { kind: 'many' };
  const value = lines[0]!.trim();
  if (value.includes(',')) return { kind: 'many' };
  return { kind: 'one', value };
}

/** True if the field is present at all (any number of lines). */
export const hasField = (req: AuthnRequest, name: string): boolean => (req.headers.get(name)?.length ?? 0) > 0;
