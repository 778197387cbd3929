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
 * is an undone write (store.rollbacks): the swap's verify then checks every
 * live record of the inputs is among the outputs, or aborts.
 */
import type { Keydir } from '../keydir.js';
import { MAX_SEGMENTS } from '../limits.js';
import type { Segment } from '../segment.js';
import { fullTurn } from './loop.js';
import { traced } from './trace.js';

/** Time a slice of the walk may hold the event loop, in ms (as the rewrite's and the swap's steps). */
const SNAPSHOT_STEP_MS = 1;
/** Slots walked between two looks at the clock. */
const SLOTS_PER_CLOCK_CHECK = 4096;
/** Pairs a list starts with room for. */
const INITIAL_PAIRS = 1024;

/** A growable list of u32 pairs. */
class PairList {
  data = new Uint32Array(2 * INITIAL_PAIRS);
  length = 0;

  push(a: number, b: number): void {
    if (this.length + 2 > this.data.length) {
      const bigger = new Uint32Array(2 * this.data.length);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = a;
    this.data[this.length++] = b;
  }

  /** The pairs, in a buffer of their own (transferable). */
  take(): Uint32Array {
    return this.length === this.data.length ? this.data : this.data.slice(0, this.length);
  }
}

/** Per input (same order), the [slot, position] pairs of the keydir entries pointing into it. */
export async function liveSnapshot(kd: Keydir, inputs: readonly Segment[]): Promise<Uint32Array[]> {
  const inputOf = new Int32Array(MAX_SEGMENTS + 1).fill(-1);
  inputs.forEach((s, i) => {
    inputOf[s.id] = i;
  });
  const lists = inputs.map(() => new PairList());
  for (let s = 0; s < kd.slotLimit; ) {
    const t = performance.now();
    const until = t + SNAPSHOT_STEP_MS;
    do {
      // Re-read each time: the keydir may have been cleared (FLUSHALL) during a turn.
      const to = Math.min(kd.slotLimit, s + SLOTS_PER_CLOCK_CHECK);
      for (; s < to; s++) {
        const i = inputOf[kd.segmentOf(s)]!;
        if (i >= 0) lists[i]!.push(s, kd.positionOf(s));
      }
    } while (s < kd.slotLimit && performance.now() < until);
    traced('snapshot.slice', t);
    if (s < kd.slotLimit) await fullTurn();
  }
  return lists.map((l) => l.take());
}
