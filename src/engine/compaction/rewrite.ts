/**
 * The rewrite: merges a contiguous run of sealed segments into new
 * size-bounded segments holding only what must survive, in offset order, with
 * their offsets kept (Kafka's cleaner). Outputs are written under
 * `.compacting` names with their hint and index, and fsynced; nothing visible
 * changes until swap.ts commits them.
 *
 * One code path, two hosts: `rewriteSegments` never touches the Store or the
 * keydir, only its job (the inputs' descriptors and the liveness snapshot,
 * snapshot.ts) and an `Fs`. With the real file system it runs in its own
 * process (rewrite-process.ts), so reading, CRC-checking and writing never hold
 * the event loop; with any other `Fs` (MemFs, the crash tests' counting
 * wrappers, which another process cannot share) it runs on the event loop in steps
 * of STEP_MS with a full loop turn between them (rewrite-host.ts).
 *
 * What survives a record (`now` is the snapshot's time):
 * - a value that was live at the snapshot (the keydir pointed at exactly that
 *   segment and position), unless expired;
 * - only when the run does not start at the oldest segment (then an older
 *   segment outside the run may still hold a value it must keep shadowing):
 *   the deletion that is the LAST record of its key in the run, if it is one
 *   — a tombstone, or a value expired at `now`, rewritten as a tombstone.
 *   Found before the rewrite from the inputs' hints (each holds the last
 *   record of every key in its segment: `lastDeletions`). The last, not the
 *   first: a replica that resumes its feed from an offset inside the run
 *   (horizon.ts allows any offset above the tombstone horizon, and only
 *   prefix runs raise it) must still get the deletion that ends its key's
 *   history; with the first one kept, a SET between the two deletions stayed
 *   on the replica (found by `npm run torture:replication`). At most one
 *   deletion per key, so tombstones cannot pile up between prefix runs. If a
 *   hint cannot be read, every deletion in the run is kept. A run that
 *   starts at the oldest segment drops them all (nutsdb #77: tombstones kept
 *   forever).
 * Batch flags are cleared: a kept record stands alone.
 *
 * Inputs are read sequentially in large chunks into one reused buffer;
 * outputs are fsynced in the background every SYNC_EVERY_BYTES while the
 * rewrite goes on (as Redis's AOF rewrite does every 4 MB), so the disk
 * writes back while we compute and the final fsync has little left to do;
 * the rewrite waits for an fsync before running more than SYNC_EVERY_BYTES
 * ahead of it (OutputWriter.throttle).
 * Live values whose records turn out expired are reported (`expired`): the
 * event loop drops them from the keydir before the swap, if still there.
 * Decisions made on the snapshot are re-checked at commit (swap.ts): a write
 * that lands meanwhile always wins.
 */
import { join } from 'node:path';
import { CorruptionError } from '../../errors.js';
import { compactingFile, hintFile, indexFile, parseName, segmentFile } from '../filenames.js';
import type { Fs } from '../fs.js';
import { decodeHint, HintWriter } from '../hint.js';
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
import { encodeSegmentHeader, SEGMENT_HEADER_BYTES } from '../segment-header.js';
import { SparseIndex } from '../sparse-index.js';
import { Moves } from './moves.js';
import { traced } from './trace.js';

/**
 * Time the rewrite may hold the event loop before it yields, in ms (DESIGN.md
 * §1.4: a few ms at most), when it runs there. Measured (bench:compaction,
 * 300 MB): 1 ms halves foreground get/set p50 during compaction against 3 ms,
 * for ~10% more CPU and no visible change in wall time. In the worker a step
 * only paces progress reports and looks for cancellation.
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
 * Creates an output file. One of that name already there can only be stale:
 * one rewrite runs at a time, and the store's open swept every `.compacting`
 * file; but the rewrite process of a server that died can finish its
 * current step after the new server's sweep (rewrite-process.ts), and its
 * file would otherwise fail every later compaction until a restart. It is
 * replaced (the orphan's writes, if any, go to the unlinked file).
 */
function createOutput(fs: Fs, path: string, flags: 'wx' | 'wx+'): number {
  try {
    return fs.open(path, flags);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    fs.unlink(path);
    return fs.open(path, flags);
  }
}

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

/** An output segment as the swap needs it. */
export interface OutputSegment {
  baseOffset: number;
  name: string;
  /** Open read-write; the swap closes it (or abortOutputs does). */
  fd: number;
  size: number;
  records: number;
  lastOffset: number;
  index: SparseIndex;
}

