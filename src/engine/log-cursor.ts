/**
 * A cursor over the log by offset that a compaction cannot disturb: the
 * change feed and replication read through it (the narrow log surface
 * replication uses; readFrom's log-reader.ts serves the embedded API).
 *
 * Invariants:
 * - Records come in strictly increasing offset order, each exactly once.
 * - A compaction swap never makes the cursor skip or repeat a record, nor
 *   read a compacted copy of a range it has not read yet: when a swap
 *   replaces segments the cursor has not finished (their last offset ≥ its
 *   position), the log tells it first (`LogWatcher.replacing`) and the
 *   cursor retains those originals and reads them instead of the outputs.
 *   A compaction that ran before the cursor opened is the caller's concern
 *   (the tombstone horizon, src/replication/horizon.ts).
 * - Only records handed to the OS are read (a segment's `written` bytes),
 *   never the write buffer of the current tick.
 * - Memory: one read returns at most ~`maxBytes` of records (at least one);
 *   the cursor holds only segment references.
 *
 * Runs on the event loop; `read` is synchronous (positioned reads of cached
 * pages, bounded by `maxBytes`), so nothing changes under it mid-read.
 */
import { CorruptionError } from '../errors.js';
import type { Fs } from './fs.js';
import { MAX_KEY_BYTES } from './limits.js';
import { buildIndex } from './log-reader.js';
import {
  checkRecord,
  decodeHeader,
  decodeHeaderInto,
  FLAG_TOMBSTONE,
  RECORD_HEADER_BYTES,
  type RecordHeader,
} from './record.js';
import type { Segment } from './segment.js';
import { SEGMENT_HEADER_BYTES } from './segment-header.js';
import { type LogView, type LogWatcher, segmentIndexFor } from './segment-log.js';

export type { LogWatcher } from './segment-log.js';

/** One record as the cursor reads it. */
export interface CursorRecord {
  offset: number;
  /** On-disk flags (record.ts): 1 tombstone, 2 batch member, 4 batch end. */
  flags: number;
  /** ms since the epoch, 0 = never. */
  expiresAt: number;
  key: Buffer;
  /** Empty for a tombstone. */
  value: Buffer;
}

export class LogCursor implements LogWatcher {
  /** The lowest offset not yet returned. */
  next: number;
  /** Originals of segments a compaction replaced before this cursor finished them, retained, in offset order. */
  private held: Segment[] = [];
  private closed = false;
  private wake: (() => void) | undefined;
  /** Read buffer, reused; grown for a record larger than it. */
  private buf = Buffer.allocUnsafe(CURSOR_READ_BYTES);
  /** readRaw: bytes of the run gathered in `buf` so far. */
  private fill = 0;
  private readonly header: RecordHeader = { offset: 0, expiresAt: 0, flags: 0, keyLength: 0, valueLength: 0 };

  constructor(
    private readonly log: LogView,
    from: number,
  ) {
    this.next = from;
    log.watchers.add(this);
  }

