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
const AT_FLAGS = 20;
const AT_KEY_LENGTH = 21;
const AT_VALUE_LENGTH = 23;

export const FLAG_TOMBSTONE = 1;
export const FLAG_BATCH = 2;
export const FLAG_BATCH_END = 4;
const KNOWN_FLAGS = FLAG_TOMBSTONE | FLAG_BATCH | FLAG_BATCH_END;

const TWO_32 = 2 ** 32;

export function recordSize(keyLength: number, valueLength: number): number {
  return RECORD_HEADER_BYTES + keyLength + valueLength;
}

function writeU64(buf: Buffer, at: number, n: number): void {
  buf.writeUInt32LE(n % TWO_32, at);
  buf.writeUInt32LE(Math.floor(n / TWO_32), at + 4);
}

function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * TWO_32;
}

/**
 * Encodes one record into `buf` at `at`. `key` is the latin1 form of the key
 * bytes (the keydir's representation), so key.length is its byte length.
 * Returns the record's size.
 */
export function encodeRecord(
  buf: Buffer,
  at: number,
  offset: number,
  expiresAt: number,
  flags: number,
  key: string,
  value: Uint8Array | undefined,
): number {
  const k = key.length;
  const v = value ? value.length : 0;
  writeU64(buf, at + AT_OFFSET, offset);
  writeU64(buf, at + AT_EXPIRES, expiresAt);
  buf[at + AT_FLAGS] = flags;
  buf.writeUInt16LE(k, at + AT_KEY_LENGTH);
  buf.writeUInt32LE(v, at + AT_VALUE_LENGTH);
  buf.write(key, at + RECORD_HEADER_BYTES, k, 'latin1');
  if (value) buf.set(value, at + RECORD_HEADER_BYTES + k);
  const end = at + RECORD_HEADER_BYTES + k + v;
  buf.writeUInt32LE(crc32(buf.subarray(at + CRC_BYTES, end)), at);
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
  if (end - at < RECORD_HEADER_BYTES) return undefined;
  const flags = buf[at + AT_FLAGS]!;
  const keyLength = buf.readUInt16LE(at + AT_KEY_LENGTH);
  const valueLength = buf.readUInt32LE(at + AT_VALUE_LENGTH);
  if ((flags & ~KNOWN_FLAGS) !== 0 || keyLength === 0 || keyLength > maxKeyBytes) return undefined;
  if ((flags & FLAG_TOMBSTONE) !== 0 && valueLength !== 0) return undefined;
  return {
    offset: readU64(buf, at + AT_OFFSET),
    expiresAt: readU64(buf, at + AT_EXPIRES),
    flags,
    keyLength,
    valueLength,
  };
}

/** True if the record of `size` bytes at `at` matches its CRC. */
export function checkRecord(buf: Buffer, at: number, size: number): boolean {
  return buf.readUInt32LE(at) === crc32(buf.subarray(at + CRC_BYTES, at + size));
}

export function recordKey(buf: Buffer, at: number, keyLength: number): string {
  return buf.toString('latin1', at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + keyLength);
}
