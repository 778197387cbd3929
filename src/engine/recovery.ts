/**
 * Recovery: rebuilds the keydir from a data directory at open.
 *
 * 0. A committed compaction (a `COMPACTION` manifest) has its swap finished;
 *    a read-only open, which writes nothing, reads the directory as that swap
 *    will leave it instead (pendingSwapView).
 * 1. Sweep: `*.tmp` and `*.compacting` files (an unfinished hint, index or
 *    compaction output) are deleted; hints and indexes without a segment are deleted.
 * 2. Sealed segments, oldest first: load the hint if it passes its checks,
 *    else scan the records (CRC each) and rewrite the hint in the background
 *    (Bitcask #273: slow starts when hints are missing).
 * 3. The last segment is the active one: scan it — unless a clean close
 *    sealed it (Store.close: it has a valid hint), then it loads like the
 *    others and a fresh active segment is opened after it. A segment file with no
 *    header (empty, or the last one torn at creation) holds no record: it is
 *    removed, not reported as corruption, and a fresh active segment is
 *    created after the others (if that fails, on a full disk, the store opens
 *    for reads and refuses writes until it can: Store.openActiveSegment). At the first bad record,
 *    look for a valid record after it: none means a torn tail, truncated and
 *    logged with the bytes dropped; one means corruption in the middle, which
 *    is reported and the segment sealed as it is (valid records after the
 *    damage are kept) with a fresh active segment opened after it.
 * 4. Corruption in a sealed segment is reported with file and position, the
 *    scan resynchronises on the next valid record, and loading continues
 *    (Bitcask #212: one bad record must not cause a restart loop).
 *
 * Batches are applied when their BATCH_END record is read; a batch cut by the
 * end of the log or by corruption is dropped whole (DESIGN.md §1.2).
 * Records whose expiry has passed count as deletions.
 */
import { join } from 'node:path';
import { CorruptionError } from '../errors.js';
import { decodeManifest } from './compaction/manifest.js';
import { manifestFiles, resolveCompaction } from './compaction/swap.js';
import {
  COMPACTION_MANIFEST,
  compactingFile,
  hintFile,
  indexFile,
  isTemporary,
  parseName,
  segmentFile,
} from './filenames.js';
import type { Fs } from './fs.js';
import { decodeHintBatches, HINT_HEADER_BYTES, HintBatch, hintHeaderCount } from './hint.js';
import { HintBuilder } from './hint-builder.js';
import { hashBytes } from './keydir.js';
import { MAX_KEY_BYTES } from './limits.js';
import {
  decodeHeader,
  FLAG_BATCH,
  FLAG_BATCH_END,
  FLAG_TOMBSTONE,
  RECORD_HEADER_BYTES,
  type RecordHeader,
  recordKey,
  recordSize,
} from './record.js';
import { resync, Segment, scanRecords } from './segment.js';
import { checkSegmentHeader, SEGMENT_HEADER_BYTES } from './segment-header.js';
import type { LogEdit } from './segment-log.js';
import { SparseIndex } from './sparse-index.js';

/**
 * Hint entries loaded per batch: enough that the keydir table reads of a
 * batch overlap (Keydir.warm), few enough that what they bring into the CPU
 * cache is still there when the batch is applied.
 */
const HINT_LOAD_BATCH_ENTRIES = 64;

/**
 * About how many keys the segments of `bases` hold, for Keydir.reserve: the
 * entry counts in the hint files' headers, plus, for a segment without a
 * usable hint (it is scanned), its bytes at the hinted segments' bytes per
 * entry. A key with entries in several segments counts once per segment, so
 * this overshoots by the log's dead entries (Keydir.fit corrects a large
 * overshoot); 0 when nothing is hinted (the table grows as keys arrive).
 */
