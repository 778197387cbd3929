/**
 * Kept live values of a rewrite: where each was and where it now is, one
 * entry per kept record, in pages of typed arrays. No JS string or object
 * per entry: with ~1M kept keys, arrays of numbers and key strings made the
 * scavenger copy them again and again and then major GCs trace them (10–40
 * ms pauses during the rewrite, measured with the benchmark's stall trace);
 * typed arrays live off the JS heap, pages never need copying to grow, and a
 * rewrite done in its own process (rewrite-process.ts) hands its pages to the event
 * loop by transfer, without a copy.
 */

/** Moves per page: each page is six typed arrays of this many entries (384 KiB in all). */
const MOVES_PAGE_SHIFT = 14;
const MOVES_PAGE = 1 << MOVES_PAGE_SHIFT;
const MOVES_MASK = MOVES_PAGE - 1;

/** The pages of a Moves, as a worker transfers them. */
export interface MovesPages {
  count: number;
  slot: Int32Array[];
  fromSegment: Uint32Array[];
  fromPosition: Uint32Array[];
  toOutput: Uint32Array[];
  toPosition: Uint32Array[];
  size: Uint32Array[];
}

export class Moves {
  count = 0;
  private readonly slotPages: Int32Array[] = [];
  private readonly fromSegmentPages: Uint32Array[] = [];
  private readonly fromPositionPages: Uint32Array[] = [];
  private readonly toOutputPages: Uint32Array[] = [];
  private readonly toPositionPages: Uint32Array[] = [];
  private readonly sizePages: Uint32Array[] = [];

  /** Moves from pages another thread filled (see `pages`). */
  static fromPages(p: MovesPages): Moves {
    const m = new Moves();
    m.count = p.count;
    m.slotPages.push(...p.slot);
    m.fromSegmentPages.push(...p.fromSegment);
    m.fromPositionPages.push(...p.fromPosition);
    m.toOutputPages.push(...p.toOutput);
    m.toPositionPages.push(...p.toPosition);
    m.sizePages.push(...p.size);
    return m;
  }

  /** The pages, to transfer to another thread (this Moves must not be used after the transfer). */
  pages(): MovesPages {
    return {
      count: this.count,
      slot: this.slotPages,
      fromSegment: this.fromSegmentPages,
      fromPosition: this.fromPositionPages,
      toOutput: this.toOutputPages,
      toPosition: this.toPositionPages,
      size: this.sizePages,
    };
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
    if (i === 0) {
      this.slotPages.push(new Int32Array(MOVES_PAGE));
      this.fromSegmentPages.push(new Uint32Array(MOVES_PAGE));
      this.fromPositionPages.push(new Uint32Array(MOVES_PAGE));
      this.toOutputPages.push(new Uint32Array(MOVES_PAGE));
      this.toPositionPages.push(new Uint32Array(MOVES_PAGE));
      this.sizePages.push(new Uint32Array(MOVES_PAGE));
    }
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