interface Output extends OutputSegment {
  /** The output's hint, built entry by entry as records are kept (bytes, no object per entry). */
  hint: HintWriter;
}

/** One input segment of a rewrite. */
export interface RewriteInput {
  /** Segment id (the keydir's segment number). */
  id: number;
  name: string;
  /** Open for reading and not closed before the rewrite ends (the compactor retains it); usable from a worker. */
  fd: number;
  size: number;
}

/** Everything a rewrite needs: it never reads the keydir. */
export interface RewriteJob {
  dir: string;
  maxSegmentBytes: number;
  indexIntervalBytes: number;
  /** The run starts at the oldest segment: drop every deletion. */
  prefix: boolean;
  /** Time of the liveness snapshot, ms since the epoch: records expiring at or before it are dropped. */
  now: number;
  /** compaction.cpuShare: the worker's CPU budget between steps (pacer.ts); the in-thread rewrite ignores it. */
  cpuShare: number;
  inputs: RewriteInput[];
  /**
   * Per input, the records live at the snapshot: [slot, position] pairs of
   * u32 in any order, in pages (snapshot.ts). Joined and sorted by the rewrite.
   */
  live: Uint32Array[][];
}

/** Live values the rewrite found expired: the event loop drops each key if it still points there. */
export interface ExpiredLive {
  slots: number[];
  segments: number[];
  positions: number[];
  keys: string[];
}

export interface RewriteOutcome {
  outputs: OutputSegment[];
  moves: Moves;
  expired: ExpiredLive;
  bytesRead: number;
}

/** Where the rewrite runs: the event loop (in steps) or the worker. */
export interface RewriteHost {
  /** Called between steps: a full event-loop turn in-thread; lets the worker's fsync callbacks run. */
  pause(): Promise<void>;
  isCancelled(): boolean;
  onProgress(p: RewriteProgress): void;
  /** After each step, the moves so far (the rewrite process sends them on as they are made). */
  onMoves?(moves: Moves): void;
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
    private readonly pause: () => Promise<void>,
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
  /** Returns the hint entry's number in its output's hint. */
  hint(key: string, offset: number, valueLength: number, expiresAt: number, flags: number): number {
    return this.outputs[this.lastOut]!.hint.add(
      key,
      offset,
      this.lastPosition,
      valueLength,
      expiresAt,
      flags,
    );
  }

  /** Retracts a hint entry of output `out` (a later record of its key is in the same output). */
  dropHint(out: number, entry: number): void {
    this.outputs[out]!.hint.drop(entry);
  }

  private open(baseOffset: number): Output {
    this.writeBuffer();
    this.unsynced = 0;
    const name = segmentFile(baseOffset);
    const fd = createOutput(this.fs, join(this.dir, compactingFile(name)), 'wx+');
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
      if (this.unsynced >= SYNC_EVERY_BYTES && this.syncs.size === 0) this.syncInBackground(cur.fd);
    }
    if (cur) this.bufStart = cur.size;
    this.used = 0;
  }

  /**
   * Between steps: while SYNC_EVERY_BYTES more have been written behind a
   * background fsync that is still running, waits for it, then starts the
   * next. The disk sets the pace and the outputs' dirty pages stay within
   * about twice SYNC_EVERY_BYTES: a worker writing as fast as it can piled up
   * dirty pages until the kernel throttled every writer of the device, the
   * event loop's own segment writes included (foreground p50 went from ~4 to
   * ~110 ms during compaction on the loaded test machine).
   */
  async throttle(): Promise<void> {
    while (this.syncs.size > 0 && this.unsynced >= SYNC_EVERY_BYTES) await Promise.race([...this.syncs]);
    if (this.cur && this.syncs.size === 0 && this.unsynced >= SYNC_EVERY_BYTES)
      this.syncInBackground(this.cur.fd);
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
   * a time with a pause in between (in-thread, one write of a 2.5 MB hint
   * held the event loop up to 18 ms while the disk was busy with the outputs).
   */
  private async writeFile(name: string, data: Buffer): Promise<void> {
    const fd = createOutput(this.fs, join(this.dir, compactingFile(name)), 'wx');
    try {
      for (let at = 0; at < data.length; at += FILE_WRITE_BYTES) {
        await this.pause();
        const t = performance.now();
        this.fs.write(fd, data, at, Math.min(FILE_WRITE_BYTES, data.length - at), at);
        traced('finish.file-write', t);
      }
      await this.fs.fsync(fd);
    } finally {
      this.fs.close(fd);
    }
  }
}

