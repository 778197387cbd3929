/**
 * Kept live values of a rewrite: where each was and where it now is, one
 * entry per kept record, in pages of typed arrays. No JS string or object
 * per entry: with ~1M kept keys, arrays of numbers and key strings made the
 * scavenger copy them again and again and then major GCs trace them (10–40
 * ms pauses during the rewrite, measured with the benchmark's stall trace);
 * typed arrays live off the JS heap and pages never need copying to grow. A
 * rewrite done in its own process (rewrite-process.ts) sends its moves to the
 * event loop in chunks (`chunk`, `append`) as it goes.
 */

/** Moves per page: each page is six typed arrays of this many entries (384 KiB in all). */
const MOVES_PAGE_SHIFT = 14;
const MOVES_PAGE = 1 << MOVES_PAGE_SHIFT;
const MOVES_MASK = MOVES_PAGE - 1;

/**
 * Moves that cross between processes a few at a time (rewrite-process.ts):
 * entries [from, from + count) of a Moves, as views of its pages.
 */
export interface MovesChunk {
  slot: Int32Array;
  fromSegment: Uint32Array;
  fromPosition: Uint32Array;
  toOutput: Uint32Array;
  toPosition: Uint32Array;
  size: Uint32Array;
}

/** Bytes of one move in a chunk (six 4-byte fields). */
export const MOVE_BYTES = 24;

/**
 * The most moves a chunk of about `bytes` bytes may hold such that chunks
 * of that many, taken from a multiple of it, never cross a page (a power
 * of two, at least 1, at most a page).
 */
export function movesChunkSpan(bytes: number): number {
  let span = MOVES_PAGE;
  while (span > 1 && span * MOVE_BYTES > bytes) span >>>= 1;
  return span;
}

export class Moves {
  count = 0;
  private readonly slotPages: Int32Array[] = [];
  private readonly fromSegmentPages: Uint32Array[] = [];
  private readonly fromPositionPages: Uint32Array[] = [];
  private readonly toOutputPages: Uint32Array[] = [];
  private readonly toPositionPages: Uint32Array[] = [];
  private readonly sizePages: Uint32Array[] = [];

  /**
   * Entries [from, to) as views of one page (no copy): `from` must be a
   * multiple of `span` and `to - from` at most `span`, with `span` dividing
   * the page size (movesChunkSpan), so the range never crosses a page.
   */
  chunk(from: number, to: number): MovesChunk {
    const p = from >>> MOVES_PAGE_SHIFT;
    const i = from & MOVES_MASK;
    const n = to - from;
    if (n < 0 || to > this.count || i + n > MOVES_PAGE)
      throw new RangeError(`moves ${from}..${to} are not within one page of ${this.count}`);
    return {
      slot: this.slotPages[p]!.subarray(i, i + n),
      fromSegment: this.fromSegmentPages[p]!.subarray(i, i + n),
      fromPosition: this.fromPositionPages[p]!.subarray(i, i + n),
      toOutput: this.toOutputPages[p]!.subarray(i, i + n),
      toPosition: this.toPositionPages[p]!.subarray(i, i + n),
      size: this.sizePages[p]!.subarray(i, i + n),
    };
  }

  /** Appends a chunk's entries (copied into this Moves's pages). */
  append(c: MovesChunk): void {
    const n = c.slot.length;
    for (const a of [c.fromSegment, c.fromPosition, c.toOutput, c.toPosition, c.size])
      if (a.length !== n) throw new RangeError('a moves chunk has arrays of different lengths');
    for (let done = 0; done < n; ) {
      const i = this.count & MOVES_MASK;
      if (i === 0) this.newPage();
      const p = this.count >>> MOVES_PAGE_SHIFT;
      const k = Math.min(n - done, MOVES_PAGE - i);
      this.slotPages[p]!.set(c.slot.subarray(done, done + k), i);
      this.fromSegmentPages[p]!.set(c.fromSegment.subarray(done, done + k), i);
      this.fromPositionPages[p]!.set(c.fromPosition.subarray(done, done + k), i);
      this.toOutputPages[p]!.set(c.toOutput.subarray(done, done + k), i);
      this.toPositionPages[p]!.set(c.toPosition.subarray(done, done + k), i);
      this.sizePages[p]!.set(c.size.subarray(done, done + k), i);
      this.count += k;
      done += k;
    }
  }

  private newPage(): void {
    this.slotPages.push(new Int32Array(MOVES_PAGE));
    this.fromSegmentPages.push(new Uint32Array(MOVES_PAGE));
    this.fromPositionPages.push(new Uint32Array(MOVES_PAGE));
    this.toOutputPages.push(new Uint32Array(MOVES_PAGE));
    this.toPositionPages.push(new Uint32Array(MOVES_PAGE));
    this.sizePages.push(new Uint32Array(MOVES_PAGE));
  }

  /** Adds a kept record: the key's keydir slot when read, where it was, where it goes, and its size in bytes. */
  add(
    slot: number,
    fromSegment: number,
    fromPosition: number,
    toOutput: number,
    toPosition: number,
    size: number,
  ): void {
    const i = this.count & MOVES_MASK;
    if (i === 0) this.newPage();
    const p = this.count >>> MOVES_PAGE_SHIFT;
    this.slotPages[p]![i] = slot;
    this.fromSegmentPages[p]![i] = fromSegment;
    this.fromPositionPages[p]![i] = fromPosition;
    this.toOutputPages[p]![i] = toOutput;
    this.toPositionPages[p]![i] = toPosition;
    this.sizePages[p]![i] = size;
    this.count++;
  }

  /** The key's keydir slot at the liveness snapshot: the swap checks and moves it without hashing the key again. */
  slot(i: number): number {
    return this.slotPages[i >>> MOVES_PAGE_SHIFT]![i & MOVES_MASK]!;
  }

  fromSegment(i: number): number {
    return this.fromSegmentPages[i >>> MOVES_PAGE_SHIFT]![i & MOVES_MASK]!;
  }

  fromPosition(i: number): number {
    return this.fromPositionPages[i >>> MOVES_PAGE_SHIFT]![i & MOVES_MASK]!;
  }

  /** Index of the output in RewriteResult.outputs. */
  toOutput(i: number): number {
    return this.toOutputPages[i >>> MOVES_PAGE_SHIFT]![i & MOVES_MASK]!;
  }

  toPosition(i: number): number {
    return this.toPositionPages[i >>> MOVES_PAGE_SHIFT]![i & MOVES_MASK]!;
  }

  /** The record's size in bytes (header + key + value). */
  size(i: number): number {
    return this.sizePages[i >>> MOVES_PAGE_SHIFT]![i & MOVES_MASK]!;
  }
}
