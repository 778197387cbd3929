/**
 * The three embedded engines behind one small interface, so every benchmark
 * gives them the same keys, values, concurrency and durability.
 *
 * Durability mapping (what an acknowledged put promises):
 *   mode      segkv                      classic-level            lmdb
 *   always    fsync 'always' (group      put {sync: true}         overlappingSync: false (the commit
 *             commit, ack after fsync)   (fsync per write group)  promise resolves after the fsync)
 *   interval  fsync 'interval' (write    put {sync: false}        noSync: true (LMDB has no periodic
 *             to OS, fsync every 1 s)    (write to OS, no fsync)  fsync; the OS flushes the map)
 *   never     fsync 'never'              put {sync: false}        noSync: true
 * In `interval`, segkv does strictly more work than both peers (a real fsync
 * every second).
 *
 * Caches:
 *   cold  segkv cacheBytes 0 and slotCacheBytes 0 (every read a pread);
 *         classic-level cacheSize 0 and fillCache false; lmdb without its
 *         object cache (reads go to the memory map).
 *   lru   segkv slotCacheBytes 0, cacheBytes 1 GiB (the lru-cache alone, for
 *         values of 512 B and more); the peers as in hot.
 *   hot   segkv cacheBytes and slotCacheBytes 1 GiB (the small-value cache by
 *         keydir slot for values up to 4 KiB); classic-level cacheSize 1 GiB;
 *         lmdb cache: true.
 * The OS page cache stays warm in both (dropping it needs root and would hit
 * other users of the machine): "cold" means the engine's own cache is off.
 */
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { open as openLmdb } from 'lmdb';
import { openStore } from '../../src/engine/index.js';

export type EngineName = 'segkv' | 'classic-level' | 'lmdb';
export const ENGINES: readonly EngineName[] = ['segkv', 'classic-level', 'lmdb'];
export type Mode = 'always' | 'interval' | 'never';
export type CacheMode = 'cold' | 'lru' | 'hot' | 'default';

const HOT_CACHE_BYTES = 1024 * 1024 * 1024;

export interface Engine {
  put(key: string, value: Buffer): Promise<unknown>;
  /**
   * Every key set to `value` by the engine's batch API, one promise for all
   * (segkv `batch`, atomic; classic-level `batch` of puts; lmdb `batch`).
   */
  putBatch(keys: readonly string[], value: Buffer): Promise<unknown>;
  /** Synchronous point read (all three engines have one). */
  get(key: string): Uint8Array | undefined;
  close(): Promise<void>;
  /** segkv only: how the last open rebuilt its keydir. */
  recovery?: () => { fromHints: number; scanned: number };
}

export async function openEngine(
  name: EngineName,
  dir: string,
  mode: Mode,
  cache: CacheMode,
): Promise<Engine> {
  if (name === 'segkv') {
    const store = await openStore(dir, {
      fsync: mode,
      ...(cache === 'cold' && { cacheBytes: 0, slotCacheBytes: 0 }),
      ...(cache === 'lru' && { cacheBytes: HOT_CACHE_BYTES, slotCacheBytes: 0 }),
      ...(cache === 'hot' && { cacheBytes: HOT_CACHE_BYTES, slotCacheBytes: HOT_CACHE_BYTES }),
    });
    return {
      put: (k, v) => store.set(k, v),
      putBatch: (keys, v) => store.batch(keys.map((key) => ({ type: 'set' as const, key, value: v }))),
      get: (k) => store.getSync(k),
      close: () => store.close(),
      recovery: () => ({ fromHints: store.recoveryStats.fromHints, scanned: store.recoveryStats.scanned }),
    };
  }
  if (name === 'classic-level') {
    const db = new ClassicLevel<string, Buffer>(dir, {
      keyEncoding: 'utf8',
      valueEncoding: 'buffer',
      ...(cache === 'cold' && { cacheSize: 0 }),
      ...(cache !== 'cold' && cache !== 'default' && { cacheSize: HOT_CACHE_BYTES }),
    });
    await db.open();
    const putOptions = { sync: mode === 'always' };
    const getOptions = { fillCache: cache !== 'cold' };
    return {
      put: (k, v) => db.put(k, v, putOptions),
      putBatch: (keys, v) =>
        db.batch(
          keys.map((key) => ({ type: 'put' as const, key, value: v })),
          putOptions,
        ),
      get: (k) => db.getSync(k, getOptions),
      close: () => db.close(),
    };
  }
  const db = openLmdb<Buffer, string>({
    path: join(dir, 'data.mdb'),
    encoding: 'binary',
    ...(mode === 'always' ? { overlappingSync: false } : { noSync: true }),
    ...((cache === 'hot' || cache === 'lru') && { cache: true }),
  });
  return {
    put: (k, v) => db.put(k, v),
    putBatch: (keys, v) =>
      db.batch(() => {
        for (const k of keys) db.put(k, v);
      }),
    get: (k) => db.get(k),
    close: () => db.close(),
  };
}
