/**
 * Log record format (version 1). One record per SET or DEL, appended to the
 * active segment. All integers little-endian.
 *
 *   byte  size  field
 *   0     4     crc32      zlib.crc32 of bytes [4, end of value)
 *   4     8     offset     the record's sequence number in the log (u64, < 2^53)
 *   12    8     expiresAt  ms since the Unix epoch; 0 = never expires (u64, < 2^53)
 *   20    1     flags      bit 0 tombstone, bit 1 batch member, bit 2 batch end
 *   21    2     keyLength  u16, 1..MAX_KEY_BYTES
 *   23    4     valueLength u32 (0 for a tombstone)
 *   27    k     key bytes
 *   27+k  v     value bytes
 *
 * Header size = 4 + 8 + 8 + 1 + 2 + 4 = 27 bytes.
 *
 * A batch of n > 1 records is written contiguously in one segment: the first
 * n-1 carry BATCH, the last carries BATCH|BATCH_END. Recovery applies a batch
 * only when it reads its BATCH_END record, so a torn batch is all gone.
 * The CRC covers everything but itself; the segment header has its own CRC.
 */
import { crc32 } from 'node:zlib';
import { copyWords } from './copy-words.js';

export const CRC_BYTES = 4;
export const OFFSET_BYTES = 8;
export const EXPIRES_BYTES = 8;
export const FLAGS_BYTES = 1;
export const KEY_LENGTH_BYTES = 2;
export const VALUE_LENGTH_BYTES = 4;
export const RECORD_HEADER_BYTES =
  CRC_BYTES + OFFSET_BYTES + EXPIRES_BYTES + FLAGS_BYTES + KEY_LENGTH_BYTES + VALUE_LENGTH_BYTES;

const AT_OFFSET = 4;
const AT_EXPIRES = 12;
/** Where a record's flags byte is, from its start. */
export const AT_FLAGS = 20;
const AT_KEY_LENGTH = 21;
const AT_VALUE_LENGTH = 23;

export const FLAG_TOMBSTONE = 1;
export const FLAG_BATCH = 2;
export const FLAG_BATCH_END = 4;
const KNOWN_FLAGS = FLAG_TOMBSTONE | FLAG_BATCH | FLAG_BATCH_END;

const TWO_32 = 2 ** 32;

/**
 * Uint8Array's `set`, called on the chunk: `buf.set` left a LoadIC call of
 * `set` in encodeRecord's optimised code (~70 instructions per record).
 */
const setBytes = Uint8Array.prototype.set;

export function recordSize(keyLength: number, valueLength: number): number {
  return RECORD_HEADER_BYTES + keyLength + valueLength;
}

/** Records shorter than this are checksummed in JS (no subarray, no native call); longer ones by zlib. */
const JS_CRC_MAX_BYTES = 256;

/** CRC-32 (the zlib/IEEE polynomial) tables for slicing-by-8: table k at [256k, 256k + 256). */
const CRC_TABLE = new Int32Array(256 * 8);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  CRC_TABLE[n] = c;
}
for (let n = 0; n < 256; n++) {
  let c = CRC_TABLE[n]!;
  for (let k = 1; k < 8; k++) {
    c = CRC_TABLE[c & 255]! ^ (c >>> 8);
    CRC_TABLE[k * 256 + n] = c;
  }
}

/**
 * One slicing-by-8 step: the CRC register after 8 bytes, given the first 4
 * (little-endian) XORed with the register, `a`, and the next 4, `b`. Small
 * enough that V8 inlines it into each loop below.
 */
function slice8(a: number, b: number): number {
  const t = CRC_TABLE;
  return (
    t[1792 + (a & 255)]! ^
    t[1536 + ((a >>> 8) & 255)]! ^
    t[1280 + ((a >>> 16) & 255)]! ^
    t[1024 + (a >>> 24)]! ^
    t[768 + (b & 255)]! ^
    t[512 + ((b >>> 8) & 255)]! ^
    t[256 + ((b >>> 16) & 255)]! ^
    t[b >>> 24]!
  );
}

/**
 * zlib.crc32 of buf[from, to), without a subarray: slicing-by-8 in JS for
 * short ranges (about twice as fast as subarray + zlib at 100-200 bytes),
 * zlib for long ones. Same value either way.
 */
