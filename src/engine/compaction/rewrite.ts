/**
 * The rewrite: merges a contiguous run of sealed segments into new
 * size-bounded segments holding only what must survive, in offset order, with
 * their offsets kept (Kafka's cleaner). Outputs are written under
 * `.compacting` names with their hint and index, and fsynced; nothing visible
 * changes until swap.ts commits them.
 *
 * What survives a record:
 * - a value the keydir points at exactly (live), unless expired;
 * - a tombstone (or an expired value, rewritten as a tombstone) for a key that
 *   is absent from the keydir, once per key, and only when the run does not
 *   start at the oldest segment: then an older segment outside the run may
 *   still hold a value it must keep shadowing. A run that starts at the oldest
 *   segment drops them all (nutsdb #77: tombstones kept forever).
 * Batch flags are cleared: a kept record stands alone.
 *
 * Runs on the event loop in small steps (STEP_MS of work, then a yield), so
 * foreground reads and writes keep flowing (DESIGN.md §1.4). Inputs are read
 * sequentially in large chunks into one reused buffer; outputs are fsynced in
 * the background every SYNC_EVERY_BYTES while the rewrite goes on (as Redis's
 * AOF rewrite does every 4 MB), so the disk writes back while we compute and
 * the final fsync has little left to do. Decisions
 * made against the keydir here are re-checked at commit (swap.ts): a write
 * that lands meanwhile always wins.
 */
import { join } from 'node:path';
import { CorruptionError } from '../../errors.js';
import { compactingFile, hintFile, indexFile, segmentFile } from '../filenames.js';
import type { Fs } from '../fs.js';
import { HintWriter } from '../hint.js';
import { MAX_KEY_BYTES } from '../limits.js';
import {
  checkRecord,
  decodeHeaderInto,
  encodeRecord,
  FLAG_BATCH,
  FLAG_BATCH_END,
  FLAG_TOMBSTONE,
  RECORD_HEADER_BYTES,
  type RecordHeader,
  recordKey,
} from '../record.js';
import type { Segment } from '../segment.js';
import { encodeSegmentHeader, SEGMENT_HEADER_BYTES } from '../segment-header.js';
import { SparseIndex } from '../sparse-index.js';
import type { Store } from '../store.js';
import { fullTurn } from './loop.js';
import { traced } from './trace.js';

/**
 * Time the rewrite may hold the event loop before it yields, in ms (DESIGN.md
 * §1.4: a few ms at most). Measured (bench:compaction, 300 MB): 1 ms halves
 * foreground get/set p50 during compaction against 3 ms, for ~10% more CPU
 * and no visible change in wall time.
 */
const STEP_MS = 1;
/** Records processed between two looks at the clock. */
const RECORDS_PER_CLOCK_CHECK = 16;
/** Input bytes read per read call (one buffer, reused across steps and segments); ~0.2 ms of a step. */
const READ_BYTES = 1024 * 1024;
/**
 * Output bytes buffered before a write. A 1 MiB write took ~2.3 ms (page
 * cache allocation and copy) and pushed steps to 3+ ms; 256 KiB keeps a step
 * near STEP_MS.
 */
const OUT_BUFFER_BYTES = 256 * 1024;
/** Bytes per write of an output's hint and index files at the end, with a yield between writes. */
const FILE_WRITE_BYTES = 256 * 1024;
/** Output bytes written to a file since its last fsync that start a background fsync of it. */
const SYNC_EVERY_BYTES = 8 * 1024 * 1024;

/**
 * Sequential reader of one input segment at a time: `ensure` makes a byte
 * range available in `buf`, reading ahead READ_BYTES at a time. Bytes
 * before the range asked for may be overwritten: callers use a record's
 * bytes before asking for the next one.
 */
class InputReader {
  buf: Buffer = Buffer.allocUnsafe(READ_BYTES);
  /** File position of buf[0]. */
  private start = 0;
  /** File position of the end of the valid bytes in buf. */
  private end = 0;
  private fd = -1;
  private to = 0;

  constructor(private readonly fs: Fs) {}

