/**
 * Verifies a data directory file by file, with the engine's own decoders
 * (record.ts, segment-header.ts, hint.ts, sparse-index.ts, segment.ts's
 * scanRecords/resync, filenames.ts), and returns a report. Reads only.
 *
 * Checked, segment by segment in offset order:
 * - the segment header (magic, version, CRC, base offset = name);
 * - every record's header bounds and CRC; after damage the scan resyncs on
 *   the next valid record (as recovery does) so later damage is found too;
 * - offsets: ≥ the segment's base, strictly increasing within and across
 *   segments, and each base above the previous segment's last offset (what
 *   the binary search over names relies on). Gaps are allowed: compaction
 *   keeps the offsets of the records it keeps;
 * - batches: BATCH members end with a BATCH_END record in the same segment;
 * - the hint, if any: its own checks, then each entry against the record at
 *   its position (offset, key, value length, expiry, tombstone flag), and
 *   that it holds exactly the last record of each key of the segment;
 * - the sparse index, if any: its own checks, then each entry names a record
 *   start with that offset.
 *
 * A torn tail is damage in the LAST (active) segment after which no valid
 * record follows, or a batch cut by its end: what recovery truncates and
 * `kv-check --fix` may truncate. Damage followed by valid records, or in a
 * sealed segment, is corruption and never "fixed" by cutting.
 *
 * Keys and bytes are counted as recovery would: batches apply at BATCH_END,
 * tombstones and expired records delete; live bytes are the records the
 * keydir would point at, dead bytes every other valid record.
 */
import { join } from 'node:path';
import { COMPACTION_MANIFEST } from '../../src/engine/filenames.js';
import type { Fs } from '../../src/engine/fs.js';
import { FLAG_BATCH, FLAG_BATCH_END, FLAG_TOMBSTONE } from '../../src/engine/record.js';
import { resync, scanRecords } from '../../src/engine/segment.js';
import { checkSegmentHeader, SEGMENT_HEADER_BYTES } from '../../src/engine/segment-header.js';
import { checkHint, checkIndex, type RecordInfo } from './check-files.js';
import { viewDataDir } from './data-dir.js';

export type ProblemKind = 'torn-tail' | 'corruption' | 'offsets' | 'batch' | 'hint' | 'index';

export interface Problem {
  kind: ProblemKind;
  file: string;
  /** Byte position in `file`. */
  position: number;
  reason: string;
}

export interface TornTail {
  file: string;
  baseOffset: number;
  /** Where the file would be cut: the first byte that is not part of a complete record (or batch). */
  position: number;
  bytes: number;
  reason: string;
  /** The file is shorter than its header: a fresh header is written instead of cutting. */
  rewriteHeader: boolean;
}

export interface SegmentSummary {
  file: string;
  baseOffset: number;
  bytes: number;
  records: number;
  /** -1 when the segment holds no valid record. */
  firstOffset: number;
  lastOffset: number;
  active: boolean;
  hint: FileStatus;
  index: FileStatus;
}

export type FileStatus = 'ok' | 'missing' | 'bad' | 'none';

export interface CheckReport {
  dir: string;
  ok: boolean;
  segments: number;
  records: number;
  /** Live keys (latest record a value that has not expired). */
  keys: number;
  /** Keys whose latest record is a value that has expired. */
  expiredKeys: number;
  /** Tombstone records. */
  tombstones: number;
  firstOffset: number;
  lastOffset: number;
  /** Bytes of segment files. */
  diskBytes: number;
  liveBytes: number;
  deadBytes: number;
  /** Bytes that are neither headers nor valid records (damage, torn tail). */
  damagedBytes: number;
  hints: { ok: number; missing: number; bad: number };
  indexes: { ok: number; missing: number; bad: number };
  /** Every problem in file order (the first one is the one to look at). */
  problems: Problem[];
  /** Problems beyond MAX_PROBLEMS are counted, not listed. */
  moreProblems: number;
  tornTail: TornTail | null;
  /** A compaction's swap is half done (COMPACTION manifest); the next open finishes it. */
  compactionPending: boolean;
  segmentFiles: SegmentSummary[];
  /** Things worth knowing that are not damage: leftover temporary files, orphan hints, unknown files. */
  notes: string[];
}

/** Problems listed in a report; a badly damaged directory could yield millions. */
export const MAX_PROBLEMS = 1000;

/** A key's latest record, packed in one number (one Map<string, number> entry per key): size * 4 + state. */
const LIVE = 0;
const DELETED = 1;
const EXPIRED = 2;

