/**
 * The keydir's hash table and key arena against a Map model: random
 * set/delete/moveIfAt sequences with keys of every length (so freed slots are
 * reused with shorter and longer keys), past several table doublings, and
 * enough deletes of long keys to force the arena to be repacked. The byte
 * methods of the hint loader (setBytes/deleteBytes) against the same model,
 * mixed with the string methods on one keydir.
 */
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { hashBytes, hashView, Keydir, keydirHashKey } from '../../src/engine/keydir.js';
import {
  KEYDIR_ARENA_CHUNK_BYTES,
  KEYDIR_INLINE_KEY_BYTES,
  KEYDIR_REHASH_EVERY,
  KEYDIR_REHASH_SLOTS,
} from '../../src/engine/limits.js';
import { SlotCache } from '../../src/engine/slot-cache.js';

interface Loc {
  segment: number;
  position: number;
  valueLength: number;
  expiresAt: number;
}

function agree(kd: Keydir, model: Map<string, Loc>): void {
  expect(kd.size).toBe(model.size);
  for (const [k, loc] of model) expect(kd.get(k)).toEqual(loc);
  const seen = new Map<string, number>();
  for (const [k, slot] of kd.entries()) {
    expect(seen.has(k)).toBe(false);
    seen.set(k, slot);
    expect(kd.slot(k)).toBe(slot);
  }
  expect(new Set(seen.keys())).toEqual(new Set(model.keys()));
  expect(kd.expiringKeys).toBe([...model.values()].filter((l) => l.expiresAt > 0).length);
}

const key = fc.oneof(
  fc.integer({ min: 0, max: 300 }).map((i) => `k${i}`),
  fc
    .tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1, max: 90 }))
    .map(([i, n]) => String.fromCharCode(...Array.from({ length: n }, (_, j) => (i * 31 + j * 7) % 256))),
);
const op = fc.oneof(
  fc.record({
    t: fc.constant('set' as const),
    k: key,
    segment: fc.integer({ min: 0, max: 65534 }),
    position: fc.nat(),
    valueLength: fc.integer({ min: 0, max: 0x7fffffff }),
    expiresAt: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2 ** 45 })),
  }),
  fc.record({ t: fc.constant('del' as const), k: key }),
  fc.record({ t: fc.constant('move' as const), k: key, segment: fc.integer({ min: 0, max: 65534 }) }),
);

/** A model op's DEL through the string or the byte method: true exactly when the key was there. */
function expectDeleted(
  kd: Keydir,
  o: { bytes: boolean; k: string },
  h: number,
  buf: Buffer,
  was: boolean,
): void {
  expect(o.bytes ? kd.deleteBytes(h, buf, 0, buf.length) : kd.delete(o.k)).toBe(was);
}

/**
 * A model op's lookup through slot, slotBytes or slotView (a DataView of a
 * buffer holding the key after 3 other bytes: the server's GET): found
 * exactly when the model has it, at the model's location.
 */
function expectFound(
  kd: Keydir,
  o: { bytes: boolean; view: boolean; k: string },
  buf: Buffer,
  before: Loc | undefined,
): void {
  const padded = Buffer.concat([Buffer.from('xyz'), buf]);
  const s = !o.bytes
    ? kd.slot(o.k)
    : o.view
      ? kd.slotView(new DataView(padded.buffer, padded.byteOffset, padded.length), 3, buf.length)
      : kd.slotBytes(buf, 0, buf.length);
  expect(s >= 0).toBe(before !== undefined);
  if (before) expect([kd.segmentOf(s), kd.positionOf(s)]).toEqual([before.segment, before.position]);
}

