/**
 * One segment file: `<base offset>.seg`, a header then records (record.ts).
 *
 * The active segment appends through an in-memory write buffer: records get
 * their position at once (so the keydir can point at them and reads see
 * them), and reach the OS when the store flushes, one write per tick. Sealed
 * segments are read-only. Reads are one positioned read of the whole record,
 * checked against its CRC: a mismatch is a CorruptionError, never "not found".
 *
 * A segment is closed only when its last reader (an offset iterator or a
 * compaction) lets go: `retain`/`release` count them, and `retire` closes
 * and unlinks once the count reaches zero (Bitcask #249: merged files kept
 * open and never freed).
 */
import { join } from 'node:path';
import { CorruptionError } from '../errors.js';
import type { Fs } from './fs.js';
import type { HintBuilder } from './hint-builder.js';
import { MAX_KEY_BYTES, WRITE_CHUNK_BYTES, WRITE_SPARE_CHUNKS } from './limits.js';
import { checkRecord, decodeHeader, RECORD_HEADER_BYTES, type RecordHeader, recordKey } from './record.js';
import { SEGMENT_HEADER_BYTES } from './segment-header.js';
import { ownBuffer, Slabs } from './slabs.js';
import type { SparseIndex } from './sparse-index.js';
import { AS_VARIABLE } from './v8-fields.js';

const EMPTY = Buffer.alloc(0);

/**
 * Write-buffer chunks flushed to the OS, for the next reserves of any segment
 * (at most WRITE_SPARE_CHUNKS): each with its DataView, reused with it. A
 * chunk record and view made per tick were young objects stored into old
 * ones (the segment's `reservedView`, the segment log's `lastView`) at every
 * SET: a write-barrier call each (V8's RecordWrite), two a SET at pipeline 1.
 */
const spareChunks: Chunk[] = [];

/**
 * Where write-buffer chunks come from: slabs (slabs.ts), not buffers of their
 * own. A 1 MiB buffer of its own is mapped alone by malloc, and freeing one
 * (a chunk past the spare pool) raises glibc's mmap threshold to 1 MiB, after
 * which every buffer below that comes from the brk heap, where freed ones
 * stay resident (ARCHITECTURE.md "Server memory"). Carved from a slab, the
 * spare chunks (4 MiB after a bulk load) can also be given back when the
 * server goes idle (releaseSpareWriteChunks): the slab is freed whole.
 */
const chunkSlabs = new Slabs();

/**
 * Forgets the spare write-buffer chunks and the slab they were carved from
 * (the memory reducer calls this when the server has gone idle): once the
 * chunks still being written are flushed, the GC frees the slab and its pages
 * go back to the OS. The next writes carve a fresh slab.
 */
export function releaseSpareWriteChunks(): void {
  spareChunks.length = 0;
  chunkSlabs.drop();
}

interface Chunk {
  /** Segment position of buf[0]. */
  start: number;
  buf: Buffer;
  /** A DataView over buf's bytes (the record CRC's word reads). */
  view: DataView;
  used: number;
}

const EMPTY_VIEW = new DataView(new ArrayBuffer(0));

export class Segment {
  /** Slot in the store's segment table; what the keydir stores. */
  id = -1;
  /** Logical end: header + every record appended, written or not. */
  size: number;
  /** Bytes handed to the OS. Equal to `size` except in the active segment. */
  written: number;
  /** Bytes of records the keydir points at. dead = size - header - live. */
  liveBytes = 0;
  /** Records in the segment (tombstones and overwritten ones included). */
  records = 0;
  /** Highest offset of a record in it, -1 if none. */
  lastOffset = -1;
  sealed = false;
  /** Its hint file is written (or was loaded): only such sealed segments may be compacted. */
  hinted = false;
  /** Sparse offset index, when known (built while appending or read from `.index`). */
  index: SparseIndex | undefined;
  /** Set when written since the last fsync. */
  dirty = false;
  /**
   * Under `always` (Store): bytes of written zeros kept ahead of the data in
   * the file (ALWAYS_ZERO_AHEAD_BYTES), so an fdatasync of records changes no
   * metadata. 0: the file ends at the data.
   */
  zeroAhead = 0;
  /** Where the file ends: `written`, or past it the zeros written ahead (zeroAhead). */
  private fileEnd: number;
  /** `written` when its last fsync started: the bytes past it are not durable yet. */
  syncedTo: number;
  /**
   * The active segment's hint, built as records are appended (hint-builder.ts);
   * handed to the sealer at rotation. Undefined once sealed, on a read-only
   * open, or when given up (a failed write): the sealer then scans.
   */
  hint: HintBuilder | undefined;

