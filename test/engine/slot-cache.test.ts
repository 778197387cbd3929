/**
 * The small-value cache (slot-cache.ts): eviction by bytes with CLOCK's
 * second chance, agreement with a Map under random puts, drops and gets, and
 * in the store: never a stale value across random sets, deletes, expiries,
 * compactions and reopens, and a hot GET that makes no read system call.
 */
import * as fs from 'node:fs';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock, openStore, type Store, type StoreOptions } from '../../src/engine/index.js';
import { SlotCache, slotCacheEntryBytes } from '../../src/engine/slot-cache.js';
import { noSyncFs, recordingFs, removeTempDirs, silentLogger, tempDir } from './helpers.js';

afterAll(removeTempDirs);

const RUNS = Number(process.env.SEGKV_FC_RUNS ?? 60);

const fill = (slot: number, n: number, salt = 0) => Buffer.alloc(n, (slot * 7 + salt) & 0xff);

describe('SlotCache', () => {
  it('holds at most its capacity in bytes, evicting the oldest unreferenced values first', () => {
    const cache = new SlotCache(1024, 4096);
    const entry = slotCacheEntryBytes(100); // 112
    expect(entry).toBe(112);
    for (let s = 0; s < 30; s++) {
      cache.put(s, fill(s, 100));
      expect(cache.bytes).toBeLessThanOrEqual(1024);
      expect(cache.bytes).toBe(cache.size * entry);
    }
    // 9 entries of 112 B fit in 1024 B; the ring leaves at most one entry's worth unused at its end.
    expect(cache.size).toBeGreaterThanOrEqual(8);
    expect(cache.size).toBeLessThanOrEqual(9);
    // The newest are there, the oldest gone.
    expect(cache.get(29)?.equals(fill(29, 100))).toBe(true);
    expect(cache.has(0)).toBe(false);
    expect(cache.has(20)).toBe(false);
  });

  it('gives a value read since it was cached a second chance (CLOCK)', () => {
    const cache = new SlotCache(1024, 4096);
    for (let s = 0; s < 8; s++) cache.put(s, fill(s, 100));
    expect(cache.get(0)?.equals(fill(0, 100))).toBe(true); // referenced: survives the next lap
    for (let s = 8; s < 12; s++) cache.put(s, fill(s, 100));
    expect(cache.has(0)).toBe(true);
    expect(cache.has(1)).toBe(false);
    expect(cache.has(2)).toBe(false);
    expect(cache.get(0)?.equals(fill(0, 100))).toBe(true);
    // Not read again: a full lap later it is gone.
    for (let s = 12; s < 40; s++) cache.put(s, fill(s, 100));
    expect(cache.has(0)).toBe(false);
  });

  it('warmEntry only reads: no hit or miss counted, no second chance given', () => {
    const cache = new SlotCache(1024, 4096);
    for (let s = 0; s < 8; s++) cache.put(s, fill(s, 100));
    // Slot 0's entry, a slot without one, one never seen: warmed again and again.
    for (let i = 0; i < 5; i++) for (const s of [0, 8, 1000]) cache.warmEntry(s);
    expect(cache.hits).toBe(0);
    expect(cache.misses).toBe(0);
    // Not referenced by the warming: the next lap evicts slot 0 as if never touched.
    for (let s = 8; s < 12; s++) cache.put(s, fill(s, 100));
    expect(cache.has(0)).toBe(false);
    expect(cache.get(11)?.equals(fill(11, 100))).toBe(true);
  });

  it('makes room for a large value by evicting as many bytes of small ones as it needs', () => {
    const cache = new SlotCache(4096, 4096);
    for (let s = 0; s < 200; s++) cache.put(s, fill(s, 16)); // 24 B each: more than fit
    expect(cache.bytes).toBeLessThanOrEqual(4096);
    const before = cache.size;
    cache.put(1000, fill(1000, cache.maxValueBytes));
    expect(cache.get(1000)?.equals(fill(1000, cache.maxValueBytes))).toBe(true);
    expect(cache.size).toBeLessThan(before);
    expect(cache.bytes).toBeLessThanOrEqual(4096);
    // Larger than an eighth of the arena: not kept, and an older value of that slot is dropped.
    cache.put(5, fill(5, cache.maxValueBytes + 1));
    expect(cache.has(5)).toBe(false);
  });

  it('returns copies, not views of its arena', () => {
    const cache = new SlotCache(1024, 4096);
    cache.put(1, fill(1, 100));
    const a = cache.get(1)!;
    for (let s = 2; s < 40; s++) cache.put(s, fill(s, 100, 99));
    expect(a.equals(fill(1, 100))).toBe(true);
  });

  it('is warm until it first evicts a value; clear makes it warm again', () => {
    const cache = new SlotCache(1024, 4096);
    for (let s = 0; s < 9; s++) {
      cache.putNew(s, fill(s, 100)); // 9 × 112 B fit in 1024
      expect(cache.warm).toBe(true);
    }
    cache.drop(3); // dropped, not evicted
    expect(cache.warm).toBe(true);
    for (let s = 9; s < 12; s++) cache.put(s, fill(s, 100));
    expect(cache.warm).toBe(false);
    expect(cache.has(0)).toBe(false);
    cache.clear();
    expect(cache.warm).toBe(true);
  });

  it('sheds the values only written when a write would evict, keeping the ones read, in a new arena', () => {
    const cache = new SlotCache(1024, 4096, 1024); // writes may fill it whole
    for (let s = 0; s < 9; s++) cache.putWritten(s, fill(s, 100)); // 9 × 112 B fit in 1024
    expect(cache.size).toBe(9);
    expect(cache.warm).toBe(true);
    expect(cache.get(2)?.equals(fill(2, 100))).toBe(true); // read: referenced
    expect(cache.get(7)?.equals(fill(7, 100))).toBe(true);
    const arena = cache.arena;
    cache.putWritten(9, fill(9, 100)); // no room without evicting: shed
    expect(cache.warm).toBe(false);
    expect(cache.sheds).toBe(1);
    expect(cache.arena).not.toBe(arena);
    expect(cache.has(9)).toBe(false);
    for (let s = 0; s < 9; s++) expect(cache.has(s)).toBe(s === 2 || s === 7);
    expect(cache.bytes).toBe(2 * 112);
    expect(cache.size).toBe(2);
    expect(cache.get(2)?.equals(fill(2, 100))).toBe(true);
    expect(cache.get(7)?.equals(fill(7, 100))).toBe(true);
    // A read still fills it, up to its capacity, and evicts by CLOCK from there.
    for (let s = 10; s < 40; s++) cache.put(s, fill(s, 100));
    expect(cache.has(39)).toBe(true);
    expect(cache.bytes).toBeLessThanOrEqual(1024);
  });

  it('sheds after the ring wrapped, with padding and dropped entries in it', () => {
    const cache = new SlotCache(1024, 4096, 1024);
    for (let s = 0; s < 9; s++) cache.put(s, fill(s, 100));
    for (let s = 0; s < 9; s += 2) cache.get(s);
    cache.drop(4);
    cache.clear(); // warm again; the ring starts over
    for (let s = 0; s < 6; s++) cache.putWritten(s, fill(s, 100));
    cache.get(1);
    cache.drop(3);
    for (let s = 6; s < 9; s++) cache.putWritten(s, fill(s, 100)); // 8 live + 1 dropped = 9 × 112
    cache.get(8);
    cache.putWritten(20, fill(20, 200)); // reclaims slot 3's bytes, then would evict 0: shed
    expect(cache.warm).toBe(false);
    for (let s = 0; s <= 20; s++) expect(cache.has(s)).toBe(s === 1 || s === 8);
    expect(cache.get(8)?.equals(fill(8, 100))).toBe(true);
    expect(cache.get(1)?.equals(fill(1, 100))).toBe(true);
  });

  it('a run of writes fills half of it by default, then sheds the values only written', () => {
    const cache = new SlotCache(2048, 4096);
    expect(cache.writeFillBytes).toBe(1024);
    for (let s = 0; s < 9; s++) cache.putWritten(s, fill(s, 100)); // 9 × 112 B: 1008 of 1024
    expect(cache.size).toBe(9);
    expect(cache.warm).toBe(true);
    cache.get(4); // read: referenced
    cache.putWritten(9, fill(9, 100)); // 1120 B past half, room left in the arena: shed all the same
    expect(cache.warm).toBe(false);
    expect(cache.sheds).toBe(1);
    for (let s = 0; s <= 9; s++) expect(cache.has(s)).toBe(s === 4);
    // Reads still fill all of it.
    for (let s = 10; s < 27; s++) cache.put(s, fill(s, 100)); // 17 × 112 B, with slot 4 2016 of 2048
    for (let s = 10; s < 27; s++) expect(cache.get(s)?.equals(fill(s, 100))).toBe(true);
    expect(cache.bytes).toBe(18 * 112);
    expect(cache.has(4)).toBe(true);
  });

  it('a rewrite of a cached value of the same entry size is revived in place, referenced bit kept', () => {
    const cache = new SlotCache(1024, 4096);
    for (let s = 0; s < 8; s++) cache.put(s, fill(s, 100)); // 8 × 112 B of 1024
    const before = cache.locate(3);
    cache.drop(3); // the keydir's update
    expect(cache.takeDropped(3)).toBe(true);
    cache.refill(3, fill(3, 98, 1)); // 98 B: also a 112-byte entry
    expect(cache.locate(3)).toBe(before);
    expect(cache.get(3)?.equals(fill(3, 98, 1))).toBe(true);
    expect(cache.bytes).toBe(8 * 112);
    // Another size is appended instead; the ring has to move for it.
    cache.drop(4);
    expect(cache.takeDropped(4)).toBe(true);
    cache.refill(4, fill(4, 200, 2));
    expect(cache.get(4)?.equals(fill(4, 200, 2))).toBe(true);
    // Slot 3 was read (referenced): it survives the lap that makes room, slot 0 does not.
    for (let s = 8; s < 10; s++) cache.put(s, fill(s, 100));
    expect(cache.get(3)?.equals(fill(3, 98, 1))).toBe(true);
    expect(cache.has(0)).toBe(false);
  });

  it('agrees with a Map under random puts, drops, gets and clears', () => {
    type Op =
      | { t: 'put'; slot: number; n: number; salt: number }
      | { t: 'drop'; slot: number }
      | { t: 'rewrite'; slot: number; n: number; salt: number }
      | { t: 'write'; slot: number; n: number; salt: number }
      | { t: 'get'; slot: number }
      | { t: 'clear' };
    const slot = fc.integer({ min: 0, max: 40 });
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({
          t: fc.constant('put' as const),
          slot,
          n: fc.integer({ min: 0, max: 300 }),
          salt: fc.nat(255),
        }),
      },
      { weight: 2, arbitrary: fc.record({ t: fc.constant('drop' as const), slot }) },
      {
        weight: 4,
        arbitrary: fc.record({
          t: fc.constant('rewrite' as const),
          slot,
          // Mostly sizes whose entries match one another (revived in place), some that do not.
          n: fc.oneof(fc.constantFrom(97, 100, 104), fc.integer({ min: 0, max: 300 })),
          salt: fc.nat(255),
        }),
      },
      {
        weight: 8,
        arbitrary: fc.record({
          t: fc.constant('write' as const),
          slot,
          n: fc.integer({ min: 0, max: 300 }),
          salt: fc.nat(255),
        }),
      },
      { weight: 6, arbitrary: fc.record({ t: fc.constant('get' as const), slot }) },
      { weight: 2, arbitrary: fc.constant({ t: 'clear' as const }) },
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 64, max: 3000 }),
        fc.array(op, { maxLength: 300, size: 'medium' }),
        (capacity, ops) => {
          const cache = new SlotCache(capacity, 4096);
          const model = new Map<number, Buffer>();
          for (const o of ops) {
            if (o.t === 'put') {
              const v = fill(o.slot, o.n, o.salt);
              cache.put(o.slot, v);
              if (cache.fits(o.n)) model.set(o.slot, v);
              else model.delete(o.slot);
            } else if (o.t === 'rewrite') {
              // What the store does on a write: the keydir drops the slot, then the new value
              // refills it if it was cached (revived in place when the size allows).
              const v = fill(o.slot, o.n, o.salt);
              cache.drop(o.slot);
              if (cache.takeDropped(o.slot) && cache.fits(o.n)) {
                cache.refill(o.slot, v);
                model.set(o.slot, v);
              } else model.delete(o.slot);
            } else if (o.t === 'write') {
              // The store's write of a key: the keydir drops the slot; a warm cache takes the
              // value (or sheds what was only written), a cold one only a value it held.
              const v = fill(o.slot, o.n, o.salt);
              cache.drop(o.slot);
              const held = cache.takeDropped(o.slot);
              model.delete(o.slot);
              if (cache.fits(o.n)) {
                if (held) cache.refill(o.slot, v);
                else if (cache.warm) cache.putWritten(o.slot, v);
                if (cache.has(o.slot)) model.set(o.slot, v);
              }
              // A shed keeps only values the model has, unchanged (checked below).
            } else if (o.t === 'drop') {
              cache.drop(o.slot);
              model.delete(o.slot);
            } else if (o.t === 'clear') {
              cache.clear();
              model.clear();
            } else if (o.slot % 2 === 0) {
              // locate: the value's place in the arena, read in place (the server's GET).
              const at = cache.locate(o.slot);
              if (at >= 0) {
                const seen = cache.arena.subarray(at, at + cache.located);
                expect(seen.equals(model.get(o.slot)!)).toBe(true);
              } else model.delete(o.slot);
            } else {
              const got = cache.get(o.slot);
              // Absent is allowed (evicted); a value must be the last one put.
              if (got !== undefined) expect(got.equals(model.get(o.slot)!)).toBe(true);
              else model.delete(o.slot);
            }
            let bytes = 0;
            for (const [s, v] of model) if (cache.has(s)) bytes += slotCacheEntryBytes(v.length);
            expect(cache.bytes).toBe(bytes);
            expect(cache.bytes).toBeLessThanOrEqual(cache.capacity);
            for (let s = 0; s <= 40; s++) if (cache.has(s)) expect(model.has(s)).toBe(true);
          }
        },
      ),
      { numRuns: RUNS * 5 },
    );
  });
});