export function crc32Range(buf: Uint8Array, from: number, to: number): number {
  if (to - from >= JS_CRC_MAX_BYTES) return crc32(buf.subarray(from, to));
  const t = CRC_TABLE;
  let c = -1;
  let i = from;
  for (; i + 8 <= to; i += 8) {
    const a = (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)) ^ c;
    c =
      t[1792 + (a & 255)]! ^
      t[1536 + ((a >>> 8) & 255)]! ^
      t[1280 + ((a >>> 16) & 255)]! ^
      t[1024 + (a >>> 24)]! ^
      t[768 + buf[i + 4]!]! ^
      t[512 + buf[i + 5]!]! ^
      t[256 + buf[i + 6]!]! ^
      t[buf[i + 7]!]!;
  }
  for (; i < to; i++) c = t[(c ^ buf[i]!) & 255]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/**
 * The second CRC chain's share of a range (crc32View): its last
 * TAIL_CHAIN_BYTES bytes. Ranges from twice that up to the zlib cut-over run
 * two chains (the bench's 139-byte CRC range: 75 + 64 bytes).
 */
const TAIL_CHAIN_BYTES = 64;
export const TWO_CHAINS_FROM_BYTES = 2 * TAIL_CHAIN_BYTES;

/**
 * TAIL_SHIFT_TABLE[256k + n]: the CRC register (n << 8k) after
 * TAIL_CHAIN_BYTES zero bytes. The register update is linear over GF(2),
 * so a register after the zero bytes is the XOR of its 4 bytes' entries.
 */
const TAIL_SHIFT_TABLE = new Int32Array(256 * 4);
for (let k = 0; k < 4; k++) {
  for (let n = 0; n < 256; n++) {
    let c = n << (8 * k);
    for (let z = 0; z < TAIL_CHAIN_BYTES; z += 8) {
      c = slice8(c, 0); // 8 zero bytes
    }
    TAIL_SHIFT_TABLE[k * 256 + n] = c;
  }
}

/**
 * crc32Range of buf[from, to) read through `view`, a DataView over the same
 * bytes at the same indices (the write buffer's chunk: segment.ts
 * `reservedView`): each step of 8 bytes reads two little-endian words
 * instead of 8 bytes, ~850 fewer instructions on a 139-byte record (16-byte
 * key, 100-byte value). Same value.
 *
 * From TWO_CHAINS_FROM_BYTES it runs two chains, interleaved: one over the
 * range's head from the usual initial register, one over its last
 * TAIL_CHAIN_BYTES from 0; the head's register is then carried over the
 * tail's length by TAIL_SHIFT_TABLE and XORed with the tail's (linearity:
 * crc register(A then B) = shift|B|(register(A)) ^ register of B from 0).
 * Each step waits on the previous step's register through a table load,
 * so one chain of ~17 steps is mostly waiting; two halve that wait
 * (encodeRecord of a 16-byte key and 100-byte value: ~0.92x the CPU).
 */
export function crc32View(view: DataView, buf: Uint8Array, from: number, to: number): number {
  if (to - from >= JS_CRC_MAX_BYTES) return crc32(buf.subarray(from, to));
  if (to - from >= TWO_CHAINS_FROM_BYTES) return crc32TwoChains(view, buf, from, to);
  return (crc32ViewSteps(view, buf, -1, from, to) ^ -1) >>> 0;
}

/** crc32View of a range of at least TWO_CHAINS_FROM_BYTES, by two chains (see there). */
function crc32TwoChains(view: DataView, buf: Uint8Array, from: number, to: number): number {
  const tailAt = to - TAIL_CHAIN_BYTES;
  let c = -1;
  let d = 0;
  let i = from;
  for (let j = tailAt; j < to; i += 8, j += 8) {
    const a = view.getInt32(i, true) ^ c;
    const b = view.getInt32(i + 4, true);
    const e = view.getInt32(j, true) ^ d;
    const f = view.getInt32(j + 4, true);
    c = slice8(a, b);
    d = slice8(e, f);
  }
  c = carryTail(crc32ViewSteps(view, buf, c, i, tailAt), d);
  return (c ^ -1) >>> 0;
}

/** The head chain's register `c` carried over the tail's TAIL_CHAIN_BYTES, XORed with the tail chain's `d`. */
function carryTail(c: number, d: number): number {
  const s = TAIL_SHIFT_TABLE;
  return s[c & 255]! ^ s[256 + ((c >>> 8) & 255)]! ^ s[512 + ((c >>> 16) & 255)]! ^ s[768 + (c >>> 24)]! ^ d;
}

/** The CRC register `c` carried over buf[from, to) read through `view` (one chain, slicing-by-8). */
function crc32ViewSteps(view: DataView, buf: Uint8Array, c: number, from: number, to: number): number {
  const t = CRC_TABLE;
  let i = from;
  for (; i + 8 <= to; i += 8) {
    const a = view.getInt32(i, true) ^ c;
    const b = view.getInt32(i + 4, true);
    c = slice8(a, b);
  }
  for (; i < to; i++) c = t[(c ^ buf[i]!) & 255]! ^ (c >>> 8);
  return c;
}

