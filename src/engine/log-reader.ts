/**
 * Reading the log by offset (change feeds, kv-dump, replication): a binary
 * search over segment base offsets finds the segment, its sparse index the
 * position, and a short scan the record.
 *
 * Runs beside writes and compaction: each segment is retained while it is
 * read (a compaction retires it only once readers let go), and the segment is
 * looked up again by offset after each one, so a compaction that swaps
 * segments meanwhile (outputs keep offsets) neither skips nor repeats records.
 */
import { CorruptionError } from '../errors.js';
import type { Fs } from './fs.js';
import { FLAG_TOMBSTONE } from './record.js';
import { type Segment, scanRecords } from './segment.js';
import { SEGMENT_HEADER_BYTES } from './segment-header.js';
import { type LogView, segmentIndexFor } from './segment-log.js';
import { SparseIndex } from './sparse-index.js';

export { segmentIndexFor } from './segment-log.js';

/** A record read back from the log by offset (Store.readFrom). */
export interface LogRecord {
  offset: number;
  key: Buffer;
  /** Empty for a tombstone. */
  value: Buffer;
  tombstone: boolean;
  expiresAt: number;
  segment: string;
  position: number;
}

/** Builds a segment's sparse index by scanning it (when its `.index` file is missing or bad). */
export function buildIndex(fs: Fs, seg: Segment, intervalBytes: number): SparseIndex {
  const index = new SparseIndex(seg.baseOffset, intervalBytes);
  scanRecords(fs, seg.fd, SEGMENT_HEADER_BYTES, seg.written, (rec) =>
    index.observe(rec.header.offset, rec.position),
  );
  return index;
}

/** Records from `offset` on, in offset order, tombstones and overwritten values included. */
export async function* readLog(
  log: LogView,
  offset: number,
  options: { limit?: number },
): AsyncGenerator<LogRecord> {
  let limit = options.limit ?? Number.POSITIVE_INFINITY;
  // `next` is the lowest offset still wanted. The segment is looked up again
  // by offset after each one, so a compaction that swaps segments while we
  // iterate (outputs keep offsets) neither skips nor repeats records.
  let next = offset;
  while (limit > 0 && !log.isClosed) {
    const i = segmentIndexFor(log.ordered, next);
    const seg = log.ordered[i];
    if (!seg) return;
    seg.retain();
    try {
      if (!seg.index) seg.index = buildIndex(log.options.fs, seg, log.options.indexIntervalBytes);
      let pos = seg.index.lookup(next, SEGMENT_HEADER_BYTES);
      while (pos < seg.written && limit > 0) {
        const out: LogRecord[] = [];
        const from = next;
        const r = scanRecords(
          log.options.fs,
          seg.fd,
          pos,
          seg.written,
          (rec) => {
            if (rec.header.offset < from || out.length >= limit) return;
            const keyStart = rec.valueAt - rec.header.keyLength;
            out.push({
              offset: rec.header.offset,
              key: Buffer.from(rec.buf.subarray(keyStart, rec.valueAt)),
              value: Buffer.from(rec.buf.subarray(rec.valueAt, rec.valueAt + rec.header.valueLength)),
              tombstone: (rec.header.flags & FLAG_TOMBSTONE) !== 0,
              expiresAt: rec.header.expiresAt,
              segment: seg.name,
              position: rec.position,
            });
          },
          pos + 256 * 1024,
        );
        for (const rec of out) {
          limit--;
          next = rec.offset + 1;
          yield rec;
        }
        if (r.problem) {
          const err = new CorruptionError(seg.name, r.problem.position, r.problem.reason);
          log.noteCorruptRead(err);
          throw err;
        }
        pos = r.end;
        if (log.segments[seg.id] !== seg) break; // swapped out by a compaction: look up `next` again
      }
      const at = log.ordered.indexOf(seg);
      if (at >= 0) {
        // Done with this segment: continue at the next one, wherever its offsets start.
        const following = log.ordered[at + 1];
        if (!following) return;
        next = Math.max(next, seg.lastOffset + 1, following.baseOffset);
      } else if (log.segments[seg.id] === seg && pos >= seg.written) {
        // Read to its end while a compaction swapped it out: its outputs hold nothing newer.
        next = Math.max(next, seg.lastOffset + 1);
      }
    } finally {
      seg.release();
    }
  }
}
