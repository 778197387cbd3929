/**
 * The two protocol adapters of the load generator (tools/lib/load.ts): segkv
 * frames and Redis RESP. Each does exactly two things, so that both stores
 * are driven by the same connection handling, pipelining and timing code:
 *
 * - `template(command, args)`: encodes one request once, with placeholder
 *   keys (and, for segkv, a placeholder id); the generator copies the bytes
 *   and patches the key digits (and id) in place for every request. No
 *   per-request encoder runs, for either store.
 * - `parse(buf, start, end, sink)`: counts the complete replies in a byte
 *   range, reporting error and nil replies, and returns where the first
 *   incomplete reply starts.
 *
 * segkv is spoken over a raw socket rather than through the SDK (src/client)
 * on purpose: the SDK builds a command object and a promise per request, and
 * Redis would get no such cost from our minimal RESP code, so the ratio would
 * measure client code, not the servers.
 *
 * Keys are `key:` + 12 decimal digits (16 bytes, as redis-benchmark's
 * `key:__rand_int__`); values are `valueBytes` of 'x'.
 */
import { packr, unpackr } from '../../src/protocol/frame.js';
import { FRAME_HEADER_BYTES } from '../../src/protocol/limits.js';

/** Bytes of every generated key: `key:` and 12 digits. */
export const KEY_BYTES = 16;
/** Digits after `key:`: keys 0 .. 10^12-1. */
export const KEY_DIGITS = 12;
export const MAX_KEYSPACE = 10 ** KEY_DIGITS;
const KEY_PLACEHOLDER = 'key:000000000000';

/** One pre-encoded request: copy `bytes`, write key digits at each `keyAt`, the uint32 id at `idAt` (-1: none). */
export interface Template {
  readonly bytes: Buffer;
  /** Where each key's 12 digits start, in argument order. */
  readonly keyAt: readonly number[];
  readonly idAt: number;
}

/** What `parse` reports per reply: `error` with its text, or `nil` (a GET miss). */
export interface ReplySink {
  reply(error: string | undefined, nil: boolean): void;
}

export interface WireAdapter {
  readonly target: 'segkv' | 'redis';
  /** Encodes `command` with `args`; an arg equal to KEY (the symbol) is a key slot; numbers are integers (RESP: decimal text). */
  template(command: string, args: readonly (typeof KEY | string | number | Buffer)[]): Template;
  /** Consumes the complete replies in buf[start, end); returns the offset of the first incomplete one. */
  parse(buf: Buffer, start: number, end: number, sink: ReplySink): number;
}

/** Marks a key slot in `template` arguments. */
export const KEY: unique symbol = Symbol('key');

/** Writes key number `n` (< 10^12) as 12 zero-padded digits at `at`. */
export function writeKeyDigits(buf: Buffer, at: number, n: number): void {
  for (let i = at + KEY_DIGITS - 1; i >= at; i--) {
    const q = Math.floor(n / 10);
    buf[i] = 0x30 + (n - q * 10);
    n = q;
  }
}

/** Every occurrence of the placeholder key in `bytes`, as positions of their digits. */
function keySlots(bytes: Buffer, expected: number): number[] {
  const needle = Buffer.from(KEY_PLACEHOLDER, 'latin1');
  const out: number[] = [];
  for (let at = bytes.indexOf(needle); at >= 0; at = bytes.indexOf(needle, at + needle.length)) {
    out.push(at + KEY_BYTES - KEY_DIGITS);
  }
  if (out.length !== expected) throw new Error(`template holds ${out.length} keys, expected ${expected}`);
  return out;
}

// ---- segkv: uint32 BE length + MessagePack [id, command, ...args] ----------

/** The id placeholder: 0xffffffff forces msgpack's uint32 form (0xce + 4 bytes), so any id fits in place. */
const ID_PLACEHOLDER = 0xffffffff;

