/**
 * Hint file format (version 1): `<base>.hint` beside a sealed segment, so a
 * restart loads the keydir without reading values. It holds the LAST record
 * of each key within its segment (earlier ones in the same segment are dead by
 * definition), in record order, tombstones included.
 *
 * Header, 32 bytes:
 *   byte  size  field
 *   0     4     magic       "SKVH"
 *   4     2     version     u16, HINT_FORMAT_VERSION
 *   6     2     reserved    0
 *   8     8     baseOffset  u64, the segment's base offset
 *   16    4     count       u32, number of entries
 *   20    4     bodyLength  u32, bytes of entries after the header
 *   24    4     bodyCrc     crc32 of the entries
 *   28    4     headerCrc   crc32 of bytes [0, 28)
 *
 * Entry, 27 + k bytes:
 *   0     8     offset      u64, the record's offset
 *   8     4     position    u32, byte position of the record in the segment
 *   12    4     valueLength u32
 *   16    8     expiresAt   u64 ms, 0 = never
 *   24    1     flags       the record's flags (tombstone bit used)
 *   25    2     keyLength   u16
 *   27    k     key bytes
 *
 * Any mismatch (magic, version, CRC, bounds) makes the whole hint invalid and
 * the segment is rescanned instead: a hint is an accelerator, never the truth.
 */
import { crc32 } from 'node:zlib';
import { copyWords } from './copy-words.js';

const HINT_MAGIC = 0x48564b53; // "SKVH" read as u32 LE
export const HINT_FORMAT_VERSION = 1;
export const HINT_HEADER_BYTES = 4 + 2 + 2 + 8 + 4 + 4 + 4 + 4;
export const HINT_ENTRY_BYTES = 8 + 4 + 4 + 8 + 1 + 2;
const TWO_32 = 2 ** 32;

export interface HintEntry {
  key: string;
  offset: number;
  position: number;
  valueLength: number;
  expiresAt: number;
  flags: number;
}

/**
 * Builds a hint entry by entry, straight into bytes (no object per entry), for
 * sealing a segment: `add` returns an entry number that `drop` can later
 * retract (an earlier record of a key whose later record turned up). `finish`
 * gives the same bytes encodeHint would for the entries kept, in order.
 */
export class HintWriter {
  private body = Buffer.allocUnsafe(64 * 1024);
  private used = 0;
  /** Byte start of each entry in `body`, by entry number. */
  private readonly starts: number[] = [];
  private readonly dropped = new Set<number>();
  private droppedBytes = 0;

  /** Entries kept so far. */
  get count(): number {
    return this.starts.length - this.dropped.size;
  }

  add(
    key: string,
    offset: number,
    position: number,
    valueLength: number,
    expiresAt: number,
    flags: number,
  ): number {
    const n = HINT_ENTRY_BYTES + key.length;
    if (this.used + n > this.body.length) {
      const bigger = Buffer.allocUnsafe(Math.max(2 * this.body.length, this.used + n));
      this.body.copy(bigger, 0, 0, this.used);
      this.body = bigger;
    }
    this.starts.push(this.used);
    writeHintEntry(this.body, this.used, key, offset, position, valueLength, expiresAt, flags);
    this.used += n;
    return this.starts.length - 1;
  }

  drop(entry: number): void {
    if (this.dropped.has(entry)) return;
    this.dropped.add(entry);
    const start = this.starts[entry]!;
    this.droppedBytes += HINT_ENTRY_BYTES + this.body.readUInt16LE(start + 25);
  }

  finish(baseOffset: number): Buffer {
    const bodyLength = this.used - this.droppedBytes;
    const buf = Buffer.allocUnsafe(HINT_HEADER_BYTES + bodyLength);
    if (this.dropped.size === 0) {
      this.body.copy(buf, HINT_HEADER_BYTES, 0, this.used);
    } else {
      let at = HINT_HEADER_BYTES;
      for (let i = 0; i < this.starts.length; i++) {
        if (this.dropped.has(i)) continue;
        const start = this.starts[i]!;
        const end = i + 1 < this.starts.length ? this.starts[i + 1]! : this.used;
        at += this.body.copy(buf, at, start, end);
      }
    }
    writeHeader(buf, baseOffset, this.count, bodyLength);
    return buf;
  }
}

/** Little-endian u32 store without Buffer's range checks (callers pass valid u32s). */
function putU32(buf: Uint8Array, at: number, n: number): void {
  buf[at] = n;
  buf[at + 1] = n >>> 8;
  buf[at + 2] = n >>> 16;
  buf[at + 3] = n >>> 24;
}