  private chunks: Chunk[] = [];
  private readers = 0;
  private retired: (() => void) | undefined;
  /** Set once the descriptor is closed: `fd` may name another file by then, so nothing may use it. */
  private closed = false;

  constructor(
    private readonly fs: Fs,
    readonly dir: string,
    readonly name: string,
    readonly baseOffset: number,
    public fd: number,
    size: number,
  ) {
    this.size = size;
    this.written = size;
    this.syncedTo = size;
    this.fileEnd = size;
    // Variables from the start (v8-fields.ts): the first seal changes them.
    this.sealed = this.hinted = true;
    this.sealed = this.hinted = false;
    this.readers = AS_VARIABLE;
    this.readers = 0;
  }

  get path(): string {
    return join(this.dir, this.name);
  }

  get dataBytes(): number {
    return this.size - SEGMENT_HEADER_BYTES;
  }

  get deadBytes(): number {
    return this.dataBytes - this.liveBytes;
  }

  /** The write-buffer chunk the last `reserve` placed its bytes in. */
  reserved: Buffer = EMPTY;
  /** A DataView over `reserved`'s bytes, same indices. */
  reservedView: DataView = EMPTY_VIEW;

  /**
   * Reserves `n` bytes at the end of the write buffer; the caller encodes a
   * record into `this.reserved` at the index returned (no object per write).
   * The record's position is `this.size` before the call.
   */
  reserve(n: number): number {
    // Not chunks[length - 1] on an empty list: the key -1 is a property name, not an index, and
    // that one read turned this site's load megamorphic (a stub-cache lookup on every reserve).
    const chunks = this.chunks;
    let last = chunks.length > 0 ? chunks[chunks.length - 1] : undefined;
    if (last === undefined || last.buf.length - last.used < n) {
      last = n <= WRITE_CHUNK_BYTES ? spareChunks.pop() : undefined;
      if (last !== undefined) {
        last.start = this.size;
        last.used = 0;
      } else {
        // A record larger than a chunk gets a buffer alone in its mapping: freed, it leaves glibc's threshold where it was.
        const buf = n <= WRITE_CHUNK_BYTES ? chunkSlabs.take(WRITE_CHUNK_BYTES) : ownBuffer(n);
        last = { start: this.size, buf, view: new DataView(buf.buffer, buf.byteOffset, buf.length), used: 0 };
      }
      this.chunks.push(last);
    }
    const at = last.used;
    last.used += n;
    this.size += n;
    this.reserved = last.buf;
    this.reservedView = last.view;
    return at;
  }

  /**
   * Gives back the last `reserve(n)`, nothing having been appended since (a
   * record whose encoding stopped: segment-log.ts appendAscii). A chunk it
   * leaves empty goes back to the spare ones.
   */
  unreserve(n: number): void {
    const last = this.chunks[this.chunks.length - 1]!;
    last.used -= n;
    this.size -= n;
    if (last.used === 0) {
      this.chunks.pop();
      if (last.buf.length === WRITE_CHUNK_BYTES && spareChunks.length < WRITE_SPARE_CHUNKS)
        spareChunks.push(last);
      this.reserved = EMPTY;
      this.reservedView = EMPTY_VIEW;
    }
  }

  /** Writes the buffered records to the OS (no fsync). On error the file is cut back and the buffer dropped. */
  flush(): boolean {
    if (this.chunks.length === 0) return false;
    const chunks = this.chunks;
    this.chunks = [];
    this.reserved = EMPTY; // encoded already; kept, it would hold its chunk's slab after releaseSpareWriteChunks
    this.reservedView = EMPTY_VIEW;
    try {
      if (this.zeroAhead > 0 && this.size + (this.zeroAhead >> 1) > this.fileEnd) this.writeZerosAhead();
      for (const c of chunks) this.fs.write(this.fd, c.buf, 0, c.used, c.start);
      this.written = this.size;
      this.dirty = true;
      // The bytes are with the OS now and reads copy out of chunks, so the
      // chunk buffers go back to the pool for the next ticks (of any segment)
      // instead of 1 MiB allocated per chunk and left to the GC.
      for (const c of chunks)
        if (c.buf.length === WRITE_CHUNK_BYTES && spareChunks.length < WRITE_SPARE_CHUNKS)
          spareChunks.push(c);
      return true;
    } catch (err) {
      this.size = this.written;
      try {
        this.fs.truncate(this.fd, this.written);
        this.fileEnd = this.written;
      } catch {
        // The write failed already; the truncate is best effort and recovery's CRC scan is the backstop.
      }
      throw err;
    }
  }

