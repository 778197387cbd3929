/**
 * Recognises the commonest requests, `[id, "GET", key]` and
 * `[id, "SET", key, value]`, in a frame body without decoding it: the
 * server's GET then looks the key up by its bytes, with no MessagePack
 * decode and no key string, and its SET hands the store the key and a view
 * of the value with no decode either.
 *
 * Only exact shapes are recognised; anything else (another command, "get"
 * in lower case, an id encoded as a signed or 64-bit int, a non-ASCII str
 * key, a SET with options or a str value, trailing bytes, …) answers false
 * and goes through the general path, which decodes it with msgpackr and
 * gives the same answer or error as always. For the shapes it accepts, the
 * key bytes are the key's internal form: a bin key as is, an ASCII str key
 * its chars (non-ASCII str keys are left to the general path, which decodes
 * UTF-8 the way msgpackr does).
 *
 *   GET  0x93 | id | 0xa3 'G' 'E' 'T' | key                 — nothing after
 *   SET  0x94 | id | 0xa3 'S' 'E' 'T' | key | value (a bin)  — nothing after
 *     id:    fixint 0x00-0x7f, 0xcc u8, 0xcd u16, 0xce u32
 *     key:   fixstr 0xa1-0xbf, 0xd9 str8, 0xda str16, 0xdb str32,
 *            0xc4 bin8, 0xc5 bin16, 0xc6 bin32 (1 byte or more)
 *     value: 0xc4 bin8, 0xc5 bin16, 0xc6 bin32 (0 bytes or more)
 */

/** Where peekGet or peekSet found the request's parts (positions in the buffer given); valid until the next call of either. */
export const getRequest = { id: 0, keyStart: 0, keyLength: 0, valueStart: 0, valueLength: 0 };

/**
 * True (and `getRequest` filled in) if the body in body[start, end) is
 * exactly `[id, "GET", key]` in a shape described above. `view`, when the
 * caller has one: a DataView over body's bytes at the same indices (the
 * server's read buffer, socket-reads.ts readViewOf), through which a str
 * key's ASCII check reads 32-bit words instead of bytes (~4x fewer
 * instructions: a typed array's byte costs about what a DataView's word does).
 */
export function peekGet(body: Buffer, start = 0, end = body.length, view?: DataView): boolean {
  if (end - start < 7 || body[start] !== 0x93) return false;
  const at = peekHead(body, start, end, 0x47);
  return at >= 0 && peekKey(body, at, end, view) === end;
}

/**
 * True (and `getRequest` filled in) if the body in body[start, end) is
 * exactly `[id, "SET", key, value]` in a shape described above. `view`: as
 * for peekGet.
 */
export function peekSet(body: Buffer, start = 0, end = body.length, view?: DataView): boolean {
  if (end - start < 9 || body[start] !== 0x94) return false;
  let at = peekHead(body, start, end, 0x53);
  if (at < 0) return false;
  at = peekKey(body, at, end, view);
  if (at < 0 || at >= end) return false;
  const tag = body[at]!;
  let length: number;
  if (tag === 0xc4) {
    if (at + 2 > end) return false;
    length = body[at + 1]!;
    at += 2;
  } else if (tag === 0xc5) {
    if (at + 3 > end) return false;
    length = (body[at + 1]! << 8) | body[at + 2]!;
    at += 3;
  } else if (tag === 0xc6) {
    if (at + 5 > end) return false;
    length = u32(body, at + 1);
    at += 5;
  } else return false;
  if (at + length !== end) return false;
  getRequest.valueStart = at;
  getRequest.valueLength = length;
  return true;
}

/** The top bit of each byte of a 32-bit word: set in any byte that is not ASCII. */
const HIGH_BITS = 0x80808080 | 0;

/** The big-endian uint32 at `at` (the caller checked it lies before the end). */
function u32(b: Buffer, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/**
 * Reads the id and the command name `<first>ET` after the array header at
 * `start`; fills getRequest.id and returns where the key starts, or -1.
 */
function peekHead(body: Buffer, start: number, end: number, first: number): number {
  let at = start + 1;
  const tag = body[at]!;
  let id: number;
  if (tag < 0x80) {
    id = tag;
    at += 1;
  } else if (tag === 0xcc) {
    id = body[at + 1]!;
    at += 2;
  } else if (tag === 0xcd) {
    if (at + 3 > end) return -1;
    id = (body[at + 1]! << 8) | body[at + 2]!;
    at += 3;
  } else if (tag === 0xce) {
    if (at + 5 > end) return -1;
    id = u32(body, at + 1);
    at += 5;
  } else return -1;
  if (at + 5 > end) return -1;
  if (body[at] !== 0xa3 || body[at + 1] !== first || body[at + 2] !== 0x45 || body[at + 3] !== 0x54)
    return -1;
  getRequest.id = id;
  return at + 4;
}

/**
 * Reads a key (str of ASCII or bin, 1 byte or more) at `at`; fills
 * getRequest.keyStart/keyLength and returns where it ends, or -1. A str
 * key's bytes are checked 4 at a time through `view` when given.
 */
function peekKey(body: Buffer, at: number, end: number, view: DataView | undefined): number {
  const k = body[at]!;
  let length: number;
  let str = true;
  if (k > 0xa0 && k <= 0xbf) {
    length = k & 0x1f;
    at += 1;
  } else if (k === 0xd9 || k === 0xc4) {
    if (at + 2 > end) return -1;
    length = body[at + 1]!;
    str = k === 0xd9;
    at += 2;
  } else if (k === 0xda || k === 0xc5) {
    if (at + 3 > end) return -1;
    length = (body[at + 1]! << 8) | body[at + 2]!;
    str = k === 0xda;
    at += 3;
  } else if (k === 0xdb || k === 0xc6) {
    if (at + 5 > end) return -1;
    length = u32(body, at + 1);
    str = k === 0xdb;
    at += 5;
  } else return -1;
  const keyEnd = at + length;
  if (length === 0 || keyEnd > end) return -1;
  if (str) {
    let i = at;
    if (view !== undefined)
      for (; i + 4 <= keyEnd; i += 4) if ((view.getInt32(i) & HIGH_BITS) !== 0) return -1;
    for (; i < keyEnd; i++) if (body[i]! >= 0x80) return -1;
  }
  getRequest.keyStart = at;
  getRequest.keyLength = length;
  return keyEnd;
}
