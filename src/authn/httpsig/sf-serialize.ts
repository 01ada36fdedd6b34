/**
 * RFC 8941 §4.1 serialization. Values that RFC 8941 cannot represent (an integer beyond 15
 * digits, a string with a control character, a malformed token or key) throw SfError instead of
 * producing text that another parser would read differently.
 */
import { SfError, type BareItem, type Dictionary, type InnerList, type Item, type List, type ListMember, type Parameters } from './sf-types.ts';

const MAX_INTEGER = 999_999_999_999_999;

const KEY_RE = /^[a-z*][a-z0-9_\-.*]*$/;
const TOKEN_RE = /^[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*$/;

export function serializeList(list: List): string {
  return list.map(serializeMember).join(', ');
}

export function serializeDictionary(dict: Dictionary): string {
  const out: string[] = [];
  for (const [key, member] of dict) {
    const k = serializeKey(key);
    // §4.1.2: a member whose value is Boolean true is written as the bare key plus parameters.
    if (member.kind === 'item' && member.value.type === 'boolean' && member.value.value) {
      out.push(k + serializeParameters(member.params));
    } else {
      out.push(`${k}=${serializeMember(member)}`);
    }
  }
  return out.join(', ');
}

export function serializeMember(member: ListMember): string {
  return member.kind === 'inner-list' ? serializeInnerList(member) : serializeItem(member);
}

export function serializeInnerList(list: InnerList): string {
  return `(${list.items.map(serializeItem).join(' ')})${serializeParameters(list.params)}`;
}

export function serializeItem(item: Item): string {
  return serializeBareItem(item.value) + serializeParameters(item.params);
}

export function serializeParameters(params: Parameters): string {
  let out = '';
  for (const [key, value] of params) {
    out += `;${serializeKey(key)}`;
    // §4.1.1.2: Boolean true parameters are written without a value.
    if (!(value.type === 'boolean' && value.value)) out += `=${serializeBareItem(value)}`;
  }
  return out;
}

export function serializeKey(key: string): string {
  if (!KEY_RE.test(key)) throw new SfError(`invalid key ${JSON.stringify(key)}`);
  return key;
}

export function serializeBareItem(v: BareItem): string {
  switch (v.type) {
    case 'integer':
      return serializeInteger(v.value);
    case 'decimal':
      return serializeDecimal(v.value);
    case 'string':
      return serializeString(v.value);
    case 'token':
      if (!TOKEN_RE.test(v.value)) throw new SfError(`invalid token ${JSON.stringify(v.value)}`);
      return v.value;
    case 'binary':
      return `:${Buffer.from(v.value).toString('base64')}:`;
    case 'boolean':
      return v.value ? '?1' : '?0';
  }
}

function serializeInteger(n: number): string {
  if (!Number.isInteger(n) || Math.abs(n) > MAX_INTEGER) throw new SfError(`integer out of range: ${n}`);
  return String(n === 0 ? 0 : n);
}

/** §4.1.5: round to 3 fractional digits (ties to even), at most 12 integer digits. */
function serializeDecimal(n: number): string {
  if (!Number.isFinite(n)) throw new SfError(`decimal is not finite: ${n}`);
  const scaled = n * 1000;
  let rounded = Math.round(scaled);
  // Math.round rounds ties up; RFC 8941 wants ties to even.
  if (Math.abs(scaled - Math.trunc(scaled)) === 0.5 && rounded % 2 !== 0) rounded -= 1;
  const negative = rounded < 0;
  const abs = Math.abs(rounded);
  const intPart = Math.floor(abs / 1000);
  if (intPart > 999_999_999_999) throw new SfError(`decimal out of range: ${n}`);
  let frac = String(abs % 1000).padStart(3, '0').replace(/0+$/, '');
  if (frac === '') frac = '0';
  return `${negative ? '-' : ''}${intPart}.${frac}`;
}

function serializeString(s: string): string {
  let out = '"';
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c < 0x20 || c > 0x7e) throw new SfError('string contains a character outside printable ASCII');
    if (c === 0x22 || c === 0x5c) out += '\\';
    out += s[k];
  }
  return `${out}"`;
}
