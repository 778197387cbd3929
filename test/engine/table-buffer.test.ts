/**
 * tableBuffer (slabs.ts): a growing table's buffer from 128 KiB to 32 MiB is
 * a WebAssembly memory's of exactly its size (mapped by V8, never by malloc,
 * so freeing it never raises glibc's mmap threshold, and counted by V8 at
 * its size); where no wasm memory can be had it is SLAB_BYTES long instead
 * (malloc maps it alone). Smaller and larger ones are plain ArrayBuffers of
 * their own size. The view is zero-filled and exactly as long as asked.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SLAB_BYTES } from '../../src/engine/limits.js';
import { tableBuffer, tableInt32Array, unwrittenBytes } from '../../src/engine/slabs.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** V8's external memory count, settled (a first heap statistics call takes in the frees swept since). */
function external(): number {
  getHeapStatistics();
  return getHeapStatistics().external_memory;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('tableBuffer', () => {
  it('gives a buffer between 128 KiB and 32 MiB its own size, counted so by V8', () => {
    for (const bytes of [128 * 1024, 4 * 2 ** 20, 32 * 2 ** 20]) {
      const b = tableBuffer(bytes);
      expect(b.byteLength).toBe(bytes);
      expect(new Int32Array(b).every((v) => v === 0)).toBe(true);
    }
    // Eight 4 MiB tables: V8's count grows by their 32 MiB (give or take other buffers
    // swept meanwhile), not by the 288 MiB of eight padded ones.
    gc();
    const before = external();
    const kept = Array.from({ length: 8 }, () => tableBuffer(4 * 2 ** 20));
    const grew = external() - before;
    expect(kept.length).toBe(8);
    expect(grew).toBeGreaterThan(24 * 2 ** 20);
    expect(grew).toBeLessThan(48 * 2 ** 20);
  });

  it('pads a buffer between 128 KiB and 32 MiB to SLAB_BYTES when no wasm memory can be had', () => {
    vi.stubGlobal('WebAssembly', undefined); // as under node --jitless
    const before = unwrittenBytes();
    const b = tableBuffer(4 * 2 ** 20);
    expect(b.byteLength).toBe(SLAB_BYTES);
    expect(unwrittenBytes() - before).toBe(SLAB_BYTES - 4 * 2 ** 20);
    expect(tableBuffer(128 * 1024).byteLength).toBe(SLAB_BYTES);
  });

  it('leaves a smaller or larger buffer its own size', () => {
    expect(tableBuffer(4096).byteLength).toBe(4096);
    expect(tableBuffer(128 * 1024 - 4).byteLength).toBe(128 * 1024 - 4);
    expect(tableBuffer(32 * 2 ** 20 + 4).byteLength).toBe(32 * 2 ** 20 + 4);
  });

  it('gives a zero-filled Int32Array of the length asked', () => {
    const t = tableInt32Array(1 << 20);
    expect(t.length).toBe(1 << 20);
    expect(t.buffer.byteLength).toBe(4 << 20);
    expect(t.every((v) => v === 0)).toBe(true);
    t[t.length - 1] = 7;
    expect(t[t.length - 1]).toBe(7);
  });
});
