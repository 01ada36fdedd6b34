/**
 * RFC 8941 §4.2 parsing, written as the RFC's algorithms: one cursor, no regular expressions,
 * no backtracking, linear in the input. Every failure is an SfError.
 *
 * Inputs are bounded before parsing (`maxLength`, default 8 KiB) and containers are bounded in
 * member count, so a hostile field cannot make the parser allocate or loop without limit.
 */
import {
  SfError,
  type BareItem,
  type Dictionary,
  type InnerList,
  type Item,
  type List,
  type ListMember,
  type Parameters,
} from './sf-types.ts';

export interface SfParseLimits {
  /** Longest accepted field value, in characters. Default 8192. */
  maxLength?: number;
  /** Most members of a List/Dictionary, items of an Inner List, or Parameters. Default 256. */
  maxMembers?: number;
}

export const SF_MAX_LENGTH = 8192;
export const SF_MAX_MEMBERS = 256;

/** A Dictionary plus the exact text of each member value (what follows `key=`), as received. */
export interface DictionaryWithRaw {
  dict: Dictionary;
  /** Member value text, e.g. `("@method");created=1` for `sig1=("@method");created=1`. */
  raw: Map<string, string>;
}

export function parseDictionary(input: string, limits?: SfParseLimits): Dictionary {
  return parseDictionaryWithRaw(input, limits).dict;
}

export function parseDictionaryWithRaw(input: string, limits?: SfParseLimits): DictionaryWithRaw {
  const p = new Parser(input, limits);
  const out = p.dictionary();
  p.end();
  return out;
}

export function parseList(input: string, limits?: SfParseLimits): List {
  const p = new Parser(input, limits);
  const out = p.list();
  p.end();
  return out;
}

export function parseItem(input: string, limits?: SfParseLimits): Item {
  const p = new Parser(input, limits);
  const out = p.item();
  p.end();
  return out;
}

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isLcAlpha = (c: number): boolean => c >= 0x61 && c <= 0x7a;
const isAlpha = (c: number): boolean => isLcAlpha(c) || (c >= 0x41 && c <= 0x5a);
// RFC 9110 §5.6.2 tchar.
const TCHAR_EXTRA = new Set([...`!#$%&'*+-.^_\`|~`].map((ch) => ch.charCodeAt(0)));
const isTchar = (c: number): boolean => isAlpha(c) || isDigit(c) || TCHAR_EXTRA.has(c);
const isKeyChar = (c: number): boolean => isLcAlpha(c) || isDigit(c) || c === 0x5f || c === 0x2d || c === 0x2e || c === 0x2a;
const isBase64Char = (c: number): boolean => isAlpha(c) || isDigit(c) || c === 0x2b || c === 0x2f;

const SP = 0x20;
const HTAB = 0x09;

class Parser {
  readonly #s: string;
  #i = 0;
  readonly #maxMembers: number;

  constructor(input: string, limits: SfParseLimits = {}) {
    if (typeof input !== 'string') throw new SfError('input is not a string');
    const maxLength = limits.maxLength ?? SF_MAX_LENGTH;
    if (input.length > maxLength) throw new SfError(`field value longer than ${maxLength} characters`);
    this.#maxMembers = limits.maxMembers ?? SF_MAX_MEMBERS;
    // §4.2 step 1: the input is ASCII; anything else fails.
    for (let k = 0; k < input.length; k++) {
      if (input.charCodeAt(k) > 0x7f) throw new SfError('non-ASCII character');
    }
    this.#s = input;
    // §4.2 step 2: discard leading SP.
    this.#skipSp();
  }

  end(): void {
    // §4.2 steps 6-7: discard trailing SP; anything left fails.
    this.#skipSp();
    if (this.#i !== this.#s.length) throw new SfError(`unexpected character at ${this.#i}`);
  }

  #peek(): number {
    return this.#i < this.#s.length ? this.#s.charCodeAt(this.#i) : -1;
  }

  #skipSp(): void {
    while (this.#peek() === SP) this.#i++;
  }

