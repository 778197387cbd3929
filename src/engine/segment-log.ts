/**
 * The segment log: the log's segments in offset order (the last one active,
 * appended to), the segment table the keydir's entries name by id, the next
 * offset, and the keydir itself with its compare-and-set (`point`/`unpoint`,
 * which keep every segment's live-byte count and the active segment's
 * in-progress hint). Kafka's `Log` under its cleaner and manager.
 *
 * Who uses it, and through what (the dependency direction is
 * store → segment-log ← compaction, recovery, sealer, log-reader, log-cursor,
 * replication; this module imports none of them):
 * - `LogView`: reading it by offset or by key (log-reader.ts, log-cursor.ts
 *   and so the change feed, sealer.ts).
 * - `LogEdit`: changing its segment list and its keydir (recovery.ts, the
 *   compaction swap).
 * - The class itself: the Store (store.ts), the only writer: it appends,
 *   rotates, and owns acknowledgement, fsync rounds, caches and expiry.
 *
 * Invariants:
 * - `ordered` holds the live segments in increasing base offset, contiguous
 *   in offsets; only the last one (the active one) is appended to.
 * - Every keydir entry names a segment in `segments` by id, and each
 *   segment's `liveBytes` is the sum of the record sizes the keydir points at
 *   in it (point, unpoint and the swap move them together).
 * - A segment leaves `segments` (retireSegments) only once no keydir entry
 *   points into it, and closes only when its readers let go (Segment.retain).
 *
 * Concurrency: everything runs on the event loop; nothing here is
 * asynchronous. Readers that span event-loop turns retain the segments they
 * read and watch for swaps (`watchers`).
 */
import { join } from 'node:path';
import { type CorruptionError, ioError, KvError } from '../errors.js';
import { segmentFile } from './filenames.js';
import { HintBuilder } from './hint-builder.js';
import { hashView, type Keydir } from './keydir.js';
import { ALWAYS_ZERO_AHEAD_BYTES, MAX_LOGGED_CORRUPT_RECORDS, MAX_SEGMENTS } from './limits.js';
import type { ResolvedOptions } from './options.js';
import {
  encodeAsciiRecord,
  encodeRecord,
  encodeRecordFrom,
  RECORD_HEADER_BYTES,
  type RecordHeader,
  recordSize,
} from './record.js';
import type { RunRows } from './record-run.js';
import { Segment } from './segment.js';
import { encodeSegmentHeader, SEGMENT_HEADER_BYTES } from './segment-header.js';
import { SparseIndex } from './sparse-index.js';
import { UndoLog } from './undo-log.js';

/** What the log tells its cursors (log-cursor.ts, replication): flushes and compaction swaps. */
export interface LogWatcher {
  /** Records were handed to the OS: a cursor at the end has more to read. */
  flushed(): void;
  /** A compaction is about to replace `inputs` (a contiguous run) by its outputs. */
  replacing(inputs: readonly Segment[]): void;
}

/** The sorted key index of scans, told of keys the keydir gains and loses (key-index.ts). */
export interface KeyInsertions {
  noteInsert(key: string): void;
  noteDelete(): void;
}

/** The log as its readers see it: segments by offset and by id, the keydir, the end. */
export interface LogView {
  readonly dir: string;
  readonly options: ResolvedOptions;
  readonly keydir: Keydir;
  /** Segment table, indexed by segment id (what the keydir stores). */
  readonly segments: readonly (Segment | undefined)[];
  /** Live segments in offset order; the last one is active. */
  readonly ordered: readonly Segment[];
  /** The segment appended to (the last of `ordered`). */
  readonly active: Segment;
  /** The offset the next appended record gets. */
  readonly nextOffset: number;
  readonly isClosed: boolean;
  /** Count of undone write ticks: the keydir went backwards that many times (compaction checks it). */
  readonly rollbacks: number;
  /** Cursors told of flushes and compaction swaps; a cursor adds and deletes itself. */
  readonly watchers: Set<LogWatcher>;
  /** Index in `ordered` of the last segment whose base offset is ≤ offset (0 if none). */
  segmentIndexFor(offset: number): number;
  /** A read met a damaged record: counted and logged once (see SegmentLog.noteCorruptRead). */
  noteCorruptRead(err: CorruptionError, answered?: boolean): void;
}

