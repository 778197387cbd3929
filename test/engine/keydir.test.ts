/**
 * The keydir's hash table and key arena against a Map model: random
 * set/delete/moveIfAt sequences with keys of every length (so freed slots are
 * reused with shorter and longer keys), past several table doublings, and
 * enough deletes of long keys to force the arena to be repacked.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Keydir } from '../../src/engine/keydir.js';
import { KEYDIR_ARENA_CHUNK_BYTES } from '../../src/engine/limits.js';

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

describe('keydir', () => {
  it('agrees with a Map model over random set/delete/moveIfAt sequences', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 3000 }), (ops) => {
        const kd = new Keydir();
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
