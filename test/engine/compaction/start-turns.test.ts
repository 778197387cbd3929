/**
 * The compaction's start goes to the event loop in pieces, each in a turn of
 * its own (issue 15): its event and the inputs' retains; the liveness
 * snapshot; building and sending the job to the rewrite process; each chunk
 * of the snapshot. A store's first compaction runs all of that code cold (V8
 * compiles each function at its first call): in one piece it held the loop
 * ~3-4 ms (bench:compaction's per-pair timeline), the slowest foreground
 * requests of a short compaction's window. Checked by the order of the
 * engine's traced sections against a counter of loop turns (a chain of
 * setImmediate), not by time.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../../src/engine/index.js';
import { removeTempDirs, silentLogger, tempDir } from '../helpers.js';

type Hook = (label: string, start: number) => void;
const hooks = globalThis as { __segkvTrace?: Hook | undefined };

afterAll(() => {
  hooks.__segkvTrace = undefined;
  removeTempDirs();
});

describe("the compaction's start", () => {
  it('runs its event, snapshot, job and first snapshot chunk in separate loop turns', async () => {
    const dir = tempDir();
    // Above COMPACTION_WORKER_MIN_BYTES (4 MiB) of sealed segments: the rewrite runs in its process.
    const store = await openStore(dir, {
      maxSegmentBytes: 1 << 20,
      compaction: { auto: false },
      logger: silentLogger,
    });
    try {
      const value = Buffer.alloc(1000, 0x61);
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < 6000; i++) writes.push(store.set(`key-${i % 1500}`, value));
      await Promise.all(writes);
      await store.settleBackground();

      let turn = 0;
      let counting = true;
      const count = () => {
        turn++;
        if (counting) setImmediate(count);
      };
      setImmediate(count);
      /** The turn of each traced section's first end, and of the compaction's start event. */
      const firstTurn = new Map<string, number>();
      hooks.__segkvTrace = (label) => {
        if (!firstTurn.has(label)) firstTurn.set(label, turn);
      };
      store.on('compaction', (e: { phase: string }) => {
        if (e.phase === 'start' && !firstTurn.has('start')) firstTurn.set('start', turn);
      });
      const r = await store.compact();
      counting = false;
      hooks.__segkvTrace = undefined;
      expect(r?.workerCpuMs, 'the rewrite ran in the rewrite process').not.toBeNull();

      const at = (label: string) => {
        const t = firstTurn.get(label);
        expect(t, `${label} was traced`).toBeDefined();
        return t!;
      };
      expect(at('compactor.start')).toBe(at('start'));
      expect(at('snapshot.slice')).toBeGreaterThan(at('start'));
      expect(at('worker.send-job')).toBeGreaterThan(at('snapshot.slice'));
      expect(at('worker.send-live')).toBeGreaterThan(at('worker.send-job'));
    } finally {
      await store.close();
    }
  });
});
