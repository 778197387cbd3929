/**
 * bench:compaction --prior-compaction (tools/bench/compaction-jobs.ts): the
 * loaded job's process first compacts another working copy of the data set,
 * so the measured compaction is its second; that copy is deleted and the
 * measured store starts from the same data set as without the option.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CompactResult, runJob } from '../../tools/bench/compaction-jobs.js';

const root = mkdtempSync(join(tmpdir(), 'segkv-prior-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const shape = { live: 0.5, records: 2000 };
const maxSegmentBytes = 256 * 1024;

function compactJob(dir: string, priorCompaction: boolean) {
  mkdirSync(dir);
  return runJob({
    kind: 'compact',
    master: join(root, 'master'),
    dir,
    link: false,
    shape,
    maxSegmentBytes,
    rate: 0,
    warmupMs: 0,
    withoutMs: 0,
    cpuShare: undefined,
    priorCompaction,
  }) as Promise<CompactResult>;
}

describe('bench:compaction --prior-compaction', () => {
  it('compacts a copy first, deletes it, and measures a compaction of the same data set', async () => {
    const master = join(root, 'master');
    mkdirSync(master);
    await runJob({ kind: 'load', dir: master, shape, maxSegmentBytes });
    const masterFiles = readdirSync(master).sort();

    const first = await compactJob(join(root, 'first'), false);
    const second = await compactJob(join(root, 'second'), true);

    expect(first.priorMs).toBeUndefined();
    expect(second.priorMs).toBeGreaterThan(0);
    expect(readdirSync(root).sort()).toEqual(['first', 'master', 'second']);
    expect(readdirSync(master).sort()).toEqual(masterFiles);
    expect(second.before).toEqual(first.before);
    expect(second.segmentsIn).toBe(first.segmentsIn);
    expect(second.keysKept).toBe(first.keysKept);
    expect(second.after.keys).toBe(first.after.keys);
  }, 60_000);
});