describe('keydir', () => {
  it.each([
    ['', undefined],
    [' with a 2-bit slot field in its buckets at first (widened as slots are taken, the tag narrowing)', 2],
  ])('agrees with a Map model over random set/delete/moveIfAt sequences%s', (_, slotBits) => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 3000 }), (ops) => {
        const kd = new Keydir(0, slotBits);
        const model = new Map<string, Loc>();
        for (const o of ops) {
          if (o.t === 'set') {
            const loc = {
              segment: o.segment,
              position: o.position,
              valueLength: o.valueLength,
              expiresAt: o.expiresAt,
            };
            kd.set(o.k, loc.segment, loc.position, loc.valueLength, loc.expiresAt);
            model.set(o.k, loc);
          } else if (o.t === 'del') {
            expect(kd.delete(o.k)).toBe(model.delete(o.k));
          } else {
            const cur = model.get(o.k);
            const moved = kd.moveIfAt(o.k, cur?.segment ?? 0, cur?.position ?? 0, o.segment, 7);
            expect(moved).toBe(cur !== undefined);
            if (cur) model.set(o.k, { ...cur, segment: o.segment, position: 7 });
          }
          expect(kd.slot(o.k) >= 0).toBe(model.has(o.k));
        }
        agree(kd, model);
      }),
      { numRuns: 60 },
    );
  });

  it('setHashed with the hashes warmKeys left is set: a batch hashes each key once', () => {
    const a = new Keydir();
    const b = new Keydir();
    const keys = Array.from({ length: 700 }, (_, i) =>
      i % 3 === 0 ? `k${i % 50}` : `key-${i}-${'x'.repeat(i % 40)}`,
    );
    for (let from = 0; from < keys.length; from += 256) {
      const batch = keys.slice(from, from + 256);
      b.warmKeys(batch, batch.length);
      const hashes = b.warmedHashes;
      for (let j = 0; j < batch.length; j++) {
        const k = batch[j]!;
        expect(hashes[j]).toBe(hashBytes(Buffer.from(k, 'latin1'), 0, k.length));
        const sa = a.set(k, 1, from + j, j, j % 7 === 0 ? 1e12 + j : 0);
        const sb = b.setHashed(hashes[j]!, k, 1, from + j, j, j % 7 === 0 ? 1e12 + j : 0);
        expect(sb).toBe(sa);
        expect([b.prevSegment, b.prevPosition, b.prevValueLength, b.prevExpiresAt]).toEqual([
          a.prevSegment,
          a.prevPosition,
          a.prevValueLength,
          a.prevExpiresAt,
        ]);
      }
    }
    expect([...b.entries()]).toEqual([...a.entries()]);
    for (const k of keys) expect(b.get(k)).toEqual(a.get(k));
  });

  it("drops a slot's cached value on a rewrite or delete, and looks up no cached value for a new key's slot", () => {
    const kd = new Keydir();
    const cache = new SlotCache(1 << 20, 4096);
    kd.values = cache;
    const drop = vi.spyOn(cache, 'drop');
    const value = Buffer.from('v'.repeat(100));
    for (let i = 0; i < 100; i++) cache.put(kd.set(`k${i}`, 1, i, 100, 0), value);
    // The puts above probe for an old value; count from here.
    drop.mockClear();
    for (let i = 100; i < 200; i++) kd.set(`k${i}`, 1, i, 100, 0);
    expect(drop).not.toHaveBeenCalled();
    const s5 = kd.slot('k5');
    kd.set('k5', 1, 500, 100, 0);
    expect(drop).toHaveBeenCalledTimes(1);
    expect(cache.get(s5)).toBeUndefined();
    const s6 = kd.slot('k6');
    kd.delete('k6');
    expect(drop).toHaveBeenCalledTimes(2);
    // The freed slot goes to the next new key, with no value cached for it.
    drop.mockClear();
    expect(kd.set('new', 1, 600, 100, 0)).toBe(s6);
    expect(drop).not.toHaveBeenCalled();
    expect(cache.get(s6)).toBeUndefined();
    expect(cache.get(kd.slot('k7'))).toEqual(value);
  });

  it('grows past many doublings and repacks its arena after heavy deletes', () => {
    const kd = new Keydir();
    const model = new Map<string, Loc>();
    const long = (i: number, n: number) => `${i}:`.padEnd(n, String.fromCharCode(33 + (i % 90)));
    // Long keys deleted and re-added longer: their bytes die, well past a chunk's worth.
    const rounds = Math.ceil((4 * KEYDIR_ARENA_CHUNK_BYTES) / (2000 * 400));
    for (let r = 0; r < rounds + 1; r++) {
      for (let i = 0; i < 2000; i++) {
        const k = long(i, 300 + r * 50);
        kd.set(k, r, i, r + i, 0);
        model.set(k, { segment: r, position: i, valueLength: r + i, expiresAt: 0 });
      }
      for (let i = 0; i < 2000; i++) {
        const k = long(i, 300 + r * 50);
        if (i % 10 !== 0) {
          kd.delete(k);
          model.delete(k);
        }
      }
    }
    for (let i = 0; i < 100_000; i++) {
      const k = `key${String(i).padStart(13, '0')}`;
      kd.set(k, 1, i, 100, i % 97 === 0 ? 1e12 + i : 0);
      model.set(k, { segment: 1, position: i, valueLength: 100, expiresAt: i % 97 === 0 ? 1e12 + i : 0 });
    }
    for (let i = 0; i < 100_000; i += 3) {
      const k = `key${String(i).padStart(13, '0')}`;
      kd.delete(k);
      model.delete(k);
    }
    agree(kd, model);
    kd.clear();
    expect(kd.size).toBe(0);
    expect(kd.slot('key0000000000000')).toBe(-1);
  });
});

