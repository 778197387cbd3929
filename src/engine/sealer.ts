/**
 * Sealing: what makes a full segment fast to load. After the active segment
 * is rotated out, this fsyncs it (through the store's sync rounds), then
 * writes its hint (the last record of each key in it) and its sparse offset
 * index under temporary names: fsync, rename, fsync the directory. Crash-safe
 * at every step: a missing hint means a rescan at open, a `.tmp` is swept.
 *
 * The hint and index were built while the segment was active
 * (hint-builder.ts, sparse-index.ts), so sealing reads nothing back: it
 * streams the hint out in HINT_WRITE_STEP_BYTES steps and the index in
 * INDEX_WRITE_STEP_ENTRIES steps, a step per turn of the event loop (each
 * well under a millisecond: DESIGN.md §1.4). A segment without one
 * (recovered with damage, rescanned at open for want of a valid hint, or
 * whose in-progress hint was given up after a failed write) is scanned
 * instead, in 256 KiB steps.
 *
 * Runs in the background on the event loop; the store retains the segment
 * meanwhile, and only a hinted segment may be compacted.
 */
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from 'pino';
import { dirOps } from './compaction/dir-ops.js';
import { hintFile, indexFile, tempFile } from './filenames.js';
import type { Fs } from './fs.js';
import { HINT_HEADER_BYTES, HintWriter } from './hint.js';
import type { HintBuilder } from './hint-builder.js';
import {
  HINT_WRITE_STEP_BYTES,
  HINT_WRITE_STEP_ENTRIES,
  INDEX_WRITE_STEP_ENTRIES,
  MAX_KEY_BYTES,
} from './limits.js';
import { FLAG_TOMBSTONE } from './record.js';
import { type Segment, scanRecords } from './segment.js';
import { SEGMENT_HEADER_BYTES } from './segment-header.js';
import type { LogView } from './segment-log.js';
import { INDEX_ENTRY_BYTES, INDEX_HEADER_BYTES, SparseIndex } from './sparse-index.js';

/**
 * Writes `seg`'s hint and index files: from `built`, the hint built while it
 * was active, else by scanning it. Resolves when they are durable (or when
 * it gave up, logged).
 */
export async function sealSegment(
  segLog: LogView,
  /** The store's sync round (Store.syncLog): the only way segment data is fsynced. */
  syncLog: () => Promise<void>,
  seg: Segment,
  fsyncData: boolean,
  log: Logger,
  built?: HintBuilder,
): Promise<void> {
  const fs = segLog.options.fs;
  try {
    // Through the store's sync rounds, never on its own: they keep the order of the log's fsyncs.
    if (fsyncData) await syncLog();
    if (built !== undefined && seg.index !== undefined) {
      // Not `if (store closed)`: close() waits for this task (see below).
      if (segLog.segments[seg.id] !== seg) return; // compacted away meanwhile
      await writeFileAtomically(fs, segLog.dir, hintFile(seg.baseOffset), (fd) =>
        writeBuiltHint(fs, fd, built, seg.baseOffset),
      );
      const index = seg.index;
      await writeFileAtomically(fs, segLog.dir, indexFile(seg.baseOffset), (fd) => writeIndex(fs, fd, index));
      // In the thread pool: on the event loop it held foreground requests 2-12 ms (compaction-trace.ts + a scheduler trace).
      await dirOps(fs).fsyncDir(segLog.dir);
      seg.hinted = true;
      log.debug({ file: seg.name, keys: built.count }, 'segment sealed');
      return;
    }
  } finally {
    built?.release();
  }
  await scanAndSeal(segLog, seg, log);
}

/**
 * Streams a built hint into `fd`: the entries after the header, a step at a
 * time (at most HINT_WRITE_STEP_BYTES written, HINT_WRITE_STEP_ENTRIES
 * entries looked at), then the header.
 */
async function writeBuiltHint(fs: Fs, fd: number, built: HintBuilder, baseOffset: number): Promise<void> {
  const step = Buffer.allocUnsafe(Math.max(HINT_WRITE_STEP_BYTES, HINT_HEADER_BYTES + MAX_KEY_BYTES));
  const cursor = { entry: 0 };
  const wrote = await writeStepped(fs, fd, step, HINT_HEADER_BYTES, {
    done: () => built.filledAll(cursor),
    fill: (out) => built.fill(out, cursor, HINT_WRITE_STEP_ENTRIES),
    header: (out, crc) => built.header(out, baseOffset, crc),
  });
  if (wrote !== built.bytes) throw new Error(`hint of ${built.bytes} bytes wrote ${wrote}`);
}

/** Writes `index` into `fd` as SparseIndex.encode() would: INDEX_WRITE_STEP_ENTRIES entries a step, then the header. */
async function writeIndex(fs: Fs, fd: number, index: SparseIndex): Promise<void> {
  const n = index.relOffsets.length;
  const step = Buffer.allocUnsafe(Math.max(INDEX_HEADER_BYTES, INDEX_WRITE_STEP_ENTRIES * INDEX_ENTRY_BYTES));
  let i = 0;
  await writeStepped(fs, fd, step, INDEX_HEADER_BYTES, {
    done: () => i >= n,
    fill: (out) => {
      const end = Math.min(n, i + INDEX_WRITE_STEP_ENTRIES);
      const bytes = index.encodeEntries(out, i, end);
      i = end;
      return bytes;
    },
    header: (out, crc) => index.encodeHeader(out, crc),
  });
}