/** Little-endian u32 store without Buffer's range checks (callers pass valid u32s). */
function putU32(buf: Buffer, at: number, n: number): void {
  buf[at] = n;
  buf[at + 1] = n >>> 8;
  buf[at + 2] = n >>> 16;
  buf[at + 3] = n >>> 24;
}

/** Little-endian u64 of an integer below 2^53 (`>>> 0` is its low 32 bits exactly; no float modulo). */
function writeU64(buf: Buffer, at: number, n: number): void {
  const low = n >>> 0;
  putU32(buf, at, low);
  putU32(buf, at + 4, (n - low) / TWO_32);
}

function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * TWO_32;
}

/**
 * Encodes one record into `buf` at `at`. `key` is the latin1 form of the key
 * bytes (the keydir's representation), so key.length is its byte length.
 * `view`: a DataView over buf's bytes, when the caller keeps one (the CRC
 * then reads words: crc32View). Returns the record's size.
 */
export function encodeRecord(
  buf: Buffer,
  at: number,
  offset: number,
  expiresAt: number,
  flags: number,
  key: string,
  value: Uint8Array | undefined,
  view?: DataView,
): number {
  const k = key.length;
  const keyAt = at + RECORD_HEADER_BYTES;
  if (k <= 64) {
    for (let i = 0; i < k; i++) buf[keyAt + i] = key.charCodeAt(i); // latin1: one byte per char
  } else {
    buf.write(key, keyAt, k, 'latin1');
  }
  return encodeAroundKey(buf, at, offset, expiresAt, flags, k, value, view);
}

/**
 * `encodeRecord` of a key given as the user's string, which is its own
 * internal form only if every char is ASCII (keys.ts): its chars are copied
 * into the record (4 to a 32-bit word through `view`) while they are
 * checked, one pass where toInternalKey's check and encodeRecord's copy made
 * two. Returns false, having written only part of the record, when a char
 * is above 0x7f: the caller gives back the bytes it reserved and takes the
 * key through toInternalKey (its UTF-8 form is longer).
 */
export function encodeAsciiRecord(
  buf: Buffer,
  at: number,
  offset: number,
  expiresAt: number,
  key: string,
  value: Uint8Array,
  view: DataView,
): boolean {
  const k = key.length;
  const keyAt = at + RECORD_HEADER_BYTES;
  let seen = 0;
  let i = 0;
  for (; i + 4 <= k; i += 4) {
    const c0 = key.charCodeAt(i);
    const c1 = key.charCodeAt(i + 1);
    const c2 = key.charCodeAt(i + 2);
    const c3 = key.charCodeAt(i + 3);
    seen |= c0 | c1 | c2 | c3;
    view.setInt32(keyAt + i, c0 | (c1 << 8) | (c2 << 16) | (c3 << 24), true);
  }
  for (; i < k; i++) {
    const c = key.charCodeAt(i);
    seen |= c;
    buf[keyAt + i] = c;
  }
  if (seen > 0x7f) return false;
  encodeAroundKey(buf, at, offset, expiresAt, 0, k, value, view);
  return true;
}

/**
 * `encodeRecord` of the key src[keyStart, keyStart + keyLength) (the
 * server's SET: the key's bytes in the request frame), the same bytes as
 * encodeRecord of that range's latin1 string, with no string made.
 * `srcView`: a DataView over src's bytes at src's indices (the server's
 * read buffer): with it and `view`, the key is copied by 32-bit words, ~4x
 * fewer instructions than by bytes (a typed array's byte costs about what a
 * DataView's word does: ~580 fewer for a 16-byte key, callgrind).
 */
export function encodeRecordFrom(
  buf: Buffer,
  at: number,
  offset: number,
  expiresAt: number,
  flags: number,
  src: Uint8Array,
  keyStart: number,
  keyLength: number,
  value: Uint8Array | undefined,
  view?: DataView,
  srcView?: DataView,
): number {
  const keyAt = at + RECORD_HEADER_BYTES;
  if (srcView !== undefined && view !== undefined && keyLength <= WORD_COPY_MAX_BYTES) {
    copyWords(srcView, keyStart, view, keyAt, keyLength);
  } else if (keyLength <= 64) {
    for (let i = 0; i < keyLength; i++) buf[keyAt + i] = src[keyStart + i]!;
  } else {
    setBytes.call(buf, src.subarray(keyStart, keyStart + keyLength), keyAt);
  }
  return encodeAroundKey(buf, at, offset, expiresAt, flags, keyLength, value, view);
}

