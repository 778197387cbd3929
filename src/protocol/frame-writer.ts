/**
 * Encodes frames straight into one growing output buffer: the hot path of
 * both the server (replies) and the client (requests). Writes the minimal
 * MessagePack encoding for the types the protocol uses: nil (and undefined,
 * written as nil: the server never sends an extension), bool, number, str,
 * bin, array, map. Byte-identical to msgpackr's Packr with
 * `{useRecords: false, variableMapSize: true}` except that every integer is
 * the smallest int format (msgpackr writes integers beyond 32 bits as float
 * 64) and undefined is nil (test/protocol/frame-writer.test.ts checks both).
 * Anything else (bigint, Date, Map, …) falls back to msgpackr for that frame.
 *
 * Invariants: frames are appended whole and in order; the buffer itself
 * (growth, take, zero-copy of large values) is output-buffer.ts's.
 */
import { KvError } from '../errors.js';
import { packr } from './frame.js';
import { KeptMemory } from './kept-memory.js';
import { FRAME_HEADER_BYTES, MAX_REPLY_BYTES } from './limits.js';
import { copyMemory } from './memory-copy.js';
import { OutputBuffer, ZERO_COPY_BYTES } from './output-buffer.js';

export { ZERO_COPY_BYTES };

/** Values up to this many bytes are copied by a JS loop (cheaper than a native call), longer ones by Buffer.copy. */
const COPY_LOOP_BYTES = 64;

/**
 * buf.writeUInt32BE / writeUInt16BE without the Buffer method: its range
 * checks, and the method load (an uncached property load from optimised code
 * here, a few hundred instructions a reply). `x` fits: callers pick the width.
 */
function putU32(buf: Buffer, at: number, x: number): void {
  buf[at] = x >>> 24;
  buf[at + 1] = x >>> 16;
  buf[at + 2] = x >>> 8;
  buf[at + 3] = x;
}

function putU16(buf: Buffer, at: number, x: number): void {
  buf[at] = x >>> 8;
  buf[at + 1] = x;
}

class Unsupported extends Error {}
const UNSUPPORTED = new Unsupported();

export class FrameWriter extends OutputBuffer {
  /**
   * Appends one frame holding `value`. A body over `maxBytes` (default
   * MAX_REPLY_BYTES, what a uint32 length prefix can say) leaves nothing
   * behind and throws KvError TOO_LARGE: a frame is written whole or not at all.
   */
  frame(value: unknown, maxBytes = MAX_REPLY_BYTES): void {
    this.begin();
    try {
      this.value(value, 0);
    } catch (err) {
      this.fail(err, value, maxBytes);
      return;
    }
    this.end(maxBytes);
  }

  /** Appends one frame holding `[id, result]` (a success reply), without building the array; `maxBytes` as for frame(). */
  reply(id: number, result: unknown, maxBytes = MAX_REPLY_BYTES): void {
    this.begin();
    try {
      this.byte(0x92);
      this.number(id);
      this.value(result, 1);
    } catch (err) {
      this.fail(err, [id, result], maxBytes);
      return;
    }
    this.end(maxBytes);
  }

  /**
   * Appends one frame holding `[id, bin]` whose bin is src[from, from + n),
   * copied straight from `src` (the server's GET copies a value from the
   * small-value cache's arena with no Buffer in between). A value of at least
   * ZERO_COPY_BYTES is referenced, not copied: `src` must then stay unchanged
   * until the reply is written (a read's own Buffer; the cache's arena holds
   * smaller values only). `maxBytes` as for frame().
   */
  replyBin(id: number, src: Buffer, from: number, n: number, maxBytes = MAX_REPLY_BYTES): void {
    this.begin();
    this.byte(0x92);
    this.number(id);
    if (n < 0x100) this.typed(0xc4, n, 1);
    else if (n < 0x10000) this.typed(0xc5, n, 2);
    else this.typed(0xc6, n, 4);
    if (n >= ZERO_COPY_BYTES) this.bytes(src.subarray(from, from + n));
    else {
      const at = this.reserve(n);
      const buf = this.buf;
      if (n <= COPY_LOOP_BYTES) for (let i = 0; i < n; i++) buf[at + i] = src[from + i]!;
      else this.copyFromSource(src, from, at, n);
      this.pos = at + n;
    }
    this.end(maxBytes);
  }