  /** Starts reading `fd` at `from`, never past `to`. */
  open(fd: number, from: number, to: number): void {
    this.fd = fd;
    this.start = from;
    this.end = from;
    this.to = to;
  }

  /** Index in `buf` of file position `pos`, with `need` bytes after it; -1 if the file ends first. */
  ensure(pos: number, need: number): number {
    if (pos >= this.start && pos + need <= this.end) return pos - this.start;
    const keep = Math.max(0, this.end - pos);
    if (need > this.buf.length) {
      const bigger = Buffer.allocUnsafe(need);
      if (keep > 0) this.buf.copy(bigger, 0, pos - this.start, this.end - this.start);
      this.buf = bigger;
    } else if (keep > 0) {
      this.buf.copyWithin(0, pos - this.start, this.end - this.start);
    }
    this.start = pos;
    this.end = pos + keep;
    const want = Math.min(this.buf.length - keep, this.to - this.end);
    let got = 0;
    const t = performance.now();
    while (got < want) {
      const n = this.fs.read(this.fd, this.buf, keep + got, want - got, this.end + got);
      if (n === 0) break;
      got += n;
    }
    traced('rewrite.read', t);
    this.end += got;
    return this.end - pos >= need ? 0 : -1;
  }

  /** Index in `buf` just past the valid bytes. */
  get bufferedEnd(): number {
    return this.end - this.start;
  }
}

export interface Output {
  baseOffset: number;
  name: string;
  fd: number;
  size: number;
  records: number;
  lastOffset: number;
  index: SparseIndex;
  /** The output's hint, built entry by entry as records are kept (bytes, no object per entry). */
  hint: HintWriter;
}

/** Moves per page: each page is six typed arrays of this many entries (384 KiB in all). */
const MOVES_PAGE_SHIFT = 14;
const MOVES_PAGE = 1 << MOVES_PAGE_SHIFT;
const MOVES_MASK = MOVES_PAGE - 1;

/**
 * Kept live values: where each was and where it now is, one entry per kept
 * record, in pages of typed arrays. No JS string or object per entry: with
 * ~1M kept keys, arrays of numbers and key strings made the scavenger copy
 * them again and again and then major GCs trace them (10–40 ms pauses
 * during the rewrite, measured with the benchmark's stall trace); typed
 * arrays live off the JS heap and pages never need copying to grow.
 */
export class Moves {
  count = 0;
  private readonly slotPages: Int32Array[] = [];
  private readonly fromSegmentPages: Uint32Array[] = [];
  private readonly fromPositionPages: Uint32Array[] = [];
  private readonly toOutputPages: Uint32Array[] = [];
  private readonly toPositionPages: Uint32Array[] = [];
  private readonly sizePages: Uint32Array[] = [];

  /** Adds a kept record: the key's keydir slot when read, where it was, where it goes, and its size in bytes. */
  add(
    slot: number,
    fromSegment: number,
    fromPosition: number,
    toOutput: number,
    toPosition: number,
    size: number,
  ): void {
    const i = this.count & MOVES_MASK;
    if (i === 0) {
      this.slotPages.push(new Int32Array(MOVES_PAGE));
      this.fromSegmentPages.push(new Uint32Array(MOVES_PAGE));
      this.fromPositionPages.push(new Uint32Array(MOVES_PAGE));
      this.toOutputPages.push(new Uint32Array(MOVES_PAGE));
      this.toPositionPages.push(new Uint32Array(MOVES_PAGE));
      this.sizePages.push(new Uint32Array(MOVES_PAGE));
    }
    const p = this.count >>> MOVES_PAGE_SHIFT;
    this.slotPages[p]![i] = slot;
    this.fromSegmentPages[p]![i] = fromSegment;
    this.fromPositionPages[p]![i] = fromPosition;
    this.toOutputPages[p]![i] = toOutput;
    this.toPositionPages[p]![i] = toPosition;
    this.sizePages[p]![i] = size;
    this.count++;
  }

  /** The key's keydir slot when the record was read: the swap checks and moves it without hashing the key again. */
  slot(i: number): number {
    return this.slotPages[i >>> MOVES_PAGE_SHIFT]![i & MOVES_MASK]!;
  }

