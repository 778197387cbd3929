/**
 * bench:compaction's measurement windows (tools/bench/compaction-jobs.ts
 * Windows): a foreground pair counts in the window current at its due time,
 * not the one current when the loop gets to run it; the windows without
 * compaction can be cut into spans as long as the compaction's (spanP99s).
 */
import { describe, expect, it } from 'vitest';
import { Samples, spanP99s, Windows } from '../../tools/bench/compaction-jobs.js';

describe('Windows', () => {
  it('counts a pair in the window of its due time, even when asked after later switches', () => {
    const w = new Windows();
    const before = new Samples();
    const during = new Samples();
    w.switchTo(before, 100n);
    w.switchTo(undefined, 200n);
    w.switchTo(during, 210n);
    // The loop was busy from 195 to 215: the pairs due then are run late.
    expect(w.at(50n)).toBeUndefined();
    expect(w.at(195n)).toBe(before);
    expect(w.at(200n)).toBeUndefined();
    expect(w.at(205n)).toBeUndefined();
    expect(w.at(210n)).toBe(during);
    expect(w.at(10_000n)).toBe(during);
  });

  it('keeps answering for pairs due at the same time, and after a switch made later', () => {
    const w = new Windows();
    const a = new Samples();
    const b = new Samples();
    w.switchTo(a, 10n);
    expect(w.at(20n)).toBe(a);
    expect(w.at(20n)).toBe(a);
    w.switchTo(b, 30n);
    expect(w.at(25n)).toBe(a);
    expect(w.at(30n)).toBe(b);
  });

  it('refuses switches out of time order', () => {
    const w = new Windows();
    w.switchTo(new Samples(), 100n);
    expect(() => w.switchTo(undefined, 99n)).toThrow(/time order/);
  });
});

/** A window of `ms` with one get per ms, latency `us(i)` for the pair due at ms i. */
function windowOf(ms: number, us: (i: number) => number): Samples {
  const w = new Samples();
  w.startNs = 1_000_000n;
  w.endNs = w.startNs + BigInt(ms * 1e6);
  for (let i = 0; i < ms; i++) {
    w.getUs.push(us(i));
    w.getAtMs.push(i);
  }
  return w;
}

describe('spanP99s', () => {
  it('gives one p99 per whole span of each window; the leftover at a window end is not a span', () => {
    // 1000 ms, one 50 ms stall at 700 ms: its span's p99 is high, the others' are not.
    const w = windowOf(1000, (i) => (i >= 700 && i < 705 ? 50_000 - (i - 700) * 1000 : 100));
    const p = spanP99s([w], 300, 'get');
    expect(p).toEqual([100, 100, 47_000]); // 300 pairs: p99 is the 4th-worst
    // The whole window's p99 (its 11th-worst pair) does not see that stall.
    const pooled = [...w.getUs].sort((a, b) => a - b)[989];
    expect(pooled).toBe(100);
  });

  it('pools spans over several windows, and gives none when the span is longer than every window', () => {
    const a = windowOf(600, () => 200);
    const b = windowOf(450, () => 300);
    expect(spanP99s([a, b], 200, 'get')).toEqual([200, 200, 200, 300, 300]);
    expect(spanP99s([a, b], 700, 'get')).toEqual([]);
    expect(spanP99s([a, b], 0, 'get')).toEqual([]);
  });
});

describe('Windows bookkeeping', () => {
  it('starts a window at its switch and ends it at the next', () => {
    const w = new Windows();
    const a = new Samples();
    w.switchTo(a, 5_000_000n);
    w.switchTo(undefined, 8_000_000n);
    expect(a.startNs).toBe(5_000_000n);
    expect(a.endNs).toBe(8_000_000n);
    expect(a.ms).toBe(3);
  });
});