  /**
   * Copies src[from, from + n) to buf[at, at + n) memory to memory
   * (memory-copy.ts: no view made, a view per GET was most of what a GET
   * allocated), with src's ArrayBuffer kept for the last `src` (a GET's is
   * the small-value cache's arena, the same every time): src.copy and
   * src.subarray read `.buffer` per call (kept-memory.ts), which cost more
   * than copying a 100-byte value. The owner calls forgetSource
   * when the source may go (the server: at the end of each tick), so an
   * arena the idle memory reducer dropped is not kept alive here. (A WeakRef
   * cost ~200 instructions a deref: it adds its target to V8's kept-objects
   * set each time.)
   */
  private copyFromSource(src: Buffer, from: number, at: number, n: number): void {
    const source = this.sourceMemory;
    const out = this.bufMemory;
    source.keep(src);
    out.keep(this.buf);
    copyMemory(out.keptMemory, out.keptOffset + at, source.keptMemory, source.keptOffset + from, n);
  }

  /** Drops the source replyBin kept (copyFromSource): nothing of it is referenced here afterwards. */
  forgetSource(): void {
    this.sourceMemory.forget();
  }

  /** The last source replyBin copied from, and its ArrayBuffer. */
  private readonly sourceMemory = new KeptMemory();

  // The frame being written: where its header is, and the state to roll back to.
  private frameBuf: Buffer = this.buf;
  private frameAt = 0;
  private frameBefore = 0;
  private markStart = 0;
  private markDone = 0;
  private markDoneBytes = 0;

  /** Reserves the header of a new frame and remembers how to undo it. */
  private begin(): void {
    const headerAt = this.reserve(FRAME_HEADER_BYTES);
    this.frameBuf = this.buf;
    this.frameAt = headerAt;
    this.pos = headerAt + FRAME_HEADER_BYTES;
    this.markStart = this.start;
    this.markDone = this.done.length;
    this.markDoneBytes = this.doneBytes;
    this.frameBefore = this.length;
  }

  /** Writes the header of the frame begun last, or undoes the frame if its body is over `maxBytes`. */
  private end(maxBytes: number): void {
    const body = this.length - this.frameBefore;
    if (body > maxBytes) {
      this.rollback(this.frameAt);
      throw tooLarge(body, maxBytes);
    }
    putU32(this.frameBuf, this.frameAt, body);
  }

  private rollback(to: number): void {
    this.returnTo(this.frameBuf);
    this.start = this.markStart;
    this.done.length = this.markDone;
    this.doneBytes = this.markDoneBytes;
    this.pos = to;
  }

  /**
   * The frame begun last could not be encoded (`err`): a value this writer does
   * not handle is encoded by msgpackr instead; any other error leaves no
   * partial frame behind (the stream stays valid for the next one) and is rethrown.
   */
  private fail(err: unknown, value: unknown, maxBytes: number): void {
    const headerAt = this.frameAt;
    const headerBuf = this.frameBuf;
    if (!(err instanceof Unsupported)) {
      this.rollback(headerAt);
      throw err;
    }
    // Roll back to just after the header and let msgpackr encode this frame.
    this.rollback(headerAt + FRAME_HEADER_BYTES);
    let packed: Buffer;
    try {
      packed = packr.pack(value);
    } catch (packErr) {
      this.rollback(headerAt);
      throw packErr;
    }
    if (packed.length > maxBytes) {
      this.rollback(headerAt);
      throw tooLarge(packed.length, maxBytes);
    }
    // msgpackr may reuse its buffer for the next pack: never keep a reference to it.
    const body = packed.length >= ZERO_COPY_BYTES ? Buffer.from(packed) : packed;
    putU32(headerBuf, headerAt, body.length);
    this.bytes(body);
  }

  private typed(tag: number, x: number, width: 1 | 2 | 4): undefined {
    const at = this.reserve(1 + width);
    const buf = this.buf;
    buf[at] = tag;
    if (width === 1) buf[at + 1] = x;
    else if (width === 2) putU16(buf, at + 1, x);
    else putU32(buf, at + 1, x);
    this.pos = at + 1 + width;
  }