function estimateKeys(
  fs: Fs,
  bases: readonly number[],
  hints: ReadonlySet<number>,
  pathOf: (name: string) => string,
): number {
  const header = Buffer.alloc(HINT_HEADER_BYTES);
  let entries = 0;
  let hintedBytes = 0;
  let scannedBytes = 0;
  for (const base of bases) {
    let count: number | undefined;
    let bytes = 0;
    try {
      const fd = fs.open(pathOf(segmentFile(base)), 'r');
      try {
        bytes = fs.size(fd);
      } finally {
        fs.close(fd);
      }
      if (hints.has(base)) {
        const hfd = fs.open(pathOf(hintFile(base)), 'r');
        try {
          if (fs.read(hfd, header, 0, HINT_HEADER_BYTES, 0) === HINT_HEADER_BYTES)
            count = hintHeaderCount(header);
        } finally {
          fs.close(hfd);
        }
      }
    } catch {
      // An estimate: the load itself reports what cannot be read.
    }
    if (count === undefined) scannedBytes += bytes;
    else {
      entries += count;
      hintedBytes += bytes;
    }
  }
  return hintedBytes > 0 ? entries + Math.round((scannedBytes * entries) / hintedBytes) : 0;
}

export interface RecoveryStats {
  ms: number;
  segments: number;
  fromHints: number;
  scanned: number;
  truncatedBytes: number;
  corruptions: number;
}

export interface RecoveryResult {
  stats: RecoveryStats;
  /** Sealed segments that had no valid hint: the store writes one in the background. */
  needHints: Segment[];
  /** The last segment is sealed or there is none: the store opens a fresh active segment (Store.openActiveSegment). */
  needActive: boolean;
}

/**
 * The directory's file names as the swap of a committed compaction will
 * leave them, without changing anything (for a read-only open): the
 * manifest's outputs are listed under their final names, read from their
 * `.compacting` files where the swap has not renamed them yet; its inputs
 * are left out. Without a manifest, the names as they are.
 */
export function pendingSwapView(
  fs: Fs,
  dir: string,
): { names: string[]; pathOf: (name: string) => string; pending: boolean } {
  const names = fs.readdir(dir);
  const plain = (name: string) => join(dir, name);
  if (!names.includes(COMPACTION_MANIFEST)) return { names, pathOf: plain, pending: false };
  const m = decodeManifest(fs.readFile(join(dir, COMPACTION_MANIFEST)));
  if (typeof m === 'string') throw new CorruptionError(COMPACTION_MANIFEST, 0, m);
  const present = new Set(names);
  const { outputs, removed } = manifestFiles(m);
  const dropped = new Set(removed);
  // Not yet renamed: the `.compacting` file is the output (and shadows an input of the same base).
  const fromCompacting = new Set(outputs.filter((n) => present.has(compactingFile(n))));
  const view = names.filter((n) => !dropped.has(n) && !fromCompacting.has(n));
  view.push(...fromCompacting);
  return {
    names: view,
    pathOf: (name) => (fromCompacting.has(name) ? join(dir, compactingFile(name)) : join(dir, name)),
    pending: true,
  };
}

