/**
 * The server's SET (Store.setForAckAt) writes the key's bytes from the
 * request frame into the record (encodeRecordFrom, SegmentLog.appendFrom)
 * and makes a key string only where one is kept (the expiries map, the
 * lru-cache, the undo log at a rollback). It must write the same bytes as
 * the string path (encodeRecord, setForAck) for every key length and byte
 * value, and leave the same state behind: an overwritten expiry cleared, a
 * cached value dropped, a refused tick's keys put back.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_KEY_BYTES } from '../../src/engine/limits.js';
import { MemFs, memPath } from '../../src/engine/mem-fs.js';
import { encodeRecord, encodeRecordFrom, RECORD_HEADER_BYTES, recordSize } from '../../src/engine/record.js';
import { openStore } from '../../src/engine/store.js';
import { tempDir } from '../server/spawn.js';
import { segFiles, silentLogger } from './helpers.js';

/** n bytes of every value 0..255 in turn, starting at `from` (so >= 0x80 in any key of 128+ bytes, and in short ones for high `from`). */
function keyBytes(n: number, from: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (from + i * 7) & 0xff;
  return b;
}

describe('encodeRecordFrom', () => {
  it('writes the bytes encodeRecord writes for the latin1 string of the same key, every length 1..MAX_KEY_BYTES', () => {
    const value = Buffer.from('a value');
    const size = recordSize(MAX_KEY_BYTES, value.length) + 16;
    const a = Buffer.alloc(size);
    const b = Buffer.alloc(size);
    const c = Buffer.alloc(size);
    const va = new DataView(a.buffer, a.byteOffset, a.length);
    const vb = new DataView(b.buffer, b.byteOffset, b.length);
    const vc = new DataView(c.buffer, c.byteOffset, c.length);
    const frame = Buffer.alloc(MAX_KEY_BYTES + 8);
    const frameView = new DataView(frame.buffer, frame.byteOffset, frame.length);
    for (let n = 1; n <= MAX_KEY_BYTES; n++) {
      const start = n % 5; // keys at odd offsets of the frame
      keyBytes(n, n * 13).copy(frame, start);
      const key = frame.toString('latin1', start, start + n);
      const at = n % 3;
      const withView = n % 2 === 0;
      const expiresAt = n % 4 === 0 ? 2 ** 41 + n : 0;
      a.fill(0xee);
      b.fill(0xee);
      const sa = encodeRecord(a, at, 1000 + n, expiresAt, 0, key, value, withView ? va : undefined);
      const sb = encodeRecordFrom(
        b,
        at,
        1000 + n,
        expiresAt,
        0,
        frame,
        start,
        n,
        value,
        withView ? vb : undefined,
      );
      expect(sb).toBe(sa);
      if (!a.equals(b))
        expect(b.subarray(at, at + sb).toString('hex')).toBe(a.subarray(at, at + sa).toString('hex'));
      expect(b[at + RECORD_HEADER_BYTES + n - 1]).toBe(frame[start + n - 1]);
      // The key by 32-bit words, through a DataView of the frame (the server's read buffer).
      c.fill(0xee);
      const sc = encodeRecordFrom(c, at, 1000 + n, expiresAt, 0, frame, start, n, value, vc, frameView);
      expect(sc).toBe(sa);
      if (!a.equals(c))
        expect(c.subarray(at, at + sc).toString('hex')).toBe(a.subarray(at, at + sa).toString('hex'));
    }
  });
});