  fromSegment(i: number): number {
    return this.fromSegmentPages[i >>> MOVES_PAGE_SHIFT]![i & MOVES_MASK]!;
  }

  fromPosition(i: number): number {
    return this.fromPositionPages[i >>> MOVES_PAGE_SHIFT]![i & MOVES_MASK]!;
  }

  /** Index of the output in RewriteResult.outputs. */
  toOutput(i: number): number {
    return this.toOutputPages[i >>> MOVES_PAGE_SHIFT]![i & MOVES_MASK]!;
  }

  toPosition(i: number): number {
    return this.toPositionPages[i >>> MOVES_PAGE_SHIFT]![i & MOVES_MASK]!;
  }

  /** The record's size in bytes (header + key + value). */
  size(i: number): number {
    return this.sizePages[i >>> MOVES_PAGE_SHIFT]![i & MOVES_MASK]!;
  }
}

export interface RewriteResult {
  outputs: Output[];
  moves: Moves;
  /** Keys whose tombstone or expired record was dropped because the keydir had a newer record; re-checked at commit. */
  shadowedBy: string[];
  /** `store.rollbacks` when the rewrite started: if it moved, the keydir went backwards meanwhile. */
  rollbacksAtStart: number;
  bytesRead: number;
}

export interface RewriteProgress {
  segmentsDone: number;
  segmentsTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

class OutputWriter {
  readonly outputs: Output[] = [];
  private cur: Output | undefined;
  /** Where the last `reserve` put its record: encode it into `buf` at the index `reserve` returned. */
  buf = Buffer.allocUnsafe(OUT_BUFFER_BYTES);
  /** The last reserved record's output (index in `outputs`) and position in it. */
  lastOut = -1;
  lastPosition = 0;
  private used = 0;
  private bufStart = 0;
  /** Bytes written to the current output since its last fsync was started. */
  private unsynced = 0;
  /** Background fsyncs in flight; their first failure fails `finish`. */
  private readonly syncs = new Set<Promise<void>>();
  private syncError: unknown;

  constructor(
    private readonly fs: Fs,
    private readonly dir: string,
    private readonly maxSegmentBytes: number,
    private readonly indexIntervalBytes: number,
  ) {}

  /**
   * Reserves room for a record of `size` bytes with `offset`; returns where
   * in `buf` to encode it (lastOut and lastPosition say where it will be).
   */
  reserve(size: number, offset: number): number {
    let cur = this.cur;
    if (!cur || (cur.size + size > this.maxSegmentBytes && cur.records > 0)) cur = this.open(offset);
    if (this.used + size > this.buf.length) {
      this.writeBuffer();
      if (size > this.buf.length) this.buf = Buffer.allocUnsafe(size);
    }
    const at = this.used;
    const position = cur.size;
    this.used += size;
    cur.size += size;
    cur.records++;
    cur.lastOffset = offset;
    cur.index.observe(offset, position);
    this.lastOut = this.outputs.length - 1;
    this.lastPosition = position;
    return at;
  }

  /** Adds the last reserved record to its output's hint. */
  hint(key: string, offset: number, valueLength: number, expiresAt: number, flags: number): void {
    this.outputs[this.lastOut]!.hint.add(key, offset, this.lastPosition, valueLength, expiresAt, flags);
  }

  private open(baseOffset: number): Output {
    this.writeBuffer();
    this.unsynced = 0;
    const name = segmentFile(baseOffset);
    const fd = this.fs.open(join(this.dir, compactingFile(name)), 'wx+');
    const out: Output = {
      baseOffset,
      name,
      fd,
      size: SEGMENT_HEADER_BYTES,
      records: 0,
      lastOffset: -1,
      index: new SparseIndex(baseOffset, this.indexIntervalBytes),
      hint: new HintWriter(),
    };
    // Listed before the first write, so abort() deletes it if that write fails (ENOSPC).
    this.outputs.push(out);
    const header = encodeSegmentHeader(baseOffset);
    this.fs.write(fd, header, 0, header.length, 0);
    this.cur = out;
    this.bufStart = SEGMENT_HEADER_BYTES;
    return out;
  }