/** The log as recovery and the compaction swap change it: the segment list and the keydir. */
export interface LogEdit extends LogView {
  nextOffset: number;
  /** Registers a segment in the table (sets its id), not in `ordered`. */
  addSegment(seg: Segment): void;
  /** addSegment, then appends it to `ordered` (recovery, in offset order). */
  pushSegment(seg: Segment): void;
  /** The compaction swap: `fresh` takes the place of the contiguous run `inputs` in `ordered`. */
  replaceSegments(inputs: readonly Segment[], fresh: readonly Segment[]): void;
  /** The end of a swap: `inputs` leave the table; each closes when its readers let go, then `onClosed`. */
  retireSegments(inputs: readonly Segment[], onClosed?: (seg: Segment) => void): void;
  point(key: string, seg: Segment, position: number, valueLength: number, expiresAt: number): number;
  unpoint(key: string, appendedAt?: number): boolean;
}

/** Index in `ordered` of the last segment whose base offset is ≤ offset (0 if none): a binary search. */
export function segmentIndexFor(ordered: readonly { readonly baseOffset: number }[], offset: number): number {
  let lo = 0;
  let hi = ordered.length - 1;
  let found = 0;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (ordered[mid]!.baseOffset <= offset) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

export class SegmentLog implements LogEdit {
  readonly dir: string;
  readonly options: ResolvedOptions;
  readonly keydir: Keydir;
  readonly segments: (Segment | undefined)[] = [];
  ordered: Segment[] = [];
  nextOffset = 0;
  private undone = 0;
  /** The keydir changes of this tick, to undo if its write is refused. */
  private readonly undo = new UndoLog();
  readonly watchers = new Set<LogWatcher>();
  /** Set by the Store as it closes: readers stop. */
  closed = false;
  /** A segment file was created since the directory's last fsync (the Store's sync round clears it). */
  dirDirty = false;
  /** The scans' sorted key index, once built (the Store builds it at the first scan). */
  keyIndex: KeyInsertions | undefined;
  /** Damaged records reads have met, as `file:position`: each is logged once. */
  private readonly corruptSeen = new Set<string>();
  /** Distinct damaged records reads met; reads answered CORRUPTION. */
  corruptRecords = 0;
  corruptReads = 0;

  constructor(dir: string, options: ResolvedOptions, keydir: Keydir) {
    this.dir = dir;
    this.options = options;
    this.keydir = keydir;
  }

  get active(): Segment {
    return this.ordered[this.ordered.length - 1]!;
  }

  get rollbacks(): number {
    return this.undone;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  segmentIndexFor(offset: number): number {
    return segmentIndexFor(this.ordered, offset);
  }

  // ---- segments ---------------------------------------------------------

  addSegment(seg: Segment): void {
    let id = this.segments.indexOf(undefined);
    if (id < 0) id = this.segments.length;
    if (id >= MAX_SEGMENTS) {
      throw new KvError(
        'BUSY',
        `more than ${MAX_SEGMENTS} segments are open; raise maxSegmentBytes or compact`,
      );
    }
    seg.id = id;
    this.segments[id] = seg;
  }

  pushSegment(seg: Segment): void {
    this.addSegment(seg);
    this.ordered.push(seg);
  }

  /**
   * Creates a new, empty active segment starting at nextOffset. A creation
   * that fails (ENOSPC writing the header) is undone: the file is closed and
   * removed, nothing changes, and the error is an IO_ERROR (a 0-byte `N.seg`
   * per attempt was left behind, and reported as corruption).
   */
  createSegment(): Segment {
    const fs = this.options.fs;
    const base = this.nextOffset;
    const name = segmentFile(base);
    const path = join(this.dir, name);
    let fd = -1;
    try {
      fd = fs.open(path, 'wx+');
      const header = encodeSegmentHeader(base);
      fs.write(fd, header, 0, header.length, 0);
    } catch (err) {
      if (fd >= 0) {
        try {
          fs.close(fd);
          fs.unlink(path);
        } catch {
          // Best effort: recovery removes an empty or headerless last segment.
        }
      }
      throw ioError(`creating segment ${name}`, err);
    }
    const seg = new Segment(fs, this.dir, name, base, fd, SEGMENT_HEADER_BYTES);
    seg.index = new SparseIndex(base, this.options.indexIntervalBytes);
    seg.hint = new HintBuilder(this.options.maxSegmentBytes);
    seg.dirty = true;
    if (this.options.fsync === 'always') seg.zeroAhead = ALWAYS_ZERO_AHEAD_BYTES;
    this.pushSegment(seg);
    this.dirDirty = true;
    return seg;
  }

  /**
   * Seals the active segment and creates a new one after it; returns the
   * sealed one (its in-progress hint still on it: the caller writes it out).
   * If the new one cannot be created, nothing changes and the IO_ERROR is thrown.
   * The caller flushes first.
   */
  rotate(): Segment {
    const old = this.active;
    // Only the last segment may end in zeros (recovery cuts them as a torn tail;
    // in an earlier one they would read as damage): cut, and durable, first.
    if (old.zeroAhead > 0) {
      old.trimZeros();
      this.options.fs.fsyncSync(old.fd);
    }
    this.createSegment();
    old.sealed = true;
    return old;
  }

  replaceSegments(inputs: readonly Segment[], fresh: readonly Segment[]): void {
    for (const w of this.watchers) w.replacing(inputs);
    const at = this.ordered.indexOf(inputs[0]!);
    this.ordered.splice(at, inputs.length, ...fresh);
  }

  retireSegments(inputs: readonly Segment[], onClosed?: (seg: Segment) => void): void {
    for (const seg of inputs) {
      this.segments[seg.id] = undefined;
      seg.retire(false, (err) => {
        if (err) this.options.logger.warn({ err, file: seg.name }, 'closing a compacted segment failed');
        onClosed?.(seg);
      });
    }
  }

  /** Closes every segment (when their readers let go) and empties the keydir: the Store's close. */
  closeSegments(): void {
    for (const s of this.ordered) s.retire(false);
    this.ordered = [];
    this.keydir.clear();
  }

  // ---- appends -------------------------------------------------------------

  /**
   * Encodes one record at nextOffset (or at `offset`, a replicated record's,
   * which the caller checked is not below it) into the active segment's
   * write buffer and returns its position; nextOffset moves past it. The
   * caller made room (no rotation here) and points the keydir at it.
   */
  append(
    key: string,
    value: Uint8Array | undefined,
    expiresAt: number,
    flags: number,
    offset = this.nextOffset,
  ): number {
    const seg = this.active;
    const position = seg.size;
    const at = seg.reserve(recordSize(key.length, value ? value.length : 0));
    encodeRecord(seg.reserved, at, offset, expiresAt, flags, key, value, seg.reservedView);
    this.appended(seg, position, at, key.length, offset, value ? value.length : 0, expiresAt, flags);
    return position;
  }

  /**
   * `append` at nextOffset of a value record (no flags) for a key given as
   * the user's string, 1..MAX_KEY_BYTES chars, taken as its own internal
   * form (encodeAsciiRecord checks it while it copies it): -1, with nothing
   * appended, when a char is not ASCII (the caller then converts the key).
   */
  appendAscii(key: string, value: Uint8Array, expiresAt: number): number {
    const seg = this.active;
    const position = seg.size;
    const offset = this.nextOffset;
    const n = recordSize(key.length, value.length);
    const at = seg.reserve(n);
    if (!encodeAsciiRecord(seg.reserved, at, offset, expiresAt, key, value, seg.reservedView)) {
      seg.unreserve(n);
      return -1;
    }
    this.appended(seg, position, at, key.length, offset, value.length, expiresAt, 0);
    return position;
  }

  /**
   * `append` at nextOffset of a value record (no flags) whose key is
   * src[keyStart, keyStart + keyLength), 1..MAX_KEY_BYTES bytes (the
   * server's SET: its request frame): the same record, with no key string.
   * `pointLast` and `recordUndoOfLastPoint` follow it.
   */
  appendFrom(
    src: Uint8Array,
    keyStart: number,
    keyLength: number,
    value: Uint8Array,
    expiresAt: number,
    srcView?: DataView,
  ): number {
    const seg = this.active;
    const position = seg.size;
    const offset = this.nextOffset;
    const at = seg.reserve(recordSize(keyLength, value.length));
    encodeRecordFrom(
      seg.reserved,
      at,
      offset,
      expiresAt,
      0,
      src,
      keyStart,
      keyLength,
      value,
      seg.reservedView,
      srcView,
    );
    this.appended(seg, position, at, keyLength, offset, value.length, expiresAt, 0);
    return position;
  }

  /** The bookkeeping of a record just encoded at `at` in the active segment's write chunk, at `position`. */
  private appended(
    seg: Segment,
    position: number,
    at: number,
    keyLength: number,
    offset: number,
    valueLength: number,
    expiresAt: number,
    flags: number,
  ): void {
    this.nextOffset = offset + 1;
    const view = seg.reservedView;
    this.lastSegment = seg;
    this.lastPosition = position;
    this.lastChunk = seg.reserved;
    this.lastView = view;
    this.lastKeyAt = at + RECORD_HEADER_BYTES;
    this.lastKeyLength = keyLength;
    seg.index?.observe(offset, position);
    seg.hint?.addFrom(view, this.lastKeyAt, keyLength, offset, position, valueLength, expiresAt, flags);
    seg.lastOffset = offset;
    seg.records++;
  }

  /** The key of the last `append`, made a string from its record's bytes. */
  lastKey(): string {
    const at = this.lastKeyAt;
    return this.lastChunk!.toString('latin1', at, at + this.lastKeyLength);
  }

  /** The write chunk's view the last append's record is in (until the tick ends). */
  lastChunkView(): DataView {
    return this.lastView!;
  }

  /** Where in lastChunkView's bytes the last append's value starts. */
  lastValueAt(): number {
    return this.lastKeyAt + this.lastKeyLength;
  }

  /**
   * `point` of the last `appendFrom`'s record (at `position` in the active
   * segment), its key read from the record: a key string is made only when
   * something keeps one (an expiry, the hint's orphans, the key index).
   */
  pointLast(position: number, valueLength: number, expiresAt: number, hash?: number): number {
    const kd = this.keydir;
    const seg = this.lastSegment!;
    const view = this.lastView!;
    const keyAt = this.lastKeyAt;
    const keyLength = this.lastKeyLength;
    const slot = kd.setView(
      hash ?? hashView(view, keyAt, keyLength),
      view,
      keyAt,
      keyLength,
      undefined,
      seg.id,
      position,
      valueLength,
      expiresAt,
    );
    const hint = seg.hint;
    if (hint !== undefined) {
      if (kd.prevSegment === seg.id) hint.dropAt(kd.prevPosition, keyLength);
      else if (hint.orphanCount > 0) hint.adopt(this.lastKey());
    }
    if (kd.prevSegment >= 0) {
      this.segments[kd.prevSegment]!.liveBytes -= recordSize(keyLength, kd.prevValueLength);
    } else if (this.keyIndex) {
      this.keyIndex.noteInsert(this.lastKey());
    }
    seg.liveBytes += recordSize(keyLength, valueLength);
    return slot;
  }

  /**
   * The record of the last `append` (segment, position) and a DataView of
   * the write chunk it is in: `point` of that record, which follows the
   * append at once, hashes, compares and stores the key from the record's
   * bytes by 32-bit words (Keydir.setView) instead of reading the key
   * string's chars twice more. Forgotten at the tick's end (commitTick,
   * rollbackTick): the flush gives the write chunks back to the pool.
   */
  private lastSegment: Segment | undefined;
  private lastPosition = -1;
  private lastView: DataView | undefined;
  /** The write chunk lastView is over. */
  private lastChunk: Buffer | undefined;
  /** Where in lastView's bytes that record's key is, and its length. */
  private lastKeyAt = 0;
  private lastKeyLength = 0;

  private forgetLastAppend(): void {
    this.lastSegment = undefined;
    this.lastView = undefined;
    this.lastChunk = undefined;
  }

  /**
   * Appends run[from, to), whole records as a segment holds them (a checked
   * record run, record-run.ts; offsets above nextOffset) whose headers are
   * `rows` from `row` on (as checkRun decoded them: not decoded again), to the active
   * segment's write buffer with one copy, then per record, in order: the
   * sparse index and the hint learn of it (the hint from the copied bytes)
   * and `each` gets its position and header (`h`, reused). The record is
   * then the last append: `each` points the keydir with `pointLast` (the key
   * compared and stored from the record's bytes, no key string), reads its
   * key with `lastKey`, or its value's bytes at `lastValueAt`. The
   * caller made room. nextOffset moves past the last record.
   */
  appendRun(
    run: Buffer,
    from: number,
    to: number,
    rows: RunRows,
    row: number,
    h: RecordHeader,
    each: (position: number) => void,
  ): void {
    const seg = this.active;
    const base = seg.size;
    const into = seg.reserve(to - from);
    const chunk = seg.reserved;
    const view = seg.reservedView;
    run.copy(chunk, into, from, to);
    this.lastSegment = seg;
    this.lastChunk = chunk;
    this.lastView = view;
    for (let p = from; p < to; ) {
      rows.read(row++, h);
      const position = base + (p - from);
      const keyAt = into + (p - from) + RECORD_HEADER_BYTES;
      this.lastPosition = position;
      this.lastKeyAt = keyAt;
      this.lastKeyLength = h.keyLength;
      seg.index?.observe(h.offset, position);
      seg.hint?.addFrom(view, keyAt, h.keyLength, h.offset, position, h.valueLength, h.expiresAt, h.flags);
      seg.lastOffset = h.offset;
      seg.records++;
      this.nextOffset = h.offset + 1;
      const valueAt = p + RECORD_HEADER_BYTES + h.keyLength;
      each(position);
      p = valueAt + h.valueLength;
    }
  }

  /**
   * Moves nextOffset forward to `next` with no record for the offsets
   * skipped (a primary's log goes on past records its compaction dropped);
   * never backward.
   */
  skipTo(next: number): void {
    if (next > this.nextOffset) this.nextOffset = next;
  }

  // ---- keydir compare-and-set ------------------------------------------------

  /**
   * Points `key` at a record, keeping live-byte counts and, when `seg` is
   * the active segment, its in-progress hint (hint-builder.ts): the key's
   * earlier record there, if any, is no longer its last. Returns the key's keydir slot.
   * `hash`: the key's keydir hash, when the caller has it (a batch: Keydir.warmedHashes).
   */
  point(
    key: string,
    seg: Segment,
    position: number,
    valueLength: number,
    expiresAt: number,
    hash?: number,
  ): number {
    const kd = this.keydir;
    // One lookup: the old location is in kd.prev*.
    let slot: number;
    const view = this.lastView;
    if (view !== undefined && seg === this.lastSegment && position === this.lastPosition) {
      const keyAt = this.lastKeyAt;
      slot = kd.setView(
        hash ?? hashView(view, keyAt, key.length),
        view,
        keyAt,
        key.length,
        key,
        seg.id,
        position,
        valueLength,
        expiresAt,
      );
    } else {
      slot =
        hash === undefined
          ? kd.set(key, seg.id, position, valueLength, expiresAt)
          : kd.setHashed(hash, key, seg.id, position, valueLength, expiresAt);
    }
    const hint = seg.hint;
    if (hint !== undefined) {
      if (kd.prevSegment === seg.id) hint.dropAt(kd.prevPosition, key.length);
      else if (hint.orphanCount > 0) hint.adopt(key);
    }
    if (kd.prevSegment >= 0) {
      this.segments[kd.prevSegment]!.liveBytes -= recordSize(key.length, kd.prevValueLength);
    } else if (this.keyIndex) {
      this.keyIndex.noteInsert(key);
    }
    seg.liveBytes += recordSize(key.length, valueLength);
    return slot;
  }

  /**
   * Removes `key` from the keydir, keeping live-byte counts and the active
   * segment's in-progress hint. `appendedAt`: the position of the record of
   * `key` just appended to the active segment that leaves it absent (a
   * tombstone, or an expired value during recovery), -1 if none (an
   * expiry): that record, else the one the keydir pointed at, becomes the
   * key's last record there that the keydir does not point at.
   */
  unpoint(key: string, appendedAt = -1): boolean {
    const kd = this.keydir;
    const slot = kd.slot(key);
    const active = this.ordered[this.ordered.length - 1];
    const hint = active?.hint;
    if (slot >= 0) {
      const segId = kd.segmentOf(slot);
      if (hint !== undefined && segId === active!.id) {
        if (appendedAt >= 0) hint.dropAt(kd.positionOf(slot), key.length);
        else hint.orphan(key, kd.positionOf(slot));
      }
      this.segments[segId]!.liveBytes -= recordSize(key.length, kd.valueLengthOf(slot));
      kd.delete(key);
      this.keyIndex?.noteDelete();
    }
    if (appendedAt >= 0 && hint !== undefined) hint.orphan(key, appendedAt);
    return slot >= 0;
  }

  // ---- a tick's undo log ------------------------------------------------------

  /** Records `key`'s keydir entry (or its absence) before the Store changes it this tick. */
  recordUndo(key: string): void {
    const kd = this.keydir;
    const slot = kd.slot(key);
    if (slot < 0) this.undo.push(key, -1, 0, 0, 0);
    else
      this.undo.push(
        key,
        kd.segmentOf(slot),
        kd.positionOf(slot),
        kd.valueLengthOf(slot),
        kd.expiresAtOf(slot, key),
      );
  }

  /** recordUndo for a key `point` has just moved: its old location is still in keydir.prev*. */
  recordUndoOfPoint(key: string): void {
    const kd = this.keydir;
    this.undo.push(key, kd.prevSegment, kd.prevPosition, kd.prevValueLength, kd.prevExpiresAt);
  }

  /** recordUndoOfPoint for the key of the last append (pointLast), copied from its record's bytes. */
  recordUndoOfLastPoint(): void {
    const kd = this.keydir;
    this.undo.pushBytes(
      this.lastView!,
      this.lastKeyAt,
      this.lastKeyLength,
      kd.prevSegment,
      kd.prevPosition,
      kd.prevValueLength,
      kd.prevExpiresAt,
    );
  }

  /** The tick's records reached the OS: its keydir changes stand; cursors are told there is more to read. */
  commitTick(): void {
    this.forgetLastAppend();
    this.undo.clear();
    for (const w of this.watchers) w.flushed();
  }

  /**
   * The tick's write was refused: its keydir changes are undone, newest
   * first (`onKey` for each key, so the Store drops it from its caches), and
   * `rollbacks` counts it (the compaction swap checks it: the keydir went back).
   */
  rollbackTick(onKey: (key: string) => void): void {
    this.forgetLastAppend();
    this.undone++;
    this.undo.forEachNewestFirst((key, segId, position, valueLength, expiresAt) => {
      onKey(key);
      if (segId < 0) this.unpoint(key);
      else this.point(key, this.segments[segId]!, position, valueLength, expiresAt);
    });
    this.undo.clear();
  }

  // ---- damage found by reads -----------------------------------------------

  /**
   * A read met a damaged record (a GET, a read by offset, a compaction;
   * `answered`: a reader got CORRUPTION for it): counted (stats().corruption,
   * INFO, metrics) and logged once per record at error with its file and
   * position, never its key or value, so the operator learns of it before a
   * client complains.
   */
  noteCorruptRead(err: CorruptionError, answered = true): void {
    if (answered) this.corruptReads++;
    const id = `${err.file}:${err.position}`;
    if (this.corruptSeen.has(id)) return;
    this.corruptRecords++;
    const log = this.options.logger;
    if (this.corruptSeen.size >= MAX_LOGGED_CORRUPT_RECORDS) {
      if (this.corruptSeen.size === MAX_LOGGED_CORRUPT_RECORDS) {
        this.corruptSeen.add('');
        log.error(
          `more than ${MAX_LOGGED_CORRUPT_RECORDS} damaged records found by reads; no longer logging each (see INFO storage.corruption)`,
        );
      }
      return;
    }
    this.corruptSeen.add(id);
    log.error(
      { file: err.file, position: err.position },
      `corruption found by a read: ${err.message}; see README "Corruption found at run time"`,
    );
  }
}