  /** Keeps `bytes` of zeros written ahead of the data from the next write on (the recovered last segment: its file ends at `written`). */
  startZerosAhead(bytes: number): void {
    this.zeroAhead = bytes;
    this.fileEnd = this.written;
  }

  /**
   * Extends the file with zeros to zeroAhead bytes past the buffered data
   * (before that data is written). Best effort: on a failure (a full disk)
   * the file is cut back and the records are written without zeros ahead,
   * so only the records need to fit.
   */
  private writeZerosAhead(): void {
    const from = Math.max(this.fileEnd, this.written);
    const to = this.size + this.zeroAhead;
    if (zeros.length < to - from) zeros = Buffer.alloc(to - from);
    try {
      this.fs.write(this.fd, zeros, 0, to - from, from);
      this.fileEnd = to;
    } catch {
      try {
        this.fs.truncate(this.fd, from);
      } catch {
        // The records' own write reports the disk's state; recovery cuts a zero tail as a torn one.
      }
    }
  }

  /**
   * Cuts the zeros written ahead (zeroAhead) off the file, and stops writing
   * more: a sealed segment, or the last one at a clean close, ends at its
   * data. Throws what the truncate throws.
   */
  trimZeros(): void {
    this.zeroAhead = 0;
    if (this.fileEnd <= this.written) return;
    this.fs.truncate(this.fd, this.written);
    this.fileEnd = this.written;
    this.dirty = true; // the next round's fdatasync makes the new length durable
  }

  /** Reads `length` bytes at `position`, from the write buffer or the file. */
  read(position: number, length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    if (position >= this.written) {
      for (const c of this.chunks) {
        if (position >= c.start && position + length <= c.start + c.used) {
          c.buf.copy(out, 0, position - c.start, position - c.start + length);
          return out;
        }
      }
      throw new CorruptionError(this.name, position, 'read past the end of the write buffer');
    }
    const n = this.fs.read(this.fd, out, 0, length, position);
    if (n !== length) throw new CorruptionError(this.name, position, `short read (${n} of ${length} bytes)`);
    return out;
  }

  /** Reads the record at `position` and returns its value, after checking its CRC. */
  readValue(position: number, keyLength: number, valueLength: number): Buffer {
    const size = RECORD_HEADER_BYTES + keyLength + valueLength;
    const buf = this.read(position, size);
    if (!checkRecord(buf, 0, size)) throw new CorruptionError(this.name, position, 'record fails its CRC');
    return buf.subarray(RECORD_HEADER_BYTES + keyLength);
  }

  /**
   * fsyncs the data written so far. Never through a closed descriptor (its
   * number may belong to another file by now): the store retains a segment
   * for the whole of a sync, so a compaction's retire waits for it.
   * `inline`: on the calling thread (fsyncSync), settled when it returns;
   * else in the thread pool (the store's choice: Store.syncsInline).
   */
  sync(inline = false): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`${this.name} is closed; it cannot be synced`));
    if (!inline) return this.fs.fsync(this.fd);
    try {
      this.fs.fsyncSync(this.fd);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  retain(): void {
    this.readers++;
  }

  release(): void {
    this.readers--;
    if (this.readers === 0 && this.retired) this.retired();
  }

  /** Closes (and, with `unlink`, deletes) the file once no reader holds it. */
  retire(unlink: boolean, onDone: (err?: unknown) => void = () => {}): void {
    this.retired = () => {
      this.retired = undefined;
      try {
        this.closed = true;
        this.fs.close(this.fd);
        if (unlink) this.fs.unlink(this.path);
        onDone();
      } catch (err) {
        onDone(err);
      }
    };
    if (this.readers === 0) this.retired();
  }
}

/** Zeros for writeZerosAhead, grown to the largest run written. */
let zeros = Buffer.alloc(0);

export interface ScannedRecord {
  position: number;
  size: number;
  header: RecordHeader;
  key: string;
  /** The record bytes' buffer and where the value starts in it; valid until the next step. */
  buf: Buffer;
  valueAt: number;
}

