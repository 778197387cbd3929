/**
 * The liveness snapshot a rewrite works from: for each input segment, the
 * [slot, position] pairs of the keydir entries that point into it. Taken on
 * the event loop by walking the keydir's slots (typed arrays: a few ns a
 * slot) in slices of SNAPSHOT_STEP_MS with a full loop turn between them, so
 * the rewrite itself, in the worker, never reads the keydir.
 *
 * Why a snapshot taken over several turns is enough: writes only ever point
 * a key at the active segment, never into a sealed input, so an entry that
 * points into an input when its slot is walked was live at the start, and
 * one that left meanwhile is a record the swap's compare-and-set will not
 * move (a newer write wins). The one way an entry moves back into an input
 * is an undone write (SegmentLog.rollbacks): the swap's verify then checks every
 * live record of the inputs is among the outputs, or aborts.
 */
import type { Keydir } from '../keydir.js';
import { MAX_SEGMENTS } from '../limits.js';
import { fullTurn } from './loop.js';
import { traced } from './trace.js';

/** Time a slice of the walk may hold the event loop, in ms (as the rewrite's and the swap's steps). */
const SNAPSHOT_STEP_MS = 1;
/**
 * Slots walked between two looks at the clock: ~256 us of walking where
 * the code runs unoptimised (a store's first compaction without the
 * loop-side warm-up: ~1 us a slot), a few us where it is optimised.
 */
const SLOTS_PER_CLOCK_CHECK = 256;
/** Most pairs per page of a list: pages are never copied to grow, and cross to the worker by transfer. */
const PAGE_PAIRS = 1 << 15;
/**
 * Pairs in a list's first page; each next page doubles, up to PAGE_PAIRS. A
 * full-size first page per input (256 KiB, zeroed on the event loop) was the
 * snapshot's largest cost when inputs hold few live keys (measured with
 * --cpu-prof: 15 inputs of ~3.5k live keys, more time allocating than walking).
 */
const FIRST_PAGE_PAIRS = 1 << 10;

/** An input's pairs, in pages of u32s; the last page is a view of the part filled. */
export class PairPages {
  readonly pages: Uint32Array[] = [];
  cur = new Uint32Array(0);
  at = 0;

  newPage(): Uint32Array {
    const pairs = Math.min(PAGE_PAIRS, Math.max(FIRST_PAGE_PAIRS, this.cur.length));
    this.cur = new Uint32Array(2 * pairs);
    this.pages.push(this.cur);
    this.at = 0;
    return this.cur;
  }

  take(): Uint32Array[] {
    const n = this.pages.length;
    if (n > 0) this.pages[n - 1] = this.cur.subarray(0, this.at);
    return this.pages;
  }
}

/**
 * Per input (same order, by segment id), the [slot, position] pairs of the
 * keydir entries pointing into it, in pages (rewrite.ts joins and sorts
 * them, in the worker).
 */
export async function liveSnapshot(kd: Keydir, inputIds: readonly number[]): Promise<Uint32Array[][]> {
  const inputOf = new Int32Array(MAX_SEGMENTS + 1).fill(-1);
  inputIds.forEach((id, i) => {
    inputOf[id] = i;
  });
  const lists = inputIds.map(() => new PairPages());
  for (let s = 0; s < kd.slotLimit; ) {
    const t = performance.now();
    const until = t + SNAPSHOT_STEP_MS;
    do {
      // Re-read each time: the keydir may have been cleared (FLUSHALL) during a turn.
      const to = Math.min(kd.slotLimit, s + SLOTS_PER_CLOCK_CHECK);
      walkSlots(kd, inputOf, lists, s, to);
      s = to;
    } while (s < kd.slotLimit && performance.now() < until);
    traced('snapshot.slice', t);
    if (s < kd.slotLimit) await fullTurn();
  }
  return lists.map((l) => l.take());
}

/**
 * Slots [from, to): each pointing into an input (inputOf[segment] >= 0)
 * adds its pair to that input's list. A function of its own, called with
 * the same shapes by the event loop's warm-up (loop-warm-up.ts), so V8's
 * optimised code for it is there before a store's first compaction.
 */
export function walkSlots(
  kd: Keydir,
  inputOf: Int32Array,
  lists: readonly PairPages[],
  from: number,
  to: number,
): void {
  for (let s = from; s < to; s++) {
    const i = inputOf[kd.segmentOf(s)]!;
    if (i < 0) continue;
    const l = lists[i]!;
    const page = l.at < l.cur.length ? l.cur : l.newPage();
    page[l.at++] = s;
    page[l.at++] = kd.positionOf(s);
  }
}