  writeBuffer(): void {
    const cur = this.cur;
    if (cur && this.used > 0) {
      const t = performance.now();
      this.fs.write(cur.fd, this.buf, 0, this.used, this.bufStart);
      traced('rewrite.write', t);
      this.unsynced += this.used;
      if (this.unsynced >= SYNC_EVERY_BYTES) this.syncInBackground(cur.fd);
    }
    if (cur) this.bufStart = cur.size;
    this.used = 0;
  }

  /** Starts an fsync of `fd` without waiting for it (at most one in flight per file). */
  private syncInBackground(fd: number): void {
    this.unsynced = 0;
    for (const s of this.syncs) if ((s as Promise<void> & { fd?: number }).fd === fd) return;
    const p: Promise<void> & { fd?: number } = this.fs.fsync(fd).then(
      () => {
        this.syncs.delete(p);
      },
      (err: unknown) => {
        this.syncs.delete(p);
        this.syncError ??= err;
      },
    );
    p.fd = fd;
    this.syncs.add(p);
  }

  /** Writes the rest, the hints and indexes, and fsyncs everything. */
  async finish(): Promise<void> {
    let t = performance.now();
    this.writeBuffer();
    traced('finish.last-write', t);
    while (this.syncs.size > 0) await Promise.all([...this.syncs]);
    if (this.syncError) throw this.syncError;
    for (const o of this.outputs) {
      await this.fs.fsync(o.fd);
      t = performance.now();
      const hint = o.hint.finish(o.baseOffset);
      traced('hint.encode', t);
      await this.writeFile(hintFile(o.baseOffset), hint);
      t = performance.now();
      const index = o.index.encode();
      traced('index.encode', t);
      await this.writeFile(indexFile(o.baseOffset), index);
    }
  }

  /**
   * Writes and fsyncs a hint or index file of an output, FILE_WRITE_BYTES at
   * a time with the event loop running in between (one write of a 2.5 MB
   * hint held it up to 18 ms while the disk was busy with the outputs).
   */
  private async writeFile(name: string, data: Buffer): Promise<void> {
    const fd = this.fs.open(join(this.dir, compactingFile(name)), 'wx');
    try {
      for (let at = 0; at < data.length; at += FILE_WRITE_BYTES) {
        await fullTurn();
        const t = performance.now();
        this.fs.write(fd, data, at, Math.min(FILE_WRITE_BYTES, data.length - at), at);
        traced('finish.file-write', t);
      }
      await this.fs.fsync(fd);
    } finally {
      this.fs.close(fd);
    }
  }

