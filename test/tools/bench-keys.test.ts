/**
 * The engine bench's keys (tools/bench/engine-jobs.ts keyOf): "key" and the
 * 13 zero-padded decimal digits of the scramble of i, the keys every bench
 * row and its stored datasets use. Checked against the digit loop it was
 * written with, over a sweep of i and at the scrambles' edges (x = 0,
 * 99999, 100000, 2^31 - 1, 2^31, 2^32 - 1, ...).
 */
import { describe, expect, it } from 'vitest';
import { KEY_BYTES, keyOf } from '../../tools/bench/engine-jobs.js';

/** The bench's first keyOf: a byte per digit by float modulo, then a latin1 string. */
function referenceKey(i: number): string {
  const buf = Buffer.alloc(KEY_BYTES, 0x30);
  buf.write('key', 0, 'latin1');
  let x = Math.imul(i, 0x9e3779b1) >>> 0;
  for (let p = KEY_BYTES - 1; p >= 3; p--) {
    buf[p] = 0x30 + (x % 10);
    x = Math.floor(x / 10);
  }
  return buf.toString('latin1');
}

/** The i whose scramble is x: the inverse of 0x9e3779b1 mod 2^32 (Newton's iteration). */
function indexOf(x: number): number {
  const a = 0x9e3779b1 | 0;
  let inv = a;
  for (let k = 0; k < 5; k++) inv = Math.imul(inv, 2 - Math.imul(a, inv));
  return Math.imul(x, inv) >>> 0;
}

describe('engine bench keyOf', () => {
  it('gives the digit loop key for a sweep of i', () => {
    for (let i = 0; i < 3_000_000; i += 997) {
      const key = keyOf(i);
      expect(key.length).toBe(KEY_BYTES);
      if (key !== referenceKey(i)) expect(key).toBe(referenceKey(i));
    }
  });

  it('gives the digit loop key at the edges of the scramble', () => {
    const xs = [0, 1, 9, 10, 99_999, 100_000, 100_001, 999_999, 2 ** 31 - 1, 2 ** 31, 4_294_899_999];
    xs.push(4_294_900_000, 2 ** 32 - 1, 2 ** 32 - 2, 1_234_567_890, 4_000_000_000);
    for (let x = 7; x < 2 ** 32; x += 9_999_991) xs.push(x);
    for (const x of xs) {
      const i = indexOf(x);
      expect(Math.imul(i, 0x9e3779b1) >>> 0).toBe(x);
      expect(keyOf(i)).toBe(referenceKey(i));
    }
  });
});