  private value(v: unknown, depth: number): undefined {
    switch (typeof v) {
      case 'string':
        return this.string(v);
      case 'number':
        return this.number(v);
      case 'boolean':
        return this.byte(v ? 0xc3 : 0xc2);
      case 'undefined':
        return this.byte(0xc0);
      case 'object':
        if (v === null) return this.byte(0xc0);
        if (depth > 32) throw UNSUPPORTED;
        if (v instanceof Uint8Array) {
          const n = v.length;
          if (n < 0x100) this.typed(0xc4, n, 1);
          else if (n < 0x10000) this.typed(0xc5, n, 2);
          else this.typed(0xc6, n, 4);
          return this.bytes(v);
        }
        if (Array.isArray(v)) {
          const n = v.length;
          if (n < 16) this.byte(0x90 | n);
          else if (n < 0x10000) this.typed(0xdc, n, 2);
          else this.typed(0xdd, n, 4);
          for (let i = 0; i < n; i++) this.value(v[i], depth + 1);
          return;
        }
        if (Object.getPrototypeOf(v) === Object.prototype)
          return this.map(v as Record<string, unknown>, depth);
        throw UNSUPPORTED;
      default:
        throw UNSUPPORTED;
    }
  }

  private map(o: Record<string, unknown>, depth: number): undefined {
    const keys = Object.keys(o);
    const n = keys.length;
    if (n < 16) this.byte(0x80 | n);
    else if (n < 0x10000) this.typed(0xde, n, 2);
    else this.typed(0xdf, n, 4);
    for (const k of keys) {
      this.string(k);
      this.value(o[k], depth + 1);
    }
  }

  private string(s: string): undefined {
    const len = s.length;
    if (len < 32) {
      // Short ASCII: copy the char codes, no UTF-8 encoder call.
      const at = this.reserve(1 + len);
      const buf = this.buf;
      let i = 0;
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at + 1 + i] = c;
      }
      if (i === len) {
        buf[at] = 0xa0 | len;
        this.pos = at + 1 + len;
        return;
      }
    }
    const n = Buffer.byteLength(s, 'utf8');
    const header = n < 32 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
    const at = this.reserve(header + n);
    const buf = this.buf;
    if (header === 1) buf[at] = 0xa0 | n;
    else if (header === 2) {
      buf[at] = 0xd9;
      buf[at + 1] = n;
    } else if (header === 3) {
      buf[at] = 0xda;
      putU16(buf, at + 1, n);
    } else {
      buf[at] = 0xdb;
      putU32(buf, at + 1, n);
    }
    this.pos = at + header + buf.write(s, at + header, n, 'utf8');
  }

  /**
   * The smallest MessagePack int that holds an integral `x`: positive fixint
   * or uint 8/16/32/64 for x ≥ 0, negative fixint or int 8/16/32/64 for
   * x < 0 (signed formats only for negative numbers, PROTOCOL.md §3). Float 64
   * only for a number that is not an integer or lies outside the 64-bit
   * ranges (msgpackr, by contrast, writes every integer beyond 32 bits as a
   * float 64).
   */
  private number(x: number): undefined {
    if (Number.isInteger(x)) {
      if (x >= 0) {
        if (x < 0x80) return this.byte(x);
        if (x < 0x100) return this.typed(0xcc, x, 1);
        if (x < 0x10000) return this.typed(0xcd, x, 2);
        if (x < 0x100000000) return this.typed(0xce, x, 4);
        if (x < TWO_64) return this.wide(0xcf, x);
      } else {
        if (x >= -32) return this.byte(x & 0xff);
        if (x >= -0x80) return this.typed(0xd0, x & 0xff, 1);
        if (x >= -0x8000) return this.typed(0xd1, x & 0xffff, 2);
        if (x >= -0x80000000) return this.typed(0xd2, x >>> 0, 4);
        if (x >= -TWO_63) return this.wide(0xd3, x);
      }
    }
    const at = this.reserve(9);
    this.buf[at] = 0xcb;
    this.buf.writeDoubleBE(x, at + 1);
    this.pos = at + 9;
  }

  /** uint 64 (0xcf) or int 64 (0xd3) of an integral number beyond 32 bits (exact: BigInt of an integral double). */
  private wide(tag: 0xcf | 0xd3, x: number): undefined {
    const at = this.reserve(9);
    this.buf[at] = tag;
    if (tag === 0xcf) this.buf.writeBigUInt64BE(BigInt(x), at + 1);
    else this.buf.writeBigInt64BE(BigInt(x), at + 1);
    this.pos = at + 9;
  }
}

/** A frame body over the limit: TOO_LARGE, and the frame was not written. */
function tooLarge(bytes: number, maxBytes: number): KvError {
  return new KvError(
    'TOO_LARGE',
    `the reply would be a frame of ${bytes} bytes, over the largest frame of ${maxBytes} bytes (a uint32 length prefix); ask for fewer or smaller values at once`,
  );
}

const TWO_64 = 2 ** 64;
const TWO_63 = 2 ** 63;
