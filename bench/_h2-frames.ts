/**
 * A minimal gRPC-over-HTTP/2 client for the ext_authz load generator: it writes frames straight
 * to a TCP socket, the way Envoy's C++ client costs tens of µs per call and has no garbage
 * collector. One connection, many concurrent streams, unary calls only.
 *
 * Requests: HEADERS (HPACK literals, no Huffman, no dynamic table) + DATA, built once per call
 * from a pre-encoded message, plus the client's and the call's own header fields, sent as given
 * (a field may be repeated, which node:http2's client refuses to do). Responses: frames are
 * parsed, not HPACK-decoded: a call succeeds when one complete gRPC message arrived in DATA and
 * the stream ended with a trailers HEADERS frame (END_STREAM), with no RST_STREAM or GOAWAY. A
 * gRPC error status arrives trailers-only, without DATA, so it is a failure here; only then is
 * the trailers block decoded (bench/_hpack.ts), and the call rejects with a `GrpcStatusError`.
 * Flow control: the client grants the server a large window up front and tops it up; it honours
 * the server's connection and stream windows and SETTINGS_MAX_FRAME_SIZE. PING and SETTINGS are
 * acknowledged. Over TCP, or TLS with ALPN h2 (`tls`).
 *
 * Checked against a grpc-js client on the same node in test/bench/h2-frames.test.ts.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { hpackDecode } from './_hpack.ts';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;

/** What we grant the server, per stream and for the connection (2^30). */
const OUR_WINDOW = 1 << 30;

function frameHeader(len: number, type: number, flags: number, stream: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b.writeUIntBE(len, 0, 3);
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(stream & 0x7fffffff, 5);
  return b;
}

