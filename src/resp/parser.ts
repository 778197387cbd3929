/**
 * FORMAT: RESP requests, as Redis reads them (networking.c, Redis 7):
 *
 *   multibulk   *<count>\r\n  then count × ( $<length>\r\n <length bytes> \r\n )
 *   inline      one line up to \n (a \r before it is dropped), split into
 *               arguments as redis-cli and Redis's sdssplitargs do: blanks
 *               separate, "double quotes" with \n \r \t \b \a \\ \" \xHH
 *               escapes, 'single quotes' with \' only
 *
 * A request starting with `*` is multibulk, anything else inline. `*0` or a
 * negative count, and an empty inline line, are no request (no reply).
 * Lengths are decimal with Redis's string2ll rules (no sign but `-`, no
 * leading zeros, no blanks). As in Redis the two bytes after a bulk are
 * skipped, not checked.
 *
 * Limits, checked on the length line before anything is buffered for it:
 * each bulk and the whole request at most `maxRequestBytes`; at most
 * `maxArgs` arguments; lines at most RESP_MAX_INLINE_BYTES. Before AUTH the
 * connection lowers them (RESP_PREAUTH_MAX_ARGS, PREAUTH_MAX_FRAME_BYTES).
 * A violation throws RespProtocolError with Redis's wording; the connection
 * answers `-ERR Protocol error: ...` and closes.
 *
 * Buffers: a request inside one received chunk is a set of views of it (no
 * copy); a request spread over chunks is copied once, when complete.
 */
import { ChunkQueue } from '../protocol/chunk-queue.js';
import { LOOKAHEAD_MAX_ARGS, RESP_MAX_INLINE_BYTES } from '../protocol/limits.js';

export class RespProtocolError extends Error {
  constructor(what: string) {
    super(`Protocol error: ${what}`);
    this.name = 'RespProtocolError';
  }
}

const CR = 0x0d;
const LF = 0x0a;

/**
 * Redis's string2ll for a length line: optional `-`, digits, no leading zero
 * (except "0"), at most 18 digits here (enough for any length we accept).
 * NaN if malformed.
 */
export function parseLength(buf: Buffer, start: number, end: number): number {
  let i = start;
  const negative = i < end && buf[i] === 0x2d;
  if (negative) i++;
  if (i >= end || end - i > 18) return Number.NaN;
  if (buf[i] === 0x30 && end - i > 1) return Number.NaN;
  let n = 0;
  for (; i < end; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) return Number.NaN;
    n = n * 10 + d;
  }
  if (negative && n === 0) return Number.NaN; // "-0" is not a number to string2ll
  return negative ? -n : n;
}

export interface RespLimits {
  /** Most arguments per request. */
  maxArgs: number;
  /** Largest bulk, and largest request (sum of its bulks), bytes. */
  maxRequestBytes: number;
  /** The client has not authenticated yet (the errors say so, as Redis's do). */
  preAuth: boolean;
}

export class RespReader extends ChunkQueue {
  /** The multibulk request being read: its arguments so far, how many remain, its bytes so far. */
  private args: Buffer[] | undefined;
  private remaining = 0;
  private requestBytes = 0;
  /** Length of the bulk whose header was read and body was not, or -1. */
  private bulkLength = -1;

  constructor(public limits: RespLimits) {
    super();
  }