/** Writes one entry at `at` (HINT_ENTRY_BYTES + key.length bytes); `key` is latin1, one byte per char. */
export function writeHintEntry(
  buf: Buffer,
  at: number,
  key: string,
  offset: number,
  position: number,
  valueLength: number,
  expiresAt: number,
  flags: number,
): void {
  const k = key.length;
  // Integers below 2^53: `>>> 0` is the low 32 bits exactly (no float modulo).
  const offsetLow = offset >>> 0;
  const expiresLow = expiresAt >>> 0;
  putU32(buf, at, offsetLow);
  putU32(buf, at + 4, (offset - offsetLow) / TWO_32);
  putU32(buf, at + 8, position);
  putU32(buf, at + 12, valueLength);
  putU32(buf, at + 16, expiresLow);
  putU32(buf, at + 20, (expiresAt - expiresLow) / TWO_32);
  buf[at + 24] = flags;
  buf[at + 25] = k;
  buf[at + 26] = k >>> 8;
  const keyAt = at + HINT_ENTRY_BYTES;
  if (k <= 64) {
    for (let i = 0; i < k; i++) buf[keyAt + i] = key.charCodeAt(i);
  } else {
    buf.write(key, keyAt, k, 'latin1');
  }
}

/**
 * writeHintEntry of the key whose `k` bytes are at srcAt in `src` (the
 * record just encoded, through its write chunk's DataView), into the entry
 * at `at` of `dst`'s bytes: fields and key written as 32-bit words through
 * DataViews, about a quarter of the instructions of byte stores and a key
 * string's charCodeAt (V8 checks the string's representation, and a typed
 * array's map, at every char).
 */
export function writeHintEntryFrom(
  dst: DataView,
  at: number,
  src: DataView,
  srcAt: number,
  k: number,
  offset: number,
  position: number,
  valueLength: number,
  expiresAt: number,
  flags: number,
): void {
  const offsetLow = offset >>> 0;
  const expiresLow = expiresAt >>> 0;
  dst.setUint32(at, offsetLow, true);
  dst.setUint32(at + 4, (offset - offsetLow) / TWO_32, true);
  dst.setUint32(at + 8, position, true);
  dst.setUint32(at + 12, valueLength, true);
  dst.setUint32(at + 16, expiresLow, true);
  dst.setUint32(at + 20, (expiresAt - expiresLow) / TWO_32, true);
  dst.setUint8(at + 24, flags);
  dst.setUint16(at + 25, k, true);
  copyWords(src, srcAt, dst, at + HINT_ENTRY_BYTES, k);
}

/** Writes the header of a hint whose `bodyLength` bytes of entries are in place after it. */
function writeHeader(buf: Buffer, baseOffset: number, count: number, bodyLength: number): void {
  writeHintHeader(buf, baseOffset, count, bodyLength, crc32(buf.subarray(HINT_HEADER_BYTES)));
}

/**
 * Writes a hint header (HINT_HEADER_BYTES) at the start of `buf`, for a body
 * of `count` entries, `bodyLength` bytes, whose crc32 is `bodyCrc`: for a
 * writer that streams the body (the body need not follow in `buf`).
 */
export function writeHintHeader(
  buf: Buffer,
  baseOffset: number,
  count: number,
  bodyLength: number,
  bodyCrc: number,
): void {
  buf.writeUInt32LE(HINT_MAGIC, 0);
  buf.writeUInt16LE(HINT_FORMAT_VERSION, 4);
  buf.writeUInt16LE(0, 6);
  buf.writeUInt32LE(baseOffset % TWO_32, 8);
  buf.writeUInt32LE(Math.floor(baseOffset / TWO_32), 12);
  buf.writeUInt32LE(count, 16);
  buf.writeUInt32LE(bodyLength, 20);
  buf.writeUInt32LE(bodyCrc, 24);
  buf.writeUInt32LE(crc32(buf.subarray(0, 28)), 28);
}

export function encodeHint(baseOffset: number, entries: readonly HintEntry[]): Buffer {
  let bodyLength = 0;
  for (const e of entries) bodyLength += HINT_ENTRY_BYTES + e.key.length;
  const buf = Buffer.allocUnsafe(HINT_HEADER_BYTES + bodyLength);
  let at = HINT_HEADER_BYTES;
  for (const e of entries) {
    writeHintEntry(buf, at, e.key, e.offset, e.position, e.valueLength, e.expiresAt, e.flags);
    at += HINT_ENTRY_BYTES + e.key.length;
  }
  writeHeader(buf, baseOffset, entries.length, bodyLength);
  return buf;
}

/** Little-endian reads without Buffer's argument checks: decodeHint checks the bounds first. */
function u16(buf: Buffer, at: number): number {
  return buf[at]! | (buf[at + 1]! << 8);
}

function u32(buf: Buffer, at: number): number {
  return (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16)) + buf[at + 3]! * 0x1000000;
}

/**
 * The entry count a hint file's header claims, from its first
 * HINT_HEADER_BYTES bytes, or undefined if the header fails its own checks
 * (magic, CRC, version). For estimates only (recovery sizes the keydir with
 * it): the body is not checked here.
 */
export function hintHeaderCount(header: Buffer): number | undefined {
  if (header.length < HINT_HEADER_BYTES) return undefined;
  if (header.readUInt32LE(0) !== HINT_MAGIC) return undefined;
  if (header.readUInt32LE(28) !== crc32(header.subarray(0, 28))) return undefined;
  if (header.readUInt16LE(4) !== HINT_FORMAT_VERSION) return undefined;
  return header.readUInt32LE(16);
}

