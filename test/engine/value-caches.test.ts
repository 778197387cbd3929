/**
 * A write replaces what either value cache holds for its key: the
 * small-value cache by slot, the lru-cache by key (skipped by a write whose
 * old value was of a length the lru-cache never holds). Every read after a
 * write, across the sizes of both caches and none, sees the new value.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import {
  MAX_CACHED_VALUE_BYTES,
  MIN_CACHED_VALUE_BYTES,
  SLOT_CACHE_MAX_VALUE_BYTES,
} from '../../src/engine/limits.js';
import { MemFs } from '../../src/engine/mem-fs.js';
import { openStore } from '../../src/engine/store.js';

const SIZES = [
  0,
  10,
  SLOT_CACHE_MAX_VALUE_BYTES,
  Math.max(SLOT_CACHE_MAX_VALUE_BYTES + 1, MIN_CACHED_VALUE_BYTES),
  MAX_CACHED_VALUE_BYTES,
  MAX_CACHED_VALUE_BYTES + 1,
];

describe('value caches across overwrites', () => {
  it('every size to every size: the read after the write sees the new value', async () => {
    const store = await openStore('/mem/db', {
      fs: new MemFs(),
      fsync: 'never',
      logger: pino({ level: 'silent' }),
      compaction: { auto: false },
    });
    let n = 0;
    for (const from of SIZES) {
      for (const to of SIZES) {
        const key = `k${from}-${to}`;
        const a = Buffer.alloc(from, 0x41 + (n++ % 26));
        const b = Buffer.alloc(to, 0x41 + (n++ % 26));
        await store.set(key, a);
        expect(store.getSync(key)?.equals(a)).toBe(true); // cached by the read if its size is cached
        expect(store.getSync(key)?.equals(a)).toBe(true);
        await store.set(key, b);
        expect(store.getSync(key)?.equals(b), `${from} → ${to}`).toBe(true);
        await store.set(key, a);
        expect(store.getSync(key)?.equals(a), `${from} → ${to} → ${from}`).toBe(true);
      }
    }
    await store.close();
  });
});
