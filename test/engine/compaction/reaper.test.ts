/**
 * The reaper (compaction/reaper.ts) frees compacted-away segment files a few
 * MiB per event-loop turn instead of all at once at their close. What must
 * hold: it only ever truncates a file that no longer has a name (its unlink
 * or replacement is done, so a crash can never find a truncated segment under
 * a name), only once the segment is closed (no reader left), never a file of
 * a compaction that did not commit, and nothing stays open afterwards.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { type Fs, nodeFs } from '../../../src/engine/fs.js';
import { openStore } from '../../../src/engine/index.js';
import { silentLogger } from '../helpers.js';
import { deletedButOpen, fastTempDir, removeFastTempDirs } from './util.js';

afterAll(removeFastTempDirs);

/** Records each truncate of nodeFs (the reaper only truncates on the OS file system): link count and sizes. */
function recordTruncates(): { nlink: number; from: number; to: number }[] {
  const truncates: { nlink: number; from: number; to: number }[] = [];
  const real = nodeFs.truncate;
  vi.spyOn(nodeFs, 'truncate').mockImplementation((fd, length) => {
    const st = fs.fstatSync(fd);
    truncates.push({ nlink: st.nlink, from: st.size, to: length });
    real(fd, length);
  });
  return truncates;
}

afterEach(() => {
  vi.restoreAllMocks();
});

async function filledStore(dir: string, fsImpl: Fs, onStep?: (s: string) => void) {
  const store = await openStore(dir, {
    fs: fsImpl,
    maxSegmentBytes: 64 * 1024,
    fsync: 'never',
    logger: silentLogger,
    compaction: { auto: false, ...(onStep && { onStep }) },
  });
  const value = 'v'.repeat(900);
  for (let round = 0; round < 6; round++) {
    for (let i = 0; i < 200; i++) await store.set(`key-${i}`, `${round}${value}`);
  }
  return store;
}

describe('the reaper', () => {
  it('truncates only unnamed, closed input files, down to zero, and leaves nothing open', async () => {
    const dir = fastTempDir();
    const truncates = recordTruncates();
    const store = await filledStore(dir, nodeFs);
    try {
      const segsBefore = fs.readdirSync(dir).filter((n) => n.endsWith('.seg')).length;
      const r = await store.compact();
      expect(r?.segmentsIn).toBeGreaterThan(2);
      // Inputs on the reaper's side were truncated (each down to 0), and only once nameless.
      expect(truncates.length).toBeGreaterThanOrEqual(r!.segmentsIn);
      for (const t of truncates) {
        expect(t.nlink, 'a truncated file has no name left').toBe(0);
        expect(t.to).toBeLessThan(t.from);
      }
      expect(truncates.filter((t) => t.to === 0).length).toBe(r!.segmentsIn);
      expect(deletedButOpen(dir), 'freed and closed when compact() resolves').toEqual([]);
      expect(fs.readdirSync(dir).filter((n) => n.endsWith('.seg')).length).toBeLessThan(segsBefore);
      for (let i = 0; i < 200; i++) expect((await store.get(`key-${i}`))?.toString()[0]).toBe('5');
    } finally {
      await store.close();
    }
  });

  it('never truncates an input that has another name (hard-linked backup): it stays intact', async () => {
    const dir = fastTempDir();
    const backup = fastTempDir();
    const truncates = recordTruncates();
    const store = await filledStore(dir, nodeFs);
    try {
      store.sealActive();
      await store.settleBackground();
      const segs = fs.readdirSync(dir).filter((n) => n.endsWith('.seg'));
      const before = new Map<string, Buffer>();
      for (const n of segs) {
        fs.linkSync(join(dir, n), join(backup, n));
        before.set(n, fs.readFileSync(join(dir, n)));
      }
      const r = await store.compact();
      expect(r?.segmentsIn).toBeGreaterThan(2);
      expect(truncates, 'nothing truncated: every input still had a name').toEqual([]);
      for (const [n, bytes] of before) expect(fs.readFileSync(join(backup, n)).equals(bytes), n).toBe(true);
      expect(deletedButOpen(dir)).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('truncates nothing when the swap aborts before its commit', async () => {
    const dir = fastTempDir();
    const truncates = recordTruncates();
    const store = await filledStore(dir, nodeFs, (s) => {
      if (s === 'verified') throw new Error('injected failure before the commit');
    });
    try {
      await expect(store.compact()).rejects.toThrow('injected failure');
      expect(truncates).toEqual([]);
      expect(deletedButOpen(dir)).toEqual([]);
      for (let i = 0; i < 200; i++) expect((await store.get(`key-${i}`))?.toString()[0]).toBe('5');
    } finally {
      await store.close();
    }
  });
});
