/**
 * Segment file header (version 1), the first bytes of every `.seg` file.
 *
 *   byte  size  field
 *   0     4     magic        "SKVS"
 *   4     2     version      u16 LE, FORMAT_VERSION
 *   6     2     reserved     0
 *   8     8     baseOffset   u64 LE, offset of the first record (= the file name)
 *   16    4     reserved     0
 *   20    4     crc32        of bytes [0, 20)
 *
 * Header size = 4 + 2 + 2 + 8 + 4 + 4 = 24 bytes; records start at byte 24.
 * A wrong magic, version or CRC is corruption, never a guess.
 */
import { crc32 } from 'node:zlib';

export const SEGMENT_MAGIC = 0x53564b53; // "SKVS" read as u32 LE
export const SEGMENT_FORMAT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 4 + 2 + 2 + 8 + 4 + 4;
const AT_CRC = 20;

export function encodeSegmentHeader(baseOffset: number): Buffer {
  const buf = Buffer.alloc(SEGMENT_HEADER_BYTES);
  buf.writeUInt32LE(SEGMENT_MAGIC, 0);
  buf.writeUInt16LE(SEGMENT_FORMAT_VERSION, 4);
  buf.writeUInt32LE(baseOffset % 2 ** 32, 8);
  buf.writeUInt32LE(Math.floor(baseOffset / 2 ** 32), 12);
  buf.writeUInt32LE(crc32(buf.subarray(0, AT_CRC)), AT_CRC);
  return buf;
}

/** Returns an error description, or undefined when the header is valid for `baseOffset`. */
export function checkSegmentHeader(buf: Buffer, baseOffset: number): string | undefined {
  if (buf.length < SEGMENT_HEADER_BYTES) return 'segment header is truncated';
  if (buf.readUInt32LE(0) !== SEGMENT_MAGIC) return 'segment header has a wrong magic number';
  if (buf.readUInt32LE(AT_CRC) !== crc32(buf.subarray(0, AT_CRC))) return 'segment header fails its CRC';
  const version = buf.readUInt16LE(4);
  if (version !== SEGMENT_FORMAT_VERSION) return `segment format version ${version} is not supported`;
  const base = buf.readUInt32LE(8) + buf.readUInt32LE(12) * 2 ** 32;
  if (base !== baseOffset) return `segment header says base offset ${base}, its name says ${baseOffset}`;
  return undefined;
}