/** HalfSipHash-c-d (32-bit output) of `msg` under the 8-byte `key`: the reference algorithm, bytewise. */
function halfSipHash(c: number, d: number, key: Uint8Array, msg: Uint8Array): number {
  const rotl = (x: number, b: number) => (x << b) | (x >>> (32 - b));
  const k0 = key[0]! | (key[1]! << 8) | (key[2]! << 16) | (key[3]! << 24);
  const k1 = key[4]! | (key[5]! << 8) | (key[6]! << 16) | (key[7]! << 24);
  const v = [k0, k1, 0x6c796765 ^ k0, 0x74656462 ^ k1];
  const round = () => {
    v[0] = (v[0]! + v[1]!) | 0;
    v[1] = rotl(v[1]!, 5) ^ v[0];
    v[0] = rotl(v[0], 16);
    v[2] = (v[2]! + v[3]!) | 0;
    v[3] = rotl(v[3]!, 8) ^ v[2];
    v[0] = (v[0] + v[3]) | 0;
    v[3] = rotl(v[3], 7) ^ v[0];
    v[2] = (v[2] + v[1]) | 0;
    v[1] = rotl(v[1], 13) ^ v[2];
    v[2] = rotl(v[2], 16);
  };
  const compress = (m: number) => {
    v[3]! ^= m;
    for (let r = 0; r < c; r++) round();
    v[0]! ^= m;
  };
  const whole = msg.length - (msg.length % 4);
  for (let i = 0; i < whole; i += 4)
    compress(msg[i]! | (msg[i + 1]! << 8) | (msg[i + 2]! << 16) | (msg[i + 3]! << 24));
  let b = msg.length << 24;
  for (let i = whole; i < msg.length; i++) b |= msg[i]! << (8 * (i - whole));
  compress(b);
  v[2]! ^= 0xff;
  for (let r = 0; r < d; r++) round();
  return (v[1]! ^ v[3]!) >>> 0;
}

/** `pairs` pairs of distinct keys whose hashBytes hashes are equal (found by the birthday bound). */
function collidingPairs(pairs: number): [string, string][] {
  const seen = new Map<number, string>();
  const out: [string, string][] = [];
  for (let i = 0; out.length < pairs; i++) {
    const k = `c${String(i).padStart(7, '0')}`; // one length: only the bytes tell them apart
    const h = hashBytes(Buffer.from(k, 'latin1'), 0, k.length);
    const other = seen.get(h);
    if (other === undefined) seen.set(h, k);
    else out.push([other, k]);
  }
  return out;
}

