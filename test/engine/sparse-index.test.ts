/**
 * SparseIndex.ofEntries: a compaction output's index as the worker thread
 * transfers it (two Float64Arrays, kept as they are) must answer every
 * lookup, encode to the same bytes and grow the same way as the index built
 * record by record.
 */
import { describe, expect, it } from 'vitest';
import { SparseIndex } from '../../src/engine/sparse-index.js';

function built(base: number, records: number): { index: SparseIndex; next: number; at: number } {
  const index = new SparseIndex(base, 64);
  let at = 16;
  let offset = base;
  for (let i = 0; i < records; i++) {
    index.observe(offset, at);
    at += 20 + (i % 7) * 9;
    offset += 1 + (i % 3);
  }
  return { index, next: offset, at };
}

describe('SparseIndex.ofEntries', () => {
  it('looks up, encodes and grows as the index it was taken from', () => {
    const { index, next, at } = built(1000, 500);
    const sealed = SparseIndex.ofEntries(
      1000,
      64,
      Float64Array.from(index.relOffsets),
      Float64Array.from(index.positions),
    );
    expect(sealed.relOffsets).toBeInstanceOf(Float64Array);
    for (let o = 990; o < next + 5; o++) expect(sealed.lookup(o, 16)).toBe(index.lookup(o, 16));
    expect(sealed.encode()).toEqual(index.encode());
    // Growing (not done to sealed outputs, but allowed): same entries kept as the original keeps.
    for (let i = 0; i < 50; i++) {
      index.observe(next + i, at + 30 * i);
      sealed.observe(next + i, at + 30 * i);
    }
    expect(sealed.encode()).toEqual(index.encode());
    const decoded = SparseIndex.decode(sealed.encode(), 1000, 64);
    expect(decoded).toBeInstanceOf(SparseIndex);
    expect((decoded as SparseIndex).encode()).toEqual(index.encode());
  });

  it('is empty and finds the first position when given no entries', () => {
    const sealed = SparseIndex.ofEntries(7, 64, new Float64Array(0), new Float64Array(0));
    expect(sealed.lookup(100, 16)).toBe(16);
    expect(sealed.encode()).toEqual(new SparseIndex(7, 64).encode());
  });
});
