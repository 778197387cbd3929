/**
 * Sizing the keydir's hash table up front: Keydir.reserve makes room with no
 * rehash, Keydir.fit shrinks an overshoot in one, and recovery reserves from
 * the hint files' entry counts, so reopening a directory of N keys rehashes
 * nothing (`resizes` stays 0) — with real files, hinted segments and a
 * scanned last segment. Overwrites across segments (an estimate that counts a
 * key once per segment) cost at most the one shrink.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { openStore, type StoreOptions } from '../../src/engine/index.js';
import { Keydir } from '../../src/engine/keydir.js';
import { KEYDIR_INITIAL_CAPACITY, KEYDIR_MAX_LOAD } from '../../src/engine/limits.js';
import { removeTempDirs, silentLogger, tempDir } from './helpers.js';

afterAll(removeTempDirs);

const key = (i: number) => `key:${String(i).padStart(12, '0')}`;

describe('Keydir.reserve and fit', () => {
  it('takes N keys after reserve(N) with no rehash, where growing from empty rehashes', () => {
    const n = 50_000;
    const grown = new Keydir();
    for (let i = 0; i < n; i++) grown.set(key(i), 0, i, 100, 0);
    expect(grown.resizes).toBeGreaterThan(4);

    const kd = new Keydir();
    kd.reserve(n);
    expect(kd.resizes).toBe(0);
    expect(kd.capacity * KEYDIR_MAX_LOAD).toBeGreaterThanOrEqual(n);
    for (let i = 0; i < n; i++) kd.set(key(i), 0, i, 100, 0);
    expect(kd.resizes).toBe(0);
    expect(kd.capacity).toBe(grown.capacity);
    kd.fit(); // sized right: nothing to shrink
    expect(kd.resizes).toBe(0);
    for (let i = 0; i < n; i += 97) expect(kd.get(key(i))?.position).toBe(i);
  });

  it('fit shrinks an overshoot in one rehash and keeps every key', () => {
    const kd = new Keydir();
    kd.reserve(400_000);
    for (let i = 0; i < 10_000; i++) kd.set(key(i), 1, i, 7, 0);
    const before = kd.capacity;
    kd.fit();
    expect(kd.resizes).toBe(1);
    expect(kd.capacity).toBeLessThan(before / 8);
    expect(kd.size / kd.capacity).toBeGreaterThanOrEqual(KEYDIR_MAX_LOAD / 4);
    for (let i = 0; i < 10_000; i++)
      expect(kd.get(key(i))).toEqual({ segment: 1, position: i, valueLength: 7, expiresAt: 0 });
    expect(kd.get(key(10_000))).toBeUndefined();
    // Later growth still works from the shrunk table.
    for (let i = 10_000; i < 20_000; i++) kd.set(key(i), 2, i, 7, 0);
    for (let i = 0; i < 20_000; i += 13) expect(kd.get(key(i))?.position).toBe(i);
  });

  it('reserve never shrinks, and clear forgets the rehash count', () => {
    const kd = new Keydir();
    kd.reserve(100_000);
    const cap = kd.capacity;
    kd.reserve(10);
    kd.reserve(-5);
    expect(kd.capacity).toBe(cap);
    for (let i = 0; i < 5000; i++) kd.set(key(i), 0, i, 1, 0);
    kd.reserve(1_000_000); // a rehash of the 5000 keys
    expect(kd.resizes).toBe(1);
    expect(kd.get(key(4999))?.position).toBe(4999);
    kd.clear();
    expect(kd.resizes).toBe(0);
    expect(kd.capacity).toBe(KEYDIR_INITIAL_CAPACITY);
  });
});

describe('recovery sizes the keydir from the hints', () => {
  const options: StoreOptions = {
    maxSegmentBytes: 256 * 1024,
    fsync: 'never',
    logger: silentLogger,
    compaction: { auto: false },
  };
  const value = Buffer.alloc(100, 7);

  it('reopens 60,000 keys from hinted segments and a scanned last one with no rehash', async () => {
    const dir = tempDir();
    const n = 60_000;
    const s = await openStore(dir, options);
    for (let i = 0; i < n; i += 500) {
      const batch = [];
      for (let j = i; j < i + 500; j++) batch.push(s.set(key(j), value));
      await Promise.all(batch);
    }
    expect(s.keydir.resizes).toBeGreaterThan(4); // grown by doubling while written
    await s.close();

    const r = await openStore(dir, options);
    try {
      const stats = r.stats().recovery!;
      expect(stats.fromHints).toBeGreaterThan(10);
      expect(stats.scanned).toBe(1);
      expect(r.keydir.size).toBe(n);
      expect(r.keydir.resizes).toBe(0);
      expect(r.keydir.size / r.keydir.capacity).toBeGreaterThan(KEYDIR_MAX_LOAD / 4);
      for (let i = 0; i < n; i += 1009) expect(await r.get(key(i))).toEqual(value);
    } finally {
      await r.close();
    }
  });

  it('keys overwritten in every segment: at most one rehash (the shrink), the same keys', async () => {
    const dir = tempDir();
    const n = 2000;
    const s = await openStore(dir, options);
    for (let round = 0; round < 12; round++) {
      const batch = [];
      for (let j = 0; j < n; j++) batch.push(s.set(key(j), Buffer.from(`${round}:${j}`.padEnd(100, '.'))));
      await Promise.all(batch);
    }
    for (let j = 0; j < n; j += 2) await s.delete(key(j));
    await s.close();

    const r = await openStore(dir, options);
    try {
      expect(r.stats().recovery!.fromHints).toBeGreaterThan(5);
      expect(r.keydir.size).toBe(n / 2);
      expect(r.keydir.resizes).toBeLessThanOrEqual(1);
      expect(r.keydir.size / r.keydir.capacity).toBeGreaterThanOrEqual(KEYDIR_MAX_LOAD / 4);
      for (let j = 0; j < n; j++) {
        const v = await r.get(key(j));
        if (j % 2 === 0) expect(v).toBeUndefined();
        else expect(v?.toString().replace(/\.+$/, '')).toBe(`11:${j}`);
      }
    } finally {
      await r.close();
    }
  });
});

describe('a keydir doubling on an idle store', () => {
  it("is finished by the store's timer, with no calls to move it along", async () => {
    const dir = tempDir();
    const s = await openStore(dir, { fsync: 'never', logger: silentLogger, compaction: { auto: false } });
    try {
      const value = Buffer.alloc(10, 1);
      let n = 0;
      while (!s.keydir.rehashing) await s.set(key(n++), value);
      // No more calls: only the timer (KEYDIR_REHASH_TIMER_INTERVAL_MS) moves the old table's keys.
      await vi.waitFor(() => expect(s.keydir.rehashing).toBe(false), { timeout: 5000, interval: 20 });
      for (let i = 0; i < n; i++) expect(s.keydir.slot(key(i))).toBeGreaterThanOrEqual(0);
    } finally {
      await s.close();
    }
  });
});