export function recover(segLog: LogEdit): RecoveryResult {
  const { fs, logger: log, clock, readOnly, indexIntervalBytes } = segLog.options;
  const dir = segLog.dir;
  const t0 = performance.now();
  const stats: RecoveryStats = {
    ms: 0,
    segments: 0,
    fromHints: 0,
    scanned: 0,
    truncatedBytes: 0,
    corruptions: 0,
  };
  const needHints: Segment[] = [];
  const now = clock.now();

  if (!readOnly && resolveCompaction(fs, dir))
    log.warn('finished the swap of a compaction that was interrupted by a crash');
  const { names, pathOf, pending } = pendingSwapView(fs, dir);
  if (pending) {
    log.warn(
      'a compaction committed but its swap is unfinished: reading the files as the swap will leave them (a read-write open finishes it)',
    );
  }
  const bases: number[] = [];
  const hints = new Set<number>();
  const indexes = new Set<number>();
  for (const name of names) {
    if (isTemporary(name)) {
      if (!readOnly) {
        fs.unlink(join(dir, name));
        log.info({ file: name }, 'removed an unfinished temporary file');
      }
      continue;
    }
    const parsed = parseName(name);
    if (!parsed) continue;
    if (parsed.kind === 'seg') bases.push(parsed.baseOffset);
    else if (parsed.kind === 'hint') hints.add(parsed.baseOffset);
    else indexes.add(parsed.baseOffset);
  }
  bases.sort((a, b) => a - b);
  const segSet = new Set(bases);
  // A Set: an orphan hint and index of the same base must be unlinked once (ENOENT blocked the open).
  for (const base of new Set([...hints, ...indexes])) {
    if (!segSet.has(base) && !readOnly) {
      for (const name of names) {
        const p = parseName(name);
        if (p && p.baseOffset === base && p.kind !== 'seg') fs.unlink(join(dir, name));
      }
    }
  }

  // Size the keydir's table for what the hints say is coming: no rehash while loading.
  segLog.keydir.reserve(estimateKeys(fs, bases, hints, pathOf));

  const corruption = (file: string, position: number, reason: string) => {
    stats.corruptions++;
    log.error({ file, position, reason }, `corruption in ${file} at byte ${position}: ${reason}`);
  };

  const apply = (
    seg: Segment,
    key: string,
    h: { offset: number; expiresAt: number; flags: number; valueLength: number },
    position: number,
  ) => {
    if (h.offset > seg.lastOffset) seg.lastOffset = h.offset;
    // The last segment's in-progress hint gets the records applied, as appends give it them.
    seg.hint?.add(key, h.offset, position, h.valueLength, h.expiresAt, h.flags);
    if ((h.flags & FLAG_TOMBSTONE) !== 0 || (h.expiresAt !== 0 && h.expiresAt <= now))
      segLog.unpoint(key, position);
    else segLog.point(key, seg, position, h.valueLength, h.expiresAt);
  };

  /**
   * `apply` for every entry of a hint, taking the keys as bytes from the hint
   * buffer (no string per key), a batch at a time: the batch's hashes first,
   * then its table buckets read together (Keydir.warm), then its entries
   * applied in order. The live-byte counts move as SegmentLog.point/unpoint move
   * them; the store's sorted key index does not exist yet (the first scan
   * builds it), so there is nothing to tell it. Returns the hint's problem, if
   * it has one, before applying anything.
   */
  /**
   * A hint file's bytes, read into one buffer reused from hint to hint (a
   * fresh buffer per file costs a page fault per 4 KiB on its first fill).
   * Valid until the next call.
   */
  let hintBuf = Buffer.alloc(0);
  const readHint = (path: string): Buffer => {
    const fd = fs.open(path, 'r');
    try {
      const size = fs.size(fd);
      if (size > hintBuf.length) hintBuf = Buffer.allocUnsafeSlow(size);
      let got = 0;
      while (got < size) {
        const n = fs.read(fd, hintBuf, got, size - got, got);
        if (n <= 0) break;
        got += n;
      }
      return hintBuf.subarray(0, got);
    } finally {
      fs.close(fd);
    }
  };
  const kd = segLog.keydir;
  const segments = segLog.segments;
  const batch = new HintBatch(HINT_LOAD_BATCH_ENTRIES);
  const hashes = new Int32Array(HINT_LOAD_BATCH_ENTRIES);
  const loadHint = (seg: Segment, buf: Buffer): string | undefined =>
    decodeHintBatches(buf, seg.baseOffset, batch, (b) => {
      const n = b.length;
      for (let j = 0; j < n; j++) hashes[j] = hashBytes(buf, b.keyStart[j]!, b.keyLength[j]!);
      kd.warm(hashes, n);
      for (let j = 0; j < n; j++) {
        const offset = b.offset[j]!;
        if (offset > seg.lastOffset) seg.lastOffset = offset;
        const keyLength = b.keyLength[j]!;
        const expiresAt = b.expiresAt[j]!;
        if ((b.flags[j]! & FLAG_TOMBSTONE) !== 0 || (expiresAt !== 0 && expiresAt <= now)) {
          if (kd.deleteBytes(hashes[j]!, buf, b.keyStart[j]!, keyLength)) {
            segments[kd.prevSegment]!.liveBytes -= recordSize(keyLength, kd.prevValueLength);
          }
        } else {
          const valueLength = b.valueLength[j]!;
          kd.setBytes(
            hashes[j]!,
            buf,
            b.keyStart[j]!,
            keyLength,
            seg.id,
            b.position[j]!,
            valueLength,
            expiresAt,
          );
          if (kd.prevSegment >= 0) {
            segments[kd.prevSegment]!.liveBytes -= recordSize(keyLength, kd.prevValueLength);
          }
          seg.liveBytes += recordSize(keyLength, valueLength);
        }
      }
    });

  /**
   * A record that failed its checks mid-segment may be its key's latest
   * version: skipping it would serve the key's older value from an earlier
   * record. When its header and key still decode and it spans exactly to the
   * next good record, the key is dropped from the keydir (reported lost, as a
   * damaged key with no older version already is) until a newer record sets
   * it again. A damaged batch member is not (the batch is dropped whole);
   * nor is a record whose key or length fields are the damaged bytes.
   */
  const dropDamagedKey = (fd: number, position: number, end: number) => {
    const len = Math.min(end - position, RECORD_HEADER_BYTES + MAX_KEY_BYTES);
    if (len < RECORD_HEADER_BYTES) return;
    const buf = Buffer.allocUnsafe(len);
    if (fs.read(fd, buf, 0, len, position) !== len) return;
    const h = decodeHeader(buf, 0, len, MAX_KEY_BYTES);
    if (!h || (h.flags & FLAG_BATCH) !== 0) return;
    if (position + recordSize(h.keyLength, h.valueLength) !== end) return;
    const key = recordKey(buf, 0, h.keyLength);
    if (segLog.unpoint(key)) log.error({ key }, `dropped ${key}: its latest record is the damaged one`);
  };

  let maxOffset = -1;
  let sealLast = false;
  for (let i = 0; i < bases.length; i++) {
    const base = bases[i]!;
    const isLast = i === bases.length - 1;
    const name = segmentFile(base);
    const fd = fs.open(pathOf(name), readOnly || !isLast ? 'r' : 'r+');
    const size = fs.size(fd);
    if (size === 0 || (size < SEGMENT_HEADER_BYTES && isLast)) {
      // No header, so no record: a segment whose creation failed (ENOSPC) or was
      // torn by a crash. Not corruption: removed (a read-write open), and if it
      // was the last one a fresh active segment is created after the others.
      fs.close(fd);
      stats.truncatedBytes += size;
      if (!readOnly) fs.unlink(pathOf(name));
      log.warn(
        { file: name, bytes: size },
        `${readOnly ? 'ignored' : 'removed'} ${name}: ${size === 0 ? 'empty' : `only ${size} bytes`}, its header never reached the disk`,
      );
      continue;
    }
    const seg = new Segment(fs, dir, name, base, fd, size);
    segLog.pushSegment(seg);
    stats.segments++;

    // Header.
    const header = Buffer.alloc(SEGMENT_HEADER_BYTES);
    fs.read(fd, header, 0, SEGMENT_HEADER_BYTES, 0);
    const headerProblem = checkSegmentHeader(header.subarray(0, Math.min(size, SEGMENT_HEADER_BYTES)), base);
    if (size < SEGMENT_HEADER_BYTES) {
      corruption(name, 0, 'segment is shorter than its header');
      seg.size = seg.written = SEGMENT_HEADER_BYTES;
      seg.sealed = true;
      continue;
    }
    if (headerProblem) {
      corruption(name, 0, headerProblem);
      if (isLast) sealLast = true;
    }

    // Sealed segments: the hint if it is good. The last segment is sealed too
    // when it has a hint (a clean close sealed it: Store.close); otherwise, or
    // if that hint fails its checks, it is the active one and scanned.
    const sealedAtClose = isLast && hints.has(base) && !headerProblem;
    if (!isLast || sealedAtClose) {
      seg.sealed = true;
      if (indexes.has(base)) {
        try {
          const idx = SparseIndex.decode(fs.readFile(pathOf(indexFile(base))), base, indexIntervalBytes);
          if (typeof idx !== 'string') seg.index = idx;
        } catch {
          // An unreadable index is rebuilt when a reader needs it.
        }
      }
      if (hints.has(base)) {
        const hintName = hintFile(base);
        let problem: string | undefined;
        try {
          problem = loadHint(seg, readHint(pathOf(hintName)));
        } catch (err) {
          problem = (err as Error).message;
        }
        if (!problem) {
          stats.fromHints++;
          seg.hinted = true;
          if (seg.lastOffset > maxOffset) maxOffset = seg.lastOffset;
          continue;
        }
        log.warn(
          { file: hintName, reason: problem },
          `ignoring hint ${hintName} (${problem}); scanning ${name}`,
        );
      }
      if (!isLast) needHints.push(seg);
      else seg.sealed = false;
    }
    if (isLast) {
      seg.index = new SparseIndex(base, indexIntervalBytes);
      // Appends go on in this segment: its hint is built from the records recovered (hint-builder.ts).
      if (!readOnly) seg.hint = new HintBuilder(segLog.options.maxSegmentBytes);
    }

    // Scan. A scanned segment may hold bytes a crashed process wrote and never
    // fsynced: dirty, so the first sync round makes them durable before any
    // later write's fsync counts, and before its hint is written.
    stats.scanned++;
    if (!readOnly) seg.dirty = true;
    const index = seg.index ?? new SparseIndex(base, indexIntervalBytes);
    let batch: { key: string; header: RecordHeader; position: number }[] = [];
    let batchStart = -1;
    let skippingBatch = false;
    let pos = SEGMENT_HEADER_BYTES;
    for (;;) {
      const r = scanRecords(fs, fd, pos, seg.size, (rec) => {
        const h = rec.header;
        index.observe(h.offset, rec.position);
        seg.records++;
        if (h.offset > seg.lastOffset) seg.lastOffset = h.offset;
        if (skippingBatch) {
          if ((h.flags & FLAG_BATCH) === 0 || (h.flags & FLAG_BATCH_END) !== 0) skippingBatch = false;
          if ((h.flags & FLAG_BATCH) !== 0) return;
        }
        if ((h.flags & FLAG_BATCH) !== 0) {
          if (batch.length === 0) batchStart = rec.position;
          batch.push({ key: rec.key, header: h, position: rec.position });
          if ((h.flags & FLAG_BATCH_END) !== 0) {
            for (const b of batch) apply(seg, b.key, b.header, b.position);
            batch = [];
          }
          return;
        }
        if (batch.length > 0) {
          corruption(name, batchStart, 'a batch without its end record');
          batch = [];
        }
        apply(seg, rec.key, h, rec.position);
      });
      if (!r.problem) break;
      const next = resync(fs, fd, r.problem.position, seg.size, seg.lastOffset);
      if (isLast && next < 0) {
        // A torn tail: cut the file at the last complete record (or batch).
        const cut = batch.length > 0 ? batchStart : r.problem.position;
        const dropped = seg.size - cut;
        batch = [];
        if (!readOnly) fs.truncate(fd, cut);
        seg.size = seg.written = cut;
        stats.truncatedBytes += dropped;
        log.warn(
          { file: name, position: cut, bytes: dropped, reason: r.problem.reason },
          `truncated a torn tail of ${dropped} bytes at byte ${cut} of ${name}`,
        );
        break;
      }
      corruption(name, r.problem.position, r.problem.reason);
      if (batch.length > 0) {
        batch = [];
        skippingBatch = true;
      }
      if (!skippingBatch) dropDamagedKey(fd, r.problem.position, next >= 0 ? next : seg.size);
      if (isLast) sealLast = true;
      if (next < 0) break;
      pos = next;
    }
    if (batch.length > 0 && isLast) {
      // The log ends inside a batch, torn at a record boundary: cut it off like any torn tail,
      // or the next batch appended after it would complete it (a half batch resurrected).
      const dropped = seg.size - batchStart;
      if (!readOnly) fs.truncate(fd, batchStart);
      seg.size = seg.written = batchStart;
      stats.truncatedBytes += dropped;
      log.warn(
        { file: name, position: batchStart, bytes: dropped, reason: 'a batch without its end record' },
        `truncated a torn tail of ${dropped} bytes at byte ${batchStart} of ${name}`,
      );
      batch = [];
    }
    if (batch.length > 0) corruption(name, batchStart, 'a batch without its end record');
    seg.index = index;
    if (seg.lastOffset > maxOffset) maxOffset = seg.lastOffset;
  }

  segLog.keydir.fit();
  segLog.nextOffset = Math.max(maxOffset + 1, bases.length > 0 ? bases[bases.length - 1]! : 0);
  let needActive = false;
  if (!readOnly) {
    const last = segLog.ordered[segLog.ordered.length - 1];
    if (last && sealLast) {
      // Keep the damaged segment as it is (read-only) and append after it.
      last.sealed = true;
      last.hint = undefined; // no hint over damage: the sealer's scan refuses it too
      if (last.records === 0) segLog.nextOffset = Math.max(segLog.nextOffset, last.baseOffset + 1);
    }
    needActive = !last || last.sealed;
    if (last && sealLast && last.records > 0) needHints.push(last);
  }
  stats.ms = Math.round(performance.now() - t0);
  log.info(stats, `recovered ${segLog.keydir.size} keys from ${stats.segments} segments in ${stats.ms} ms`);
  return { stats, needHints, needActive };
}
