/**
 * What msgpackr would decode silently but the protocol refuses (PROTOCOL.md
 * §3), found by one pass over a request body before it is decoded:
 *
 * - an extension value (fixext 1-16, ext 8/16/32) anywhere: segkv knows no
 *   extension types, while msgpackr turns some into a Date, a Set, a typed
 *   array (that would pass for a bin), a bigint or even strings, and throws
 *   on others;
 * - a str whose bytes are not valid UTF-8: msgpackr would decode it with
 *   U+FFFD replacements, a different key (or value) than the one sent.
 *
 * It reports the first such element of the top-level array (its index: 0 is
 * the id, 1 the command name, 2… the arguments) and the id when element 0 is
 * an int, so the request can be answered. A body that is not an array, or
 * is malformed, gets `undefined`: the decoder's own checks answer those.
 * Iterative (no recursion, whatever the nesting); ASCII strs cost one byte
 * loop, others one isUtf8 call.
 */
import { isUtf8 } from 'node:buffer';

export interface RequestProblem {
  /** Index in the request array of the element holding the problem. */
  element: number;
  problem: 'extension' | 'utf8';
  /** The extension type, for 'extension'. */
  extType: number;
  /** The request id, when element 0 is an integer; else undefined. */
  id: number | undefined;
  /** The command name, when element 1 is a valid str; else undefined. */
  name: string | undefined;
}

const MALFORMED = -1;

/** The first refused value in `body` (a request array), or undefined. */
export function checkRequest(body: Buffer): RequestProblem | undefined {
  const end = body.length;
  if (end === 0) return undefined;
  const t = body[0]!;
  let count: number;
  let at: number;
  if (t >= 0x90 && t <= 0x9f) {
    count = t & 0x0f;
    at = 1;
  } else if (t === 0xdc && end >= 3) {
    count = body.readUInt16BE(1);
    at = 3;
  } else if (t === 0xdd && end >= 5) {
    count = body.readUInt32BE(1);
    at = 5;
  } else return undefined;
  let id: number | undefined;
  let name: string | undefined;
  for (let element = 0; element < count; element++) {
    const r = skipValue(body, at, end);
    if (element === 0) id = readInt(body, at);
    else if (element === 1 && r > at) name = readStr(body, at, r);
    if (r === MALFORMED) return undefined;
    if (r < 0) {
      // -2 - the position of the refused value (skipValue).
      const pos = -r - 2;
      const tag = body[pos]!;
      const problem: RequestProblem['problem'] = isExt(tag) ? 'extension' : 'utf8';
      return { element, problem, extType: problem === 'extension' ? extTypeAt(body, pos) : 0, id, name };
    }
    at = r;
  }
  return undefined;
}

function isExt(tag: number): boolean {
  return (tag >= 0xd4 && tag <= 0xd8) || (tag >= 0xc7 && tag <= 0xc9);
}

/** Where the extension whose tag is at `pos` ends (its type byte and data included); past `b` if cut. */
function extEnd(b: Buffer, pos: number): number {
  const tag = b[pos]!;
  if (tag >= 0xd4) return pos + 2 + (1 << (tag - 0xd4)); // fixext 1, 2, 4, 8, 16
  const lenBytes = tag === 0xc7 ? 1 : tag === 0xc8 ? 2 : 4;
  if (pos + 1 + lenBytes > b.length) return Number.POSITIVE_INFINITY;
  const len =
    lenBytes === 1 ? b[pos + 1]! : lenBytes === 2 ? b.readUInt16BE(pos + 1) : b.readUInt32BE(pos + 1);
  return pos + 2 + lenBytes + len;
}

/** The signed type byte of the (whole) extension whose tag is at `pos`. */
function extTypeAt(body: Buffer, pos: number): number {
  const tag = body[pos]!;
  const off = tag >= 0xd4 ? 1 : tag === 0xc7 ? 2 : tag === 0xc8 ? 3 : 5;
  return body.readInt8(pos + off);
}

/** The str value spanning [at, end) (already checked by skipValue), or undefined if it is not a str. */
function readStr(b: Buffer, at: number, end: number): string | undefined {
  const t = b[at]!;
  const head = t >= 0xa0 && t <= 0xbf ? 1 : t === 0xd9 ? 2 : t === 0xda ? 3 : t === 0xdb ? 5 : 0;
  return head === 0 ? undefined : b.toString('utf8', at + head, end);
}