// ---- in the store --------------------------------------------------------------

const KEYS = ['a', 'b', 'c', 'k1', 'k2', 'long'.repeat(20), 'é'];

type StoreOp =
  | { t: 'set'; key: string; n: number; salt: number; ttlMs?: number }
  | { t: 'del'; key: string }
  | { t: 'expire'; key: string; ttlMs: number }
  | { t: 'batch'; sets: { key: string; n: number; salt: number }[]; del: string }
  | { t: 'get'; key: string }
  | { t: 'refused'; key: string; n: number; salt: number }
  | { t: 'advance'; ms: number }
  | { t: 'compact' }
  | { t: 'reopen' };

const key = fc.constantFrom(...KEYS);
// Sizes on both sides of the slot cache's largest value (4096 B cache: 504 B) and the lru-cache's smallest (512 B).
const size = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 400, max: 900 }));
const storeOp: fc.Arbitrary<StoreOp> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({
        key,
        n: size,
        salt: fc.nat(255),
        ttl: fc.option(fc.integer({ min: 1, max: 2000 }), { nil: undefined }),
      })
      .map(({ ttl, ...o }) =>
        ttl === undefined ? { t: 'set' as const, ...o } : { t: 'set' as const, ...o, ttlMs: ttl },
      ),
  },
  { weight: 2, arbitrary: key.map((k) => ({ t: 'del' as const, key: k })) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('expire' as const),
      key,
      ttlMs: fc.integer({ min: 1, max: 2000 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('batch' as const),
      sets: fc.array(fc.record({ key, n: size, salt: fc.nat(255) }), { minLength: 1, maxLength: 4 }),
      del: key,
    }),
  },
  { weight: 6, arbitrary: key.map((k) => ({ t: 'get' as const, key: k })) },
  // A set the OS refuses: undone in the keydir after its value was cached.
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('refused' as const), key, n: size, salt: fc.nat(255) }),
  },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 1500 }).map((ms) => ({ t: 'advance' as const, ms })) },
  { weight: 2, arbitrary: fc.constant({ t: 'compact' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
);

function bytesOf(k: string, n: number, salt: number): Buffer {
  const v = Buffer.alloc(n);
  for (let i = 0; i < n; i++) v[i] = (k.charCodeAt(0) + salt + i) & 0xff;
  return v;
}

interface Entry {
  value: Buffer;
  expiresAt: number;
}

function check(store: Store, model: Map<string, Entry>, clock: ManualClock, step: string): void {
  for (const k of KEYS) {
    const e = model.get(k);
    const want = e && (e.expiresAt === 0 || e.expiresAt > clock.now()) ? e.value : undefined;
    // Twice: the first may fill the cache, the second is then a hit.
    for (let i = 0; i < 2; i++) {
      const got = store.getSync(k);
      if (want === undefined) expect(got, `${step}: get ${k}`).toBeUndefined();
      else expect(got?.equals(want), `${step}: get ${k}`).toBe(true);
      const framed = Buffer.concat([Buffer.from('*'), Buffer.from(k, 'utf8'), Buffer.from('*')]);
      const gotBytes = store.getSyncBytes(framed, 1, framed.length - 2);
      if (want === undefined) expect(gotBytes, `${step}: getSyncBytes ${k}`).toBeUndefined();
      else expect(gotBytes?.equals(want), `${step}: getSyncBytes ${k}`).toBe(true);
      // The server's GET: a view of where the store holds the value (the cache's arena, a read).
      const found = store.viewSyncBytes(framed, 1, framed.length - 2);
      expect(found, `${step}: viewSyncBytes ${k} found`).toBe(want !== undefined);
      if (found) {
        const v = store.valueView;
        const seen = v.bytes.subarray(v.start, v.start + v.length);
        expect(seen.equals(want!), `${step}: viewSyncBytes ${k}`).toBe(true);
      }
    }
  }
}

describe('the small-value cache in the store', () => {
  it('never serves a stale value across sets, deletes, expiries, batches, compactions and reopens', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(storeOp, { minLength: 1, maxLength: 60 }), async (ops) => {
        const dir = tempDir();
        const clock = new ManualClock();
        let refuseWrites = false;
        const opts: StoreOptions = {
          clock,
          logger: silentLogger,
          fsync: 'never',
          fs: {
            ...noSyncFs,
            write(fd, buf, offset, length, position) {
              // Records only: a new segment's header still goes through, so the store keeps a place to write.
              if (refuseWrites && position > 0)
                throw Object.assign(new Error('ENOSPC (injected)'), { code: 'ENOSPC' });
              noSyncFs.write(fd, buf, offset, length, position);
            },
          },
          maxSegmentBytes: 2048,
          slotCacheBytes: 4096, // small: values are evicted and re-read all the time
          cacheBytes: 1 << 20,
          compaction: { auto: false },
        };
        const model = new Map<string, Entry>();
        const live = (k: string) => {
          const e = model.get(k);
          return e && (e.expiresAt === 0 || e.expiresAt > clock.now()) ? e : undefined;
        };
        let store = await openStore(dir, opts);
        try {
          for (let i = 0; i < ops.length; i++) {
            const o = ops[i]!;
            const step = `step ${i} ${JSON.stringify(o)}`;
            switch (o.t) {
              case 'set':
                await store.set(
                  o.key,
                  bytesOf(o.key, o.n, o.salt),
                  o.ttlMs === undefined ? undefined : { ttlMs: o.ttlMs },
                );
                model.set(o.key, {
                  value: bytesOf(o.key, o.n, o.salt),
                  expiresAt: o.ttlMs === undefined ? 0 : clock.now() + o.ttlMs,
                });
                break;
              case 'del':
                await store.delete(o.key);
                model.delete(o.key);
                break;
              case 'expire': {
                const e = live(o.key);
                await store.expire(o.key, o.ttlMs);
                if (e) e.expiresAt = clock.now() + o.ttlMs;
                break;
              }
              case 'batch':
                await store.batch([
                  ...o.sets.map((s) => ({
                    type: 'set' as const,
                    key: s.key,
                    value: bytesOf(s.key, s.n, s.salt),
                  })),
                  { type: 'del' as const, key: o.del },
                ]);
                for (const s of o.sets)
                  model.set(s.key, { value: bytesOf(s.key, s.n, s.salt), expiresAt: 0 });
                model.delete(o.del);
                break;
              case 'get':
                store.getSync(o.key);
                break;
              case 'refused': {
                refuseWrites = true;
                const write = store.set(o.key, bytesOf(o.key, o.n, o.salt));
                // Visible (and cached) until the flush is refused.
                expect(store.getSync(o.key)?.equals(bytesOf(o.key, o.n, o.salt)), step).toBe(true);
                await expect(write, step).rejects.toThrow(/ENOSPC/);
                refuseWrites = false;
                break;
              }
              case 'advance':
                clock.advance(o.ms);
                break;
              case 'compact':
                await store.compact();
                break;
              case 'reopen':
                await store.close();
                store = await openStore(dir, opts);
                break;
            }
            check(store, model, clock, step);
          }
        } finally {
          await store.close();
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: RUNS },
    );
  }, 300_000);

  it('answers a hot GET of a small value with no read system call', async () => {
    const dir = tempDir();
    const rec = recordingFs();
    const opts: StoreOptions = { logger: silentLogger, fs: rec.fs, fsync: 'never' };
    let store = await openStore(dir, opts);
    const reads = () => rec.calls.filter((c) => c.op === 'read').length;
    try {
      const value = Buffer.alloc(100, 0x61);
      for (let i = 0; i < 100; i++) await store.set(`key${i}`, value);
      // Filled on write while the cache has never evicted: no GET reads.
      let before = reads();
      for (let i = 0; i < 100; i++) {
        expect(store.getSync(`key${i}`)?.equals(value)).toBe(true);
        const k = Buffer.from(`key${i}`, 'latin1');
        expect(store.getSyncBytes(k, 0, k.length)?.equals(value)).toBe(true);
        expect(store.viewSyncBytes(k, 0, k.length)).toBe(true);
        const v = store.valueView;
        expect(v.bytes.subarray(v.start, v.start + v.length).equals(value)).toBe(true);
      }
      expect(reads() - before).toBe(0);
      // A write of a cached key refreshes it: still no read, and the new value.
      const newer = Buffer.alloc(100, 0x62);
      for (let i = 0; i < 50; i++) await store.set(`key${i}`, newer);
      before = reads();
      for (let i = 0; i < 100; i++)
        expect(store.getSync(`key${i}`)?.equals(i < 50 ? newer : value)).toBe(true);
      expect(reads() - before).toBe(0);
      for (let i = 0; i < 50; i++) await store.set(`key${i}`, value);

      // After a reopen the cache is empty: the first GET of each key reads once, the next none.
      await store.close();
      store = await openStore(dir, opts);
      before = reads();
      for (let i = 0; i < 100; i++) expect(store.getSync(`key${i}`)?.equals(value)).toBe(true);
      expect(reads() - before).toBe(100);
      before = reads();
      for (let r = 0; r < 3; r++) {
        for (let i = 0; i < 100; i++) {
          const k = Buffer.from(`key${i}`, 'latin1');
          expect(store.getSyncBytes(k, 0, k.length)?.equals(value)).toBe(true);
        }
      }
      expect(reads() - before).toBe(0);
      const stats = store.stats().cache;
      expect(stats.hits).toBe(300);
      expect(stats.misses).toBe(100);

      // A cache that has evicted (not warm) is filled by a write only of a key it held: a cold
      // write evicts nothing, and its first GET reads once.
      await store.close();
      store = await openStore(dir, { ...opts, slotCacheBytes: 8192 });
      for (let i = 100; i < 200; i++) await store.set(`key${i}`, value); // 100 × 112 B > 8 KiB
      before = reads();
      for (let i = 100; i < 110; i++) expect(store.getSync(`key${i}`)?.equals(value)).toBe(true);
      expect(reads() - before).toBe(10); // the first were evicted
      await store.set('cold', value);
      before = reads();
      for (let r = 0; r < 2; r++) expect(store.getSync('cold')?.equals(value)).toBe(true);
      expect(reads() - before).toBe(1);

      // With the small-value cache off, every GET of a 100-byte value is a read.
      await store.close();
      store = await openStore(dir, { ...opts, slotCacheBytes: 0 });
      before = reads();
      for (let r = 0; r < 2; r++) for (let i = 0; i < 100; i++) store.getSync(`key${i}`);
      expect(reads() - before).toBe(200);
    } finally {
      await store.close();
    }
  });

  it('keeps only the values read once a load outgrows it: the rest of the load is not cached', async () => {
    const dir = tempDir();
    const rec = recordingFs();
    const store = await openStore(dir, {
      logger: silentLogger,
      fs: rec.fs,
      fsync: 'never',
      slotCacheBytes: 32768,
    });
    const reads = () => rec.calls.filter((c) => c.op === 'read').length;
    try {
      const value = Buffer.alloc(100, 0x61);
      for (let i = 0; i < 100; i++) await store.set(`key${i}`, value); // 100 × 112 B < 16 KiB, half of it
      let before = reads();
      for (let i = 0; i < 10; i++) expect(store.getSync(`key${i}`)?.equals(value)).toBe(true);
      expect(reads() - before).toBe(0); // filled by the writes
      for (let i = 100; i < 1000; i++) await store.set(`key${i}`, value); // outgrows it: shed
      const { cache } = store.stats();
      expect(cache.entries).toBe(10);
      expect(cache.bytes).toBe(10 * slotCacheEntryBytes(100));
      before = reads();
      for (let i = 0; i < 10; i++) expect(store.getSync(`key${i}`)?.equals(value)).toBe(true);
      expect(reads() - before).toBe(0); // the read ones stayed
      for (let i = 10; i < 20; i++) expect(store.getSync(`key${i}`)?.equals(value)).toBe(true);
      expect(reads() - before).toBe(10); // the only-written ones went
      for (let i = 990; i < 1000; i++) expect(store.getSync(`key${i}`)?.equals(value)).toBe(true);
      expect(reads() - before).toBe(20); // and the load after the shed was not cached
    } finally {
      await store.close();
    }
  });

  it('refuses a bad slotCacheBytes', async () => {
    const dir = tempDir();
    await expect(openStore(dir, { slotCacheBytes: -1, logger: silentLogger })).rejects.toThrow(
      /slotCacheBytes/,
    );
    await expect(openStore(dir, { slotCacheBytes: 1.5, logger: silentLogger })).rejects.toThrow(
      /slotCacheBytes/,
    );
  });
});
