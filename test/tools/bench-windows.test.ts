/**
 * bench:compaction's measurement windows (tools/bench/compaction-jobs.ts
 * Windows): a foreground pair counts in the window current at its due time,
 * not the one current when the loop gets to run it.
 */
import { describe, expect, it } from 'vitest';
import { Samples, Windows } from '../../tools/bench/compaction-jobs.js';

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