describe('Store.setForAckAt writes what setForAck writes', () => {
  const lengths = [
    ...Array.from({ length: 70 }, (_, i) => i + 1),
    127,
    128,
    255,
    256,
    1000,
    4096,
    MAX_KEY_BYTES,
  ];

  it('the same segment bytes for keys of every byte value, lengths 1..MAX_KEY_BYTES, new and overwritten', async () => {
    const dirA = tempDir();
    const dirB = tempDir();
    const dirC = tempDir();
    const opts = { fsync: 'never' as const, logger: silentLogger, compaction: { auto: false } };
    const a = await openStore(dirA, opts);
    const b = await openStore(dirB, opts);
    const c = await openStore(dirC, opts);
    const frame = Buffer.alloc(MAX_KEY_BYTES + 64);
    const frameView = new DataView(frame.buffer, frame.byteOffset, frame.length);
    for (const round of [0, 1]) {
      for (const n of lengths) {
        const key = keyBytes(n, 0x80 + n + round);
        const start = 3 + (n % 7);
        key.copy(frame, start);
        const value = Buffer.from(`v${round}-${n}`);
        frame.write(value.toString('latin1'), start + n, 'latin1');
        const valueView = frame.subarray(start + n, start + n + value.length);
        a.setForAckAt(frame, start, n, valueView);
        b.setForAck(Buffer.from(key), value);
        // The key read from the frame by 32-bit words (the server's read buffer's DataView).
        c.setForAckAt(frame, start, n, valueView, undefined, frameView);
        a.flushTick();
        b.flushTick();
        c.flushTick();
      }
    }
    for (const n of lengths) {
      expect(a.getSync(keyBytes(n, 0x81 + n))?.toString()).toBe(`v1-${n}`);
      expect(c.getSync(keyBytes(n, 0x81 + n))?.toString()).toBe(`v1-${n}`);
    }
    expect(a.size).toBe(b.size);
    expect(c.size).toBe(b.size);
    await a.close();
    await b.close();
    await c.close();
    expect(segFiles(dirA)).toEqual(segFiles(dirB));
    expect(segFiles(dirC)).toEqual(segFiles(dirB));
    for (const f of segFiles(dirA)) {
      expect(readFileSync(join(dirA, f)).equals(readFileSync(join(dirB, f)))).toBe(true);
      expect(readFileSync(join(dirC, f)).equals(readFileSync(join(dirB, f)))).toBe(true);
    }
  });

  it('clears the expiry of a key it overwrites (the expiries map too), and keeps none for a new key', async () => {
    const store = await openStore(tempDir(), { fsync: 'never', logger: silentLogger });
    try {
      const key = keyBytes(20, 0xf0);
      store.setExpiringNow(key, 'old', Date.now() + 3_600_000);
      expect(store.stats().expiringKeys).toBe(1);
      store.setForAckAt(Buffer.concat([Buffer.from('xx'), key]), 2, key.length, Buffer.from('new'));
      expect(store.ttl(key)).toBe(-1);
      expect(store.stats().expiringKeys).toBe(0);
      store.setForAckAt(keyBytes(9, 0x90), 0, 9, Buffer.from('v'));
      expect(store.stats().expiringKeys).toBe(0);
      expect(store.getSync(key)?.toString()).toBe('new');
    } finally {
      await store.close();
    }
  });

  it('drops the lru-cache value of a key it overwrites', async () => {
    const store = await openStore(tempDir(), { fsync: 'never', logger: silentLogger, slotCacheBytes: 0 });
    try {
      const key = keyBytes(30, 0xc0);
      const big = Buffer.alloc(2000, 0x61);
      store.setForAck(key, big);
      store.flushTick();
      expect(store.getSync(key)?.equals(big)).toBe(true); // read from the log, cached
      expect(store.getSync(key)?.equals(big)).toBe(true);
      const frame = Buffer.concat([Buffer.from('*'), key, Buffer.alloc(2000, 0x62)]);
      store.setForAckAt(frame, 1, key.length, frame.subarray(1 + key.length));
      expect(store.getSync(key)?.equals(Buffer.alloc(2000, 0x62))).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('a refused tick puts back the keys it set, new and overwritten, bytes >= 0x80 included', async () => {
    const fs = new MemFs();
    const store = await openStore(memPath('db'), {
      fs,
      fsync: 'never',
      cacheBytes: 0,
      logger: silentLogger,
      compaction: { auto: false },
    });
    try {
      const old = keyBytes(12, 0x85);
      store.setForAck(old, Buffer.from('before'));
      store.flushTick();
      const frame = Buffer.concat([Buffer.from('..'), old, keyBytes(200, 0xa0)]);
      fs.failWrites((p) => (p.endsWith('.seg') ? 'ENOSPC' : undefined));
      const ack = store.setForAckAt(frame, 2, old.length, Buffer.from('refused'));
      store.setForAckAt(frame, 2 + old.length, 200, Buffer.from('refused too'));
      store.setForAckAt(frame, 2, old.length, Buffer.from('refused again'));
      const refused = ack.promise().then(
        () => 'acknowledged',
        (err: unknown) => err,
      );
      store.flushTick();
      expect(((await refused) as { code?: string }).code).toBe('IO_ERROR');
      expect(store.getSync(old)?.toString()).toBe('before');
      expect(store.getSync(keyBytes(200, 0xa0))).toBeUndefined();
      expect(store.size).toBe(1);
      fs.failWrites(undefined);
      store.setForAckAt(frame, 2 + old.length, 200, Buffer.from('now'));
      store.flushTick();
      expect(store.getSync(keyBytes(200, 0xa0))?.toString()).toBe('now');
    } finally {
      await store.close();
    }
  });
});
