/**
 * The torture checker's self-test (`torture --sabotage`): after a kill, cut
 * the end of the log off, so that acknowledged writes are lost and the
 * checker must report them.
 *
 * The cut is made sure to take an acknowledged write: before the kill the
 * harness stops its writers (nothing is in flight), writes one more value of
 * its own, the witness, and sends nothing after it. The witness is then the
 * log's last record, in the newest segment (the active one: nothing but a
 * write rotates it, and compaction never touches it), and the cut starts at
 * or before it. The checker must report the witness's key after the restart.
 *
 * Why not just "4000 bytes off the newest segment": that cut never reaches
 * behind a rotation, and with the torture's 8 KiB segments the active segment
 * lives only two or three group-commit rounds of the writers. During its
 * first round (the longest: it also fsyncs the sealed segment and the
 * directory) every record in it was still in flight, whose loss is allowed;
 * a kill then cut only those, or nothing when the segment held under 600
 * bytes: 29% of the kills did so (54% of those right after a COMPACT, which
 * seals the active segment; ARCHITECTURE.md), and a clean-clone CI run once
 * had all five cuts of the self-test miss (2026-12-06, 0 violations).
 */
import { readdirSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { nodeFs } from '../../src/engine/fs.js';
import { FLAG_TOMBSTONE } from '../../src/engine/record.js';
import { scanRecords } from '../../src/engine/segment.js';
import { SEGMENT_HEADER_BYTES } from '../../src/engine/segment-header.js';

/** Bytes cut off the newest segment (about half a torture segment); at least the witness, at most the records after its header. */
export const SABOTAGE_CUT_BYTES = 4000;

/** The harness's last write before a sabotaged kill. */
export interface Witness {
  key: string;
  version: string;
}

/** One record of the newest segment, as the cut sees it. */
interface CutRecord {
  position: number;
  key: string;
  /** The version its value names; null for a tombstone. */
  version: string | null;
}

/** What a sabotage cut took off. */
export interface Cut {
  segment: string;
  sizeBefore: number;
  sizeAfter: number;
  records: number;
  /** Records cut that were their key's latest acknowledged write. */
  latestAcked: number;
}

/** Whether the file's bytes [from, to) are all zeros. */
function zerosFrom(fd: number, from: number, to: number): boolean {
  const buf = Buffer.alloc(Math.max(0, to - from));
  const n = nodeFs.read(fd, buf, 0, buf.length, from);
  return n === buf.length && buf.every((b) => b === 0);
}

/**
 * Reads the records of a segment file, in order, and where they end (an
 * `always` server's file goes on in zeros written ahead of them); throws on
 * damage (the harness cuts only what the server wrote).
 */
function readRecords(
  path: string,
  versionOf: (key: string, value: string) => string | undefined,
): { records: CutRecord[]; end: number } {
  const fd = nodeFs.open(path, 'r');
  try {
    const size = nodeFs.size(fd);
    const out: CutRecord[] = [];
    const r = scanRecords(nodeFs, fd, SEGMENT_HEADER_BYTES, size, (rec) => {
      const tombstone = (rec.header.flags & FLAG_TOMBSTONE) !== 0;
      const value = rec.buf.toString('latin1', rec.valueAt, rec.valueAt + rec.header.valueLength);
      out.push({
        position: rec.position,
        key: rec.key,
        version: tombstone ? null : (versionOf(rec.key, value) ?? '?'),
      });
    });
    // Past the records, zeros an `always` server wrote ahead of them (Segment.zeroAhead) end the log.
    if (r.problem && !zerosFrom(fd, r.problem.position, size))
      throw new Error(`sabotage: ${path} is damaged at byte ${r.problem.position}: ${r.problem.reason}`);
    return { records: out, end: r.problem?.position ?? size };
  } finally {
    nodeFs.close(fd);
  }
}

/**
 * Cuts the end of the log in `dir` (the server is dead): SABOTAGE_CUT_BYTES
 * off the newest segment, or from the witness if that is less, but never
 * the header. Throws if the witness is not the newest segment's last record
 * (the cut would then not be sure to take an acknowledged write).
 */
export function cutLogEnd(
  dir: string,
  witness: Witness,
  acked: ReadonlyMap<string, string | null>,
  versionOf: (key: string, value: string) => string | undefined,
): Cut {
  const names = readdirSync(dir)
    .filter((n) => n.endsWith('.seg'))
    .sort();
  const segment = names.at(-1);
  if (segment === undefined) throw new Error(`sabotage: no segment in ${dir}`);
  const path = join(dir, segment);
  const { records, end: sizeBefore } = readRecords(path, versionOf);
  const last = records.at(-1);
  if (last?.key !== witness.key || last.version !== witness.version) {
    const found = last ? `${last.key}=${last.version}` : 'no record';
    throw new Error(
      `sabotage: the last record of ${segment} is ${found}, not the witness ${witness.key}=${witness.version}`,
    );
  }
  const sizeAfter = Math.max(SEGMENT_HEADER_BYTES, Math.min(last.position, sizeBefore - SABOTAGE_CUT_BYTES));
  truncateSync(path, sizeAfter);
  // A record cut in part counts as cut: recovery drops it whole (a torn tail).
  const cut = records.filter((_, i) => (records[i + 1]?.position ?? sizeBefore) > sizeAfter);
  const latestAcked = cut.filter((r) => acked.has(r.key) && acked.get(r.key) === r.version).length;
  return { segment, sizeBefore, sizeAfter, records: cut.length, latestAcked };
}