function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([frameHeader(payload.length, type, flags, stream), payload]);
}

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1); `first` holds the pattern bits. */
function hpackInt(first: number, prefixBits: number, n: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (n < max) return [first | n];
  const out = [first | max];
  n -= max;
  while (n >= 128) {
    out.push((n % 128) + 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

const str = (s: string): number[] => {
  const b = Buffer.from(s, 'latin1');
  return [...hpackInt(0, 7, b.length), ...b];
};

/** A header block of literals without indexing (RFC 7541 §6.2.2), names new or from the static table. */
export function hpackBlock(headers: Array<[string, string]>): Buffer {
  const STATIC: Record<string, number> = { ':authority': 1, ':method': 2, ':path': 4, ':scheme': 6, 'content-type': 31 };
  const out: number[] = [];
  for (const [name, value] of headers) {
    const idx = STATIC[name];
    if (idx) out.push(...hpackInt(0x00, 4, idx), ...str(value));
    else out.push(0x00, ...str(name), ...str(value));
  }
  return Buffer.from(out);
}

/** A call that ended with a gRPC status other than OK (decoded from its trailers). */
export class GrpcStatusError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    super(`gRPC status ${code}: ${details}`);
  }
}

export interface H2ClientOptions {
  /** `:authority`; default: the address. */
  authority?: string;
  /** Header fields sent on every call after the gRPC ones (e.g. a proxy's `authorization`). */
  headers?: Array<[string, string]>;
  /** TLS (ALPN h2) instead of plain TCP: trusted roots, client certificate, server name. */
  tls?: ConnectionOptions;
}

/** A HEADERS frame's header block fragment: without its padding and priority fields (RFC 9113 §6.2). */
function headerFragment(payload: Buffer, flags: number): Buffer {
  let start = 0;
  let end = payload.length;
  if (flags & PADDED) {
    end -= payload[0]!;
    start = 1;
  }
  if (flags & PRIORITY) start += 5;
  return payload.subarray(start, Math.max(start, end));
}

/** The error a failed call rejects with: its trailers' `grpc-status` and `grpc-message`, when they decode. */
function statusError(block: Buffer[]): Error {
  let fields: Array<[string, string]>;
  try {
    fields = hpackDecode(Buffer.concat(block));
  } catch (e) {
    return new Error(`no complete gRPC message, and trailers that do not decode (${(e as Error).message})`);
  }
  const status = fields.find(([k]) => k === 'grpc-status')?.[1];
  if (status === undefined || !/^\d+$/.test(status)) return new Error('no complete gRPC message and no grpc-status');
  const message = fields.find(([k]) => k === 'grpc-message')?.[1] ?? '';
  let details = message;
  try {
    details = decodeURIComponent(message);
  } catch {
    // not percent-encoded as gRPC says: shown as sent
  }
  return new GrpcStatusError(Number(status), details);
}

interface Call {
  resolve(msg: Buffer): void;
  reject(e: Error): void;
  chunks: Buffer[];
  /** Set once a HEADERS frame with END_STREAM was seen; complete at END_HEADERS. */
  ending: boolean;
  /** The header block fragments of the last HEADERS (the trailers), decoded only when the call failed. */
  block: Buffer[];
  /** Unsent request bytes (DATA payload) waiting for window. */
  pending: Buffer | null;
  sendWindow: number;
}

export class H2GrpcClient {
  /** A TLSSocket over TLS. */
  private readonly sock: Socket;
  private nextStream = 1;
  private readonly calls = new Map<number, Call>();
  private buf: Buffer = Buffer.alloc(0);
  private connSendWindow = 65535;
  private peerInitialWindow = 65535;
  private peerMaxFrame = 16384;
  private received = 0;
  private closed: Error | null = null;
  /** Streams whose DATA waits for window, in order. */
  private readonly blocked: number[] = [];
  readonly ready: Promise<void>;

  private readonly authority: string;
  private readonly headers: Array<[string, string]>;

  constructor(address: string, opts: H2ClientOptions = {}) {
    this.authority = opts.authority ?? address;
    this.headers = opts.headers ?? [];
    const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
    this.sock = opts.tls ? tlsConnect({ host, port, ALPNProtocols: ['h2'], ...opts.tls }) : connect({ host, port, noDelay: true });
    this.ready = new Promise((resolve, reject) => {
      this.sock.once(opts.tls ? 'secureConnect' : 'connect', () => resolve());
      this.sock.once('error', reject);
    });
    // SETTINGS: ENABLE_PUSH 0, INITIAL_WINDOW_SIZE 2^30, HEADER_TABLE_SIZE 0; then the connection window.
    const settings = Buffer.alloc(18);
    settings.writeUInt16BE(0x2, 0);
    settings.writeUInt32BE(0, 2);
    settings.writeUInt16BE(0x4, 6);
    settings.writeUInt32BE(OUR_WINDOW, 8);
    settings.writeUInt16BE(0x1, 12);
    settings.writeUInt32BE(0, 14);
    const wu = Buffer.alloc(4);
    wu.writeUInt32BE(OUR_WINDOW - 65535, 0);
    this.sock.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0, settings), frame(WINDOW_UPDATE, 0, 0, wu)]));
    this.sock.on('data', (d: Buffer) => this.onData(d));
    const fail = (e: Error) => this.failAll(e);
    this.sock.on('error', fail);
    this.sock.on('close', () => fail(new Error('connection closed')));
  }

  /**
   * One unary call: `message` is the serialized request; resolves with the serialized response,
   * rejects with a `GrpcStatusError` when the call ends with another status. `headers` are this
   * call's own fields, sent after the client's.
   */
  unary(path: string, message: Buffer, timeoutMs: number, headers: Array<[string, string]> = []): Promise<Buffer> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextStream;
    this.nextStream += 2;
    const block = hpackBlock([
      [':method', 'POST'],
      [':scheme', 'http'],
      [':path', path],
      [':authority', this.authority],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
      ['grpc-timeout', `${timeoutMs}m`],
      ...this.headers,
      ...headers,
    ]);
    const body = Buffer.allocUnsafe(5 + message.length);
    body[0] = 0;
    body.writeUInt32BE(message.length, 1);
    message.copy(body, 5);
    return new Promise((resolve, reject) => {
      const call: Call = { resolve, reject, chunks: [], ending: false, block: [], pending: body, sendWindow: this.peerInitialWindow };
      this.calls.set(id, call);
      this.sock.write(Buffer.concat([frameHeader(block.length, HEADERS, END_HEADERS, id), block]));
      this.blocked.push(id);
      this.flush();
    });
  }

  close(): void {
    this.sock.end(frame(GOAWAY, 0, 0, Buffer.alloc(8)));
    this.sock.destroy();
  }

  /** Send what the windows allow, streams in the order they were opened. */
  private flush(): void {
    const out: Buffer[] = [];
    while (this.blocked.length > 0) {
      const id = this.blocked[0]!;
      const call = this.calls.get(id);
      if (!call || !call.pending) {
        this.blocked.shift();
        continue;
      }
      const n = Math.min(call.pending.length, this.connSendWindow, call.sendWindow, this.peerMaxFrame);
      if (n <= 0 && call.pending.length > 0) break;
      const last = n === call.pending.length;
      out.push(frameHeader(n, DATA, last ? END_STREAM : 0, id), call.pending.subarray(0, n));
      this.connSendWindow -= n;
      call.sendWindow -= n;
      call.pending = last ? null : call.pending.subarray(n);
      if (last) this.blocked.shift();
    }
    if (out.length > 0) this.sock.write(out.length === 1 ? out[0]! : Buffer.concat(out));
  }

  private failAll(e: Error): void {
    if (!this.closed) this.closed = e;
    for (const [, call] of this.calls) call.reject(e);
    this.calls.clear();
  }

  private finish(id: number, err?: Error): void {
    const call = this.calls.get(id);
    if (!call) return;
    this.calls.delete(id);
    if (err) return call.reject(err);
    const body = call.chunks.length === 1 ? call.chunks[0]! : Buffer.concat(call.chunks);
    if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) return call.reject(statusError(call.block));
    call.resolve(body.subarray(5));
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    let off = 0;
    const acks: Buffer[] = [];
    while (this.buf.length - off >= 9) {
      const len = this.buf.readUIntBE(off, 3);
      if (this.buf.length - off < 9 + len) break;
      const type = this.buf[off + 3]!;
      const flags = this.buf[off + 4]!;
      const stream = this.buf.readUInt32BE(off + 5) & 0x7fffffff;
      const payload = this.buf.subarray(off + 9, off + 9 + len);
      off += 9 + len;
      switch (type) {
        case DATA: {
          this.received += len;
          let p = payload;
          if (flags & PADDED) p = p.subarray(1, p.length - p[0]!);
          this.calls.get(stream)?.chunks.push(Buffer.from(p));
          if (flags & END_STREAM) this.finish(stream, new Error('stream ended without trailers'));
          break;
        }
        case HEADERS:
        case CONTINUATION: {
          const call = this.calls.get(stream);
          if (type === HEADERS && call) {
            if (flags & END_STREAM) call.ending = true;
            call.block = [headerFragment(payload, flags)];
          } else if (call) call.block.push(payload);
          if (flags & END_HEADERS && call?.ending) this.finish(stream);
          break;
        }
        case RST_STREAM:
          this.finish(stream, new Error(`RST_STREAM ${payload.readUInt32BE(0)}`));
          break;
        case SETTINGS:
          if (!(flags & ACK)) {
            for (let i = 0; i + 6 <= payload.length; i += 6) {
              const key = payload.readUInt16BE(i);
              const val = payload.readUInt32BE(i + 2);
              if (key === 0x4) {
                const delta = val - this.peerInitialWindow;
                this.peerInitialWindow = val;
                for (const c of this.calls.values()) c.sendWindow += delta;
              } else if (key === 0x5) this.peerMaxFrame = val;
            }
            acks.push(frame(SETTINGS, ACK, 0));
          }
          break;
        case PING:
          if (!(flags & ACK)) acks.push(frame(PING, ACK, 0, Buffer.from(payload)));
          break;
        case GOAWAY:
          this.failAll(new Error(`GOAWAY ${payload.readUInt32BE(4)}`));
          break;
        case WINDOW_UPDATE: {
          const inc = payload.readUInt32BE(0) & 0x7fffffff;
          if (stream === 0) this.connSendWindow += inc;
          else {
            const c = this.calls.get(stream);
            if (c) c.sendWindow += inc;
          }
          break;
        }
        default:
          break;
      }
    }
    this.buf = off === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(off);
    // Give back what the server sent once half our connection window is used.
    if (this.received > OUR_WINDOW / 2) {
      const wu = Buffer.alloc(4);
      wu.writeUInt32BE(this.received, 0);
      acks.push(frame(WINDOW_UPDATE, 0, 0, wu));
      this.received = 0;
    }
    if (acks.length > 0) this.sock.write(Buffer.concat(acks));
    this.flush();
  }
}
