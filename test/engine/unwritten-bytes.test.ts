/**
 * unwrittenBytes (slabs.ts): the bytes of live big buffers that were never
 * written, which V8 counts in its external memory at full length: a table
 * buffer's tail past its table, a slab's bytes not taken yet, an own
 * buffer's tail, the small-value cache's arena past where its ring reached.
 * INFO `used_memory` and the idle memory reducer subtract them. A buffer's
 * share goes when the GC frees the buffer.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { openStore } from '../../src/engine/index.js';
import { SLAB_BYTES, WRITE_CHUNK_BYTES } from '../../src/engine/limits.js';
import { ownBuffer, Slabs, tableBuffer, unwrittenBytes } from '../../src/engine/slabs.js';
import { SlotCache } from '../../src/engine/slot-cache.js';
import { removeTempDirs, silentLogger, tempDir } from './helpers.js';

afterAll(removeTempDirs);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function collected(): Promise<void> {
  // FinalizationRegistry callbacks run in a task after the GC that freed their buffers.
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('unwrittenBytes', () => {
  it("counts a padded table buffer's tail, not the table", async () => {
    await collected();
    const before = unwrittenBytes();
    expect(tableBuffer(4 * 2 ** 20).byteLength).toBe(4 * 2 ** 20); // a wasm memory's: not padded
    expect(unwrittenBytes()).toBe(before);
    vi.stubGlobal('WebAssembly', undefined); // no wasm memory: padded to SLAB_BYTES
    let t: ArrayBuffer | undefined;
    try {
      t = tableBuffer(4 * 2 ** 20);
    } finally {
      vi.unstubAllGlobals();
    }
    expect(unwrittenBytes() - before).toBe(SLAB_BYTES - 4 * 2 ** 20);
    expect(tableBuffer(4096).byteLength).toBe(4096); // a small table is not padded, not counted
    expect(unwrittenBytes() - before).toBe(SLAB_BYTES - 4 * 2 ** 20);
    expect(t.byteLength).toBe(SLAB_BYTES);
    t = undefined;
    await collected();
    expect(unwrittenBytes()).toBe(before);
  });

  it("counts a slab's bytes not taken yet, and an own buffer's tail", async () => {
    await collected();
    const before = unwrittenBytes();
    const slabs = new Slabs();
    const a = slabs.take(1000);
    expect(unwrittenBytes() - before).toBe(SLAB_BYTES - 1000);
    const b = slabs.take(2 ** 20);
    expect(unwrittenBytes() - before).toBe(SLAB_BYTES - 1000 - 2 ** 20);
    const big = ownBuffer(3 * 2 ** 20);
    expect(big.length).toBe(3 * 2 ** 20);
    expect(big.buffer.byteLength).toBe(SLAB_BYTES);
    expect(unwrittenBytes() - before).toBe(2 * SLAB_BYTES - 1000 - 4 * 2 ** 20);
    expect(a.length + b.length).toBe(1000 + 2 ** 20);
    await collected();
    expect(unwrittenBytes()).toBeGreaterThan(before); // all still referenced
  });

  it("counts the small-value cache's arena past the furthest its ring wrote", async () => {
    await collected();
    const before = unwrittenBytes();
    const cache = new SlotCache(2 ** 20, 4096);
    expect(unwrittenBytes() - before).toBe(2 ** 20);
    for (let s = 0; s < 100; s++) cache.put(s, Buffer.alloc(100, s));
    const held = unwrittenBytes() - before;
    expect(held).toBeLessThan(2 ** 20 - 100 * 100);
    expect(held).toBeGreaterThan(2 ** 20 - 100 * 200);
    for (let s = 0; s < 100; s++) cache.drop(s);
    cache.put(1000, Buffer.alloc(100));
    expect(unwrittenBytes() - before).toBeLessThan(held); // the ring goes on: written further
    expect(cache.size).toBe(1);
  });

  it("gives a record larger than a write chunk a buffer of SLAB_BYTES (freed, it never raises glibc's threshold)", async () => {
    const store = await openStore(tempDir(), { fsync: 'never', logger: silentLogger, cacheBytes: 0 });
    const value = Buffer.alloc(3 * WRITE_CHUNK_BYTES, 7);
    await collected();
    const before = unwrittenBytes();
    const written = store.set('big', value); // the record is encoded into its buffer now, flushed later
    const tail = unwrittenBytes() - before;
    expect(tail).toBeLessThan(SLAB_BYTES - value.length);
    expect(tail).toBeGreaterThan(SLAB_BYTES - value.length - 1024);
    await written;
    expect((await store.get('big'))?.equals(value)).toBe(true);
    await store.close();
  });
});