  #skipOws(): void {
    for (let c = this.#peek(); c === SP || c === HTAB; c = this.#peek()) this.#i++;
  }

  #count(n: number, what: string): void {
    if (n > this.#maxMembers) throw new SfError(`more than ${this.#maxMembers} ${what}`);
  }

  /** §4.2.1 */
  list(): List {
    const members: List = [];
    while (this.#i < this.#s.length) {
      members.push(this.#itemOrInnerList());
      this.#count(members.length, 'list members');
      this.#skipOws();
      if (this.#i >= this.#s.length) return members;
      if (this.#peek() !== 0x2c) throw new SfError(`expected "," at ${this.#i}`);
      this.#i++;
      this.#skipOws();
      if (this.#i >= this.#s.length) throw new SfError('trailing comma');
    }
    return members;
  }

  /** §4.2.2; also records each member value's exact text. */
  dictionary(): DictionaryWithRaw {
    const dict: Dictionary = new Map();
    const raw = new Map<string, string>();
    while (this.#i < this.#s.length) {
      const key = this.#key();
      let member: ListMember;
      let start: number;
      if (this.#peek() === 0x3d) {
        this.#i++;
        start = this.#i;
        member = this.#itemOrInnerList();
      } else {
        // A key without "=" is Boolean true with parameters.
        start = this.#i;
        member = { kind: 'item', value: { type: 'boolean', value: true }, params: this.#parameters() };
      }
      // Overwrite in place: the last value wins (§4.2.2 step 2.4).
      dict.set(key, member);
      raw.set(key, this.#s.slice(start, this.#i));
      this.#count(dict.size, 'dictionary members');
      this.#skipOws();
      if (this.#i >= this.#s.length) break;
      if (this.#peek() !== 0x2c) throw new SfError(`expected "," at ${this.#i}`);
      this.#i++;
      this.#skipOws();
      if (this.#i >= this.#s.length) throw new SfError('trailing comma');
    }
    return { dict, raw };
  }

  #itemOrInnerList(): ListMember {
    return this.#peek() === 0x28 ? this.#innerList() : this.item();
  }

  /** §4.2.1.2 */
  #innerList(): InnerList {
    this.#i++; // "("
    const items: Item[] = [];
    while (this.#i < this.#s.length) {
      this.#skipSp();
      if (this.#peek() === 0x29) {
        this.#i++;
        return { kind: 'inner-list', items, params: this.#parameters() };
      }
      items.push(this.item());
      this.#count(items.length, 'inner list items');
      const c = this.#peek();
      if (c !== SP && c !== 0x29) throw new SfError(`expected SP or ")" at ${this.#i}`);
    }
    throw new SfError('unterminated inner list');
  }

  /** §4.2.3 */
  item(): Item {
    const value = this.#bareItem();
    return { kind: 'item', value, params: this.#parameters() };
  }

  /** §4.2.3.1 */
  #bareItem(): BareItem {
    const c = this.#peek();
    if (c === 0x2d || isDigit(c)) return this.#number();
    if (c === 0x22) return this.#string();
    if (c === 0x2a || isAlpha(c)) return this.#token();
    if (c === 0x3a) return this.#binary();
    if (c === 0x3f) return this.#boolean();
    throw new SfError(`unexpected character at ${this.#i}`);
  }

  /** §4.2.3.2 */
  #parameters(): Parameters {
    const params: Parameters = new Map();
    while (this.#peek() === 0x3b) {
      this.#i++;
      this.#skipSp();
      const key = this.#key();
      let value: BareItem = { type: 'boolean', value: true };
      if (this.#peek() === 0x3d) {
        this.#i++;
        value = this.#bareItem();
      }
      params.set(key, value);
      this.#count(params.size, 'parameters');
    }
    return params;
  }

  /** §4.2.3.3 */
  #key(): string {
    const start = this.#i;
    const c = this.#peek();
    if (!(isLcAlpha(c) || c === 0x2a)) throw new SfError(`expected a key at ${this.#i}`);
    this.#i++;
    while (isKeyChar(this.#peek())) this.#i++;
    return this.#s.slice(start, this.#i);
  }

  /** §4.2.4 */
  #number(): BareItem {
    let sign = 1;
    if (this.#peek() === 0x2d) {
      sign = -1;
      this.#i++;
    }
    if (!isDigit(this.#peek())) throw new SfError(`expected a digit at ${this.#i}`);
    const start = this.#i;
    let isDecimal = false;
    let dot = -1;
    for (;;) {
      const c = this.#peek();
      if (isDigit(c)) {
        this.#i++;
      } else if (!isDecimal && c === 0x2e) {
        if (this.#i - start > 12) throw new SfError('decimal with more than 12 integer digits');
        isDecimal = true;
        dot = this.#i;
        this.#i++;
      } else break;
      const len = this.#i - start;
      if (!isDecimal && len > 15) throw new SfError('integer with more than 15 digits');
      if (isDecimal && len > 16) throw new SfError('decimal longer than 16 characters');
    }
    const text = this.#s.slice(start, this.#i);
    if (!isDecimal) return { type: 'integer', value: sign * Number(text) };
    const fraction = this.#i - dot - 1;
    if (fraction === 0) throw new SfError('decimal ends with "."');
    if (fraction > 3) throw new SfError('decimal with more than 3 fractional digits');
    return { type: 'decimal', value: sign * Number(text) };
  }

  /** §4.2.5 */
  #string(): BareItem {
    this.#i++; // opening DQUOTE
    let out = '';
    let runStart = this.#i;
    while (this.#i < this.#s.length) {
      const c = this.#s.charCodeAt(this.#i);
      if (c === 0x5c) {
        out += this.#s.slice(runStart, this.#i);
        this.#i++;
        const next = this.#peek();
        if (next !== 0x22 && next !== 0x5c) throw new SfError(`bad escape at ${this.#i}`);
        out += String.fromCharCode(next);
        this.#i++;
        runStart = this.#i;
      } else if (c === 0x22) {
        out += this.#s.slice(runStart, this.#i);
        this.#i++;
        return { type: 'string', value: out };
      } else if (c < 0x20 || c > 0x7e) {
        throw new SfError(`control character in string at ${this.#i}`);
      } else {
        this.#i++;
      }
    }
    throw new SfError('unterminated string');
  }

  /** §4.2.6 */
  #token(): BareItem {
    const start = this.#i;
    this.#i++;
    for (let c = this.#peek(); isTchar(c) || c === 0x3a || c === 0x2f; c = this.#peek()) this.#i++;
    return { type: 'token', value: this.#s.slice(start, this.#i) };
  }

  /** §4.2.7: strict base64 alphabet; "=" padding only at the end; padding may be absent. */
  #binary(): BareItem {
    this.#i++; // ":"
    const start = this.#i;
    const close = this.#s.indexOf(':', start);
    if (close < 0) throw new SfError('unterminated byte sequence');
    const b64 = this.#s.slice(start, close);
    let pad = 0;
    for (let k = 0; k < b64.length; k++) {
      const c = b64.charCodeAt(k);
      if (c === 0x3d) pad++;
      else if (pad > 0 || !isBase64Char(c)) throw new SfError(`bad base64 at ${start + k}`);
    }
    if (pad > 2 || (pad > 0 && b64.length % 4 !== 0) || b64.length % 4 === 1) {
      throw new SfError('bad base64 length or padding');
    }
    this.#i = close + 1;
    return { type: 'binary', value: new Uint8Array(Buffer.from(b64, 'base64')) };
  }

  /** §4.2.8 */
  #boolean(): BareItem {
    this.#i++; // "?"
    const c = this.#peek();
    if (c === 0x31 || c === 0x30) {
      this.#i++;
      return { type: 'boolean', value: c === 0x31 };
    }
    throw new SfError(`bad boolean at ${this.#i}`);
  }
}
