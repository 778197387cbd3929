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
 * Runs on the event loop in small steps (STEP_BYTES of input, then a yield),
 * so foreground reads and writes keep flowing (DESIGN.md §1.4). Decisions
 * made against the keydir here are re-checked at commit (swap.ts): a write
 * that lands meanwhile always wins.
 */
import { join } from 'node:path';
import { CorruptionError } from '../../errors.js';
import { compactingFile, hintFile, indexFile, segmentFile } from '../filenames.js';
import type { Fs } from '../fs.js';
import { encodeHint, type HintEntry } from '../hint.js';
import { encodeRecord, FLAG_BATCH, FLAG_BATCH_END, FLAG_TOMBSTONE, RECORD_HEADER_BYTES } from '../record.js';
import { type Segment, scanRecords } from '../segment.js';
import { encodeSegmentHeader, SEGMENT_HEADER_BYTES } from '../segment-header.js';
import { SparseIndex } from '../sparse-index.js';
import type { Store } from '../store.js';

/** Input bytes processed between two yields to the event loop. */
const STEP_BYTES = 256 * 1024;
/** Output bytes buffered before a write. */
const OUT_BUFFER_BYTES = 1024 * 1024;

export interface Output {
  baseOffset: number;
  name: string;
  fd: number;
  size: number;
  records: number;
  lastOffset: number;
  index: SparseIndex;
  hint: HintEntry[];
}

/** Kept live values: where each was and where it now is. Flat arrays, one entry per record. */
export interface Moves {
  keys: string[];
  fromSegment: number[];
  fromPosition: number[];
  toOutput: number[];
  toPosition: number[];
  valueLength: number[];
}

export interface RewriteResult {
  outputs: Output[];
  moves: Moves;
  /** Keys whose tombstone or expired record was dropped because the keydir had a newer record; re-checked at commit. */
  shadowedBy: string[];
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
  private buf = Buffer.allocUnsafe(OUT_BUFFER_BYTES);
  private used = 0;
  private bufStart = 0;

  constructor(
    private readonly fs: Fs,
    private readonly dir: string,
    private readonly maxSegmentBytes: number,
    private readonly indexIntervalBytes: number,
  ) {}

  /** Reserves room for a record of `size` bytes with `offset`; returns [output index, position, buffer, at]. */
  reserve(size: number, offset: number): { out: number; position: number; buf: Buffer; at: number } {
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
    return { out: this.outputs.length - 1, position, buf: this.buf, at };
  }

  private open(baseOffset: number): Output {
    this.writeBuffer();
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
      hint: [],
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
    if (this.cur && this.used > 0) this.fs.write(this.cur.fd, this.buf, 0, this.used, this.bufStart);
    if (this.cur) this.bufStart = this.cur.size;
    this.used = 0;
  }

  /** Writes the rest, the hints and indexes, and fsyncs everything. */
  async finish(): Promise<void> {
    this.writeBuffer();
    for (const o of this.outputs) {
      await this.fs.fsync(o.fd);
      for (const [name, data] of [
        [hintFile(o.baseOffset), encodeHint(o.baseOffset, o.hint)],
        [indexFile(o.baseOffset), o.index.encode()],
      ] as const) {
        const fd = this.fs.open(join(this.dir, compactingFile(name)), 'wx');
        try {
          this.fs.write(fd, data, 0, data.length, 0);
          await this.fs.fsync(fd);
        } finally {
          this.fs.close(fd);
        }
      }
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
  const moves: Moves = {
    keys: [],
    fromSegment: [],
    fromPosition: [],
    toOutput: [],
    toPosition: [],
    valueLength: [],
  };
  const shadowedBy: string[] = [];
  const keptTombstones = new Set<string>();
  const kd = store.keydir;
  const bytesTotal = inputs.reduce((n, s) => n + s.size, 0);
  let bytesDone = 0;
  try {
    for (let si = 0; si < inputs.length; si++) {
      const seg = inputs[si]!;
      let pos = SEGMENT_HEADER_BYTES;
      bytesDone += SEGMENT_HEADER_BYTES;
      while (pos < seg.size) {
        const now = clock.now();
        const r = scanRecords(
          fs,
          seg.fd,
          pos,
          seg.size,
          (rec) => {
            const h = rec.header;
            const key = rec.key;
            const tombstone = (h.flags & FLAG_TOMBSTONE) !== 0;
            const expired = h.expiresAt !== 0 && h.expiresAt <= now;
            let slot = kd.slot(key);
            if (
              !tombstone &&
              slot >= 0 &&
              kd.segmentOf(slot) === seg.id &&
              kd.positionOf(slot) === rec.position
            ) {
              if (!expired) {
                const { out, position, buf, at } = writer.reserve(rec.size, h.offset);
                const start = rec.valueAt - h.keyLength - RECORD_HEADER_BYTES;
                if ((h.flags & (FLAG_BATCH | FLAG_BATCH_END)) === 0)
                  rec.buf.copy(buf, at, start, start + rec.size);
                else
                  encodeRecord(
                    buf,
                    at,
                    h.offset,
                    h.expiresAt,
                    0,
                    key,
                    rec.buf.subarray(rec.valueAt, rec.valueAt + h.valueLength),
                  );
                writer.outputs[out]!.hint.push({
                  key,
                  offset: h.offset,
                  position,
                  valueLength: h.valueLength,
                  expiresAt: h.expiresAt,
                  flags: 0,
                });
                moves.keys.push(key);
                moves.fromSegment.push(seg.id);
                moves.fromPosition.push(rec.position);
                moves.toOutput.push(out);
                moves.toPosition.push(position);
                moves.valueLength.push(h.valueLength);
                return;
              }
              store.expireKey(key);
              slot = -1;
            }
            // Not live. Only a deletion (tombstone, or an expiry) may still be needed.
            if (prefix || (!tombstone && !expired)) return;
            if (slot >= 0) {
              shadowedBy.push(key);
              return;
            }
            if (keptTombstones.has(key)) return;
            keptTombstones.add(key);
            const size = RECORD_HEADER_BYTES + key.length;
            const { out, position, buf, at } = writer.reserve(size, h.offset);
            encodeRecord(buf, at, h.offset, 0, FLAG_TOMBSTONE, key, undefined);
            writer.outputs[out]!.hint.push({
              key,
              offset: h.offset,
              position,
              valueLength: 0,
              expiresAt: 0,
              flags: FLAG_TOMBSTONE,
            });
          },
          pos + STEP_BYTES,
        );
        if (r.problem) throw new CorruptionError(seg.name, r.problem.position, r.problem.reason);
        bytesDone += r.end - pos;
        pos = r.end;
        onProgress({ segmentsDone: si, segmentsTotal: inputs.length, bytesDone, bytesTotal });
        await new Promise((resolve) => setImmediate(resolve));
        if (isCancelled()) throw new Error('compaction cancelled: the store is closing');
      }
    }
    onProgress({ segmentsDone: inputs.length, segmentsTotal: inputs.length, bytesDone, bytesTotal });
    await writer.finish();
  } catch (err) {
    writer.abort();
    throw err;
  }
  return { outputs: writer.outputs, moves, shadowedBy, bytesRead: bytesTotal, writer };
}
