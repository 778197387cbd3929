/**
 * keys.ts: a key given as a Buffer (the server's: a view into its read
 * buffer) is decoded by latin1Of, a Uint8Array by a Buffer made over it;
 * both must give the same internal key, one char per byte, for every byte
 * value and any view offset, and the store must find a key written one way
 * when read the other way. The server's SET hands the store its key as a
 * range of the request frame (Store.setForAckAt): the same key, the same
 * refusals.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/engine/index.js';
import { latin1Of, toInternalKey } from '../../src/engine/keys.js';
import { MAX_KEY_BYTES } from '../../src/engine/limits.js';
import { openStore as openInternal } from '../../src/engine/store.js';
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

  it('setForAckAt (the server SET: the key as a range of its frame) writes the same key as setForAck, and refuses the same keys', async () => {
    const store = await openInternal(tempDir(), { fsync: 'never' });
    try {
      const frame = Buffer.from('..ké\xffkey..value', 'latin1');
      store.setForAckAt(frame, 2, 6, frame.subarray(10));
      store.setForAckAt(frame, 2, 1, Buffer.from('one byte'));
      expect(store.getSync(Buffer.from('ké\xffkey', 'latin1'))?.toString()).toBe('value');
      expect(store.getSync('k')?.toString()).toBe('one byte');
      const long = Buffer.alloc(MAX_KEY_BYTES + 10, 0x61);
      for (const [start, length] of [
        [3, 0],
        [0, MAX_KEY_BYTES + 1],
      ] as const) {
        let atErr: unknown;
        let fromErr: unknown;
        try {
          store.setForAckAt(long, start, length, Buffer.from('v'));
        } catch (err) {
          atErr = err;
        }
        try {
          store.setForAck(long.subarray(start, start + length), Buffer.from('v'));
        } catch (err) {
          fromErr = err;
        }
        expect((atErr as { code?: string }).code).toBe('INVALID_KEY');
        expect((atErr as Error).message).toBe((fromErr as Error).message);
      }
      store.setForAckAt(long, 0, MAX_KEY_BYTES, Buffer.from('longest'));
      expect(store.getSync(long.subarray(5, 5 + MAX_KEY_BYTES))?.toString()).toBe('longest');
      expect(store.size).toBe(3);
    } finally {
      await store.close();
    }
  });
});
