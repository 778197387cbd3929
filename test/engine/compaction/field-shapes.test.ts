/**
 * The swap leaves V8's view of a Segment as it found it (issue 15): every
 * segment's `liveBytes` stays a small integer after a compaction. The swap
 * sums moved bytes in a Float64Array; storing such a sum as read (a heap
 * number) made V8 widen the field to a double on every Segment, deprecating
 * the class's map, and the foreground's optimised code that touches a
 * segment was deoptimised ("wrong map", `--trace-deopt`) in the middle of the
 * compaction, then ran unoptimised until V8 compiled it again.
 */
import { serialize } from 'node:v8';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../../src/engine/store.js';
import { silentLogger } from '../helpers.js';
import { fastTempDir, removeFastTempDirs } from './util.js';

afterAll(removeFastTempDirs);

/** Whether V8 holds `n` as a small integer: its serialization's tag is 'I' (int32), not 'N' (a heap number, even a whole one). */
function smallInteger(n: number): boolean {
  return serialize(n)[2] === 0x49;
}

describe("the swap and V8's shapes", () => {
  it("keeps every segment's liveBytes a small integer, before and after a compaction, in old and new segments", async () => {
    const store = await openStore(fastTempDir(), {
      maxSegmentBytes: 16 * 1024,
      fsync: 'never',
      logger: silentLogger,
      compaction: { auto: false },
    });
    try {
      const value = 'v'.repeat(300);
      for (let round = 0; round < 5; round++)
        for (let k = 0; k < 200; k++) await store.set(`key-${k}`, `${round}${value}`);
      const segments = () => store.segmentLog.ordered;
      expect(segments().every((s) => smallInteger(s.liveBytes))).toBe(true);
      const r = await store.compact();
      expect(r?.keysKept).toBe(200);
      const after = segments().map((s) => ({
        name: s.name,
        liveBytes: s.liveBytes,
        small: smallInteger(s.liveBytes),
      }));
      expect(after.filter((s) => !s.small)).toEqual([]);
      expect(after.reduce((n, s) => n + s.liveBytes, 0)).toBe(store.stats().liveBytes);
      // A segment made after the compaction (the writes' next ones) starts as the first ones did.
      for (let k = 0; k < 200; k++) await store.set(`key-${k}`, `after${value}`);
      expect(
        segments()
          .filter((s) => !smallInteger(s.liveBytes))
          .map((s) => s.name),
      ).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
