/**
 * What a compaction tells its watchers: 'compaction' events in order (start,
 * monotone progress ending with segmentsDone == segmentsTotal, done with the
 * result), and stats().compaction (runs, bytesRead, bytesWritten,
 * reclaimedBytes, lastDurationMs, progress while running) that add up to
 * what happened on disk. Failure cases: progress going backwards or never
 * reaching the end, totals that change mid-run, stats that miss a run or
 * count bytes twice, an empty log counted as a run.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { CompactionResult, CompactionStats } from '../../../src/engine/compaction/compactor.js';
import { openStore, type StoreOptions } from '../../../src/engine/index.js';
import { silentLogger } from '../helpers.js';
import { fastTempDir, removeFastTempDirs, sizeOf } from './util.js';

afterAll(removeFastTempDirs);

type Ev =
  | { phase: 'start'; reason: string; segments: number; bytes: number }
  | { phase: 'progress'; segmentsDone: number; segmentsTotal: number; bytesDone: number; bytesTotal: number }
  | { phase: 'done'; result: CompactionResult }
  | { phase: 'error'; error: Error };

const opts: StoreOptions = {
  maxSegmentBytes: 2048,
  fsync: 'never',
  logger: silentLogger,
  compaction: { auto: false },
};

describe('compaction events and stats', () => {
  it('start, monotone progress ending at segmentsDone == segmentsTotal, done; stats add up, run after run', async () => {
    const dir = fastTempDir();
    const store = await openStore(dir, opts);
    try {
      for (let r = 0; r < 8; r++)
        for (let i = 0; i < 150; i++) await store.set(`k${i}`, `${r}`.padEnd(120, '-'));
      const segBytesBefore = sizeOf(dir, (n) => n.endsWith('.seg'));
      const events: Ev[] = [];
      const seen: CompactionStats[] = [];
      store.on('compaction', (e: Ev) => {
        events.push(e);
        if (e.phase === 'progress') seen.push(store.stats().compaction);
      });
      const result = await store.compact();
      expect(result).toBeDefined();
      const r = result!;

      // Order and shape.
      expect(events[0]!.phase).toBe('start');
      expect(events[events.length - 1]!.phase).toBe('done');
      const start = events[0] as Extract<Ev, { phase: 'start' }>;
      expect(start.reason).toBe('manual');
      expect(start.segments).toBeGreaterThan(20);
      const progress = events.filter((e): e is Extract<Ev, { phase: 'progress' }> => e.phase === 'progress');
      expect(events.slice(1, -1).every((e) => e.phase === 'progress')).toBe(true);
      expect(progress.length).toBeGreaterThan(1);
      // Monotone, totals fixed, within bounds, ending complete.
      for (let i = 0; i < progress.length; i++) {
        const p = progress[i]!;
        expect(p.segmentsTotal).toBe(start.segments);
        expect(p.bytesTotal).toBe(start.bytes);
        expect(p.segmentsDone).toBeLessThanOrEqual(p.segmentsTotal);
        expect(p.bytesDone).toBeLessThanOrEqual(p.bytesTotal);
        if (i > 0) {
          expect(p.segmentsDone, `progress ${i}: segmentsDone never goes back`).toBeGreaterThanOrEqual(
            progress[i - 1]!.segmentsDone,
          );
          expect(p.bytesDone, `progress ${i}: bytesDone never goes back`).toBeGreaterThanOrEqual(
            progress[i - 1]!.bytesDone,
          );
        }
      }
      const last = progress[progress.length - 1]!;
      expect(last.segmentsDone).toBe(last.segmentsTotal);
      expect(last.bytesDone).toBe(last.bytesTotal);
      // While it ran, stats said so.
      for (const s of seen) {
        expect(s.running).toBe(true);
        expect(s.progress).not.toBeNull();
      }

      // The result and the stats agree with each other and with the disk.
      const done = events[events.length - 1] as Extract<Ev, { phase: 'done' }>;
      expect(done.result).toEqual(r);
      expect(r.segmentsIn).toBe(start.segments);
      expect(r.bytesRead).toBe(start.bytes);
      expect(r.keysKept).toBe(150);
      expect(r.bytesWritten).toBe(
        sizeOf(dir, (n) => n.endsWith('.seg')) - store.stats().segments.at(-1)!.bytes,
      );
      expect(r.reclaimedBytes).toBe(r.bytesRead - r.bytesWritten);
      expect(r.reclaimedBytes).toBeGreaterThan(segBytesBefore / 2);
      const st = store.stats().compaction;
      expect(st).toMatchObject({
        running: false,
        progress: null,
        runs: 1,
        failures: 0,
        lastError: null,
        bytesRead: r.bytesRead,
        bytesWritten: r.bytesWritten,
        reclaimedBytes: r.reclaimedBytes,
        lastDurationMs: r.durationMs,
      });
      expect(st.lastDurationMs).toBeGreaterThanOrEqual(0);
      expect(st.lastRunAt).toBeGreaterThan(0);

      // A second run adds to the totals.
      for (let i = 0; i < 150; i++) await store.set(`k${i}`, 'again'.padEnd(120, '+'));
      const r2 = (await store.compact())!;
      const st2 = store.stats().compaction;
      expect(st2.runs).toBe(2);
      expect(st2.bytesRead).toBe(r.bytesRead + r2.bytesRead);
      expect(st2.bytesWritten).toBe(r.bytesWritten + r2.bytesWritten);
      expect(st2.reclaimedBytes).toBe(r.reclaimedBytes + r2.reclaimedBytes);
      expect(st2.lastDurationMs).toBe(r2.durationMs);
    } finally {
      await store.close();
    }
  });

  it('an empty log: compact() resolves undefined, emits nothing and counts no run', async () => {
    const store = await openStore(fastTempDir(), opts);
    try {
      const events: unknown[] = [];
      store.on('compaction', (e) => events.push(e));
      expect(await store.compact()).toBeUndefined();
      expect(events).toEqual([]);
      expect(store.stats().compaction).toMatchObject({ runs: 0, failures: 0, bytesRead: 0, running: false });
    } finally {
      await store.close();
    }
  });
});