/** Keys up to this long are copied by words when both DataViews are at hand; longer ones natively. */
const WORD_COPY_MAX_BYTES = 256;

/** The rest of a record whose key's `k` bytes are in place: header, value, CRC. Its size. */
function encodeAroundKey(
  buf: Buffer,
  at: number,
  offset: number,
  expiresAt: number,
  flags: number,
  k: number,
  value: Uint8Array | undefined,
  view: DataView | undefined,
): number {
  const v = value ? value.length : 0;
  writeU64(buf, at + AT_OFFSET, offset);
  writeU64(buf, at + AT_EXPIRES, expiresAt);
  buf[at + AT_FLAGS] = flags;
  buf[at + AT_KEY_LENGTH] = k;
  buf[at + AT_KEY_LENGTH + 1] = k >>> 8;
  putU32(buf, at + AT_VALUE_LENGTH, v);
  const keyAt = at + RECORD_HEADER_BYTES;
  if (value) setBytes.call(buf, value, keyAt + k);
  const end = keyAt + k + v;
  const crc = view ? crc32View(view, buf, at + CRC_BYTES, end) : crc32Range(buf, at + CRC_BYTES, end);
  putU32(buf, at, crc);
  return end - at;
}

export interface RecordHeader {
  offset: number;
  expiresAt: number;
  flags: number;
  keyLength: number;
  valueLength: number;
}

/**
 * Reads a header at `at`; undefined if fewer than RECORD_HEADER_BYTES remain or
 * the fields are out of bounds (unknown flags, empty key, key too long). The
 * CRC is checked separately by `checkRecord` once the whole record is in hand.
 */
export function decodeHeader(
  buf: Buffer,
  at: number,
  end: number,
  maxKeyBytes: number,
): RecordHeader | undefined {
  return decodeHeaderInto(buf, at, end, maxKeyBytes, scratchHeader) ? { ...scratchHeader } : undefined;
}

const scratchHeader: RecordHeader = { offset: 0, expiresAt: 0, flags: 0, keyLength: 0, valueLength: 0 };

/**
 * decodeHeader into the caller's object, for scans that decode millions of
 * headers (the compactor): no allocation per record. Returns false where
 * decodeHeader returns undefined (`out` is then unspecified).
 */
export function decodeHeaderInto(
  buf: Buffer,
  at: number,
  end: number,
  maxKeyBytes: number,
  out: RecordHeader,
): boolean {
  if (end - at < RECORD_HEADER_BYTES) return false;
  const flags = buf[at + AT_FLAGS]!;
  const keyLength = buf.readUInt16LE(at + AT_KEY_LENGTH);
  const valueLength = buf.readUInt32LE(at + AT_VALUE_LENGTH);
  if ((flags & ~KNOWN_FLAGS) !== 0 || keyLength === 0 || keyLength > maxKeyBytes) return false;
  if ((flags & FLAG_TOMBSTONE) !== 0 && valueLength !== 0) return false;
  out.offset = readU64(buf, at + AT_OFFSET);
  out.expiresAt = readU64(buf, at + AT_EXPIRES);
  out.flags = flags;
  out.keyLength = keyLength;
  out.valueLength = valueLength;
  return true;
}

/**
 * The size of the record whose header is at buf[at, end), from its lengths
 * alone, or -1 where decodeHeaderInto would refuse the header (the same
 * checks; the offset and expiry time are not read): for scans that only
 * need to find record and batch ends (record-run.ts).
 */
export function headerSize(buf: Buffer, at: number, end: number, maxKeyBytes: number): number {
  if (end - at < RECORD_HEADER_BYTES) return -1;
  const flags = buf[at + AT_FLAGS]!;
  const keyLength = buf[at + AT_KEY_LENGTH]! | (buf[at + AT_KEY_LENGTH + 1]! << 8);
  const valueLength = buf.readUInt32LE(at + AT_VALUE_LENGTH);
  if ((flags & ~KNOWN_FLAGS) !== 0 || keyLength === 0 || keyLength > maxKeyBytes) return -1;
  if ((flags & FLAG_TOMBSTONE) !== 0 && valueLength !== 0) return -1;
  return RECORD_HEADER_BYTES + keyLength + valueLength;
}

/** True if the record of `size` bytes at `at` matches its CRC. */
export function checkRecord(buf: Buffer, at: number, size: number): boolean {
  return buf.readUInt32LE(at) === crc32Range(buf, at + CRC_BYTES, at + size);
}

export function recordKey(buf: Buffer, at: number, keyLength: number): string {
  return buf.toString('latin1', at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + keyLength);
}