/** The integer at `at`, or undefined if the value there is not an int. */
function readInt(b: Buffer, at: number): number | undefined {
  if (at >= b.length) return undefined;
  const t = b[at]!;
  if (t < 0x80) return t;
  if (t >= 0xe0) return t - 0x100;
  const n = b.length - at - 1;
  switch (t) {
    case 0xcc:
      return n >= 1 ? b[at + 1] : undefined;
    case 0xcd:
      return n >= 2 ? b.readUInt16BE(at + 1) : undefined;
    case 0xce:
      return n >= 4 ? b.readUInt32BE(at + 1) : undefined;
    case 0xcf:
      return n >= 8 ? Number(b.readBigUInt64BE(at + 1)) : undefined;
    case 0xd0:
      return n >= 1 ? b.readInt8(at + 1) : undefined;
    case 0xd1:
      return n >= 2 ? b.readInt16BE(at + 1) : undefined;
    case 0xd2:
      return n >= 4 ? b.readInt32BE(at + 1) : undefined;
    case 0xd3:
      return n >= 8 ? Number(b.readBigInt64BE(at + 1)) : undefined;
    default:
      return undefined;
  }
}

/**
 * Skips one value (and everything inside it) at `at`: returns the position
 * after it, MALFORMED, or -2 - (position of an extension or of a str that is
 * not UTF-8).
 */
function skipValue(b: Buffer, at: number, end: number): number {
  let need = 1;
  while (need > 0) {
    if (at >= end) return MALFORMED;
    need--;
    const t = b[at]!;
    let len = 0;
    let head = 1;
    let str = false;
    if (t < 0x80 || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) {
      at += 1;
      continue;
    }
    if (t >= 0x80 && t <= 0x8f) {
      need += 2 * (t & 0x0f);
      at += 1;
      continue;
    }
    if (t >= 0x90 && t <= 0x9f) {
      need += t & 0x0f;
      at += 1;
      continue;
    }
    if (t >= 0xa0 && t <= 0xbf) {
      len = t & 0x1f;
      str = true;
    } else {
      switch (t) {
        case 0xcc:
        case 0xd0:
          len = 1;
          break;
        case 0xcd:
        case 0xd1:
          len = 2;
          break;
        case 0xca:
        case 0xce:
        case 0xd2:
          len = 4;
          break;
        case 0xcb:
        case 0xcf:
        case 0xd3:
          len = 8;
          break;
        case 0xd9:
        case 0xc4:
          if (at + 2 > end) return MALFORMED;
          len = b[at + 1]!;
          head = 2;
          str = t === 0xd9;
          break;
        case 0xda:
        case 0xc5:
          if (at + 3 > end) return MALFORMED;
          len = b.readUInt16BE(at + 1);
          head = 3;
          str = t === 0xda;
          break;
        case 0xdb:
        case 0xc6:
          if (at + 5 > end) return MALFORMED;
          len = b.readUInt32BE(at + 1);
          head = 5;
          str = t === 0xdb;
          break;
        case 0xdc:
          if (at + 3 > end) return MALFORMED;
          need += b.readUInt16BE(at + 1);
          at += 3;
          continue;
        case 0xdd:
          if (at + 5 > end) return MALFORMED;
          need += b.readUInt32BE(at + 1);
          at += 5;
          continue;
        case 0xde:
          if (at + 3 > end) return MALFORMED;
          need += 2 * b.readUInt16BE(at + 1);
          at += 3;
          continue;
        case 0xdf:
          if (at + 5 > end) return MALFORMED;
          need += 2 * b.readUInt32BE(at + 1);
          at += 5;
          continue;
        default:
          // 0xc1 (never used) is malformed; every other remaining tag is an extension,
          // refused only when whole (a cut one is malformed: the decoder answers it).
          return isExt(t) && extEnd(b, at) <= end ? -2 - at : MALFORMED;
      }
    }
    const start = at + head;
    if (start + len > end) return MALFORMED;
    if (str) {
      let i = start;
      const stop = start + len;
      while (i < stop && b[i]! < 0x80) i++;
      if (i < stop && !isUtf8(b.subarray(start, stop))) return -2 - at;
    }
    at = start + len;
  }
  return at;
}
