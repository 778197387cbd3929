/**
 * Compaction policy: pure. Segment figures in, the segments to compact out.
 *
 * A compaction set is always a contiguous run of sealed segments in offset
 * order, so merged outputs keep offsets ordered across files (the binary
 * search over names stays valid). A run that starts at the oldest segment is
 * a "prefix": tombstones in it can be dropped, since no older segment is left
 * outside the set to hold a value they shadow (DESIGN.md §3; nutsdb #77).
 */

export interface CompactionPolicyOptions {
  /** A sealed segment qualifies when dead/total ≥ this. Default 0.5. */
  minDeadRatio: number;
  /** Compact every sealed segment once their dead bytes add up to this. Default 1 GiB. */
  maxDeadBytes: number;
  /** A qualifying run is compacted only if its dead bytes reach this. Default 16 MiB. */
  minDeadBytes: number;
}

export interface SegmentFigures {
  baseOffset: number;
  bytes: number;
  deadBytes: number;
  /** Sealed and its hint written: only such segments may be compacted. */
  compactable: boolean;
}

export interface CompactionChoice {
  /** Index of the first segment of the run in the input array. */
  from: number;
  /** Index after the last one. */
  to: number;
  reason: 'dead-ratio' | 'dead-bytes' | 'manual';
}

/** All compactable segments from the oldest one on, up to the first that is not (the manual choice). */
export function everything(segments: readonly SegmentFigures[]): CompactionChoice | undefined {
  let to = 0;
  while (to < segments.length && segments[to]!.compactable) to++;
  return to > 0 ? { from: 0, to, reason: 'manual' } : undefined;
}

export function choose(
  segments: readonly SegmentFigures[],
  o: CompactionPolicyOptions,
): CompactionChoice | undefined {
  let totalDead = 0;
  for (const s of segments) if (s.compactable) totalDead += s.deadBytes;
  if (totalDead >= o.maxDeadBytes) {
    const all = everything(segments);
    if (all) return { ...all, reason: 'dead-bytes' };
  }
  let best: CompactionChoice | undefined;
  let bestDead = 0;
  let i = 0;
  while (i < segments.length) {
    const qualifies = (s: SegmentFigures) =>
      s.compactable && s.bytes > 0 && s.deadBytes / s.bytes >= o.minDeadRatio;
    if (!qualifies(segments[i]!)) {
      i++;
      continue;
    }
    let j = i;
    let dead = 0;
    while (j < segments.length && qualifies(segments[j]!)) dead += segments[j++]!.deadBytes;
    if (dead >= o.minDeadBytes && dead > bestDead) {
      best = { from: i, to: j, reason: 'dead-ratio' };
      bestDead = dead;
    }
    i = j;
  }
  return best;
}