export interface ScanProblem {
  position: number;
  reason: string;
}

const SCAN_CHUNK_BYTES = 1024 * 1024;

export interface ScanResult {
  /** Where the scan stopped: `to`, the first position at or after `stopAfter`, or the problem's position. */
  end: number;
  problem?: ScanProblem;
}

/**
 * Reads records from `from` to `to` in order, checking each CRC, and calls
 * `onRecord` for each valid one. Stops at the first invalid record (returning
 * where and why), at `to`, or at the first record boundary at or past
 * `stopAfter` (so callers can scan a big segment in bounded steps).
 */
export function scanRecords(
  fs: Fs,
  fd: number,
  from: number,
  to: number,
  onRecord: (r: ScannedRecord) => void,
  stopAfter = to,
): ScanResult {
  let buf: Buffer = Buffer.allocUnsafe(SCAN_CHUNK_BYTES);
  let bufStart = from;
  let bufEnd = from; // file position of the end of buf's valid bytes
  let pos = from;
  while (pos < to && pos < stopAfter) {
    if (bufEnd - pos < RECORD_HEADER_BYTES) {
      ({ buf, bufStart, bufEnd } = refill(fs, fd, buf, bufStart, bufEnd, pos, to, RECORD_HEADER_BYTES));
      if (bufEnd - pos < RECORD_HEADER_BYTES)
        return { end: pos, problem: { position: pos, reason: 'truncated record header' } };
    }
    const header = decodeHeader(buf, pos - bufStart, bufEnd - bufStart, MAX_KEY_BYTES);
    if (!header) return { end: pos, problem: { position: pos, reason: 'invalid record header' } };
    const size = RECORD_HEADER_BYTES + header.keyLength + header.valueLength;
    if (pos + size > to)
      return { end: pos, problem: { position: pos, reason: 'record runs past the end of the segment' } };
    if (bufEnd - pos < size) {
      ({ buf, bufStart, bufEnd } = refill(fs, fd, buf, bufStart, bufEnd, pos, to, size));
      if (bufEnd - pos < size) return { end: pos, problem: { position: pos, reason: 'truncated record' } };
    }
    const at = pos - bufStart;
    if (!checkRecord(buf, at, size))
      return { end: pos, problem: { position: pos, reason: 'record fails its CRC' } };
    onRecord({
      position: pos,
      size,
      header,
      key: recordKey(buf, at, header.keyLength),
      buf,
      valueAt: at + RECORD_HEADER_BYTES + header.keyLength,
    });
    pos += size;
  }
  return { end: pos };
}

function refill(
  fs: Fs,
  fd: number,
  buf: Buffer,
  bufStart: number,
  bufEnd: number,
  pos: number,
  to: number,
  need: number,
): { buf: Buffer; bufStart: number; bufEnd: number } {
  const keep = bufEnd - pos;
  // Never copy into the buffer a caller may still hold a record of: take a fresh one.
  const next: Buffer = Buffer.allocUnsafe(Math.max(need, SCAN_CHUNK_BYTES));
  if (keep > 0) buf.copy(next, 0, pos - bufStart, bufEnd - bufStart);
  const want = Math.min(next.length - keep, to - bufEnd);
  let got = 0;
  while (got < want) {
    const n = fs.read(fd, next, keep + got, want - got, bufEnd + got);
    if (n === 0) break;
    got += n;
  }
  return { buf: next, bufStart: pos, bufEnd: bufEnd + got };
}

/**
 * After corruption at `from`, finds the next position where a record with a
 * valid header and CRC and an offset above `minOffset` starts, or -1. Slow
 * (tries every byte) but only runs on damaged files.
 */
export function resync(fs: Fs, fd: number, from: number, to: number, minOffset: number): number {
  const len = to - from;
  if (len <= RECORD_HEADER_BYTES) return -1;
  const buf = Buffer.allocUnsafe(len);
  const n = fs.read(fd, buf, 0, len, from);
  for (let i = 1; i + RECORD_HEADER_BYTES <= n; i++) {
    const h = decodeHeader(buf, i, n, MAX_KEY_BYTES);
    if (!h || h.offset <= minOffset) continue;
    const size = RECORD_HEADER_BYTES + h.keyLength + h.valueLength;
    if (i + size <= n && checkRecord(buf, i, size)) return from + i;
  }
  return -1;
}