/** Closes and deletes every output file of a rewrite: the store stays exactly as it was. */
export function abortOutputs(fs: Fs, dir: string, outputs: readonly OutputSegment[]): void {
  for (const o of outputs) {
    try {
      fs.close(o.fd);
    } catch {
      // already closed
    }
    for (const name of [o.name, hintFile(o.baseOffset), indexFile(o.baseOffset)]) {
      const path = join(dir, compactingFile(name));
      try {
        if (fs.exists(path)) fs.unlink(path);
      } catch {
        // Swept at the next open.
      }
    }
  }
}

/**
 * The pages of [slot, position] pairs joined and sorted by position: as
 * little-endian u64s with the position in the high word, a native numeric sort.
 */
function sortByPosition(pages: readonly Uint32Array[]): Uint32Array {
  const pairs = new Uint32Array(pages.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of pages) {
    pairs.set(p, at);
    at += p.length;
  }
  new BigUint64Array(pairs.buffer, 0, pairs.length >>> 1).sort();
  return pairs;
}

/**
 * Per key whose last record in the run is a deletion (a tombstone, or a value
 * expired at `now`), that record's offset, from the inputs' hints read in
 * order; undefined if a hint is missing or fails its checks.
 */
export function lastDeletions(
  fs: Fs,
  dir: string,
  inputs: readonly RewriteInput[],
  now: number,
): Map<string, number> | undefined {
  const last = new Map<string, number>();
  for (const seg of inputs) {
    const parsed = parseName(seg.name);
    if (parsed === undefined) return undefined;
    let buf: Buffer;
    try {
      buf = fs.readFile(join(dir, hintFile(parsed.baseOffset)));
    } catch {
      return undefined;
    }
    const damage = decodeHint(buf, parsed.baseOffset, (key, offset, _position, _length, expiresAt, flags) => {
      if ((flags & FLAG_TOMBSTONE) !== 0 || (expiresAt !== 0 && expiresAt <= now)) last.set(key, offset);
      else last.delete(key);
    });
    if (damage !== undefined) return undefined;
  }
  return last;
}

/**
 * The record-by-record scan of a rewrite's inputs, one step at a time (`step`).
 *
 * Its own class, with every callee a method of an object of a fixed class,
 * so that V8 optimises this small loop alone, once per process. Why (issue
 * 15, the rewrite process's CPU): with the loop inside the async
 * `rewriteSegments`, V8 optimised that whole function by on-stack
 * replacement, compiling it 2-4 times per rewrite (TurboFan, on the child's
 * only thread under --single-threaded: 40-100 ms each), and deoptimised it
 * again in each later rewrite of the process (a new job's map, the new
 * host's closures). Measured with --trace-opt and the child's thread CPU on
 * bench:compaction --quick's data sets: a first rewrite took ~140 ms (10%
 * live) and ~250 ms (90% live) of which a warm one needs ~20 and ~55.
 */
export class InputScan {
  /** The input scanned, its live pairs sorted by position, the next pair's index in them, and the next record's position. */
  private seg: RewriteInput = { id: 0, name: '', fd: -1, size: 0 };
  private live: Uint32Array = new Uint32Array(0);
  private li = 0;
  pos = 0;
  private readonly h: RecordHeader = { offset: 0, expiresAt: 0, flags: 0, keyLength: 0, valueLength: 0 };
  /** Deletions kept, by key: the output and hint entry, so a later live value of the key in the same output retracts it from the hint. */
  private readonly keptDeletions = new Map<string, { out: number; entry: number }>();

  constructor(
    private readonly reader: InputReader,
    private readonly writer: OutputWriter,
    readonly moves: Moves,
    readonly expired: ExpiredLive,
    private readonly prefix: boolean,
    private readonly now: number,
    /** Per key, the offset of the one deletion to keep (non-prefix runs); undefined: keep every deletion. */
    private readonly keep: Map<string, number> | undefined,
  ) {}

  /** Starts on input `seg`, whose live pairs are `live` (sorted by position). */
  open(seg: RewriteInput, live: Uint32Array): void {
    this.seg = seg;
    this.live = live;
    this.li = 0;
    this.pos = SEGMENT_HEADER_BYTES;
    this.reader.open(seg.fd, SEGMENT_HEADER_BYTES, seg.size);
  }

  get done(): boolean {
    return this.pos >= this.seg.size;
  }

