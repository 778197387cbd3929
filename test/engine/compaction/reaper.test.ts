/**
 * The reaper (compaction/reaper.ts) holds each compaction input open once
 * more before its name goes, so that freeing its blocks happens when that
 * descriptor is closed in the thread pool, not at the segment's close on the
 * event loop. What must hold: every compacted-away file is freed and closed
 * when compact() resolves (Bitcask #249), a hard-linked copy of an input
 * elsewhere is left intact byte for byte, and a swap that aborts before its
 * commit holds nothing.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Fs, nodeFs } from '../../../src/engine/fs.js';
import { openStore } from '../../../src/engine/index.js';
import { silentLogger } from '../helpers.js';
import { deletedButOpen, fastTempDir, removeFastTempDirs } from './util.js';

afterAll(removeFastTempDirs);

/** nodeFs that counts opens of existing segment files read-only (how the reaper holds an input). */
function countingFs(): { fs: Fs; holds: string[] } {
  const holds: string[] = [];
  const wrapped: Fs = {
    ...nodeFs,
    open(path, flags) {
      if (flags === 'r' && path.endsWith('.seg')) holds.push(path);
      return nodeFs.open(path, flags);
    },
  };
  return { fs: wrapped, holds };
}

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
  it('holds every input before its name goes, and has freed and closed them all when compact() resolves', async () => {
    const dir = fastTempDir();
    const { fs: cfs, holds } = countingFs();
    const store = await filledStore(dir, cfs);
    try {
      const segsBefore = fs.readdirSync(dir).filter((n) => n.endsWith('.seg'));
      let holdsAtSwap = -1;
      store.on('compaction', (e: { phase: string }) => {
        if (e.phase === 'start') holdsAtSwap = holds.length;
      });
      const r = await store.compact();
      expect(r?.segmentsIn).toBeGreaterThan(2);
      // Opened read-only once more during the swap: one per input (outputs are opened by their new names).
      const held = holds.slice(holdsAtSwap).filter((p) => segsBefore.some((n) => p.endsWith(n)));
      expect(held.length).toBeGreaterThanOrEqual(r!.segmentsIn);
      expect(deletedButOpen(dir), 'freed and closed when compact() resolves').toEqual([]);
      expect(fs.readdirSync(dir).filter((n) => n.endsWith('.seg')).length).toBeLessThan(segsBefore.length);
      for (let i = 0; i < 200; i++) expect((await store.get(`key-${i}`))?.toString()[0]).toBe('5');
    } finally {
      await store.close();
    }
  });

  it('leaves a hard-linked copy of the inputs elsewhere intact, byte for byte', async () => {
    const dir = fastTempDir();
    const backup = fastTempDir();
    const store = await filledStore(dir, nodeFs);
    try {
      store.sealActive();
      await store.settleBackground();
      const before = new Map<string, Buffer>();
      for (const n of fs.readdirSync(dir).filter((f) => f.endsWith('.seg'))) {
        fs.linkSync(join(dir, n), join(backup, n));
        before.set(n, fs.readFileSync(join(dir, n)));
      }
      const r = await store.compact();
      expect(r?.segmentsIn).toBeGreaterThan(2);
      for (const [n, bytes] of before) expect(fs.readFileSync(join(backup, n)).equals(bytes), n).toBe(true);
      expect(deletedButOpen(dir)).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('holds nothing when the swap aborts before its commit', async () => {
    const dir = fastTempDir();
    const store = await filledStore(dir, nodeFs, (s) => {
      if (s === 'verified') throw new Error('injected failure before the commit');
    });
    try {
      await expect(store.compact()).rejects.toThrow('injected failure');
      expect(deletedButOpen(dir)).toEqual([]);
      for (let i = 0; i < 200; i++) expect((await store.get(`key-${i}`))?.toString()[0]).toBe('5');
    } finally {
      await store.close();
    }
  });
});
