/**
 * keys.ts: a key given as a Buffer (the server's: a view into its read
 * buffer) is decoded by latin1Of, a Uint8Array by a Buffer made over it;
 * both must give the same internal key, one char per byte, for every byte
 * value and any view offset, and the store must find a key written one way
 * when read the other way.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/engine/index.js';
import { latin1Of, toInternalKey } from '../../src/engine/keys.js';
import { tempDir } from '../server/spawn.js';

describe('toInternalKey of bytes', () => {
  it('a Buffer view and a plain Uint8Array give one char per byte, equal to toString(latin1)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.nat({ max: 40 }),
        fc.nat({ max: 40 }),
        (bytes, before, after) => {
          const big = Buffer.alloc(before + bytes.length + after, 0x7a);
          big.set(bytes, before);
          const view = big.subarray(before, before + bytes.length);
          const plain = new Uint8Array(big.buffer, big.byteOffset + before, bytes.length);
          const want = Buffer.from(bytes).toString('latin1');
          expect(toInternalKey(view)).toBe(want);
          expect(toInternalKey(plain)).toBe(want);
          expect(latin1Of(big, before, before + bytes.length)).toBe(want);
          expect(want.length).toBe(bytes.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a key set through a Buffer view is read back through a Uint8Array and a string, and the other way', async () => {
    const store = await openStore(tempDir(), { fsync: 'never' });
    try {
      const all = Buffer.alloc(256 + 8);
      for (let i = 0; i < 256; i++) all[4 + i] = i;
      const view = all.subarray(4, 4 + 256);
      await store.set(view, 'every byte');
      expect(store.getSync(new Uint8Array(view))?.toString()).toBe('every byte');
      await store.set(new Uint8Array([0x6b, 0xc3, 0xa9]), 'utf8');
      expect(store.getSync('ké')?.toString()).toBe('utf8');
      expect(store.getSync(Buffer.from('xxké', 'utf8').subarray(2))?.toString()).toBe('utf8');
    } finally {
      await store.close();
    }
  });
});
