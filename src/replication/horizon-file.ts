/**
 * FORMAT: the `HORIZON` file (version 1), 28 bytes, little-endian. What a
 * primary needs to decide whether a replica may resume from its offset
 * (partial resync) or must start over from offset 0 (full resync), and what a
 * node needs to decide whether it may truncate its own tail (divergence).
 *
 *   byte  size  field
 *   0     4     magic             "SKVZ"
 *   4     2     version           u16, HORIZON_FORMAT_VERSION
 *   6     2     reserved          0
 *   8     8     tombstoneHorizon  u64: every tombstone at an offset ≥ this is still in the log
 *   16    8     compactedThrough  u64: the log's next offset when the last compaction started
 *   24    4     crc32             of bytes 0..23
 *
 * Any failed check (size, magic, version, CRC) is corruption: the caller
 * falls back to the pessimistic values (horizon = compactedThrough = the
 * log's next offset), which cost a full resync, never a resurrected key.
 */
import { crc32 } from 'node:zlib';

const HORIZON_MAGIC = 0x5a564b53; // "SKVZ" read as u32 LE
export const HORIZON_FORMAT_VERSION = 1;
export const HORIZON_FILE_BYTES = 4 + 2 + 2 + 8 + 8 + 4;

export interface HorizonState {
  tombstoneHorizon: number;
  compactedThrough: number;
}

export function encodeHorizon(state: HorizonState): Buffer {
  const b = Buffer.alloc(HORIZON_FILE_BYTES);
  b.writeUInt32LE(HORIZON_MAGIC, 0);
  b.writeUInt16LE(HORIZON_FORMAT_VERSION, 4);
  b.writeBigUInt64LE(BigInt(state.tombstoneHorizon), 8);
  b.writeBigUInt64LE(BigInt(state.compactedThrough), 16);
  b.writeUInt32LE(crc32(b.subarray(0, 24)), 24);
  return b;
}

/** The state, or a reason it cannot be trusted. */
export function decodeHorizon(b: Buffer): HorizonState | string {
  if (b.length !== HORIZON_FILE_BYTES) return `${b.length} bytes, expected ${HORIZON_FILE_BYTES}`;
  if (b.readUInt32LE(0) !== HORIZON_MAGIC) return 'bad magic';
  const version = b.readUInt16LE(4);
  if (version !== HORIZON_FORMAT_VERSION) return `unknown format version ${version}`;
  if (b.readUInt32LE(24) !== crc32(b.subarray(0, 24))) return 'bad CRC';
  return {
    tombstoneHorizon: Number(b.readBigUInt64LE(8)),
    compactedThrough: Number(b.readBigUInt64LE(16)),
  };
}