export const segkvWire: WireAdapter = {
  target: 'segkv',
  template(command, args) {
    const keys = args.filter((a) => a === KEY).length;
    const body = packr.pack([
      ID_PLACEHOLDER,
      command,
      ...args.map((a) => (a === KEY ? KEY_PLACEHOLDER : a)),
    ]) as Buffer;
    const bytes = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
    bytes.writeUInt32BE(body.length, 0);
    body.copy(bytes, FRAME_HEADER_BYTES);
    // The body starts with the array header (1 byte for < 16 elements, 3 for more), then 0xce + id.
    const idAt = bytes.indexOf(Buffer.from([0xce, 0xff, 0xff, 0xff, 0xff]), FRAME_HEADER_BYTES) + 1;
    if (idAt <= FRAME_HEADER_BYTES || idAt > FRAME_HEADER_BYTES + 4)
      throw new Error('id not found in template');
    return { bytes, keyAt: keySlots(bytes, keys), idAt };
  },
  parse(buf, start, end, sink) {
    let p = start;
    while (end - p >= FRAME_HEADER_BYTES) {
      const length = buf.readUInt32BE(p);
      const body = p + FRAME_HEADER_BYTES;
      if (body + length > end) break;
      if (buf[body] === 0x92) {
        // [id, result]: skip the id (fixint, uint8, uint16 or uint32) and look at the result's first byte.
        const b = buf[body + 1]!;
        const idBytes = b < 0x80 ? 1 : b === 0xcc ? 2 : b === 0xcd ? 3 : 5;
        sink.reply(undefined, buf[body + 1 + idBytes] === 0xc0);
      } else {
        sink.reply(errorText(buf.subarray(body, body + length)), false);
      }
      p = body + length;
    }
    return p;
  },
};

function errorText(body: Buffer): string {
  try {
    const r = unpackr.unpack(body) as unknown;
    const e = Array.isArray(r) ? (r[2] as { code?: string; message?: string } | undefined) : undefined;
    return e ? `${e.code}: ${e.message}` : `unexpected reply ${JSON.stringify(r)}`;
  } catch {
    return 'unreadable reply frame';
  }
}

// ---- Redis: RESP2 arrays of bulk strings; replies + - : $ * -------------

export const respWire: WireAdapter = {
  target: 'redis',
  template(command, args) {
    const keys = args.filter((a) => a === KEY).length;
    const parts: Buffer[] = [Buffer.from(`*${args.length + 1}\r\n`)];
    for (const a of [command, ...args]) {
      const b =
        a === KEY
          ? Buffer.from(KEY_PLACEHOLDER)
          : typeof a === 'string' || typeof a === 'number'
            ? Buffer.from(String(a))
            : a;
      parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
    }
    const bytes = Buffer.concat(parts);
    return { bytes, keyAt: keySlots(bytes, keys), idAt: -1 };
  },
  parse(buf, start, end, sink) {
    let p = start;
    while (p < end) {
      const type = buf[p];
      const next = skipReply(buf, p, end);
      if (next < 0) break;
      if (type === 0x2d) sink.reply(buf.toString('latin1', p + 1, next - 2), false);
      else sink.reply(undefined, type === 0x24 && buf[p + 1] === 0x2d); // $-1: nil
      p = next;
    }
    return p;
  },
};

/** End of the line starting at `p` (the offset after CRLF), or -1 if incomplete. */
function lineEnd(buf: Buffer, p: number, end: number): number {
  const cr = buf.indexOf(0x0d, p);
  return cr < 0 || cr + 2 > end ? -1 : cr + 2;
}

/** A decimal integer (optionally negative) from p up to the CR. */
function readInt(buf: Buffer, p: number): number {
  let neg = false;
  if (buf[p] === 0x2d) {
    neg = true;
    p++;
  }
  let n = 0;
  for (let c = buf[p]!; c !== 0x0d; c = buf[++p]!) n = n * 10 + (c - 0x30);
  return neg ? -n : n;
}

/** Offset after the whole reply starting at `p`, or -1 if it is not complete before `end`. */
function skipReply(buf: Buffer, p: number, end: number): number {
  const type = buf[p];
  const eol = lineEnd(buf, p, end);
  if (eol < 0) return -1;
  switch (type) {
    case 0x2b: // +simple
    case 0x2d: // -error
    case 0x3a: // :integer
      return eol;
    case 0x24: {
      // $bulk
      const n = readInt(buf, p + 1);
      if (n < 0) return eol;
      return eol + n + 2 <= end ? eol + n + 2 : -1;
    }
    case 0x2a: {
      // *array
      const n = readInt(buf, p + 1);
      let q = eol;
      for (let i = 0; i < n; i++) {
        q = skipReply(buf, q, end);
        if (q < 0) return -1;
      }
      return q;
    }
    default:
      throw new Error(`unsupported RESP reply type 0x${(type ?? 0).toString(16)}`);
  }
}
