/**
 * tableBuffer (slabs.ts): a growing table's buffer from 128 KiB to 32 MiB is
 * SLAB_BYTES long, so glibc maps it alone and freeing it never raises the
 * mmap threshold; smaller and larger ones are their own size. The view is
 * zero-filled and exactly as long as asked.
 */
import { describe, expect, it } from 'vitest';
import { SLAB_BYTES } from '../../src/engine/limits.js';
import { tableBuffer, tableInt32Array } from '../../src/engine/slabs.js';

describe('tableBuffer', () => {
  it('pads a buffer between 128 KiB and 32 MiB to SLAB_BYTES', () => {
    expect(tableBuffer(128 * 1024).byteLength).toBe(SLAB_BYTES);
    expect(tableBuffer(4 * 2 ** 20).byteLength).toBe(SLAB_BYTES);
    expect(tableBuffer(32 * 2 ** 20).byteLength).toBe(SLAB_BYTES);
  });

  it('leaves a smaller or larger buffer its own size', () => {
    expect(tableBuffer(4096).byteLength).toBe(4096);
    expect(tableBuffer(128 * 1024 - 4).byteLength).toBe(128 * 1024 - 4);
    expect(tableBuffer(32 * 2 ** 20 + 4).byteLength).toBe(32 * 2 ** 20 + 4);
  });

  it('gives a zero-filled Int32Array of the length asked', () => {
    const t = tableInt32Array(1 << 20);
    expect(t.length).toBe(1 << 20);
    expect(t.buffer.byteLength).toBe(SLAB_BYTES);
    expect(t.every((v) => v === 0)).toBe(true);
    t[t.length - 1] = 7;
    expect(t[t.length - 1]).toBe(7);
  });
});