/** What writeStepped writes: a body in steps, then a header that holds the body's CRC. */
interface SteppedFile {
  done(): boolean;
  /** Puts the next step's bytes at the front of `out`; returns how many (0: none this step). */
  fill(out: Buffer): number;
  /** Puts the header's bytes at the front of `out`, given the body's CRC. */
  header(out: Buffer, crc: number): void;
}

/**
 * Writes a file's body after its `headerBytes` a step at a time, each step in
 * a turn of the event loop of its own (the first too: not after the open and
 * whatever preceded it), the CRC running as it goes; then the header at 0.
 * Returns the body's length.
 */
async function writeStepped(
  fs: Fs,
  fd: number,
  step: Buffer,
  headerBytes: number,
  file: SteppedFile,
): Promise<number> {
  let at = headerBytes;
  let crc = 0;
  while (!file.done()) {
    await new Promise((resolve) => setImmediate(resolve));
    const n = file.fill(step);
    if (n > 0) {
      crc = crc32(step.subarray(0, n), crc);
      fs.write(fd, step, 0, n, at);
      at += n;
    }
  }
  file.header(step, crc);
  fs.write(fd, step, 0, headerBytes, 0);
  return at - headerBytes;
}

/** The hint and index of a segment that has no built hint: one scan of its records, in steps. */
async function scanAndSeal(segLog: LogView, seg: Segment, log: Logger): Promise<void> {
  const fs = segLog.options.fs;
  const hint = new HintWriter();
  const kd = segLog.keydir;
  // Keys the keydir cannot vouch for (deleted, expired, rewritten in a later segment or
  // moved by compaction): their last record here is found with this map, entry numbers by key.
  const unsure = new Map<string, number>();
  const index = new SparseIndex(seg.baseOffset, segLog.options.indexIntervalBytes);
  let pos = SEGMENT_HEADER_BYTES;
  while (pos < seg.size) {
    const r = scanRecords(
      fs,
      seg.fd,
      pos,
      seg.size,
      (rec) => {
        // The hint keeps each key's last record here, in record order (as a Map with
        // delete-then-set would), without a Map entry per record in the common case.
        const h = rec.header;
        const key = rec.key;
        index.observe(h.offset, rec.position);
        const slot = kd.slot(key);
        if (slot >= 0 && kd.segmentOf(slot) === seg.id) {
          // The keydir points at the key's latest record, here: that one is the last here.
          if (kd.positionOf(slot) !== rec.position) return;
          const earlier = unsure.size > 0 ? unsure.get(key) : undefined;
          if (earlier !== undefined) {
            hint.drop(earlier); // seen while the keydir pointed elsewhere (a write since undone)
            unsure.delete(key);
          }
          hint.add(key, h.offset, rec.position, h.valueLength, h.expiresAt, h.flags & FLAG_TOMBSTONE);
          return;
        }
        const earlier = unsure.get(key);
        if (earlier !== undefined) hint.drop(earlier);
        unsure.set(
          key,
          hint.add(key, h.offset, rec.position, h.valueLength, h.expiresAt, h.flags & FLAG_TOMBSTONE),
        );
      },
      // 256 KiB (~2k records) per step keeps each turn of the event loop to a few ms
      // (DESIGN.md §1.4); 4 MiB steps blocked it for 50+ ms under a write load.
      pos + 256 * 1024,
    );
    if (r.problem) {
      log.error({ file: seg.name, position: r.problem.position }, `not writing a hint: ${r.problem.reason}`);
      return;
    }
    pos = r.end;
    await new Promise((resolve) => setImmediate(resolve));
  }
  // Not `if (store closed)`: close() waits for this task, and a segment sealed just
  // before close must still get its hint, or every later open rescans it.
  if (segLog.segments[seg.id] !== seg) return; // compacted away meanwhile: its hint would be an orphan
  seg.index = index;
  await writeFileAtomically(fs, segLog.dir, hintFile(seg.baseOffset), hint.finish(seg.baseOffset));
  await writeFileAtomically(fs, segLog.dir, indexFile(seg.baseOffset), (fd) => writeIndex(fs, fd, index));
  await dirOps(fs).fsyncDir(segLog.dir);
  seg.hinted = true;
  log.debug({ file: seg.name, keys: hint.count }, 'segment sealed');
}

/**
 * Writes `name` via `name.tmp` + fsync + rename. The fsync waits in the
 * thread pool, not on the event loop (a sync fsync here stalled foreground
 * requests for tens of ms at each seal). On failure `name` is untouched and
 * the temporary file is removed (else swept at the next open). The caller
 * fsyncs the directory. `data`: the bytes, or a function that writes them
 * into the temporary file's descriptor.
 */
export async function writeFileAtomically(
  fs: Fs,
  dir: string,
  name: string,
  data: Buffer | ((fd: number) => Promise<void>),
): Promise<void> {
  const tmp = join(dir, tempFile(name));
  if (fs.exists(tmp)) fs.unlink(tmp);
  try {
    const fd = fs.open(tmp, 'wx');
    try {
      if (typeof data === 'function') await data(fd);
      else fs.write(fd, data, 0, data.length, 0);
      await fs.fsync(fd);
    } finally {
      fs.close(fd);
    }
    fs.rename(tmp, join(dir, name));
  } catch (err) {
    try {
      if (fs.exists(tmp)) fs.unlink(tmp);
    } catch {
      // Swept at the next open.
    }
    throw err;
  }
}
