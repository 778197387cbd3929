/**
 * KeptMemory makes the views `subarray` would (and says where a Buffer lies:
 * keep, keptMemory, keptOffset), from the memory it kept for the last Buffer: right for a Buffer at an offset in a pool slab, right again
 * after the Buffer changes, and it lets go of what it kept on forget().
 */
import { describe, expect, it } from 'vitest';
import { KeptMemory } from '../../src/protocol/kept-memory.js';

describe('KeptMemory', () => {
  it('views of Buffers at offsets in shared memory are those subarray gives, Buffer after Buffer', () => {
    const kept = new KeptMemory();
    const slab = Buffer.from('0123456789abcdefghij');
    const a = slab.subarray(3, 13); // '3456789abc'
    const b = slab.subarray(10, 20); // 'abcdefghij'
    expect(kept.subarray(a, 2, 5).toString()).toBe('567');
    expect(kept.holds(a)).toBe(true);
    expect(kept.memoryOf(a)).toBe(slab.buffer);
    kept.keep(b);
    expect(Buffer.from(kept.keptMemory, kept.keptOffset + 1, 3).toString()).toBe('bcd');
    expect(kept.holds(a)).toBe(false);
    expect(kept.subarray(a, 0, 3).toString()).toBe('345');
    const view = kept.subarray(a, 1, 4);
    expect(view).toBeInstanceOf(Buffer);
    expect(view.buffer).toBe(slab.buffer);
    expect(view.byteOffset).toBe(a.byteOffset + 1);
  });

  it('remember takes the memory it is given; memoryOf of any other Buffer is its own .buffer and keeps nothing', () => {
    const kept = new KeptMemory();
    const memory = new ArrayBuffer(16);
    const view = Buffer.from(memory, 4, 8);
    kept.remember(view, memory, 4);
    expect(kept.memoryOf(view)).toBe(memory);
    const other = Buffer.from('xyz');
    expect(kept.memoryOf(other)).toBe(other.buffer);
    expect(kept.holds(view)).toBe(true);
    kept.forget();
    expect(kept.holds(view)).toBe(false);
    expect(kept.memoryOf(view)).toBe(memory);
  });
});
