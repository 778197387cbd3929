/**
 * Sparse offset index format (version 1): `<base>.index` beside a sealed
 * segment. One entry every ~INDEX_INTERVAL_BYTES of records, so finding
 * offset N is: binary search over segment names, binary search here, then a
 * short scan of at most ~4 KiB. Entries are (offset - base, position), both
 * strictly increasing. Compacted segments have gaps in offsets; the search
 * still finds the last entry at or below the target.
 *
 * Header, 24 bytes:
 *   byte  size  field
 *   0     4     magic       "SKVI"
 *   4     2     version     u16, INDEX_FORMAT_VERSION
 *   6     2     reserved    0
 *   8     8     baseOffset  u64
 *   16    4     count       u32, entries
 *   20    4     crc32       of the entries
 * Entry, 12 bytes: u64 relativeOffset (compacted segments may span more than
 * 2^32 offsets), u32 position.
 */
import { crc32 } from 'node:zlib';

const INDEX_MAGIC = 0x49564b53; // "SKVI" read as u32 LE
export const INDEX_FORMAT_VERSION = 1;
export const INDEX_HEADER_BYTES = 4 + 2 + 2 + 8 + 4 + 4;
export const INDEX_ENTRY_BYTES = 8 + 4;

/**
 * An in-memory sparse index; grows while a segment is active. A compaction
 * output's index arrives from the rewrite's worker thread as two
 * Float64Arrays (transferred) and is kept as they are (`ofEntries`):
 * copying them into arrays took 20–25 ms of the event loop for a 300 MB run
 * (Array.from, structured clone of arrays alike), once per compaction.
 */
export class SparseIndex {
  relOffsets: number[] | Float64Array = [];
  positions: number[] | Float64Array = [];
  private lastPosition = -Infinity;

  constructor(
    readonly baseOffset: number,
    readonly intervalBytes: number,
  ) {}

  /** An index of given entries (strictly increasing), used as they are. */
  static ofEntries(
    baseOffset: number,
    intervalBytes: number,
    relOffsets: Float64Array,
    positions: Float64Array,
  ): SparseIndex {
    const index = new SparseIndex(baseOffset, intervalBytes);
    index.relOffsets = relOffsets;
    index.positions = positions;
    index.lastPosition = positions.length > 0 ? positions[positions.length - 1]! : -Infinity;
    return index;
  }

  /** Notes a record; keeps it if it starts ≥ intervalBytes after the last kept one. */
  observe(offset: number, position: number): void {
    if (position - this.lastPosition >= this.intervalBytes) {
      // Entries given as typed arrays become arrays before they grow (never on the hot path: those are sealed).
      if (!Array.isArray(this.relOffsets)) this.relOffsets = Array.from(this.relOffsets);
      if (!Array.isArray(this.positions)) this.positions = Array.from(this.positions);
      this.relOffsets.push(offset - this.baseOffset);
      this.positions.push(position);
      this.lastPosition = position;
    }
  }

  /** Position to start scanning from to find `offset` (the segment's first record if none fits). */
  lookup(offset: number, firstPosition: number): number {
    const rel = offset - this.baseOffset;
    let lo = 0;
    let hi = this.relOffsets.length - 1;
    let found = firstPosition;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.relOffsets[mid]! <= rel) {
        found = this.positions[mid]!;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  encode(): Buffer {
    const n = this.relOffsets.length;
    const buf = Buffer.allocUnsafe(INDEX_HEADER_BYTES + n * INDEX_ENTRY_BYTES);
    this.encodeEntries(buf.subarray(INDEX_HEADER_BYTES), 0, n);
    this.encodeHeader(buf, crc32(buf.subarray(INDEX_HEADER_BYTES)));
    return buf;
  }

  /**
   * Writes entries [from, to) into `out` from its start (INDEX_ENTRY_BYTES
   * each); returns the bytes written. The sealer writes an index this way a
   * step at a time, then its header (`encodeHeader`): the bytes of `encode()`.
   */
  encodeEntries(out: Buffer, from: number, to: number): number {
    const bytes = (to - from) * INDEX_ENTRY_BYTES;
    if (bytes > out.length)
      throw new RangeError(`${to - from} index entries do not fit in ${out.length} bytes`);
    // Through a DataView: a sealer runs this once per segment, mostly before V8
    // optimises it, and a Buffer.writeUInt32LE per field (a JS call with its range
    // checks) made the interpreted loop ~3x slower. Entries are in range by
    // construction (offsets ≥ base, positions < 2^32): the index decodes them back.
    const view = new DataView(out.buffer, out.byteOffset, bytes);
    const rels = this.relOffsets;
    const positions = this.positions;
    for (let i = from, at = 0; i < to; i++, at += INDEX_ENTRY_BYTES) {
      const rel = rels[i]!;
      view.setUint32(at, rel % 2 ** 32, true);
      view.setUint32(at + 4, Math.floor(rel / 2 ** 32), true);
      view.setUint32(at + 8, positions[i]!, true);
    }
    return bytes;
  }

  /** Writes the header (INDEX_HEADER_BYTES) into `out` for all entries, whose crc32 is `entriesCrc`. */
  encodeHeader(out: Buffer, entriesCrc: number): void {
    out.writeUInt32LE(INDEX_MAGIC, 0);
    out.writeUInt16LE(INDEX_FORMAT_VERSION, 4);
    out.writeUInt16LE(0, 6);
    out.writeUInt32LE(this.baseOffset % 2 ** 32, 8);
    out.writeUInt32LE(Math.floor(this.baseOffset / 2 ** 32), 12);
    out.writeUInt32LE(this.relOffsets.length, 16);
    out.writeUInt32LE(entriesCrc, 20);
  }

  /** Decodes an index file; a string describes why it is invalid. */
  static decode(buf: Buffer, baseOffset: number, intervalBytes: number): SparseIndex | string {
    if (buf.length < INDEX_HEADER_BYTES) return 'index is truncated';
    if (buf.readUInt32LE(0) !== INDEX_MAGIC) return 'index has a wrong magic number';
    if (buf.readUInt16LE(4) !== INDEX_FORMAT_VERSION) return 'index format version is not supported';
    if (buf.readUInt32LE(8) + buf.readUInt32LE(12) * 2 ** 32 !== baseOffset)
      return 'index is for another segment';
    const n = buf.readUInt32LE(16);
    if (buf.length !== INDEX_HEADER_BYTES + n * INDEX_ENTRY_BYTES)
      return 'index length does not match its header';
    if (buf.readUInt32LE(20) !== crc32(buf.subarray(INDEX_HEADER_BYTES))) return 'index fails its CRC';
    const index = new SparseIndex(baseOffset, intervalBytes);
    const relOffsets: number[] = [];
    const positions: number[] = [];
    for (let i = 0; i < n; i++) {
      const at = INDEX_HEADER_BYTES + i * INDEX_ENTRY_BYTES;
      const rel = buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * 2 ** 32;
      const pos = buf.readUInt32LE(at + 8);
      const prevRel = relOffsets[i - 1];
      const prevPos = positions[i - 1];
      if (prevRel !== undefined && prevPos !== undefined && (rel <= prevRel || pos <= prevPos))
        return 'index entries are not increasing';
      relOffsets.push(rel);
      positions.push(pos);
    }
    index.relOffsets = relOffsets;
    index.positions = positions;
    index.lastPosition = positions.length > 0 ? positions[positions.length - 1]! : -Infinity;
    return index;
  }
}