  /** Scans records until the input ends or performance.now() reaches `until`. */
  step(until: number): void {
    const { reader, seg, live, h, now, prefix } = this;
    let pos = this.pos;
    let li = this.li;
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
      const position = pos;
      pos += size;
      const tombstone = (h.flags & FLAG_TOMBSTONE) !== 0;
      const isExpired = h.expiresAt !== 0 && h.expiresAt <= now;
      while (li < live.length && live[li + 1]! < position) li += 2;
      const isLive = !tombstone && li < live.length && live[li + 1] === position;
      if (isLive && !isExpired) this.keepLive(buf, at, size, live[li]!, position);
      else if (isLive || ((tombstone || isExpired) && !prefix)) {
        const key = recordKey(buf, at, h.keyLength);
        if (isLive) {
          this.expired.slots.push(live[li]!);
          this.expired.segments.push(seg.id);
          this.expired.positions.push(position);
          this.expired.keys.push(key);
        }
        if (!prefix) this.keepDeletion(key, h.offset);
      }
      if (++records % RECORDS_PER_CLOCK_CHECK === 0 && performance.now() >= until) break;
    }
    this.pos = pos;
    this.li = li;
  }

  /** Copies the live record of `size` bytes at buf[at] (the header in `h`) to the outputs, with its hint entry and move. */
  private keepLive(buf: Buffer, at: number, size: number, slot: number, position: number): void {
    const { h, writer } = this;
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
        recordKey(buf, at, h.keyLength),
        buf.subarray(valueAt, valueAt + h.valueLength),
      );
    }
    if (this.keptDeletions.size === 0)
      writer.hint(recordKey(buf, at, h.keyLength), h.offset, h.valueLength, h.expiresAt, 0);
    else {
      const key = recordKey(buf, at, h.keyLength);
      const d = this.keptDeletions.get(key);
      if (d !== undefined && d.out === writer.lastOut) writer.dropHint(d.out, d.entry);
      writer.hint(key, h.offset, h.valueLength, h.expiresAt, 0);
    }
    this.moves.add(slot, this.seg.id, position, writer.lastOut, writer.lastPosition, size);
  }

  /** Keeps a deletion of `key` (non-prefix runs) as a tombstone, if it is the one `keep` names. */
  private keepDeletion(key: string, offset: number): void {
    const { keep, writer, keptDeletions } = this;
    if (keep !== undefined && keep.get(key) !== offset) return;
    const at = writer.reserve(RECORD_HEADER_BYTES + key.length, offset);
    encodeRecord(writer.buf, at, offset, 0, FLAG_TOMBSTONE, key, undefined);
    // Without hints every deletion is kept: the output's hint keeps only a key's last one.
    const earlier = keptDeletions.get(key);
    if (earlier !== undefined && earlier.out === writer.lastOut) writer.dropHint(earlier.out, earlier.entry);
    keptDeletions.set(key, { out: writer.lastOut, entry: writer.hint(key, offset, 0, 0, FLAG_TOMBSTONE) });
  }
}

export async function rewriteSegments(fs: Fs, job: RewriteJob, host: RewriteHost): Promise<RewriteOutcome> {
  const { inputs, prefix, now } = job;
  const writer = new OutputWriter(fs, job.dir, job.maxSegmentBytes, job.indexIntervalBytes, host.pause);
  const expired: ExpiredLive = { slots: [], segments: [], positions: [], keys: [] };
  const bytesTotal = inputs.reduce((n, s) => n + s.size, 0);
  let bytesDone = 0;
  const keep = prefix ? undefined : lastDeletions(fs, job.dir, inputs, now);
  const scan = new InputScan(new InputReader(fs), writer, new Moves(), expired, prefix, now, keep);
  try {
    for (let si = 0; si < inputs.length; si++) {
      scan.open(inputs[si]!, sortByPosition(job.live[si] ?? []));
      bytesDone += SEGMENT_HEADER_BYTES;
      while (!scan.done) {
        const stepFrom = scan.pos;
        const t = performance.now();
        scan.step(t + STEP_MS);
        traced('rewrite.step', t);
        bytesDone += scan.pos - stepFrom;
        host.onProgress({ segmentsDone: si, segmentsTotal: inputs.length, bytesDone, bytesTotal });
        host.onMoves?.(scan.moves);
        await host.pause();
        await writer.throttle();
        if (host.isCancelled()) throw new Error('compaction cancelled: the store is closing');
      }
    }
    host.onProgress({ segmentsDone: inputs.length, segmentsTotal: inputs.length, bytesDone, bytesTotal });
    await writer.finish();
  } catch (err) {
    abortOutputs(fs, job.dir, writer.outputs);
    throw err;
  }
  const outputs: OutputSegment[] = writer.outputs.map(({ hint: _, ...o }) => o);
  return { outputs, moves: scan.moves, expired, bytesRead: bytesTotal };
}