  /** Closes and deletes every output file: the store stays exactly as it was. */
  abort(): void {
    for (const o of this.outputs) {
      try {
        this.fs.close(o.fd);
      } catch {
        // already closed
      }
      for (const name of [o.name, hintFile(o.baseOffset), indexFile(o.baseOffset)]) {
        const path = join(this.dir, compactingFile(name));
        try {
          if (this.fs.exists(path)) this.fs.unlink(path);
        } catch {
          // Swept at the next open.
        }
      }
    }
  }
}

export async function rewrite(
  store: Store,
  inputs: readonly Segment[],
  prefix: boolean,
  onProgress: (p: RewriteProgress) => void,
  isCancelled: () => boolean,
): Promise<RewriteResult & { writer: { abort(): void } }> {
  const { fs, maxSegmentBytes, indexIntervalBytes, clock } = store.options;
  const writer = new OutputWriter(fs, store.dir, maxSegmentBytes, indexIntervalBytes);
  const moves = new Moves();
  const shadowedBy: string[] = [];
  const rollbacksAtStart = store.rollbacks;
  const keptTombstones = new Set<string>();
  const kd = store.keydir;
  const bytesTotal = inputs.reduce((n, s) => n + s.size, 0);
  let bytesDone = 0;
  /** A record that is not live: only a deletion (tombstone, or an expiry) may still be needed. */
  const keepDeletion = (key: string, offset: number, tombstone: boolean, expired: boolean, slot: number) => {
    if (prefix || (!tombstone && !expired)) return;
    if (slot >= 0) {
      shadowedBy.push(key);
      return;
    }
    if (keptTombstones.has(key)) return;
    keptTombstones.add(key);
    const at = writer.reserve(RECORD_HEADER_BYTES + key.length, offset);
    encodeRecord(writer.buf, at, offset, 0, FLAG_TOMBSTONE, key, undefined);
    writer.hint(key, offset, 0, 0, FLAG_TOMBSTONE);
  };
  const reader = new InputReader(fs);
  const h: RecordHeader = { offset: 0, expiresAt: 0, flags: 0, keyLength: 0, valueLength: 0 };
  try {
    for (let si = 0; si < inputs.length; si++) {
      const seg = inputs[si]!;
      let pos = SEGMENT_HEADER_BYTES;
      bytesDone += SEGMENT_HEADER_BYTES;
      reader.open(seg.fd, pos, seg.size);
      while (pos < seg.size) {
        const now = clock.now();
        const stepFrom = pos;
        const stepUntil = performance.now() + STEP_MS;
        let records = 0;
        while (pos < seg.size) {
          let at = reader.ensure(pos, RECORD_HEADER_BYTES);
          if (at < 0) throw new CorruptionError(seg.name, pos, 'truncated record header');
          if (!decodeHeaderInto(reader.buf, at, reader.bufferedEnd, MAX_KEY_BYTES, h))
            throw new CorruptionError(seg.name, pos, 'invalid record header');
          const size = RECORD_HEADER_BYTES + h.keyLength + h.valueLength;
          if (pos + size > seg.size)
            throw new CorruptionError(seg.name, pos, 'record runs past the end of the segment');
          at = reader.ensure(pos, size);
          if (at < 0) throw new CorruptionError(seg.name, pos, 'truncated record');
          const buf = reader.buf;
          if (!checkRecord(buf, at, size)) throw new CorruptionError(seg.name, pos, 'record fails its CRC');
          const key = recordKey(buf, at, h.keyLength);
          const position = pos;
          pos += size;
          const tombstone = (h.flags & FLAG_TOMBSTONE) !== 0;
          const expired = h.expiresAt !== 0 && h.expiresAt <= now;
          let slot = kd.slot(key);
          if (!tombstone && slot >= 0 && kd.segmentOf(slot) === seg.id && kd.positionOf(slot) === position) {
            if (!expired) {
              const to = writer.reserve(size, h.offset);
              if ((h.flags & (FLAG_BATCH | FLAG_BATCH_END)) === 0) buf.copy(writer.buf, to, at, at + size);
              else {
                const valueAt = at + RECORD_HEADER_BYTES + h.keyLength;
                encodeRecord(
                  writer.buf,
                  to,
                  h.offset,
                  h.expiresAt,
                  0,
                  key,
                  buf.subarray(valueAt, valueAt + h.valueLength),
                );
              }
              writer.hint(key, h.offset, h.valueLength, h.expiresAt, 0);
              moves.add(slot, seg.id, position, writer.lastOut, writer.lastPosition, size);
            } else {
              store.expireKey(key);
              slot = -1;
              keepDeletion(key, h.offset, tombstone, expired, slot);
            }
          } else {
            keepDeletion(key, h.offset, tombstone, expired, slot);
          }
          if (++records % RECORDS_PER_CLOCK_CHECK === 0 && performance.now() >= stepUntil) break;
        }
        traced('rewrite.step', stepUntil - STEP_MS);
        bytesDone += pos - stepFrom;
        onProgress({ segmentsDone: si, segmentsTotal: inputs.length, bytesDone, bytesTotal });
        // A full turn, not one setImmediate: the foreground's immediates (the
        // write path's flush and acks) queued meanwhile run before the next step.
        await fullTurn();
        if (isCancelled()) throw new Error('compaction cancelled: the store is closing');
      }
    }
    onProgress({ segmentsDone: inputs.length, segmentsTotal: inputs.length, bytesDone, bytesTotal });
    await writer.finish();
  } catch (err) {
    writer.abort();
    throw err;
  }
  return { outputs: writer.outputs, moves, shadowedBy, rollbacksAtStart, bytesRead: bytesTotal, writer };
}
