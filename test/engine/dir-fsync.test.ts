/**
 * Directory fsyncs of the running store (a new segment's name in the sync
 * round, a sealed segment's hint and index names) wait in the thread pool,
 * never on the event loop: each one held it 2-12 ms on the shared machine,
 * longer while a compaction's outputs were being written back. With the
 * real file system, the synchronous `nodeFs.fsyncDir` is not called after
 * open, while rotation and sealing (which fsync the directory) go on.
 */
import { readdirSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeFs, openStore } from '../../src/engine/index.js';
import { removeTempDirs, silentLogger, tempDir } from './helpers.js';

afterAll(() => removeTempDirs());

describe('directory fsyncs of a running store', () => {
  for (const fsync of ['interval', 'always'] as const) {
    it(`run in the thread pool, not on the event loop (rotation and sealing, fsync ${fsync})`, async () => {
      const dir = tempDir();
      const store = await openStore(dir, {
        maxSegmentBytes: 4096,
        fsync,
        fsyncIntervalMs: 5,
        logger: silentLogger,
        compaction: { auto: false },
      });
      const original = nodeFs.fsyncDir;
      let onLoop = 0;
      nodeFs.fsyncDir = (d: string) => {
        onLoop++;
        original(d);
      };
      try {
        for (let i = 0; i < 200; i++) await store.set(`k${i}`, 'v'.repeat(100));
        await store.sync();
        await store.settleBackground();
        expect(store.stats().segments.length, 'the writes rotated and sealed segments').toBeGreaterThan(3);
        expect(
          readdirSync(dir).filter((f) => f.endsWith('.hint')).length,
          'sealed with hints',
        ).toBeGreaterThan(2);
      } finally {
        nodeFs.fsyncDir = original;
        await store.close();
      }
      expect(onLoop, 'synchronous directory fsyncs while running').toBe(0);
    }, 60_000);
  }
});
