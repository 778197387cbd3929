/**
 * The event loop's warm-up: at the store's open (Compactor.start, with the
 * rewrite process's own warm-up, warm-up.ts), the loop runs the two
 * per-key passes a compaction gives it — the liveness snapshot's walk over
 * the keydir's slots (snapshot.ts walkSlots) and the swap's
 * compare-and-set moves (swap.ts moveRange), with the moves received in
 * chunks as from the rewrite process (Moves.append) — over a scratch
 * keydir of WARM_UP_KEYS keys, a few rounds, so that V8 has compiled and
 * optimised them before the first real compaction, not during it.
 *
 * Why (issue 15, foreground latency during compaction): in a store's first
 * compaction both passes ran unoptimised, ~2.3 us a moved key and ~0.9 us a
 * live key (CPU profile, bench:compaction --quick, 90% live: ~40 and ~15 ms
 * of the loop's CPU), so they took many more ~1 ms slices than warm code
 * does, and V8 compiled them with TurboFan during the compaction, on its
 * platform threads, which the loop then waited behind for a CPU (sched_switch
 * trace: at 90% live, the loop's longest waits for a CPU in the window were
 * behind V8's workers). The scratch objects are the classes the real passes
 * use (Keydir, Moves, typed arrays), so the optimised code applies to them;
 * functions without closures, so it is not tied to one call's context.
 *
 * Cost: ~20-40 ms of the loop's CPU at open in slices of ~1 ms, a scratch
 * keydir page (~2 MiB) left to the GC. Only stores whose first compaction
 * runs in the rewrite process get it (compactor.ts).
 */
import { Keydir } from '../keydir.js';
import { fullTurn } from './loop.js';
import { Moves } from './moves.js';
import { MOVES_PER_CHUNK } from './rewrite-process.js';
import { liveSnapshot } from './snapshot.js';
import { MOVES_PER_CLOCK_CHECK, moveRange } from './swap.js';

/** Keys of the scratch keydir: each round snapshots and moves them all. */
const WARM_UP_KEYS = 8192;
/** Rounds: each optimisation V8 makes during one is used (or redone) in the next. */
const WARM_UP_ROUNDS = 4;
/** Time a piece of the warm-up may hold the event loop, in ms (as the compaction's own slices). */
const WARM_UP_STEP_MS = 1;
/** Items between two looks at the clock (the swap's moves per clock check, so its pieces are the swap's). */
const ITEMS_PER_CLOCK_CHECK = MOVES_PER_CLOCK_CHECK;
/** Scratch segment ids: the keys move from two "inputs" to two "outputs", and back the next round. */
const FIRST_SIDE: readonly number[] = [1, 2];
const SECOND_SIDE: readonly number[] = [3, 4];
/** A segment no round reads from: the walk skips its keys, as it skips keys outside a compaction's inputs. */
const OTHER_SEGMENT = 5;

/** Runs `work(from, to)` over [0, n) in pieces, yielding a full loop turn every ~WARM_UP_STEP_MS. */
async function inSlices(
  n: number,
  stop: () => boolean,
  work: (from: number, to: number) => void,
): Promise<void> {
  for (let i = 0; i < n && !stop(); ) {
    const until = performance.now() + WARM_UP_STEP_MS;
    do {
      const to = Math.min(n, i + ITEMS_PER_CLOCK_CHECK);
      work(i, to);
      i = to;
    } while (i < n && performance.now() < until);
    await fullTurn();
  }
}

/** Warms the event loop's compaction passes; `stop()` true (the store closing) ends it early. */
export async function warmUpLoopSide(stop: () => boolean = () => false): Promise<void> {
  const kd = new Keydir();
  await inSlices(WARM_UP_KEYS, stop, (from, to) => {
    for (let k = from; k < to; k++) {
      const segment = k % 8 === 7 ? OTHER_SEGMENT : (FIRST_SIDE[k & 1] ?? 1);
      kd.set(`loop-warm-up-${k}`, segment, 64 * k, 100, 0);
    }
  });
  for (let round = 0; round < WARM_UP_ROUNDS && !stop(); round++) {
    const [from, to] = round % 2 === 0 ? [FIRST_SIDE, SECOND_SIDE] : [SECOND_SIDE, FIRST_SIDE];
    const live = await liveSnapshot(kd, from);
    // The rewrite's moves (as rewrite.ts adds them), then as the loop receives them: in chunks.
    const made = new Moves();
    for (let input = 0; input < live.length; input++)
      for (const pairs of live[input]!)
        for (let j = 0; j < pairs.length; j += 2)
          made.add(pairs[j]!, from[input]!, pairs[j + 1]!, input, pairs[j + 1]!, 100);
    const moves = new Moves();
    for (let at = 0; at < made.count; at += MOVES_PER_CHUNK)
      moves.append(made.chunk(at, Math.min(made.count, at + MOVES_PER_CHUNK)));
    const outIds = Int32Array.from(to);
    const delta = new Float64Array(OTHER_SEGMENT + 1);
    await inSlices(moves.count, stop, (a, b) => moveRange(kd, moves, outIds, delta, a, b));
  }
}
