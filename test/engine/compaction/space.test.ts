/**
 * Compaction frees the space (nutsdb #77: merges that never free space
 * because tombstones are kept forever; Bitcask #249: merged files still held
 * open, so the disk never empties). Every key overwritten ten times, some
 * deleted, some expired: after a whole-log compaction the .seg files, and all
 * files (hints and indexes included), take at most 1.2× the live bytes; no
 * tombstone is left; the replaced files are gone from the directory and no
 * descriptor of this process still holds one of them.
 */
import * as fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock, openStore, type StoreOptions } from '../../../src/engine/index.js';
import { silentLogger } from '../helpers.js';
import {
  deletedButOpen,
  expectModel,
  expectRecount,
  fastTempDir,
  Model,
  removeFastTempDirs,
  sizeOf,
} from './util.js';

afterAll(removeFastTempDirs);

describe('space after compaction', () => {
  it('is within 1.2× of the live bytes after every key was overwritten ten times (deleted and expired keys reclaimed)', async () => {
    const dir = fastTempDir();
    const clock = new ManualClock();
    const opts: StoreOptions = {
      maxSegmentBytes: 16 * 1024,
      fsync: 'never',
      logger: silentLogger,
      clock,
      compaction: { auto: false },
    };
    const model = new Model(clock);
    const keys = Array.from({ length: 400 }, (_, i) => `key-${String(i).padStart(5, '0')}`);
    let store = await openStore(dir, opts);
    for (let round = 0; round < 10; round++) {
      for (const k of keys) {
        const v = `${round}:${k}:`.padEnd(400, 'x');
        // The last round gives the last 50 keys a TTL that will have passed.
        const ttlMs = round === 9 && keys.indexOf(k) >= 350 ? 1000 : undefined;
        await store.set(k, v, ttlMs === undefined ? {} : { ttlMs });
        model.set(k, v, ttlMs);
      }
    }
    for (const k of keys.slice(300, 350)) {
      await store.delete(k);
      model.delete(k);
    }
    clock.advance(2000);
    expectModel(store, model, keys, 'before compaction');
    const live = store.stats().liveBytes;
    const segBefore = sizeOf(dir, (n) => n.endsWith('.seg'));
    expect(segBefore, 'the test starts with most bytes dead').toBeGreaterThan(8 * live);
    const filesBefore = fs.readdirSync(dir).filter((n) => n.endsWith('.seg'));

    const r = await store.compact();
    expect(r).toBeDefined();
    expect(r!.reclaimedBytes).toBeGreaterThan(segBefore - 1.2 * live);
    expectModel(store, model, keys, 'after compaction');
    expect(store.stats().liveBytes).toBe(live);
    const seg = sizeOf(dir, (n) => n.endsWith('.seg'));
    const all = sizeOf(dir, () => true);
    expect(seg, `.seg bytes ${seg} vs live ${live}`).toBeLessThanOrEqual(1.2 * live);
    expect(all, `all bytes ${all} vs live ${live}`).toBeLessThanOrEqual(1.2 * live);
    expect(store.stats().diskBytes).toBeLessThanOrEqual(1.2 * live);
    // Replaced segments are gone, and not held open (once no reader holds them).
    const now = fs.readdirSync(dir);
    expect(filesBefore.filter((n) => now.includes(n)).length).toBeLessThan(filesBefore.length);
    expect(deletedButOpen(dir)).toEqual([]);
    // No tombstone survives a whole-log compaction: nothing older is left for it to shadow.
    for await (const rec of store.readFrom(0)) expect(rec.tombstone).toBe(false);

    await store.close();
    store = await openStore(dir, opts);
    try {
      expectModel(store, model, keys, 'reopened');
      await expectRecount(store, clock.now(), 'reopened');
      expect(sizeOf(dir, () => true)).toBeLessThanOrEqual(1.2 * live);
    } finally {
      await store.close();
    }
  });
});
