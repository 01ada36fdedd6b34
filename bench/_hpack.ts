/**
 * An HPACK decoder (RFC 7541) for the frame-level gRPC client (bench/_h2-frames.ts), which reads
 * the trailers of a failed call to report its `grpc-status`. Static table and Huffman strings; no
 * dynamic table: the client announces SETTINGS_HEADER_TABLE_SIZE 0, so a conforming server adds
 * nothing to it (an entry "with incremental indexing" is evicted at once, §4.4), and a block that
 * refers to one is refused.
 *
 * The Huffman code (Appendix B) is canonical: every code follows from the code lengths alone,
 * assigned in order of length, then of symbol. Only the lengths are listed here.
 */

/** Appendix A: the static table, names and the values the indexed forms carry. */
const STATIC: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''],
  ['etag', ''], ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''],
  ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''],
  ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''],
  ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''], ['retry-after', ''],
  ['server', ''], ['set-cookie', ''], ['strict-transport-security', ''], ['transfer-encoding', ''],
  ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];

/** Appendix B: the code length of each symbol, 0-255, then EOS (256). */
const CODE_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];
const EOS = 256;

/** Per code length: the first code, and where its symbols start in `ORDER`. */
interface Canonical {
  order: number[];
  first: number[];
  count: number[];
  offset: number[];
}

function canonical(): Canonical {
  const order = CODE_LENGTHS.map((_, sym) => sym).sort((a, b) => CODE_LENGTHS[a]! - CODE_LENGTHS[b]! || a - b);
  const first: number[] = [];
  const count: number[] = [];
  const offset: number[] = [];
  let code = 0;
  let len = CODE_LENGTHS[order[0]!]!;
  order.forEach((sym, i) => {
    const l = CODE_LENGTHS[sym]!;
    if (l !== len) {
      code <<= l - len;
      len = l;
    }
    if (count[l] === undefined) {
      first[l] = code;
      count[l] = 0;
      offset[l] = i;
    }
    count[l]! += 1;
    code += 1;
  });
  return { order, first, count, offset };
}

let table: Canonical | undefined;

/** Decode a Huffman-coded string (§5.2); padding must be at most 7 bits of the EOS prefix (all ones). */
export function huffmanDecode(bytes: Uint8Array): string {
  table ??= canonical();
  const { order, first, count, offset } = table;
  const out: number[] = [];
  let code = 0;
  let len = 0;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((byte >> bit) & 1);
      len += 1;
      const n = count[len];
      if (n !== undefined && code - first[len]! < n && code >= first[len]!) {
        const sym = order[offset[len]! + code - first[len]!]!;
        if (sym === EOS) throw new Error('HPACK: EOS in a Huffman string');
        out.push(sym);
        code = 0;
        len = 0;
      } else if (len > 30) throw new Error('HPACK: bad Huffman code');
    }
  }
  if (len > 7 || code !== (1 << len) - 1) throw new Error('HPACK: bad Huffman padding');
  return Buffer.from(out).toString('latin1');
}

/** An integer with an N-bit prefix (§5.1), from `b` at `pos`. */
function readInt(b: Uint8Array, pos: number, prefixBits: number): [number, number] {
  const max = (1 << prefixBits) - 1;
  let v = b[pos]! & max;
  pos += 1;
  if (v < max) return [v, pos];
  let shift = 0;
  for (;;) {
    if (pos >= b.length || shift > 28) throw new Error('HPACK: bad integer');
    const c = b[pos++]!;
    v += (c & 0x7f) * 2 ** shift;
    shift += 7;
    if ((c & 0x80) === 0) return [v, pos];
  }
}

function readString(b: Uint8Array, pos: number): [string, number] {
  if (pos >= b.length) throw new Error('HPACK: truncated');
  const huffman = (b[pos]! & 0x80) !== 0;
  const [len, p] = readInt(b, pos, 7);
  if (p + len > b.length) throw new Error('HPACK: truncated string');
  const raw = b.subarray(p, p + len);
  return [huffman ? huffmanDecode(raw) : Buffer.from(raw).toString('latin1'), p + len];
}

function staticEntry(index: number): readonly [string, string] {
  const e = STATIC[index - 1];
  if (!e) throw new Error(`HPACK: index ${index} is not in the static table (no dynamic table here)`);
  return e;
}

/** Decode one header block (the concatenated HEADERS and CONTINUATION fragments) into its fields, in order. */
export function hpackDecode(block: Uint8Array): Array<[string, string]> {
  const fields: Array<[string, string]> = [];
  let pos = 0;
  while (pos < block.length) {
    const c = block[pos]!;
    if (c & 0x80) {
      // §6.1 indexed field
      const [index, p] = readInt(block, pos, 7);
      const [name, value] = staticEntry(index);
      fields.push([name, value]);
      pos = p;
    } else if ((c & 0xe0) === 0x20) {
      // §6.3 dynamic table size update: only 0 is consistent with what the client announced
      const [size, p] = readInt(block, pos, 5);
      if (size !== 0) throw new Error(`HPACK: table size update to ${size} beyond the announced 0`);
      pos = p;
    } else {
      // §6.2 literal: with incremental indexing (01), without (0000), never indexed (0001)
      const prefix = (c & 0xc0) === 0x40 ? 6 : 4;
      const [index, p] = readInt(block, pos, prefix);
      let name: string;
      pos = p;
      if (index === 0) [name, pos] = readString(block, pos);
      else name = staticEntry(index)[0];
      let value: string;
      [value, pos] = readString(block, pos);
      fields.push([name, value]);
    }
  }
  return fields;
}
