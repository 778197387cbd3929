/**
 * Store.set of a key string checks that the key is ASCII while it copies it
 * into the record (encodeAsciiRecord, SegmentLog.appendAscii), instead of
 * toInternalKey reading every char before the copy. A key that is not ASCII
 * stops the encoding, gives its bytes back (Segment.unreserve) and goes the
 * usual way. Either way the log must hold the bytes the key's UTF-8 form
 * gives, as a Buffer key does, and an invalid argument must be refused as
 * before.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { MAX_KEY_BYTES, WRITE_CHUNK_BYTES } from '../../src/engine/limits.js';
import { encodeAsciiRecord, encodeRecord, RECORD_HEADER_BYTES, recordSize } from '../../src/engine/record.js';
import { openStore, type Store } from '../../src/engine/store.js';
import { tempDir } from '../server/spawn.js';
import { segFiles, silentLogger } from './helpers.js';

/** An ASCII key of n chars, every printable char in turn. */
function asciiKey(n: number, from: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(0x20 + ((from + i * 7) % 95));
  return s;
}

const LENGTHS = [...Array.from({ length: 70 }, (_, i) => i + 1), 127, 128, 1000, MAX_KEY_BYTES];

describe('encodeAsciiRecord', () => {
  const value = Buffer.from('a value');
  const size = recordSize(MAX_KEY_BYTES, value.length) + 16;
  const a = Buffer.alloc(size);
  const b = Buffer.alloc(size);
  const vb = new DataView(b.buffer, b.byteOffset, b.length);

  it('writes what encodeRecord writes for an ASCII key, every length', () => {
    for (const n of LENGTHS) {
      const key = asciiKey(n, n);
      const at = n % 3;
      const expiresAt = n % 4 === 0 ? 2 ** 41 + n : 0;
      a.fill(0xee);
      b.fill(0xee);
      const sa = encodeRecord(a, at, 1000 + n, expiresAt, 0, key, value);
      expect(encodeAsciiRecord(b, at, 1000 + n, expiresAt, key, value, vb)).toBe(true);
      expect(b.subarray(0, at + sa + 8).equals(a.subarray(0, at + sa + 8))).toBe(true);
      expect(b[at + RECORD_HEADER_BYTES + n - 1]).toBe(key.charCodeAt(n - 1));
    }
  });

  it('refuses a key with a char above 0x7f at any place, latin1 or not', () => {
    for (const n of [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33, 128]) {
      for (let place = 0; place < n; place++) {
        for (const c of ['\x80', 'é', '\xff', 'ā', '€', '\ud83d']) {
          const key = asciiKey(n, n + place).slice(0, place) + c + asciiKey(n - place - 1, place);
          expect(encodeAsciiRecord(b, 0, 1, 0, key, value, vb)).toBe(false);
        }
      }
    }
  });
});

/** Each op sets `key` to `value`; the same ops go to a store by key strings and to one by their UTF-8 Buffers. */
type Op = [key: string, value: Buffer];

async function sameLogs(ticks: Op[][]): Promise<void> {
  const opts = { fsync: 'never' as const, logger: silentLogger, compaction: { auto: false } };
  const dirA = tempDir();
  const dirB = tempDir();
  const a: Store = await openStore(dirA, opts);
  const b: Store = await openStore(dirB, opts);
  for (const tick of ticks) {
    const acks: Promise<boolean>[] = [];
    for (const [key, value] of tick) {
      acks.push(a.set(key, value));
      acks.push(b.set(Buffer.from(key, 'utf8'), value));
    }
    expect(await Promise.all(acks)).toEqual(acks.map(() => true));
  }
  const last = new Map<string, Buffer>();
  for (const tick of ticks) for (const [key, value] of tick) last.set(key, value);
  for (const [key, value] of last) expect(a.getSync(key)?.equals(value)).toBe(true);
  expect(a.size).toBe(b.size);
  await a.close();
  await b.close();
  expect(segFiles(dirA)).toEqual(segFiles(dirB));
  for (const f of segFiles(dirA))
    expect(readFileSync(join(dirA, f)).equals(readFileSync(join(dirB, f)))).toBe(true);
  const again = await openStore(dirA, opts);
  try {
    for (const [key, value] of last) expect(again.getSync(key)?.equals(value)).toBe(true);
  } finally {
    await again.close();
  }
}