export function checkDir(fs: Fs, dir: string, now = Date.now()): CheckReport {
  const report: CheckReport = {
    dir,
    ok: true,
    segments: 0,
    records: 0,
    keys: 0,
    expiredKeys: 0,
    tombstones: 0,
    firstOffset: -1,
    lastOffset: -1,
    diskBytes: 0,
    liveBytes: 0,
    deadBytes: 0,
    damagedBytes: 0,
    hints: { ok: 0, missing: 0, bad: 0 },
    indexes: { ok: 0, missing: 0, bad: 0 },
    problems: [],
    moreProblems: 0,
    tornTail: null,
    compactionPending: false,
    segmentFiles: [],
    notes: [],
  };
  const problem = (kind: ProblemKind, file: string, position: number, reason: string) => {
    if (report.problems.length < MAX_PROBLEMS) report.problems.push({ kind, file, position, reason });
    else report.moreProblems++;
  };

  // Files, as the next open will see them.
  const view = viewDataDir(fs, dir);
  report.notes.push(...view.notes);
  report.compactionPending = view.compactionPending;
  if (view.manifestProblem)
    problem('corruption', COMPACTION_MANIFEST, 0, `${view.manifestProblem}; the store will not open`);
  const segments = view.segments;

  const keys = new Map<string, number>();
  const apply = (key: string, flags: number, expiresAt: number, size: number) => {
    const state =
      (flags & FLAG_TOMBSTONE) !== 0 ? DELETED : expiresAt !== 0 && expiresAt <= now ? EXPIRED : LIVE;
    keys.set(key, size * 4 + state);
  };
  let validBytes = 0;
  let prevOffset = -1;
  let prevFile = '';

  for (let i = 0; i < segments.length; i++) {
    const files = segments[i]!;
    const base = files.baseOffset;
    const file = files.seg;
    const isLast = i === segments.length - 1;
    const fd = fs.open(join(dir, file), 'r');
    const summary: SegmentSummary = {
      file,
      baseOffset: base,
      bytes: 0,
      records: 0,
      firstOffset: -1,
      lastOffset: -1,
      active: isLast,
      hint: 'none',
      index: 'none',
    };
    report.segmentFiles.push(summary);
    report.segments++;
    // Records by position, for matching the hint and index against them; last position per key.
    const wantRecords = files.hint !== undefined || files.index !== undefined;
    // Byte ranges [start, end) that hold no valid record: a hint or index entry there is the segment's fault.
    const damage: [number, number][] = [];
    const byPosition = new Map<number, RecordInfo>();
    const lastByKey = new Map<string, number>();
    let damaged = false;
    try {
      const size = fs.size(fd);
      summary.bytes = size;
      report.diskBytes += size;
      if (size === 0) {
        // No header, so no record: a segment whose creation failed (ENOSPC). Not damage; the next open removes it.
        report.notes.push(
          `${file} is empty (its creation failed, e.g. on a full disk); the next open removes it`,
        );
        continue;
      }
      if (prevOffset >= 0 && base <= prevOffset) {
        problem(
          'offsets',
          file,
          0,
          `base offset ${base} is not above offset ${prevOffset}, the last record of ${prevFile}`,
        );
      }
      if (size < SEGMENT_HEADER_BYTES) {
        report.damagedBytes += size;
        damage.push([0, size]);
        if (isLast) {
          report.tornTail = {
            file,
            baseOffset: base,
            position: 0,
            bytes: size,
            reason: 'segment is shorter than its header (torn at creation)',
            rewriteHeader: true,
          };
          problem('torn-tail', file, 0, 'segment is shorter than its header (torn at creation)');
        } else {
          problem('corruption', file, 0, 'segment is shorter than its header');
        }
        continue;
      }
      const header = Buffer.alloc(SEGMENT_HEADER_BYTES);
      fs.read(fd, header, 0, SEGMENT_HEADER_BYTES, 0);
      const headerProblem = checkSegmentHeader(header, base);
      if (headerProblem) {
        problem('corruption', file, 0, headerProblem);
        damaged = true;
      }

      let batch: { key: string; flags: number; expiresAt: number; size: number }[] = [];
      let batchStart = -1;
      let skippingBatch = false;
      let pos = SEGMENT_HEADER_BYTES;
      for (;;) {
        const r = scanRecords(fs, fd, pos, size, (rec) => {
          const h = rec.header;
          if (wantRecords) {
            byPosition.set(rec.position, {
              offset: h.offset,
              key: rec.key,
              valueLength: h.valueLength,
              expiresAt: h.expiresAt,
              flags: h.flags,
            });
            lastByKey.set(rec.key, rec.position);
          }
          summary.records++;
          validBytes += rec.size;
          if ((h.flags & FLAG_TOMBSTONE) !== 0) report.tombstones++;
          if (h.offset < base) {
            problem('offsets', file, rec.position, `offset ${h.offset} is below the segment's base ${base}`);
          } else if (h.offset <= prevOffset) {
            problem(
              'offsets',
              file,
              rec.position,
              `offset ${h.offset} is not above the previous record's offset ${prevOffset}`,
            );
          }
          if (summary.firstOffset < 0) summary.firstOffset = h.offset;
          if (h.offset > summary.lastOffset) summary.lastOffset = h.offset;
          if (h.offset > prevOffset) {
            prevOffset = h.offset;
            prevFile = file;
          }
          // Batches, applied at their end record as recovery does.
          if (skippingBatch) {
            if ((h.flags & FLAG_BATCH) === 0 || (h.flags & FLAG_BATCH_END) !== 0) skippingBatch = false;
            if ((h.flags & FLAG_BATCH) !== 0) return;
          }
          if ((h.flags & FLAG_BATCH) !== 0) {
            if (batch.length === 0) batchStart = rec.position;
            batch.push({ key: rec.key, flags: h.flags, expiresAt: h.expiresAt, size: rec.size });
            if ((h.flags & FLAG_BATCH_END) !== 0) {
              for (const b of batch) apply(b.key, b.flags, b.expiresAt, b.size);
              batch = [];
            }
            return;
          }
          if (batch.length > 0) {
            problem('batch', file, batchStart, 'a batch without its end record (its records are ignored)');
            batch = [];
          }
          apply(rec.key, h.flags, h.expiresAt, rec.size);
        });
        if (!r.problem) {
          if (batch.length > 0) {
            if (isLast && !damaged) {
              const bytes = size - batchStart;
              report.tornTail = {
                file,
                baseOffset: base,
                position: batchStart,
                bytes,
                reason: 'a batch cut by the end of the log',
                rewriteHeader: false,
              };
              problem('torn-tail', file, batchStart, 'a batch cut by the end of the log');
            } else {
              problem('batch', file, batchStart, 'a batch without its end record (its records are ignored)');
            }
          }
          break;
        }
        const at = r.problem.position;
        const next = resync(fs, fd, at, size, summary.lastOffset);
        if (isLast && next < 0) {
          const cut = batch.length > 0 ? batchStart : at;
          const reason = batch.length > 0 ? `a batch cut by damage: ${r.problem.reason}` : r.problem.reason;
          report.tornTail = {
            file,
            baseOffset: base,
            position: cut,
            bytes: size - cut,
            reason,
            rewriteHeader: false,
          };
          report.damagedBytes += size - at;
          damage.push([at, size]);
          problem('torn-tail', file, cut, reason);
          break;
        }
        damaged = true;
        const end = next < 0 ? size : next;
        report.damagedBytes += end - at;
        damage.push([at, end]);
        const after = isLast
          ? `a valid record follows at byte ${next}, so this is not a torn tail`
          : next < 0
            ? 'nothing valid follows in this sealed segment'
            : `sealed segment; the scan resumes at byte ${next}`;
        problem('corruption', file, at, `${r.problem.reason} (${after})`);
        if (batch.length > 0) {
          batch = [];
          skippingBatch = true;
        }
        if (next < 0) break;
        pos = next;
      }
    } finally {
      fs.close(fd);
    }
    report.records += summary.records;
    if (summary.firstOffset >= 0 && report.firstOffset < 0) report.firstOffset = summary.firstOffset;
    if (summary.lastOffset > report.lastOffset) report.lastOffset = summary.lastOffset;

    // Hint.
    if (files.hint) {
      const bad = checkHint(fs, dir, files, byPosition, damage, damaged ? undefined : lastByKey);
      summary.hint = bad ? 'bad' : 'ok';
      if (bad) {
        report.hints.bad++;
        problem('hint', files.hint, bad.position, bad.reason);
      } else report.hints.ok++;
    } else if (!isLast) {
      summary.hint = 'missing';
      report.hints.missing++;
    }

    // Sparse index.
    if (files.index) {
      const bad = checkIndex(fs, dir, files, byPosition, damage);
      summary.index = bad ? 'bad' : 'ok';
      if (bad) {
        report.indexes.bad++;
        problem('index', files.index, bad.position, bad.reason);
      } else report.indexes.ok++;
    } else if (!isLast) {
      summary.index = 'missing';
      report.indexes.missing++;
    }
  }

  for (const packed of keys.values()) {
    const state = packed % 4;
    if (state === LIVE) {
      report.keys++;
      report.liveBytes += (packed - state) / 4;
    } else if (state === EXPIRED) report.expiredKeys++;
  }
  report.deadBytes = validBytes - report.liveBytes;
  report.ok = report.problems.length === 0;
  return report;
}
