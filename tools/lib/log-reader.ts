/**
 * Reads the log by offset without opening a store: the lookup of
 * Store.readFrom (binary search over segment base offsets, then the
 * segment's sparse index, then a short scan), minus the keydir, so kv-dump
 * answers at once on a directory of millions of keys. Reads only.
 *
 * Compacted segments have gaps in their offsets: an offset in a gap starts
 * at the next kept record, as readFrom does. A missing or bad `.index` means
 * a scan from the segment's first record. Damage is reported as an event and
 * the scan resynchronises on the next valid record (segment.ts `resync`);
 * damage at the end of the active segment with nothing valid after it is a
 * torn tail (a server may be writing it) and ends the read.
 */
import { join } from 'node:path';
import type { Fs } from '../../src/engine/fs.js';
import { INDEX_INTERVAL_BYTES } from '../../src/engine/limits.js';
import { segmentIndexFor } from '../../src/engine/log-reader.js';
import { FLAG_TOMBSTONE } from '../../src/engine/record.js';
import { resync, scanRecords } from '../../src/engine/segment.js';
import { checkSegmentHeader, SEGMENT_HEADER_BYTES } from '../../src/engine/segment-header.js';
import { SparseIndex } from '../../src/engine/sparse-index.js';
import { type SegmentFiles, viewDataDir } from './data-dir.js';

export interface DumpRecord {
  type: 'record';
  offset: number;
  key: Buffer;
  /** Empty for a tombstone. */
  value: Buffer;
  tombstone: boolean;
  /** ms since the epoch; 0 = never. */
  expiresAt: number;
  flags: number;
  segment: string;
  position: number;
  size: number;
}

export interface DumpDamage {
  type: 'damage';
  segment: string;
  position: number;
  reason: string;
  /** Damage at the end of the active segment with nothing valid after it. */
  tornTail: boolean;
}

/** Bytes scanned per step: bounds memory whatever the limit. */
const STEP_BYTES = 256 * 1024;

export class LogReader {
  readonly segments: SegmentFiles[];
  readonly notes: string[];

  constructor(
    private readonly fs: Fs,
    private readonly dir: string,
  ) {
    const view = viewDataDir(fs, dir);
    this.segments = view.segments;
    this.notes = view.notes;
    if (view.manifestProblem) this.notes.push(`the compaction manifest is bad: ${view.manifestProblem}`);
  }

  /** Index of the last segment whose base offset is ≤ offset (0 if none): Store.segmentIndexFor. */
  segmentIndexFor(offset: number): number {
    return segmentIndexFor(this.segments, offset);
  }

  /** Records with offset ≥ `from`, in log order, at most `limit`; damage events in between. */
  *read(from: number, limit: number): Generator<DumpRecord | DumpDamage> {
    let left = limit;
    for (let i = this.segmentIndexFor(from); i < this.segments.length && left > 0; i++) {
      const files = this.segments[i]!;
      const isLast = i === this.segments.length - 1;
      const fd = this.fs.open(join(this.dir, files.seg), 'r');
      try {
        const size = this.fs.size(fd);
        const header = Buffer.alloc(SEGMENT_HEADER_BYTES);
        this.fs.read(fd, header, 0, SEGMENT_HEADER_BYTES, 0);
        const headerProblem = checkSegmentHeader(
          header.subarray(0, Math.min(size, SEGMENT_HEADER_BYTES)),
          files.baseOffset,
        );
        if (headerProblem) {
          yield { type: 'damage', segment: files.seg, position: 0, reason: headerProblem, tornTail: false };
          if (size < SEGMENT_HEADER_BYTES) continue;
        }
        let pos = this.startPosition(files, from);
        let trusted = pos === SEGMENT_HEADER_BYTES; // an index position is verified by the first scan step
        let lastOffset = -1;
        let firstOffset = -1; // of the first record this step read
        while (pos < size && left > 0) {
          const out: DumpRecord[] = [];
          const r = scanRecords(
            this.fs,
            fd,
            pos,
            size,
            (rec) => {
              const h = rec.header;
              if (firstOffset < 0) firstOffset = h.offset;
              if (h.offset > lastOffset) lastOffset = h.offset;
              if (h.offset < from || out.length >= left) return;
              const keyAt = rec.valueAt - h.keyLength;
              out.push({
                type: 'record',
                offset: h.offset,
                key: Buffer.from(rec.buf.subarray(keyAt, rec.valueAt)),
                value: Buffer.from(rec.buf.subarray(rec.valueAt, rec.valueAt + h.valueLength)),
                tombstone: (h.flags & FLAG_TOMBSTONE) !== 0,
                expiresAt: h.expiresAt,
                flags: h.flags,
                segment: files.seg,
                position: rec.position,
                size: rec.size,
              });
            },
            pos + STEP_BYTES,
          );
          const lying = (r.problem && r.problem.position === pos) || firstOffset > from;
          if (!trusted && lying) {
            // The index points at no record start, or at a record past `from` (its entry said ≤ from):
            // fall back to scanning the segment from its first record.
            pos = SEGMENT_HEADER_BYTES;
            trusted = true;
            lastOffset = -1;
            firstOffset = -1;
            continue;
          }
          trusted = true;
          for (const rec of out) {
            left--;
            yield rec;
          }
          if (!r.problem) {
            pos = r.end;
            continue;
          }
          const next = resync(this.fs, fd, r.problem.position, size, lastOffset);
          const tornTail = isLast && next < 0;
          yield {
            type: 'damage',
            segment: files.seg,
            position: r.problem.position,
            reason: r.problem.reason,
            tornTail,
          };
          if (next < 0) break;
          pos = next;
        }
      } finally {
        this.fs.close(fd);
      }
    }
  }

  /**
   * The offset of the log's last valid record, -1 if it holds none: the last
   * segment that holds a record, scanned from its last sparse index entry.
   */
  lastOffset(): number {
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const last = this.segmentLastOffset(this.segments[i]!);
      if (last >= 0) return last;
    }
    return -1;
  }

  /** The highest offset of a valid record in `files` from its last sparse index entry (or its start) on; -1 if none. */
  private segmentLastOffset(files: SegmentFiles): number {
    const fd = this.fs.open(join(this.dir, files.seg), 'r');
    try {
      const size = this.fs.size(fd);
      let pos = this.startPosition(files, Number.MAX_SAFE_INTEGER);
      let last = -1;
      while (pos < size) {
        const r = scanRecords(
          this.fs,
          fd,
          pos,
          size,
          (rec) => {
            if (rec.header.offset > last) last = rec.header.offset;
          },
          pos + STEP_BYTES,
        );
        if (!r.problem) {
          pos = r.end;
          continue;
        }
        const next = resync(this.fs, fd, r.problem.position, size, last);
        if (next < 0) break;
        pos = next;
      }
      return last;
    } finally {
      this.fs.close(fd);
    }
  }

  /** Where to start scanning `files` for `from`: its sparse index entry, or its first record. */
  private startPosition(files: SegmentFiles, from: number): number {
    if (!files.index || from <= files.baseOffset) return SEGMENT_HEADER_BYTES;
    try {
      const index = SparseIndex.decode(
        this.fs.readFile(join(this.dir, files.index)),
        files.baseOffset,
        INDEX_INTERVAL_BYTES,
      );
      if (typeof index !== 'string') return index.lookup(from, SEGMENT_HEADER_BYTES);
    } catch {
      // Unreadable: scan instead.
    }
    return SEGMENT_HEADER_BYTES;
  }
}
