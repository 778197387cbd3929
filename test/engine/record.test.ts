/**
 * The record CRC's JS paths (record.ts) against zlib.crc32: crc32Range (byte
 * reads) and crc32View (word reads through a DataView, the write buffer's
 * path) at every length up to past the JS/zlib cut-over and at unaligned
 * starts; and encodeRecord gives the same bytes with and without a view.
 */
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { checkRecord, crc32Range, crc32View, encodeRecord, recordSize } from '../../src/engine/record.js';

/** A buffer of pseudo-random bytes (xorshift32), a DataView over it, at a byte offset into its ArrayBuffer. */
function randomBuffer(n: number, seed: number): { buf: Buffer; view: DataView } {
  const whole = Buffer.alloc(n + 3);
  let s = seed;
  for (let i = 0; i < whole.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    whole[i] = s & 255;
  }
  const buf = whole.subarray(3); // a byteOffset not a multiple of 4
  return { buf, view: new DataView(buf.buffer, buf.byteOffset, buf.length) };
}

describe('record CRC', () => {
  it('crc32Range and crc32View equal zlib.crc32 at every length 0..300 and every start 0..8', () => {
    const { buf, view } = randomBuffer(320, 0x2545f491);
    for (let from = 0; from <= 8; from++) {
      for (let n = 0; from + n <= 310 && n <= 300; n++) {
        const want = crc32(buf.subarray(from, from + n));
        expect(crc32Range(buf, from, from + n)).toBe(want);
        expect(crc32View(view, buf, from, from + n)).toBe(want);
      }
    }
  });

  it('encodeRecord writes the same bytes with and without the view, and the record checks', () => {
    const { buf: value } = randomBuffer(200, 7);
    for (const [key, v] of [
      ['k', 0],
      ['key:0000000000001', 100],
      ['a-longer-key-of-some-forty-bytes-0123456', 57],
      ['tiny', 200],
    ] as const) {
      const size = recordSize(key.length, v);
      const a = Buffer.alloc(size + 5, 0xee);
      const b = Buffer.alloc(size + 5, 0xee);
      const view = new DataView(b.buffer, b.byteOffset, b.length);
      const val = v === 0 ? undefined : value.subarray(0, v);
      expect(encodeRecord(a, 5, 2 ** 40 + 3, 1_700_000_000_000, 0, key, val)).toBe(size);
      expect(encodeRecord(b, 5, 2 ** 40 + 3, 1_700_000_000_000, 0, key, val, view)).toBe(size);
      expect(b).toEqual(a);
      expect(checkRecord(b, 5, size)).toBe(true);
    }
  });
});
