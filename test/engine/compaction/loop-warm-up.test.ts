/**
 * The event loop's warm-up (loop-warm-up.ts): a store whose compactions run
 * in the rewrite process has, once open and settled, V8's optimised code
 * for the loop's two per-key compaction passes (the snapshot's walkSlots,
 * the swap's moveRange and the keydir's compare-and-set it calls) before
 * any compaction (checked with V8's own %GetOptimizationStatus in a child
 * node); without the warm-up they are not optimised until a compaction
 * runs them. And its moves leave the keydir as the swap's do: each kept key
 * at its new place, a key that moved meanwhile where the newer write put it.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { warmUpLoopSide } from '../../../src/engine/compaction/loop-warm-up.js';
import { Moves } from '../../../src/engine/compaction/moves.js';
import { moveRange } from '../../../src/engine/compaction/swap.js';
import { openStore } from '../../../src/engine/index.js';
import { Keydir } from '../../../src/engine/keydir.js';
import { removeTempDirs, tempDir } from '../helpers.js';

const DIST = fileURLToPath(new URL('../../../dist/src/engine/', import.meta.url));
/** %GetOptimizationStatus bit: the function has optimised code (V8's OptimizationStatus::kOptimized). */
const OPTIMIZED = 1 << 4;

interface Status {
  walkSlots: number;
  moveRange: number;
  moveSlotIfAt: number;
}

/** In a fresh node: opens the store at `dir`, waits for its background work, reads the passes' optimisation status. */
function statusAfterOpen(dir: string): Status {
  const script = `
    import { openStore } from ${JSON.stringify(join(DIST, 'index.js'))};
    import { Keydir } from ${JSON.stringify(join(DIST, 'keydir.js'))};
    import { walkSlots } from ${JSON.stringify(join(DIST, 'compaction/snapshot.js'))};
    import { moveRange } from ${JSON.stringify(join(DIST, 'compaction/swap.js'))};
    const store = await openStore(${JSON.stringify(dir)}, { maxSegmentBytes: 1 << 20, compaction: { auto: false } });
    await store.settleBackground();
    const status = {
      walkSlots: %GetOptimizationStatus(walkSlots),
      moveRange: %GetOptimizationStatus(moveRange),
      moveSlotIfAt: %GetOptimizationStatus(Keydir.prototype.moveSlotIfAt),
    };
    await store.close();
    console.log(JSON.stringify(status));
  `;
  const out = execFileSync(
    process.execPath,
    ['--allow-natives-syntax', '--input-type=module', '-e', script],
    {
      encoding: 'utf8',
    },
  );
  return JSON.parse(out) as Status;
}

/** A store directory holding `bytes` of sealed segments (1 MiB each). */
async function storeOf(bytes: number): Promise<string> {
  const dir = tempDir();
  const store = await openStore(dir, { maxSegmentBytes: 1 << 20, compaction: { auto: false } });
  const value = Buffer.alloc(1000, 0x61);
  for (let i = 0; (i + 1) * 1000 <= bytes; i++) await store.set(`key-${i % 2000}`, value);
  await store.close();
  return dir;
}

afterAll(() => removeTempDirs());

describe("the event loop's compaction warm-up", () => {
  it("leaves the snapshot's walk and the swap's moves optimised at open (they are not without it)", async () => {
    expect(fs.existsSync(join(DIST, 'compaction/loop-warm-up.js')), 'needs npm run build').toBe(true);
    // Below the rewrite process's threshold (COMPACTION_WORKER_MIN_BYTES, 4 MiB): no warm-ups at open.
    const cold = statusAfterOpen(await storeOf(2 << 20));
    expect(cold.walkSlots & OPTIMIZED, 'walkSlots, no warm-up').toBe(0);
    expect(cold.moveRange & OPTIMIZED, 'moveRange, no warm-up').toBe(0);
    expect(cold.moveSlotIfAt & OPTIMIZED, 'moveSlotIfAt, no warm-up').toBe(0);
    const warm = statusAfterOpen(await storeOf(6 << 20));
    expect(warm.walkSlots & OPTIMIZED, `walkSlots after the warm-up (status ${warm.walkSlots})`).toBe(
      OPTIMIZED,
    );
    expect(warm.moveRange & OPTIMIZED, `moveRange after the warm-up (status ${warm.moveRange})`).toBe(
      OPTIMIZED,
    );
    expect(
      warm.moveSlotIfAt & OPTIMIZED,
      `moveSlotIfAt after the warm-up (status ${warm.moveSlotIfAt})`,
    ).toBe(OPTIMIZED);
  }, 60_000);

  it('ends early when told to stop', async () => {
    let asked = 0;
    await warmUpLoopSide(() => ++asked > 1);
    expect(asked).toBeLessThan(5);
  });

  it("moveRange moves a key only if it is still where the rewrite read it, and counts each segment's bytes", () => {
    const kd = new Keydir();
    const a = kd.set('a', 1, 100, 10, 0);
    const b = kd.set('b', 1, 200, 10, 0);
    const c = kd.set('c', 2, 300, 10, 0);
    const moves = new Moves();
    moves.add(a, 1, 100, 0, 24, 40);
    moves.add(b, 1, 200, 0, 64, 50);
    moves.add(c, 2, 300, 1, 24, 60);
    kd.set('b', 7, 10, 10, 0); // a newer write of b: it stays where that write put it
    const delta = new Float64Array(10);
    moveRange(kd, moves, Int32Array.of(5, 6), delta, 0, moves.count);
    expect([kd.segmentOf(a), kd.positionOf(a)]).toEqual([5, 24]);
    expect([kd.segmentOf(b), kd.positionOf(b)]).toEqual([7, 10]);
    expect([kd.segmentOf(c), kd.positionOf(c)]).toEqual([6, 24]);
    expect(Array.from(delta)).toEqual([0, -40, -60, 0, 0, 40, 60, 0, 0, 0]);
  });
});
