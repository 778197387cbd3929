/**
 * The record CRC's JS paths (record.ts) against zlib.crc32: crc32Range (byte
 * reads) and crc32View (word reads through a DataView, the write buffer's
 * path) at every length up to past the JS/zlib cut-over and at unaligned
 * starts; crc32View's two-chain path (from TWO_CHAINS_FROM_BYTES) against a
 * one-chain bytewise CRC over random contents; and encodeRecord gives the
 * same bytes with and without a view.
 */
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  checkRecord,
  crc32Range,
  crc32View,
  encodeRecord,
  recordSize,
  TWO_CHAINS_FROM_BYTES,
} from '../../src/engine/record.js';

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

/** CRC-32 (zlib's polynomial) one byte at a time, from its definition: the one-chain reference. */
function bytewiseCrc32(buf: Uint8Array, from: number, to: number): number {
  let c = -1;
  for (let i = from; i < to; i++) {
    c ^= buf[i]!;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ -1) >>> 0;
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

  it('crc32View by two chains equals the one-chain bytewise CRC (and zlib) over random bytes', () => {
    expect(TWO_CHAINS_FROM_BYTES).toBeLessThan(256); // the two-chain path is reached below zlib's cut-over
    for (let seed = 1; seed <= 200; seed++) {
      const { buf, view } = randomBuffer(300, seed * 0x9e3779b1);
      const from = seed % 13;
      const n = TWO_CHAINS_FROM_BYTES + ((seed * 37) % (256 - TWO_CHAINS_FROM_BYTES));
      const got = crc32View(view, buf, from, from + n);
      expect(got).toBe(bytewiseCrc32(buf, from, from + n));
      expect(got).toBe(crc32(buf.subarray(from, from + n)));
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