describe('keydir byte methods (the hint loader)', () => {
  const collisions = collidingPairs(4);
  /** Keys as the engine holds them: the latin1 form of their UTF-8 bytes. */
  const internal = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
  const bkey = fc.oneof(
    fc.integer({ min: 0, max: 200 }).map((i) => `k${i}`),
    fc.constantFrom(...collisions.flat()),
    fc.constantFrom('é', 'ключ', '鍵', '🔑', 'naïve-café', '日本語のキー').map(internal),
    fc.integer({ min: 0, max: 30 }).map((i) => internal(`long-${'€'.repeat(i * 3)}-${i}`)), // 8..280 bytes
    fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }).map(internal),
  );
  const bop = fc.oneof(
    fc.record({
      t: fc.constant('set' as const),
      bytes: fc.boolean(),
      /** With `bytes`: setView (a DataView of the bytes and the key string: the store's append path) instead of setBytes. */
      view: fc.boolean(),
      k: bkey,
      segment: fc.integer({ min: 0, max: 65534 }),
      position: fc.nat(),
      valueLength: fc.integer({ min: 0, max: 0x7fffffff }),
      expiresAt: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 2 ** 45 })),
      pad: fc.nat({ max: 40 }),
    }),
    fc.record({ t: fc.constant('del' as const), bytes: fc.boolean(), k: bkey, pad: fc.nat({ max: 40 }) }),
  );
  /** The key's bytes at `pad` inside a buffer with other bytes around them. */
  const inBuffer = (k: string, pad: number) =>
    Buffer.concat([Buffer.alloc(pad, 0xab), Buffer.from(k, 'latin1'), Buffer.alloc(7, 0xcd)]);

  it('hashes keys by HalfSipHash-1-3 under the process key: by bytes, by words and by chars', () => {
    // The reference first, against published vectors: HalfSipHash-2-4's (veorq/SipHash vectors.h,
    // 32-bit output) and HalfSipHash-1-3's (Linux lib/siphash_kunit.c, hsiphash on 32-bit machines),
    // key 00..07, message 00..len-1.
    const key = Buffer.from([0, 1, 2, 3, 4, 5, 6, 7]);
    const counting = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => i));
    const vectors24 = [
      0x5b9f35a9, 0xb85a4727, 0x03a662fa, 0x04e7fe8a, 0x89466e2a, 0x69b6fac5, 0x23fc6358, 0xc563cf8b,
    ];
    const vectors13 = [
      0x5814c896, 0xe7e864ca, 0xbc4b0e30, 0x01539939, 0x7e059ea6, 0x88e3d89b, 0xa0080b65, 0x9d38d9d6,
    ];
    for (let n = 0; n < 8; n++) {
      expect(halfSipHash(2, 4, key, counting(n))).toBe(vectors24[n]);
      expect(halfSipHash(1, 3, key, counting(n))).toBe(vectors13[n]);
    }
    expect(halfSipHash(1, 3, key, counting(16))).toBe(0x8b31d501);
    expect(halfSipHash(1, 3, key, counting(63))).toBe(0x87178304);
    // The keydir's paths under the process's key, every tail length, short and long keys.
    const processKey = keydirHashKey();
    expect(processKey.equals(Buffer.alloc(8))).toBe(false);
    const keydir = new Keydir();
    for (const k of [
      '',
      'a',
      'test',
      'Hello, world!',
      'key0000000000042',
      'The quick brown fox jumps over the lazy dog',
    ]) {
      const want = halfSipHash(1, 3, processKey, Buffer.from(k, 'latin1'));
      const buf = inBuffer(k, 3);
      expect(hashBytes(buf, 3, k.length) >>> 0).toBe(want);
      expect(hashView(new DataView(buf.buffer, buf.byteOffset, buf.length), 3, k.length) >>> 0).toBe(want);
      if (k.length > 0) {
        keydir.warmKeys([k], 1);
        expect(keydir.warmedHashes[0]! >>> 0).toBe(want); // hashOf, the string path
      }
    }
  });

  it('finds real hash collisions to test with', () => {
    for (const [a, b] of collisions) {
      expect(a).not.toBe(b);
      expect(hashBytes(Buffer.from(a, 'latin1'), 0, a.length)).toBe(
        hashBytes(Buffer.from(b, 'latin1'), 0, b.length),
      );
    }
  });

  it('agrees with the string methods and a Map model, prev* included (setBytes and setView)', () => {
    fc.assert(
      fc.property(fc.array(bop, { minLength: 1, maxLength: 3000 }), (ops) => {
        const kd = new Keydir(); // byte and string methods mixed
        const viaStrings = new Keydir(); // string methods only
        const model = new Map<string, Loc>();
        for (const o of ops) {
          const before = model.get(o.k);
          const buf = inBuffer(o.k, o.pad);
          const h = hashBytes(buf, o.pad, o.k.length);
          if (o.t === 'set') {
            const loc = {
              segment: o.segment,
              position: o.position,
              valueLength: o.valueLength,
              expiresAt: o.expiresAt,
            };
            if (o.bytes && o.view) {
              const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
              expect(hashView(dv, o.pad, o.k.length)).toBe(h);
              kd.setView(
                h,
                dv,
                o.pad,
                o.k.length,
                o.position % 2 === 0 ? o.k : undefined,
                o.segment,
                o.position,
                o.valueLength,
                o.expiresAt,
              );
            } else if (o.bytes)
              kd.setBytes(h, buf, o.pad, o.k.length, o.segment, o.position, o.valueLength, o.expiresAt);
            else kd.set(o.k, o.segment, o.position, o.valueLength, o.expiresAt);
            viaStrings.set(o.k, o.segment, o.position, o.valueLength, o.expiresAt);
            expect(kd.prevSegment).toBe(before?.segment ?? -1);
            if (before) {
              expect([kd.prevPosition, kd.prevValueLength, kd.prevExpiresAt]).toEqual([
                before.position,
                before.valueLength,
                before.expiresAt,
              ]);
            }
            model.set(o.k, loc);
          } else {
            const had = o.bytes ? kd.deleteBytes(h, buf, o.pad, o.k.length) : kd.delete(o.k);
            expect(had).toBe(before !== undefined);
            if (o.bytes && before) {
              expect([kd.prevSegment, kd.prevPosition, kd.prevValueLength, kd.prevExpiresAt]).toEqual([
                before.segment,
                before.position,
                before.valueLength,
                before.expiresAt,
              ]);
            }
            viaStrings.delete(o.k);
            model.delete(o.k);
          }
          expect(kd.slot(o.k) >= 0).toBe(model.has(o.k));
        }
        agree(kd, model);
        agree(viaStrings, model);
      }),
      { numRuns: 60 },
    );
  });

  it('setView tells apart keys of equal hashes and lengths, and leaves the old location in prev* on an overwrite', () => {
    const kd = new Keydir();
    const keys = [...collisions.flat(), 'a', 'abc', 'key:000000000001', `${'p'.repeat(16)}-longer`];
    /** `k`'s bytes at an odd offset of a buffer, as a record holds them, and a DataView over it. */
    const viewOf = (k: string) => {
      const b = Buffer.concat([Buffer.from('xyz'), Buffer.from(k, 'latin1'), Buffer.from('w')]);
      return new DataView(b.buffer, b.byteOffset, b.length);
    };
    for (const round of [0, 1]) {
      keys.forEach((k, i) => {
        const dv = viewOf(k);
        const slot = kd.setView(hashView(dv, 3, k.length), dv, 3, k.length, k, 1, 1000 * round + i, i, 0);
        expect(kd.slot(k)).toBe(slot);
        expect(kd.prevSegment).toBe(round === 0 ? -1 : 1);
        if (round === 1) expect(kd.prevPosition).toBe(i);
      });
    }
    keys.forEach((k, i) => {
      expect(kd.get(k)).toEqual({ segment: 1, position: 1000 + i, valueLength: i, expiresAt: 0 });
    });
    expect(kd.size).toBe(keys.length);
  });

  it('warm changes nothing, whatever the hashes', () => {
    const kd = new Keydir();
    const buf = Buffer.from('abcdefgh', 'latin1');
    kd.setBytes(hashBytes(buf, 0, 8), buf, 0, 8, 1, 2, 3, 0);
    kd.warm(new Int32Array([0, -1, 0x7fffffff, -0x80000000, 12345]), 5);
    expect(kd.get('abcdefgh')).toEqual({ segment: 1, position: 2, valueLength: 3, expiresAt: 0 });
    expect(kd.size).toBe(1);
    // warmRecords also reads the records of entries whose hash matches, present or not.
    const model = new Map<string, Loc>([
      ['abcdefgh', { segment: 1, position: 2, valueLength: 3, expiresAt: 0 }],
    ]);
    for (let i = 0; i < 3000; i++) {
      kd.set(`w${i}`, 2, i, i, 0);
      model.set(`w${i}`, { segment: 2, position: i, valueLength: i, expiresAt: 0 });
    }
    const hashes = new Int32Array(64);
    for (let j = 0; j < 64; j++) {
      const k = j % 3 === 0 ? `absent${j}` : `w${j * 40}`;
      hashes[j] = hashBytes(Buffer.from(k, 'latin1'), 0, k.length);
    }
    hashes[63] = -1;
    kd.warmRecords(hashes, 64);
    kd.warmRecords(new Int32Array(0), 0);
    agree(kd, model);
  });

  it('keeps probes short: a lookup reads ~2 buckets at the highest load', () => {
    // Keys shaped as the benchmarks' ("key" + 13 digits) and as users' ("user:<n>").
    for (const shape of [
      (i: number) => `key${String(Math.imul(i, 0x9e3779b1) >>> 0).padStart(13, '0')}`,
      (i: number) => `user:${i}`,
    ]) {
      const kd = new Keydir();
      // Just under a doubling: the table at its highest load (KEYDIR_MAX_LOAD).
      const n = Math.floor(0.75 * 2 ** 17) - 1;
      for (let i = 0; i < n; i++) kd.set(shape(i), 1, i, 100, 0);
      const full = kd.probeStats();
      expect(full.load).toBeGreaterThan(0.74);
      // Linear probing with a uniform hash at load 3/4: 2.5 for a hit, 8.5 for a miss (Knuth).
      expect(full.hitProbes).toBeLessThan(3);
      expect(full.missProbes).toBeLessThan(10);
      // Deletes shift later members back (no tombstones): churn leaves the table as good as new.
      for (let i = 0; i < n; i += 2) kd.delete(shape(i));
      for (let i = n; i < n + n / 2; i++) kd.set(shape(i), 1, i, 100, 0);
      const churned = kd.probeStats();
      expect(churned.hitProbes).toBeLessThan(3);
      expect(churned.missProbes).toBeLessThan(10);
    }
  });

  it('keeps keys whose arena offsets pass 4 GiB (key offsets are u32 plus a high byte from then on)', () => {
    // The arena starts 1 MiB below 4 GiB: ~2.5 MiB of keys cross the line.
    const kd = new Keydir(2 ** 32 / KEYDIR_ARENA_CHUNK_BYTES - 1);
    const model = new Map<string, Loc>();
    const k = (i: number) => `key:${i}:`.padEnd(36 + (i % 23), 'x');
    const n = 45_000;
    let bytes = 0; // the arena holds the bytes past the inline ones
    for (let i = 0; i < n; i++) bytes += k(i).length - KEYDIR_INLINE_KEY_BYTES;
    expect(bytes).toBeGreaterThan(1.2 * KEYDIR_ARENA_CHUNK_BYTES);
    for (let i = 0; i < n; i++) {
      if (i % 2 === 0) kd.set(k(i), 3, i, 10, 0);
      else {
        const b = Buffer.from(k(i), 'latin1');
        kd.setBytes(hashBytes(b, 0, b.length), b, 0, b.length, 3, i, 10, 0);
      }
      model.set(k(i), { segment: 3, position: i, valueLength: 10, expiresAt: 0 });
    }
    for (let i = 0; i < n; i += 5) {
      kd.delete(k(i));
      model.delete(k(i));
    }
    for (let i = 0; i < n; i += 10) {
      kd.set(k(i), 4, i, 11, 0); // freed slots reused: offsets below and above 4 GiB
      model.set(k(i), { segment: 4, position: i, valueLength: 11, expiresAt: 0 });
    }
    agree(kd, model);
  });

  it('tells apart keys around the inline length: 15/16/17 bytes, a shared 16-byte prefix, equal hashes past it', () => {
    const inline = KEYDIR_INLINE_KEY_BYTES;
    const prefix = 'p'.repeat(inline);
    // Equal 32-bit hashes between keys that share their inline bytes: only the arena tells them apart.
    const seen = new Map<number, string>();
    const colliding: string[] = [];
    for (let i = 0; colliding.length < 6; i++) {
      const k = `${prefix}${i}`;
      const h = hashBytes(Buffer.from(k, 'latin1'), 0, k.length);
      const other = seen.get(h);
      if (other === undefined) seen.set(h, k);
      else colliding.push(other, k);
    }
    const keys = [
      ...colliding,
      prefix.slice(1), // 15 bytes
      prefix, // 16
      `${prefix}q`, // 17
      `${prefix.slice(1)}q`, // 16, differs in the last inline byte
      `q${prefix.slice(1)}`, // 16, differs in the first
      `${prefix}${'z'.repeat(300)}`,
      `${prefix}${'z'.repeat(299)}y`,
      'a',
      '\u00ff'.repeat(inline + 1),
    ];
    const kd = new Keydir();
    const model = new Map<string, Loc>();
    const put = (k: string, segment: number, position: number, bytes: boolean) => {
      if (bytes) {
        const b = Buffer.concat([Buffer.from('zz'), Buffer.from(k, 'latin1')]);
        kd.setBytes(hashBytes(b, 2, k.length), b, 2, k.length, segment, position, k.length, 0);
      } else kd.set(k, segment, position, k.length, 0);
      model.set(k, { segment, position, valueLength: k.length, expiresAt: 0 });
    };
    for (const [i, k] of keys.entries()) put(k, 1, i, i % 2 === 0);
    agree(kd, model);
    for (const k of keys) {
      const b = Buffer.from(`x${k}`, 'latin1');
      expect(kd.slotBytes(b, 1, k.length)).toBe(kd.slot(k));
      expect(kd.slotView(new DataView(b.buffer, b.byteOffset, b.length), 1, k.length)).toBe(kd.slot(k));
    }
    // Free every other key, then reuse the slots with keys longer and shorter than the freed ones
    // (inline-only slots taking arena keys and back), across table doublings.
    for (const [i, k] of keys.entries())
      if (i % 2 === 1) {
        expect(kd.delete(k)).toBe(true);
        model.delete(k);
      }
    agree(kd, model);
    for (let r = 0; r < 3; r++) {
      for (let i = 0; i < 5000; i++) put(i % 3 === 0 ? `${prefix}${r}:${i}` : `${r}:${i}`, 2, i, i % 2 === 0);
      for (let i = 0; i < 5000; i += 2) {
        const k = i % 3 === 0 ? `${prefix}${r}:${i}` : `${r}:${i}`;
        expect(kd.delete(k)).toBe(true);
        model.delete(k);
      }
    }
    for (const [i, k] of keys.entries()) put(k, 3, i, i % 2 === 1);
    agree(kd, model);
    for (const [k, loc] of model) {
      const s = kd.slot(k);
      expect(kd.segmentOf(s)).toBe(loc.segment);
      expect(kd.moveIfAt(k, loc.segment, loc.position, 9, loc.position + 1)).toBe(true);
      model.set(k, { ...loc, segment: 9, position: loc.position + 1 });
    }
    agree(kd, model);
  });
});

