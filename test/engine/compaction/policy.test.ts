/**
 * The compaction policy is pure: segment figures in, a contiguous run out.
 * Named after what a wrong policy does: compacts nothing when a run is due,
 * spans a segment it must not touch (active, unhinted), picks the smaller of
 * two runs, ignores the total-dead-bytes trigger, or compacts for nothing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CompactionPolicyOptions,
  choose,
  everything,
  type SegmentFigures,
} from '../../../src/engine/compaction/policy.js';

const o: CompactionPolicyOptions = { minDeadRatio: 0.5, minDeadBytes: 100, maxDeadBytes: 10_000 };
const seg = (baseOffset: number, bytes: number, deadBytes: number, compactable = true): SegmentFigures => ({
  baseOffset,
  bytes,
  deadBytes,
  compactable,
});

describe('compaction policy', () => {
  it('nothing to do: no segment reaches the dead ratio', () => {
    expect(choose([seg(0, 1000, 100), seg(10, 1000, 499), seg(20, 1000, 0, false)], o)).toBeUndefined();
  });

  it('nothing to do: an empty log, or only the active segment', () => {
    expect(choose([], o)).toBeUndefined();
    expect(choose([seg(0, 1000, 1000, false)], o)).toBeUndefined();
    expect(everything([])).toBeUndefined();
    expect(everything([seg(0, 1000, 900, false)])).toBeUndefined();
  });

  it('a qualifying run below minDeadBytes is left alone', () => {
    expect(choose([seg(0, 150, 90), seg(10, 1000, 0)], o)).toBeUndefined();
  });

  it('dead-ratio run: the contiguous qualifying segments in the middle, not their neighbours', () => {
    const segs = [
      seg(0, 1000, 100),
      seg(10, 1000, 600),
      seg(20, 1000, 500),
      seg(30, 1000, 200),
      seg(40, 50, 0, false),
    ];
    expect(choose(segs, o)).toEqual({ from: 1, to: 3, reason: 'dead-ratio' });
  });

  it('of two runs the one with more dead bytes wins', () => {
    const segs = [
      seg(0, 1000, 600),
      seg(10, 1000, 0),
      seg(20, 1000, 700),
      seg(30, 1000, 900),
      seg(40, 0, 0, false),
    ];
    expect(choose(segs, o)).toEqual({ from: 2, to: 4, reason: 'dead-ratio' });
  });

  it('a non-compactable segment (sealed but not hinted) splits a run', () => {
    const segs = [seg(0, 1000, 900), seg(10, 1000, 900, false), seg(20, 1000, 950), seg(30, 10, 0, false)];
    expect(choose(segs, o)).toEqual({ from: 2, to: 3, reason: 'dead-ratio' });
  });

  it('a run never includes the active segment, however dead it looks', () => {
    const segs = [seg(0, 1000, 900), seg(10, 1000, 900, false)];
    expect(choose(segs, o)).toEqual({ from: 0, to: 1, reason: 'dead-ratio' });
  });

  it('an empty segment (0 bytes) does not qualify (no division by zero)', () => {
    expect(choose([seg(0, 0, 0), seg(10, 0, 0, false)], { ...o, minDeadBytes: 0 })).toBeUndefined();
  });

  it('total dead bytes trigger: every compactable segment from the oldest, even with low ratios', () => {
    const segs = [seg(0, 10_000, 4000), seg(10, 10_000, 4000), seg(20, 10_000, 2000), seg(30, 500, 0, false)];
    expect(choose(segs, o)).toEqual({ from: 0, to: 3, reason: 'dead-bytes' });
  });

  it('total dead bytes count only compactable segments', () => {
    const segs = [seg(0, 10_000, 4000), seg(10, 10_000, 4000), seg(20, 10_000, 9000, false)];
    expect(choose(segs, o)).toBeUndefined();
  });

  it('total dead bytes trigger stops at the first segment it may not compact', () => {
    const segs = [
      seg(0, 10_000, 4000),
      seg(10, 10_000, 4000),
      seg(20, 10_000, 4000, false),
      seg(30, 10_000, 4000),
    ];
    expect(choose(segs, o)).toEqual({ from: 0, to: 2, reason: 'dead-bytes' });
  });

  it('everything: from the oldest up to the first non-compactable one', () => {
    expect(everything([seg(0, 1, 0), seg(1, 1, 0), seg(2, 1, 0, false), seg(3, 1, 0)])).toEqual({
      from: 0,
      to: 2,
      reason: 'manual',
    });
  });

  it('property: a choice is a non-empty contiguous run of compactable segments that is worth it', () => {
    const figures = fc.array(
      fc
        .record({ bytes: fc.nat({ max: 5000 }), dead: fc.nat({ max: 5000 }), compactable: fc.boolean() })
        .map(({ bytes, dead, compactable }) => ({ bytes, deadBytes: Math.min(dead, bytes), compactable })),
      { maxLength: 12 },
    );
    const opts = fc.record({
      minDeadRatio: fc.double({ min: 0.01, max: 1, noNaN: true }),
      minDeadBytes: fc.nat({ max: 3000 }),
      maxDeadBytes: fc.nat({ max: 30_000 }),
    });
    fc.assert(
      fc.property(figures, opts, (fs, po) => {
        const segs = fs.map((f, i) => ({ baseOffset: i * 100, ...f }));
        const c = choose(segs, po);
        let totalDead = 0;
        for (const s of segs) if (s.compactable) totalDead += s.deadBytes;
        // Maximal runs of qualifying segments and their dead bytes.
        const runs: { from: number; to: number; dead: number }[] = [];
        const qualifies = (s: SegmentFigures) =>
          s.compactable && s.bytes > 0 && s.deadBytes / s.bytes >= po.minDeadRatio;
        for (let i = 0; i < segs.length; ) {
          if (!qualifies(segs[i]!)) {
            i++;
            continue;
          }
          let j = i;
          let dead = 0;
          while (j < segs.length && qualifies(segs[j]!)) dead += segs[j++]!.deadBytes;
          runs.push({ from: i, to: j, dead });
          i = j;
        }
        const worth = runs.filter((r) => r.dead > 0 && r.dead >= po.minDeadBytes);
        if (!c) {
          // Nothing chosen: no qualifying run is worth it, and the total trigger did not fire.
          if (segs[0]?.compactable) expect(totalDead).toBeLessThan(po.maxDeadBytes);
          expect(worth).toEqual([]);
          return;
        }
        expect(c.from).toBeLessThan(c.to);
        for (let i = c.from; i < c.to; i++) expect(segs[i]!.compactable).toBe(true);
        if (c.reason === 'dead-bytes') {
          expect(c.from).toBe(0);
          expect(totalDead).toBeGreaterThanOrEqual(po.maxDeadBytes);
          expect(c.to === segs.length || !segs[c.to]!.compactable).toBe(true);
        } else {
          let dead = 0;
          for (let i = c.from; i < c.to; i++) {
            const s = segs[i]!;
            expect(s.deadBytes / s.bytes).toBeGreaterThanOrEqual(po.minDeadRatio);
            dead += s.deadBytes;
          }
          expect(dead).toBeGreaterThanOrEqual(po.minDeadBytes);
          // A whole maximal run, and none has more dead bytes.
          expect(runs.some((r) => r.from === c.from && r.to === c.to)).toBe(true);
          for (const r of worth) expect(r.dead).toBeLessThanOrEqual(dead);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