/**
 * Checks the header, both CRCs and the bounds of every entry. Returns the
 * entry count, or an error description.
 */
function checkHint(buf: Buffer, baseOffset: number): number | string {
  if (buf.length < HINT_HEADER_BYTES) return 'hint is truncated';
  if (buf.readUInt32LE(0) !== HINT_MAGIC) return 'hint has a wrong magic number';
  if (buf.readUInt32LE(28) !== crc32(buf.subarray(0, 28))) return 'hint header fails its CRC';
  if (buf.readUInt16LE(4) !== HINT_FORMAT_VERSION)
    return `hint format version ${buf.readUInt16LE(4)} is not supported`;
  const base = buf.readUInt32LE(8) + buf.readUInt32LE(12) * TWO_32;
  if (base !== baseOffset) return `hint is for base offset ${base}, not ${baseOffset}`;
  const count = buf.readUInt32LE(16);
  const bodyLength = buf.readUInt32LE(20);
  if (buf.length !== HINT_HEADER_BYTES + bodyLength) return 'hint length does not match its header';
  if (buf.readUInt32LE(24) !== crc32(buf.subarray(HINT_HEADER_BYTES))) return 'hint body fails its CRC';
  // Bounds pass first, so a hint that lies about its count visits nothing.
  let at = HINT_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + HINT_ENTRY_BYTES > buf.length) return 'hint entry runs past the end';
    at += HINT_ENTRY_BYTES + u16(buf, at + 25);
  }
  if (at !== buf.length) return 'hint has trailing bytes';
  return count;
}

/**
 * Calls `visit` for each entry, in order, after the whole file has passed its
 * checks. Returns an error description (and visits nothing) if it has not.
 */
export function decodeHint(
  buf: Buffer,
  baseOffset: number,
  visit: (
    key: string,
    offset: number,
    position: number,
    valueLength: number,
    expiresAt: number,
    flags: number,
  ) => void,
): string | undefined {
  const count = checkHint(buf, baseOffset);
  if (typeof count === 'string') return count;
  let at = HINT_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const keyLength = u16(buf, at + 25);
    visit(
      buf.toString('latin1', at + HINT_ENTRY_BYTES, at + HINT_ENTRY_BYTES + keyLength),
      u32(buf, at) + u32(buf, at + 4) * TWO_32,
      u32(buf, at + 8),
      u32(buf, at + 12),
      u32(buf, at + 16) + u32(buf, at + 20) * TWO_32,
      buf[at + 24]!,
    );
    at += HINT_ENTRY_BYTES + keyLength;
  }
  return undefined;
}

/**
 * A run of consecutive hint entries as columns, for loading a hint without
 * an object or a string per entry: entry j's key is the bytes
 * buf[keyStart[j], keyStart[j] + keyLength[j]) of the hint buffer itself.
 */
export class HintBatch {
  /** Entries in the batch. */
  length = 0;
  readonly keyStart: Int32Array;
  readonly keyLength: Uint16Array;
  readonly offset: Float64Array;
  readonly position: Uint32Array;
  readonly valueLength: Uint32Array;
  /** ms since epoch, 0 = never. */
  readonly expiresAt: Float64Array;
  readonly flags: Uint8Array;

  constructor(readonly capacity: number) {
    this.keyStart = new Int32Array(capacity);
    this.keyLength = new Uint16Array(capacity);
    this.offset = new Float64Array(capacity);
    this.position = new Uint32Array(capacity);
    this.valueLength = new Uint32Array(capacity);
    this.expiresAt = new Float64Array(capacity);
    this.flags = new Uint8Array(capacity);
  }
}

/**
 * decodeHint by batches: fills `batch` with up to batch.capacity entries at a
 * time, in order, and calls `visit` with it after each fill. Same checks, same
 * entries, same order; an error description (and no visit) if the file fails.
 */
export function decodeHintBatches(
  buf: Buffer,
  baseOffset: number,
  batch: HintBatch,
  visit: (batch: HintBatch) => void,
): string | undefined {
  const count = checkHint(buf, baseOffset);
  if (typeof count === 'string') return count;
  let at = HINT_HEADER_BYTES;
  for (let i = 0; i < count; ) {
    const n = Math.min(batch.capacity, count - i);
    for (let j = 0; j < n; j++) {
      const keyLength = u16(buf, at + 25);
      batch.offset[j] = u32(buf, at) + u32(buf, at + 4) * TWO_32;
      batch.position[j] = u32(buf, at + 8);
      batch.valueLength[j] = u32(buf, at + 12);
      batch.expiresAt[j] = u32(buf, at + 16) + u32(buf, at + 20) * TWO_32;
      batch.flags[j] = buf[at + 24]!;
      batch.keyLength[j] = keyLength;
      batch.keyStart[j] = at + HINT_ENTRY_BYTES;
      at += HINT_ENTRY_BYTES + keyLength;
    }
    batch.length = n;
    i += n;
    visit(batch);
  }
  return undefined;
}
