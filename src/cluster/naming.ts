/**
 * Names on the wire. Trust domains and node names may contain dots, which NATS uses as subject
 * separators, so every name becomes one token: [A-Za-z0-9-] pass through, every other byte is
 * `_` plus two hex digits (`example.org` -> `example_2eorg`). The mapping is one-to-one.
 *
 * Subjects:  wimse.<td>.<kind>.<origin>         (a change, after it is stored)
 *            wimse.<td>.event.<kind>.<origin>   (a broadcast that is not stored)
 * Bucket:    wimse_<td>                         (JetStream KV, one per trust domain)
 * KV keys:   <kind>.<segment>[.<segment>]       (a record key's `/`-separated segments)
 */
import { isRecordKind, type RecordKind } from './types.ts';

const PLAIN = /^[A-Za-z0-9-]$/;

export function encodeToken(s: string): string {
  let out = '';
  for (const ch of s) {
    if (PLAIN.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += '_' + b.toString(16).padStart(2, '0');
  }
  return out;
}

/** Inverse of encodeToken; undefined unless `t` is the canonical encoding of some string. */
export function decodeToken(t: string): string | undefined {
  if (t.length === 0 || !/^(?:[A-Za-z0-9-]|_[0-9a-f]{2})+$/.test(t)) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < t.length; ) {
    if (t[i] === '_') {
      bytes.push(parseInt(t.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      bytes.push(t.charCodeAt(i));
      i += 1;
    }
  }
  const s = Buffer.from(bytes).toString('utf8');
  return encodeToken(s) === t ? s : undefined;
}

export const subjectPrefix = (trustDomain: string): string => `wimse.${encodeToken(trustDomain)}`;
export const changeSubject = (td: string, kind: RecordKind, origin: string): string => `${subjectPrefix(td)}.${kind}.${encodeToken(origin)}`;
export const eventSubject = (td: string, kind: RecordKind, origin: string): string => `${subjectPrefix(td)}.event.${kind}.${encodeToken(origin)}`;
export const bucketName = (trustDomain: string): string => `wimse_${encodeToken(trustDomain)}`;

export interface ParsedSubject {
  event: boolean;
  kind: RecordKind;
  origin: string;
}

/** Parse a subject under `subjectPrefix(td)`; undefined when it is not one of ours. */
export function parseSubject(td: string, subject: string): ParsedSubject | undefined {
  const prefix = subjectPrefix(td) + '.';
  if (!subject.startsWith(prefix)) return undefined;
  const parts = subject.slice(prefix.length).split('.');
  const event = parts[0] === 'event';
  if (event) parts.shift();
  if (parts.length !== 2) return undefined;
  const [kind, originTok] = parts as [string, string];
  const origin = decodeToken(originTok);
  if (!isRecordKind(kind) || origin === undefined) return undefined;
  return { event, kind, origin };
}

export function kvKey(kind: RecordKind, key: string): string {
  return `${kind}.${key.split('/').map(encodeToken).join('.')}`;
}

export function parseKvKey(k: string): { kind: RecordKind; key: string } | undefined {
  const [kind, ...segs] = k.split('.');
  if (!isRecordKind(kind) || segs.length === 0) return undefined;
  const decoded = segs.map(decodeToken);
  if (decoded.some((d) => d === undefined)) return undefined;
  return { kind, key: decoded.join('/') };
}