  /**
   * Look-ahead, for the server to warm the keydir before a received batch
   * runs (connection.ts lookAhead): from the read position, for each
   * multibulk GET (any case) complete in `aheadBytes`, up to `max`
   * requests, its key's start and length in `spans` (2 entries each);
   * returns how many keys. Stops at the first request that is not complete
   * there, is inline, or has more than LOOKAHEAD_MAX_ARGS arguments, and
   * between the bulks of a request partly read. A hint only: the read
   * position does not move and nothing is checked here (next() reads and
   * refuses the requests themselves). SETs are skipped: warming their keys
   * cost more CPU per SET than it saved (redis-benchmark -P 16, 4 of 4
   * alternating rounds), as it saved per GET.
   */
  keysAhead(spans: Int32Array, max: number): number {
    if (this.args !== undefined) return 0;
    const b = this.head;
    const end = b.length;
    let p = this.offset;
    let n = 0;
    for (let r = 0; r < max && p < end && b[p] === 0x2a; r++) {
      let count = 0;
      let q = p + 1;
      for (; q < end && b[q] !== CR; q++) count = count * 10 + (b[q]! - 0x30);
      if (q + 1 >= end || q === p + 1 || q - p > 3 || count < 1 || count > LOOKAHEAD_MAX_ARGS) return n;
      p = q + 2;
      let keyStart = -1;
      let keyLength = 0;
      let isKeyed = false;
      for (let i = 0; i < count; i++) {
        if (p >= end || b[p] !== 0x24) return n;
        let length = 0;
        q = p + 1;
        for (; q < end && b[q] !== CR; q++) length = length * 10 + (b[q]! - 0x30);
        if (q === p + 1 || q - p > 11 || !(length >= 0)) return n;
        const at = q + 2;
        p = at + length + 2;
        if (p > end) return n;
        if (i === 0)
          isKeyed =
            length === 3 &&
            (b[at + 1]! | 0x20) === 0x65 && // e
            (b[at + 2]! | 0x20) === 0x74 && // t
            (b[at]! | 0x20) === 0x67 && // g
            count === 2;
        else if (i === 1) {
          keyStart = at;
          keyLength = length;
        }
      }
      if (isKeyed) {
        spans[2 * n] = keyStart;
        spans[2 * n + 1] = keyLength;
        n++;
      }
    }
    return n;
  }

  /** The buffer keysAhead's spans index. */
  get aheadBytes(): Buffer {
    return this.head;
  }

  /** True while a request has started arriving and is not complete. */
  override get partial(): boolean {
    return this.args !== undefined || this.buffered > 0;
  }

  /** The next complete request's arguments (views), or undefined. Throws RespProtocolError. */
  next(): Buffer[] | undefined {
    for (;;) {
      if (this.args === undefined) {
        if (this.buffered === 0) return undefined;
        if (this.offset >= this.head.length) this.merge();
        if (this.head[this.offset] !== 0x2a) {
          const inline = this.inline();
          if (inline === undefined) return undefined;
          if (inline.length > 0) return inline;
          continue; // an empty line: no request
        }
        const end = this.line('too big mbulk count string');
        if (end < 0) return undefined;
        const count = parseLength(this.head, this.offset + 1, end);
        this.offset = end + 2;
        if (Number.isNaN(count) || count > this.limits.maxArgs) {
          if (!Number.isNaN(count) && this.limits.preAuth && count <= 2 ** 31 - 1) {
            throw new RespProtocolError('unauthenticated multibulk length');
          }
          throw new RespProtocolError('invalid multibulk length');
        }
        if (count <= 0) continue; // *0 and *-1: no request
        this.args = [];
        this.remaining = count;
        this.requestBytes = 0;
      }
      while (this.remaining > 0) {
        if (this.bulkLength < 0) {
          if (this.buffered === 0) return undefined;
          if (this.offset >= this.head.length) this.merge();
          const end = this.line('too big bulk count string');
          if (end < 0) return undefined;
          const at = this.offset;
          if (this.head[at] !== 0x24) {
            throw new RespProtocolError(`expected '$', got '${String.fromCharCode(this.head[at]!)}'`);
          }
          const length = parseLength(this.head, at + 1, end);
          if (Number.isNaN(length) || length < 0) throw new RespProtocolError('invalid bulk length');
          if (
            length > this.limits.maxRequestBytes ||
            this.requestBytes + length > this.limits.maxRequestBytes
          ) {
            throw new RespProtocolError(
              this.limits.preAuth
                ? 'unauthenticated bulk length'
                : length > this.limits.maxRequestBytes
                  ? 'invalid bulk length'
                  : `request larger than ${this.limits.maxRequestBytes} bytes (server option --max-frame-bytes)`,
            );
          }
          this.offset = end + 2;
          this.bulkLength = length;
          this.requestBytes += length;
        }
        const need = this.bulkLength + 2;
        let avail = this.head.length - this.offset;
        if (avail < need) {
          if (avail + this.tailBytes < need) return undefined;
          this.merge();
          avail = this.head.length - this.offset;
        }
        this.args!.push(this.headView(this.offset, this.offset + this.bulkLength));
        this.offset += need;
        this.bulkLength = -1;
        this.remaining--;
      }
      const args = this.args!;
      this.args = undefined;
      return args;
    }
  }