describe('Store.set of a key string', () => {
  it('logs the bytes a Buffer key logs, ASCII or not, every length, new and overwritten', async () => {
    const odd = ['é', '\x80', '\xff', 'ā', '€', '😀', '\ud83d'];
    const tick: Op[] = [];
    for (const n of LENGTHS) {
      tick.push([asciiKey(n, n), Buffer.from(`v${n}`)]);
      if (n < MAX_KEY_BYTES / 4) tick.push([asciiKey(n, n) + odd[n % odd.length]!, Buffer.from(`w${n}`)]);
    }
    await sameLogs([tick, tick.map(([k, v]) => [k, Buffer.concat([v, v])])]);
  });

  it('gives back the bytes of a key that is not ASCII when they took a new write chunk', async () => {
    // Ten 100 kB records leave less than 60 kB of the tick's first chunk: the
    // next record's reservation takes a second chunk, which the non-ASCII key
    // then gives back before it is written the usual way.
    const big = Buffer.alloc(100_000, 0x61);
    const tick: Op[] = [];
    for (let i = 0; i < 10; i++) tick.push([`key${i}`, big]);
    expect(WRITE_CHUNK_BYTES - 10 * recordSize(4, big.length)).toBeLessThan(60_000);
    tick.push(['clé', Buffer.alloc(60_000, 0x62)]);
    tick.push(['after', Buffer.from('small')]);
    await sameLogs([tick, [['clé', Buffer.from('again')]]]);
  });

  it('refuses what it refused: an empty key, a key too long as UTF-8, then a bad value', async () => {
    const store = await openStore(tempDir(), { fsync: 'never', logger: silentLogger });
    try {
      const code = (p: Promise<unknown>) =>
        p.then(
          () => 'written',
          (err: { code?: string }) => err.code,
        );
      expect(await code(store.set('', 'v'))).toBe('INVALID_KEY');
      const long = 'é'.repeat(MAX_KEY_BYTES / 2 + 1); // fewer chars than MAX_KEY_BYTES, more bytes
      expect(await code(store.set(long, 'v'))).toBe('INVALID_KEY');
      expect(await code(store.set(long, 42 as unknown as string))).toBe('INVALID_KEY');
      expect(await code(store.set('k', 42 as unknown as string))).toBe('INVALID_VALUE');
      expect(await code(store.set('x'.repeat(MAX_KEY_BYTES + 1), 'v'))).toBe('INVALID_KEY');
      expect(store.size).toBe(0);
      expect(await code(store.set('x'.repeat(MAX_KEY_BYTES), 'v'))).toBe('written');
      expect(await code(store.set(`${'x'.repeat(MAX_KEY_BYTES - 2)}é`, 'v'))).toBe('written');
      expect(store.size).toBe(2);
    } finally {
      await store.close();
    }
  });

  it('refuses a bad key before a bad value, whichever test finds each', async () => {
    const store = await openStore(tempDir(), { fsync: 'never', logger: silentLogger });
    try {
      const code = (f: () => unknown) => {
        try {
          f();
          return 'written';
        } catch (err) {
          return (err as { code?: string }).code;
        }
      };
      const long = 'é'.repeat(MAX_KEY_BYTES / 2 + 1); // passes the char count, too long as UTF-8
      const badValues = [42, null, undefined, {}, [1, 2]] as unknown as string[];
      for (const value of badValues) {
        expect(code(() => store.setNow('', value))).toBe('INVALID_KEY');
        expect(code(() => store.setNow('x'.repeat(MAX_KEY_BYTES + 1), value))).toBe('INVALID_KEY');
        expect(code(() => store.setNow(long, value))).toBe('INVALID_KEY');
        expect(code(() => store.setNow(42 as unknown as string, value))).toBe('INVALID_KEY');
        expect(code(() => store.setNow('k', value))).toBe('INVALID_VALUE');
        expect(code(() => store.setNow('clé', value))).toBe('INVALID_VALUE');
        expect(code(() => store.setNow('clé', value, { ttlMs: 1000 }))).toBe('INVALID_VALUE');
      }
      expect(store.size).toBe(0);
    } finally {
      await store.close();
    }
  });

  it('converts a string value once when the key is not ASCII, and logs its UTF-8 bytes', async () => {
    const dir = tempDir();
    const store = await openStore(dir, { fsync: 'never', logger: silentLogger });
    const value = `välue ${Math.random()}`; // a string no other call converts
    const from = vi.spyOn(Buffer, 'from');
    try {
      expect(await store.set('clé', value)).toBe(true);
      expect(await store.set('plain', value)).toBe(true);
      expect(from.mock.calls.filter((c) => c[0] === value)).toHaveLength(2);
    } finally {
      from.mockRestore();
    }
    expect(store.getSync('clé')?.equals(Buffer.from(value, 'utf8'))).toBe(true);
    expect(store.getSync(Buffer.from('clé', 'utf8'))?.equals(Buffer.from(value, 'utf8'))).toBe(true);
    expect(store.getSync(Buffer.from('cl\xe9', 'latin1'))).toBeUndefined(); // the key's UTF-8 bytes, not latin1
    await store.close();
    const again = await openStore(dir, { fsync: 'never', logger: silentLogger });
    try {
      expect(again.getSync('clé')?.toString('utf8')).toBe(value);
      expect(again.getSync('plain')?.toString('utf8')).toBe(value);
    } finally {
      await again.close();
    }
  });
});
