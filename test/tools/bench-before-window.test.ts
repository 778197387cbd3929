/**
 * bench:compaction's window before the compaction, on its own
 * (tools/bench/compaction-jobs.ts ForegroundResult.beforeGet/beforeSet):
 * the baseline `get`/`set` pools the windows before and after the
 * compaction; the before window's figures come from its pairs alone.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CompactResult, runJob } from '../../tools/bench/compaction-jobs.js';

const root = mkdtempSync(join(tmpdir(), 'segkv-before-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('bench:compaction window before the compaction', () => {
  it('reports the before window alone beside the pooled windows without compaction', async () => {
    const shape = { live: 0.5, records: 2000 };
    const maxSegmentBytes = 256 * 1024;
    const master = join(root, 'master');
    mkdirSync(master);
    await runJob({ kind: 'load', dir: master, shape, maxSegmentBytes });
    const dir = join(root, 'loaded');
    mkdirSync(dir);
    const r = (await runJob({
      kind: 'compact',
      master,
      dir,
      link: false,
      shape,
      maxSegmentBytes,
      rate: 400,
      warmupMs: 50,
      withoutMs: 300,
      cpuShare: undefined,
      priorCompaction: false,
    })) as CompactResult;
    const w = r.without!;
    // About 120 pairs in each 300 ms window at 400/s: the before window holds about half the pooled pairs.
    expect(w.beforeGet.samples).toBeGreaterThan(50);
    expect(w.beforeGet.samples).toBeLessThan(w.get.samples - 50);
    expect(w.beforeSet.samples).toBeGreaterThan(50);
    expect(w.beforeSet.samples).toBeLessThan(w.set.samples - 50);
    expect(w.beforeGet.max).toBeLessThanOrEqual(w.get.max);
  }, 60_000);
});