  flushed(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  replacing(inputs: readonly Segment[]): void {
    for (const seg of inputs) {
      if (seg.lastOffset < this.next) continue;
      seg.retain();
      this.held.push(seg);
    }
    this.held.sort((a, b) => a.baseOffset - b.baseOffset);
  }

  /** Resolves at the next flush (or at once if closed): call after `read` returned nothing. */
  waitForRecords(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.wake;
      this.wake = () => {
        previous?.();
        resolve();
      };
    });
  }

  /**
   * Up to about `maxBytes` of records from `next` on (at least one if any is
   * readable); an empty array when the cursor is at the end of the log.
   */
  read(maxBytes: number): CursorRecord[] {
    const out: CursorRecord[] = [];
    this.walk(maxBytes, (seg, stopAt, budget) => this.readSegment(seg, stopAt, budget, out));
    return out;
  }

  /**
   * Up to about `maxBytes` of whole records from `next` on (at least one if
   * any is readable) as the segments hold them: a record run
   * (record-run.ts), empty at the end of the log. One positioned read per
   * segment touched, straight into the cursor's buffer; headers are read to
   * find the records' bounds, CRCs are not checked (the raw feed's reader
   * checks them). The bytes are valid until the next read.
   */
  readRaw(maxBytes: number): Buffer {
    this.fill = 0;
    this.walk(maxBytes, (seg, stopAt, budget) => this.readRawSegment(seg, stopAt, budget));
    return this.buf.subarray(0, this.fill);
  }

  /**
   * The walk over segments both reads share: held originals first, then the
   * live segments from `next`. `readOne` reads records of a segment from
   * `next` (below `stopAt`, about `budget` bytes) and returns the bytes it
   * read, 0 when the segment has nothing more below `stopAt`.
   */
  private walk(maxBytes: number, readOne: (seg: Segment, stopAt: number, budget: number) => number): void {
    if (this.closed || this.log.isClosed) return;
    let bytes = 0;
    while (bytes < maxBytes) {
      // Held originals first: they cover their offsets instead of the outputs.
      while (this.held.length > 0 && this.held[0]!.lastOffset < this.next) this.held.shift()!.release();
      const h = this.held[0];
      let seg: Segment;
      let stopAt = Number.POSITIVE_INFINITY;
      if (h && h.baseOffset <= this.next) seg = h;
      else {
        const ordered = this.log.ordered;
        const i = segmentIndexFor(ordered, this.next);
        const found = ordered[i];
        if (!found) return;
        seg = found;
        if (h) stopAt = h.baseOffset; // an output overlapping the held run: read it only up to there
        if (seg.lastOffset < this.next || seg.records === 0) {
          // Nothing at or after `next` here (a gap, or an empty active segment): on to the following one.
          const following = ordered[i + 1];
          if (!following) return;
          this.next = Math.min(following.baseOffset, stopAt);
          continue;
        }
      }
      const got = readOne(seg, stopAt, maxBytes - bytes);
      bytes += got;
      if (got === 0) {
        // Read to its end (or to stopAt): the next record is in a later segment.
        if (seg.lastOffset >= this.next) {
          if (stopAt !== Number.POSITIVE_INFINITY) this.next = stopAt;
          else if (seg === this.log.active || seg.written < seg.size)
            return; // the end of the log
          else this.next = seg.lastOffset + 1;
        }
      }
    }
  }

  /**
   * Reads records of `seg` from `next` (below `stopAt`) into `out`; returns
   * the bytes read. Positioned reads into the cursor's own buffer, reused
   * from read to read (a feed reads small tails many times a second).
   */
  private readSegment(seg: Segment, stopAt: number, maxBytes: number, out: CursorRecord[]): number {
    const fs = this.log.options.fs;
    if (!seg.index) seg.index = buildIndex(fs, seg, this.log.options.indexIntervalBytes);
    const from = this.next;
    const end = seg.written;
    let pos = seg.index.lookup(from, SEGMENT_HEADER_BYTES);
    let bytes = 0;
    while (pos < end) {
      const want = Math.min(end - pos, this.buf.length);
      const n = readFully(fs, seg.fd, this.buf, want, pos);
      if (n === 0) throw new CorruptionError(seg.name, pos, `the file ends before its ${end} written bytes`);
      const buf = this.buf;
      let at = 0;
      while (at < n) {
        if (n - at < RECORD_HEADER_BYTES) {
          if (pos + n >= end) throw new CorruptionError(seg.name, pos + at, 'truncated record header');
          break; // the rest of the header is in the next read
        }
        const h = decodeHeader(buf, at, n, MAX_KEY_BYTES);
        if (!h) throw new CorruptionError(seg.name, pos + at, 'invalid record header');
        const size = RECORD_HEADER_BYTES + h.keyLength + h.valueLength;
        if (at + size > n) {
          if (pos + at + size > end)
            throw new CorruptionError(seg.name, pos + at, 'record runs past the end of the segment');
          if (at === 0) this.buf = Buffer.allocUnsafe(size); // a record larger than the buffer
          break;
        }
        if (h.offset >= from) {
          if (h.offset >= stopAt || (bytes >= maxBytes && out.length > 0)) return bytes;
          if (!checkRecord(buf, at, size))
            throw new CorruptionError(seg.name, pos + at, 'record fails its CRC');
          const keyAt = at + RECORD_HEADER_BYTES;
          const valueAt = keyAt + h.keyLength;
          out.push({
            offset: h.offset,
            flags: h.flags,
            expiresAt: h.expiresAt,
            key: Buffer.from(buf.subarray(keyAt, valueAt)),
            value:
              h.flags & FLAG_TOMBSTONE ? EMPTY : Buffer.from(buf.subarray(valueAt, valueAt + h.valueLength)),
          });
          bytes += size;
          this.next = h.offset + 1;
        }
        at += size;
      }
      pos += at;
      if (bytes >= maxBytes) return bytes;
    }
    return bytes;
  }

  /**
   * Reads whole records of `seg` from `next` (below `stopAt`, about
   * `maxBytes` more in all) into buf[fill, ...): readRaw's step. Records
   * below `next` that the sparse index's position leaves in front are read
   * and dropped (moved over). Returns the bytes added.
   */
  private readRawSegment(seg: Segment, stopAt: number, maxBytes: number): number {
    const fs = this.log.options.fs;
    if (!seg.index) seg.index = buildIndex(fs, seg, this.log.options.indexIntervalBytes);
    const end = seg.written;
    const h = this.header;
    const first = this.fill;
    let pos = seg.index.lookup(this.next, SEGMENT_HEADER_BYTES);
    while (pos < end) {
      const base = this.fill;
      const n = readFully(fs, seg.fd, this.buf, Math.min(end - pos, this.buf.length - base), pos, base);
      if (n === 0) throw new CorruptionError(seg.name, pos, `the file ends before its ${end} written bytes`);
      const buf = this.buf;
      const limit = base + n;
      let at = base;
      let keptAt = -1;
      let stop = false;
      let need = 0; // bytes of the record cut by the end of this read
      while (at < limit) {
        if (!decodeHeaderInto(buf, at, limit, MAX_KEY_BYTES, h)) {
          if (limit - at >= RECORD_HEADER_BYTES)
            throw new CorruptionError(seg.name, pos + at - base, 'invalid record header');
          if (pos + limit - base >= end)
            throw new CorruptionError(seg.name, pos + at - base, 'truncated record header');
          need = RECORD_HEADER_BYTES;
          break;
        }
        const size = RECORD_HEADER_BYTES + h.keyLength + h.valueLength;
        if (at + size > limit) {
          if (pos + at - base + size > end)
            throw new CorruptionError(seg.name, pos + at - base, 'record runs past the end of the segment');
          need = size;
          break;
        }
        if (h.offset >= this.next) {
          const kept = keptAt < 0 ? 0 : at - keptAt;
          if (h.offset >= stopAt || (base - first + kept >= maxBytes && base + kept > 0)) {
            stop = true;
            break;
          }
          if (keptAt < 0) keptAt = at;
          this.next = h.offset + 1;
        }
        at += size;
      }
      if (keptAt >= 0) {
        if (keptAt > base) buf.copyWithin(base, keptAt, at);
        this.fill = base + (at - keptAt);
      }
      pos += at - base;
      if (stop || this.fill - first >= maxBytes) break;
      if (need > 0 && this.buf.length - this.fill < need) {
        // A record larger than the room left: a bigger buffer, keeping what is in it.
        const bigger = Buffer.allocUnsafe(this.fill + Math.max(need, CURSOR_READ_BYTES));
        this.buf.copy(bigger, 0, 0, this.fill);
        this.buf = bigger;
      }
    }
    return this.fill - first;
  }

  /** Lets go of every held segment and stops watching the store. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.log.watchers.delete(this);
    for (const s of this.held) s.release();
    this.held = [];
    this.flushed();
  }
}

const EMPTY = Buffer.alloc(0);

/** Size of a cursor's read buffer: one read covers a feed batch (FEED_BATCH_BYTES) and change. */
const CURSOR_READ_BYTES = 320 * 1024;

/** Reads up to `length` bytes at `position` (fewer only at the end of the file). */
function readFully(fs: Fs, fd: number, buf: Buffer, length: number, position: number, at = 0): number {
  let got = 0;
  while (got < length) {
    const n = fs.read(fd, buf, at + got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
