/**
 * Moves in chunks (moves.ts): what the rewrite process sends, a chunk at a
 * time, is what the event loop rebuilds, whatever the chunk size and
 * wherever the pages end.
 */
import { describe, expect, it } from 'vitest';
import { MOVE_BYTES, Moves, movesChunkSpan } from '../../../src/engine/compaction/moves.js';

const PAGE = 1 << 14;

function filled(n: number): Moves {
  const m = new Moves();
  for (let i = 0; i < n; i++) m.add(i * 7 - 3, i % 5, i * 11, i % 3, i * 13, 100 + (i % 17));
  return m;
}

function entries(m: Moves): number[][] {
  return Array.from({ length: m.count }, (_, i) => [
    m.slot(i),
    m.fromSegment(i),
    m.fromPosition(i),
    m.toOutput(i),
    m.toPosition(i),
    m.size(i),
  ]);
}

describe('moves in chunks', () => {
  it('movesChunkSpan is the largest power of two within the bytes, at most a page', () => {
    expect(movesChunkSpan(48 * 1024)).toBe(2048);
    expect(movesChunkSpan(2048 * MOVE_BYTES - 1)).toBe(1024);
    expect(movesChunkSpan(1)).toBe(1);
    expect(movesChunkSpan(1 << 30)).toBe(PAGE);
  });

  for (const span of [1, 1024, 2048, PAGE]) {
    it(`chunks of ${span} taken in order and appended rebuild the same moves across pages`, () => {
      const n = 2 * PAGE + 5; // three pages, the last nearly empty
      const a = filled(n);
      const b = new Moves();
      for (let from = 0; from < n; from += span) b.append(a.chunk(from, Math.min(n, from + span)));
      expect(b.count).toBe(n);
      expect(entries(b)).toEqual(entries(a));
    });
  }

  it('appends chunks of any length, crossing the pages of the receiving side', () => {
    const a = filled(PAGE + 100);
    const b = new Moves();
    b.append(a.chunk(0, 3)); // the receiving side's pages now end 3 entries later than the sender's
    for (let from = 3; from < a.count; ) {
      const to = Math.min(a.count, from + 4096, (Math.floor(from / PAGE) + 1) * PAGE);
      b.append(a.chunk(from, to));
      from = to;
    }
    expect(entries(b)).toEqual(entries(a));
  });

  it('refuses a range across a page, past the end, or with arrays of different lengths', () => {
    const a = filled(PAGE + 10);
    expect(() => a.chunk(PAGE - 1, PAGE + 1)).toThrow(RangeError);
    expect(() => a.chunk(PAGE, PAGE + 11)).toThrow(RangeError);
    const c = a.chunk(0, 4);
    expect(() => new Moves().append({ ...c, size: c.size.subarray(0, 3) })).toThrow(RangeError);
  });

  it('a chunk is a view of the pages, not a copy', () => {
    const a = filled(10);
    const c = a.chunk(0, 10);
    expect(c.slot.buffer.byteLength).toBe(PAGE * 4);
    expect(c.slot.byteLength).toBe(40);
  });
});
