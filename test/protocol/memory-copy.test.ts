/**
 * protocol/memory-copy.ts: bytes copied between places in two ArrayBuffers
 * arrive exactly there, nothing around them changes, and a range outside
 * either buffer is a RangeError (Node's binding would abort the process).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { copyMemory } from '../../src/protocol/memory-copy.js';

describe('copyMemory', () => {
  it('copies from[fromOffset, +n) to to[toOffset, +n) and nothing else', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 300 }),
        fc.nat(300),
        fc.nat(300),
        fc.nat(300),
        (src, a, b, c) => {
          const from = new ArrayBuffer(src.length);
          new Uint8Array(from).set(src);
          const to = new ArrayBuffer(300);
          new Uint8Array(to).fill(0xee);
          const fromOffset = Math.min(a, src.length);
          const n = Math.min(b, src.length - fromOffset);
          const toOffset = Math.min(c, 300 - n);
          copyMemory(to, toOffset, from, fromOffset, n);
          const expected = new Uint8Array(300).fill(0xee);
          expected.set(src.subarray(fromOffset, fromOffset + n), toOffset);
          expect(new Uint8Array(to)).toEqual(expected);
        },
      ),
    );
  });

  it('a range outside either buffer, or a place that is not a uint32, throws RangeError and copies nothing', () => {
    const from = new ArrayBuffer(16);
    const to = new ArrayBuffer(16);
    for (const [toOffset, fromOffset, n] of [
      [0, 0, 17],
      [10, 0, 7],
      [0, 10, 7],
      [-1, 0, 1],
      [0, -1, 1],
      [0, 0, -1],
      [0.5, 0, 1],
      [0, 0, Number.NaN],
    ] as const) {
      expect(() => copyMemory(to, toOffset, from, fromOffset, n)).toThrow(RangeError);
    }
    expect(new Uint8Array(to)).toEqual(new Uint8Array(16));
  });
});