describe('keydir doubling (incremental, as Redis rehashes its dict)', () => {
  /** Keys set before the random operations: one new key more starts the first doubling. */
  const PREFILL = 0.75 * 1024;
  const prefilled = (i: number) => `pre:${i}`;
  const dkey = fc.oneof(fc.integer({ min: 0, max: PREFILL - 1 }).map(prefilled), key);
  const dop = fc.oneof(
    fc.record({
      t: fc.constant('set' as const),
      bytes: fc.boolean(),
      /** With `bytes`: setView (the store's append path) instead of setBytes. */
      view: fc.boolean(),
      k: dkey,
      segment: fc.integer({ min: 0, max: 65534 }),
      position: fc.nat(),
      expiresAt: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 2 ** 45 })),
    }),
    fc.record({ t: fc.constant('del' as const), bytes: fc.boolean(), k: dkey }),
    /** With `bytes` and `view`: slotView (a DataView of a buffer holding the key after 3 other bytes: the server's GET). */
    fc.record({ t: fc.constant('get' as const), bytes: fc.boolean(), view: fc.boolean(), k: dkey }),
    fc.record({ t: fc.constant('move' as const), k: dkey, segment: fc.integer({ min: 0, max: 65534 }) }),
  );

  it('agrees with a Map model while keys are split between the old table and the new one', () => {
    fc.assert(
      fc.property(fc.array(dop, { minLength: 200, maxLength: 2500 }), (ops) => {
        const kd = new Keydir();
        const model = new Map<string, Loc>();
        for (let i = 0; i < PREFILL; i++) {
          kd.set(prefilled(i), 1, i, i, 0);
          model.set(prefilled(i), { segment: 1, position: i, valueLength: i, expiresAt: 0 });
        }
        expect(kd.rehashing).toBe(false);
        let sawRehashing = false;
        for (const o of ops) {
          const buf = Buffer.from(o.k, 'latin1');
          const h = hashBytes(buf, 0, buf.length);
          const before = model.get(o.k);
          if (o.t === 'set') {
            const loc = { segment: o.segment, position: o.position, valueLength: 5, expiresAt: o.expiresAt };
            if (o.bytes && o.view)
              kd.setView(
                h,
                new DataView(buf.buffer, buf.byteOffset, buf.length),
                0,
                o.k.length,
                o.position % 2 === 0 ? o.k : undefined, // without it: the key made from the bytes when kept
                loc.segment,
                loc.position,
                5,
                loc.expiresAt,
              );
            else if (o.bytes) kd.setBytes(h, buf, 0, buf.length, loc.segment, loc.position, 5, loc.expiresAt);
            else kd.set(o.k, loc.segment, loc.position, 5, loc.expiresAt);
            expect(kd.prevSegment).toBe(before?.segment ?? -1);
            if (before) expect(kd.prevPosition).toBe(before.position);
            model.set(o.k, loc);
          } else if (o.t === 'del') {
            expectDeleted(kd, o, h, buf, before !== undefined);
            model.delete(o.k);
          } else if (o.t === 'get') {
            expectFound(kd, o, buf, before);
          } else {
            expect(kd.moveIfAt(o.k, before?.segment ?? 0, before?.position ?? 0, o.segment, 7)).toBe(
              before !== undefined,
            );
            if (before) model.set(o.k, { ...before, segment: o.segment, position: 7 });
          }
          sawRehashing ||= kd.rehashing;
          expect(kd.size).toBe(model.size);
        }
        agree(kd, model);
        // No key is in the tables twice (a key moved over after it was already in the new table):
        // once deleted, each key is gone.
        for (const k of model.keys()) {
          expect(kd.delete(k)).toBe(true);
          expect(kd.slot(k)).toBe(-1);
        }
        expect(kd.size).toBe(0);
        // Every run that added a key went through a doubling's middle.
        if (model.size > PREFILL) expect(sawRehashing || kd.resizes > 0).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it('moves no key in the call that doubles the table, and all of them within an eighth of its capacity in calls', () => {
    const kd = new Keydir();
    const k = (i: number) => `key:${i}`;
    let n = 0;
    for (; kd.capacity < 2 ** 17; n++) kd.set(k(n), 1, n, 100, 0);
    // The set that started the doubling returned with the old table still holding its keys.
    expect(kd.rehashing).toBe(true);
    const oldCapacity = kd.capacity / 2;
    let calls = 0;
    for (; kd.rehashing; calls++) {
      // Keys in either table: found, overwritten, deleted and added back, with no key lost.
      const i = (calls * 7919) % n;
      expect(kd.slot(k(i))).toBeGreaterThanOrEqual(0);
      if (calls % 3 === 0) {
        expect(kd.delete(k(i))).toBe(true);
        kd.set(k(i), 2, i, 100, 0);
      }
    }
    expect(calls).toBeLessThanOrEqual(oldCapacity / 8);
    expect(kd.size).toBe(n);
    for (let i = 0; i < n; i++) expect(kd.slot(k(i))).toBeGreaterThanOrEqual(0);
    const stats = kd.probeStats();
    expect(stats.hitProbes).toBeLessThan(2);
    expect(stats.load).toBeCloseTo(n / kd.capacity, 6);
  });

  it('finishes a doubling with no calls at all, by rehashFor (the store timer)', () => {
    const kd = new Keydir();
    let n = 0;
    for (; kd.capacity < 2 ** 16; n++) kd.set(`key:${n}`, 1, n, 100, 0);
    expect(kd.rehashing).toBe(true);
    while (kd.rehashFor(1));
    expect(kd.rehashing).toBe(false);
    for (let i = 0; i < n; i++) expect(kd.get(`key:${i}`)?.position).toBe(i);
  });
});

describe('keydir arena evacuation (its repack, a step at a time)', () => {
  /** Long keys: ~5,700 fill an arena chunk. */
  const LONG = 200;
  const PREFILL = 10_000;
  const long = (i: number) => `long:${i}:`.padEnd(LONG, String.fromCharCode(65 + (i % 26)));
  const short = (i: number) => `s${i}`;
  /** Longer than the freed slots' keys: its bytes are appended. */
  const TRIGGER = `trigger:`.padEnd(LONG + 50, '!');
  /**
   * PREFILL long keys (two chunks); four in five deleted, and 6,500 of their
   * slots taken by short keys, which leave those long keys' bytes dead
   * (1.2 MiB): the next long key's bytes start an evacuation. The other
   * 1,500 freed slots keep their bytes, in the chunks to be emptied.
   */
  function prefilled(): { kd: Keydir; model: Map<string, Loc> } {
    const kd = new Keydir();
    const model = new Map<string, Loc>();
    const put = (k: string, i: number) => {
      kd.set(k, 1, i, i, 0);
      model.set(k, { segment: 1, position: i, valueLength: i, expiresAt: 0 });
    };
    for (let i = 0; i < PREFILL; i++) put(long(i), i);
    for (let i = 0; i < PREFILL; i++) {
      if (i % 5 === 0) continue;
      kd.delete(long(i));
      model.delete(long(i));
    }
    for (let i = 0; i < 6500; i++) put(short(i), i);
    while (kd.rehashFor(1)); // no doubling under way: the steps below are the evacuation's
    expect(kd.arenaChunks).toEqual({ held: 2, indices: 2, evacuating: false });
    return { kd, model };
  }
  const ekey = fc.oneof(fc.integer({ min: 0, max: PREFILL - 1 }).map(long), key);
  const eop = fc.oneof(
    fc.record({
      t: fc.constant('set' as const),
      how: fc.constantFrom('string', 'bytes', 'view'),
      k: ekey,
      segment: fc.integer({ min: 0, max: 65534 }),
      position: fc.nat(),
    }),
    fc.record({ t: fc.constant('del' as const), bytes: fc.boolean(), k: ekey }),
    fc.record({ t: fc.constant('get' as const), bytes: fc.boolean(), view: fc.boolean(), k: ekey }),
  );

  it('agrees with a Map model while live keys are split between the chunks being emptied and new ones, and after', () => {
    fc.assert(
      fc.property(fc.array(eop, { minLength: 100, maxLength: 2500 }), (ops) => {
        const { kd, model } = prefilled();
        kd.set(TRIGGER, 2, 0, 1, 0); // appended: the evacuation starts
        model.set(TRIGGER, { segment: 2, position: 0, valueLength: 1, expiresAt: 0 });
        expect(kd.arenaChunks.evacuating).toBe(true);
        for (const o of ops) {
          const buf = Buffer.from(o.k, 'latin1');
          const h = hashBytes(buf, 0, buf.length);
          const before = model.get(o.k);
          if (o.t === 'set') {
            const loc = { segment: o.segment, position: o.position, valueLength: 5, expiresAt: 0 };
            if (o.how === 'view')
              kd.setView(
                h,
                new DataView(buf.buffer, buf.byteOffset, buf.length),
                0,
                o.k.length,
                o.k,
                o.segment,
                o.position,
                5,
                0,
              );
            else if (o.how === 'bytes') kd.setBytes(h, buf, 0, buf.length, o.segment, o.position, 5, 0);
            else kd.set(o.k, o.segment, o.position, 5, 0);
            expect(kd.prevSegment).toBe(before?.segment ?? -1);
            model.set(o.k, loc);
          } else if (o.t === 'del') {
            expectDeleted(kd, o, h, buf, before !== undefined);
            model.delete(o.k);
          } else {
            expectFound(kd, o, buf, before);
          }
        }
        agree(kd, model);
        // Finished (by the timer's path), the emptied chunks are gone and freed slots reuse no bytes of theirs:
        // every prefilled key set again, into freed slots, leaves every other key as it was.
        while (kd.rehashFor(1));
        expect(kd.arenaChunks.evacuating).toBe(false);
        for (let i = 0; i < PREFILL; i += 2) {
          kd.set(long(i), 3, i, 9, 0);
          model.set(long(i), { segment: 3, position: i, valueLength: 9, expiresAt: 0 });
        }
        agree(kd, model);
        for (const k of model.keys()) expect(kd.delete(k)).toBe(true); // no key twice
        expect(kd.size).toBe(0);
      }),
      { numRuns: 10 },
    );
  });

  it('copies no key in the call that starts it; finished at a doubling\u2019s pace, holding about the live bytes', () => {
    const { kd } = prefilled();
    const held = kd.arenaChunks.held;
    kd.set(TRIGGER, 2, 0, 1, 0);
    // Every chunk it had is still held, plus the new one the key went to.
    expect(kd.arenaChunks).toEqual({ held: held + 1, indices: held + 1, evacuating: true });
    let calls = 0;
    for (; kd.arenaChunks.evacuating; calls++)
      expect(kd.slot(long(5 * (calls % 2000)))).toBeGreaterThanOrEqual(0);
    // One step of KEYDIR_REHASH_SLOTS slots every KEYDIR_REHASH_EVERY calls, as a doubling's.
    expect(calls).toBeLessThanOrEqual((Math.ceil(PREFILL / KEYDIR_REHASH_SLOTS) + 1) * KEYDIR_REHASH_EVERY);
    // 2,001 live long keys: ~0.4 MiB, one chunk; the two emptied ones are dropped.
    expect(kd.arenaChunks).toEqual({ held: 1, indices: held + 1, evacuating: false });
    for (let i = 0; i < PREFILL; i += 5) expect(kd.get(long(i))?.position).toBe(i);
  });

  it('reuses the emptied chunks\u2019 indices: churn through many evacuations keeps the arena\u2019s index (and key offsets) bounded', () => {
    const kd = new Keydir();
    let evacuations = 0;
    let wasEvacuating = false;
    let maxIndices = 0;
    // A rolling window of 4,000 live long keys of 7 lengths: each new one replaces the
    // oldest, in its freed slot, wasting the bytes a shorter key does not need (or all of them).
    const churned = (i: number) => `${i}:`.padEnd(60 + (i % 7) * 40, '.');
    for (let i = 0; i < 200_000; i++) {
      kd.set(churned(i), 1, i, 1, 0);
      if (i >= 4000) expect(kd.delete(churned(i - 4000))).toBe(true);
      const { evacuating, indices } = kd.arenaChunks;
      if (evacuating && !wasEvacuating) evacuations++;
      wasEvacuating = evacuating;
      maxIndices = Math.max(maxIndices, indices);
    }
    expect(evacuations).toBeGreaterThanOrEqual(10);
    expect(maxIndices).toBeLessThanOrEqual(6);
    for (let i = 200_000 - 4000; i < 200_000; i++) expect(kd.get(churned(i))?.position).toBe(i);
    expect(kd.size).toBe(4000);
  });
});