  /**
   * Index of the \r of the \r\n ending the line at `offset`, merging chunks
   * as needed; -1 if it has not arrived. Throws if the line is too long.
   */
  private line(tooLong: string): number {
    for (;;) {
      const cr = this.head.indexOf(CR, this.offset);
      if (cr >= 0 && cr + 1 < this.head.length) return cr;
      if (cr < 0 && this.head.length - this.offset > RESP_MAX_INLINE_BYTES) {
        throw new RespProtocolError(tooLong);
      }
      if (this.tailBytes === 0) return -1;
      this.merge();
    }
  }

  /** One inline request: its arguments ([] for an empty line), or undefined until its \n arrives. */
  private inline(): Buffer[] | undefined {
    let lf: number;
    for (;;) {
      lf = this.head.indexOf(LF, this.offset);
      if (lf >= 0) break;
      if (this.head.length - this.offset > RESP_MAX_INLINE_BYTES) {
        throw new RespProtocolError('too big inline request');
      }
      if (this.tailBytes === 0) return undefined;
      this.merge();
    }
    let end = lf;
    if (end > this.offset && this.head[end - 1] === CR) end--;
    const line = this.head.subarray(this.offset, end);
    this.offset = lf + 1;
    const args = splitArgs(line);
    if (args === undefined) throw new RespProtocolError('unbalanced quotes in request');
    if (args.length > this.limits.maxArgs) {
      throw new RespProtocolError(
        this.limits.preAuth ? 'unauthenticated multibulk length' : 'invalid multibulk length',
      );
    }
    return args;
  }
}

function isSpace(c: number | undefined): boolean {
  return c === 0x20 || (c !== undefined && c >= 0x09 && c <= 0x0d);
}

function hexValue(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

const ESCAPES: Record<number, number> = { 110: 0x0a, 114: 0x0d, 116: 0x09, 98: 0x08, 97: 0x07 };

/**
 * Redis's sdssplitargs over bytes: the arguments of an inline line, or
 * undefined for unbalanced quotes (or a closing quote not followed by a
 * blank). As in C, a NUL byte ends the line.
 */
export function splitArgs(input: Buffer): Buffer[] | undefined {
  const nul = input.indexOf(0);
  const line = nul >= 0 ? input.subarray(0, nul) : input;
  const n = line.length;
  const out: Buffer[] = [];
  let p = 0;
  for (;;) {
    while (p < n && isSpace(line[p])) p++;
    if (p >= n) return out;
    const bytes: number[] = [];
    let inq = false;
    let insq = false;
    for (let done = false; !done; ) {
      const c = line[p];
      if (inq) {
        if (c === undefined) return undefined;
        if (c === 0x5c && line[p + 1] === 0x78 && hexValue(line[p + 2]) >= 0 && hexValue(line[p + 3]) >= 0) {
          bytes.push(hexValue(line[p + 2]) * 16 + hexValue(line[p + 3]));
          p += 3;
        } else if (c === 0x5c && p + 1 < n) {
          p++;
          const e = line[p]!;
          bytes.push(ESCAPES[e] ?? e);
        } else if (c === 0x22) {
          if (p + 1 < n && !isSpace(line[p + 1])) return undefined;
          done = true;
        } else bytes.push(c);
      } else if (insq) {
        if (c === undefined) return undefined;
        if (c === 0x5c && line[p + 1] === 0x27) {
          p++;
          bytes.push(0x27);
        } else if (c === 0x27) {
          if (p + 1 < n && !isSpace(line[p + 1])) return undefined;
          done = true;
        } else bytes.push(c);
      } else if (c === undefined || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
        done = true;
      } else if (c === 0x22) inq = true;
      else if (c === 0x27) insq = true;
      else bytes.push(c);
      if (p < n) p++;
    }
    out.push(Buffer.from(bytes));
  }
}
