/**
 * FORMAT: the `RESYNC` file (version 1), 20 bytes, little-endian. Present on
 * a replica from the start of a full resync until its log holds everything
 * the primary had when the resync began; while it exists the replica's data
 * is partial, so it answers reads with LOADING (even across restarts).
 *
 *   byte  size  field
 *   0     4     magic    "SKVR"
 *   4     2     version  u16, RESYNC_FORMAT_VERSION
 *   6     2     reserved 0
 *   8     8     target   u64: the primary's log end when the resync began
 *                        (2^64−1: not known yet; the end the next feed reports)
 *   16    4     crc32    of bytes 0..15
 *
 * A damaged file counts as "target not known yet": reads stay refused until
 * the replica has caught up with its primary once more, never served partial.
 */
import { crc32 } from 'node:zlib';

const RESYNC_MAGIC = 0x52564b53; // "SKVR" read as u32 LE
export const RESYNC_FORMAT_VERSION = 1;
export const RESYNC_FILE_BYTES = 4 + 2 + 2 + 8 + 4;
/** The target written before the primary's end is known. */
export const RESYNC_TARGET_UNKNOWN = -1;
const UNKNOWN_U64 = 0xffff_ffff_ffff_ffffn;

export function encodeResync(target: number): Buffer {
  const b = Buffer.alloc(RESYNC_FILE_BYTES);
  b.writeUInt32LE(RESYNC_MAGIC, 0);
  b.writeUInt16LE(RESYNC_FORMAT_VERSION, 4);
  b.writeBigUInt64LE(target === RESYNC_TARGET_UNKNOWN ? UNKNOWN_U64 : BigInt(target), 8);
  b.writeUInt32LE(crc32(b.subarray(0, 16)), 16);
  return b;
}

/** The target offset (or RESYNC_TARGET_UNKNOWN), or a reason the file cannot be trusted. */
export function decodeResync(b: Buffer): number | string {
  if (b.length !== RESYNC_FILE_BYTES) return `${b.length} bytes, expected ${RESYNC_FILE_BYTES}`;
  if (b.readUInt32LE(0) !== RESYNC_MAGIC) return 'bad magic';
  const version = b.readUInt16LE(4);
  if (version !== RESYNC_FORMAT_VERSION) return `unknown format version ${version}`;
  if (b.readUInt32LE(16) !== crc32(b.subarray(0, 16))) return 'bad CRC';
  const target = b.readBigUInt64LE(8);
  if (target === UNKNOWN_U64) return RESYNC_TARGET_UNKNOWN;
  if (target > BigInt(Number.MAX_SAFE_INTEGER)) return `target offset ${target} is out of range`;
  return Number(target);
}
