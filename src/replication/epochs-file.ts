/**
 * FORMAT: the `EPOCHS` file (version 1), little-endian: which log this is
 * and its epoch history (Kafka's leader-epoch checkpoint, KIP-101).
 *
 *   byte      size  field
 *   0         4     magic        "SKVE"
 *   4         2     version      u16, EPOCHS_FORMAT_VERSION
 *   6         2     reserved     0
 *   8         16    logId        random bytes, chosen when a primary starts an empty log;
 *                                a replica takes its primary's at a full resync
 *   24        4     count        u32, entries (≥ 1)
 *   28        16·n  entries      epoch u64 (strictly increasing), startOffset u64 (non-decreasing)
 *   28+16n    4     crc32        of every byte before it
 *
 * An entry (e, s) says: records from offset s on, up to the next entry's
 * start, were written by the primary of epoch e. Any failed check is
 * corruption: the caller treats the log as of unknown lineage (full resync).
 */
import { crc32 } from 'node:zlib';

const EPOCHS_MAGIC = 0x454b5653; // "SKVE" read as u32 LE
export const EPOCHS_FORMAT_VERSION = 1;
export const LOG_ID_BYTES = 16;
const EPOCHS_HEADER_BYTES = 4 + 2 + 2 + LOG_ID_BYTES + 4;
const EPOCH_ENTRY_BYTES = 8 + 8;
const EPOCHS_CRC_BYTES = 4;

export interface EpochEntry {
  epoch: number;
  startOffset: number;
}

export interface Lineage {
  /** Hex of the 16 random bytes. */
  logId: string;
  /** Oldest first; never empty. */
  epochs: EpochEntry[];
}

export function encodeEpochs(l: Lineage): Buffer {
  const n = l.epochs.length;
  const b = Buffer.alloc(EPOCHS_HEADER_BYTES + n * EPOCH_ENTRY_BYTES + EPOCHS_CRC_BYTES);
  b.writeUInt32LE(EPOCHS_MAGIC, 0);
  b.writeUInt16LE(EPOCHS_FORMAT_VERSION, 4);
  Buffer.from(l.logId, 'hex').copy(b, 8);
  b.writeUInt32LE(n, 24);
  let at = EPOCHS_HEADER_BYTES;
  for (const e of l.epochs) {
    b.writeBigUInt64LE(BigInt(e.epoch), at);
    b.writeBigUInt64LE(BigInt(e.startOffset), at + 8);
    at += EPOCH_ENTRY_BYTES;
  }
  b.writeUInt32LE(crc32(b.subarray(0, at)), at);
  return b;
}

/** The lineage, or why it cannot be trusted. */
export function decodeEpochs(b: Buffer): Lineage | string {
  if (b.length < EPOCHS_HEADER_BYTES + EPOCH_ENTRY_BYTES + EPOCHS_CRC_BYTES) return `only ${b.length} bytes`;
  if (b.readUInt32LE(0) !== EPOCHS_MAGIC) return 'bad magic';
  const version = b.readUInt16LE(4);
  if (version !== EPOCHS_FORMAT_VERSION) return `unknown format version ${version}`;
  const n = b.readUInt32LE(24);
  const end = EPOCHS_HEADER_BYTES + n * EPOCH_ENTRY_BYTES;
  if (n === 0 || b.length !== end + EPOCHS_CRC_BYTES) return `${b.length} bytes for ${n} entries`;
  if (b.readUInt32LE(end) !== crc32(b.subarray(0, end))) return 'bad CRC';
  const epochs: EpochEntry[] = [];
  for (let at = EPOCHS_HEADER_BYTES; at < end; at += EPOCH_ENTRY_BYTES) {
    const e = { epoch: Number(b.readBigUInt64LE(at)), startOffset: Number(b.readBigUInt64LE(at + 8)) };
    const prev = epochs[epochs.length - 1];
    if (prev && (e.epoch <= prev.epoch || e.startOffset < prev.startOffset)) return 'entries out of order';
    epochs.push(e);
  }
  return { logId: b.toString('hex', 8, 8 + LOG_ID_BYTES), epochs };
}
