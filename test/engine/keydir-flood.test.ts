/**
 * Hash flooding (issue 15): a client chooses its keys, so with an unkeyed
 * keydir hash it can choose thousands of distinct keys that share one hash,
 * and every insert and lookup of them walks one probe run that grows with
 * each key. The keys here are murmur3_32 multicollisions that hold for
 * every seed (the keydir hashed with murmur3_32, seed 0, from d4946c9; a
 * random seed would not have helped): murmur3 XORs each scrambled word k
 * into its 32-bit state h and then maps h to rotl(h, 13) * 5 + c. Flip bit
 * 18 of one scrambled word and the rotate moves it to bit 31, where the
 * multiply by 5 and the add carry it out of the word: after that block the
 * state differs in bit 31 alone, whatever it was. Flip bit 31 of the next
 * scrambled word and the states are equal again. Each pair of words so has
 * two choices (scramble is a bijection: invert it for the words), and 12
 * pairs give 4,096 keys with one murmur3 hash (Aumasson and Bernstein,
 * "Hash-flooding DoS reloaded", 2012, build such differentials for
 * MurmurHash2 and 3). Under a hash keyed by a secret the keys are just
 * keys. The test measures their probe lengths and insert time against as
 * many random keys of the same length.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hashBytes, Keydir } from '../../src/engine/keydir.js';

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** The inverse of odd `a` modulo 2^32 (Newton's iteration: each step doubles the correct low bits). */
function inverse(a: number): number {
  let x = a; // correct to 3 bits for odd a
  for (let i = 0; i < 5; i++) x = Math.imul(x, 2 - Math.imul(a, x));
  return x;
}

const scramble = (w: number) => {
  const k = Math.imul(w, C1);
  return Math.imul((k << 15) | (k >>> 17), C2);
};
const unscramble = (s: number) => {
  const k = Math.imul(s, inverse(C2));
  return Math.imul((k >>> 15) | (k << 17), inverse(C1));
};

/** murmur3_32 of `b` under `seed` (the reference algorithm, bytewise). */
function murmur3(b: Uint8Array, seed: number): number {
  let h = seed | 0;
  let i = 0;
  for (; i + 4 <= b.length; i += 4) {
    const x = h ^ scramble(b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24));
    h = (Math.imul((x << 13) | (x >>> 19), 5) + 0xe6546b64) | 0;
  }
  let t = 0;
  for (let j = b.length - 1; j >= i; j--) t = (t << 8) | b[j]!;
  if (i < b.length) h ^= scramble(t);
  h ^= b.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const PAIRS = 12;
const KEYS = 1 << PAIRS;
/** Each key: an 8-byte prefix, then PAIRS pairs of words, 104 bytes. */
const KEY_BYTES = 8 + 8 * PAIRS;

/** 2^PAIRS distinct keys (as latin1 strings) with one murmur3_32 hash under any seed. */
function murmurMulticollision(): string[] {
  const base = randomBytes(KEY_BYTES);
  base.write('flood:00', 0, 'latin1');
  const keys: string[] = [];
  for (let choice = 0; choice < KEYS; choice++) {
    const b = Buffer.from(base);
    for (let p = 0; p < PAIRS; p++) {
      if (((choice >>> p) & 1) === 0) continue;
      const at = 8 + 8 * p;
      b.writeInt32LE(unscramble(scramble(b.readInt32LE(at)) ^ 0x00040000), at);
      b.writeInt32LE(unscramble(scramble(b.readInt32LE(at + 4)) ^ 0x80000000), at + 4);
    }
    keys.push(b.toString('latin1'));
  }
  return keys;
}

/** Inserts `keys` into a new keydir: its probe lengths and the inserts' time (best of 3 keydirs). */
function insert(keys: string[]): { hitProbes: number; maxHitProbes: number; ms: number } {
  let best = Number.POSITIVE_INFINITY;
  let stats = { hitProbes: 0, maxHitProbes: 0 };
  for (let round = 0; round < 3; round++) {
    const kd = new Keydir();
    const t0 = performance.now();
    for (let i = 0; i < keys.length; i++) kd.set(keys[i]!, 1, i, 100, 0);
    best = Math.min(best, performance.now() - t0);
    for (let i = 0; i < keys.length; i += 97) expect(kd.get(keys[i]!)?.position).toBe(i);
    stats = kd.probeStats();
  }
  return { ...stats, ms: best };
}

describe('keydir hash flooding', () => {
  const flood = murmurMulticollision();

  it('builds distinct keys that collide in murmur3_32 under every seed', () => {
    expect(new Set(flood).size).toBe(KEYS);
    for (const seed of [0, 0x9747b28c, randomBytes(4).readUInt32LE(0)]) {
      const want = murmur3(Buffer.from(flood[0]!, 'latin1'), seed);
      for (const k of flood) expect(murmur3(Buffer.from(k, 'latin1'), seed)).toBe(want);
    }
  });

  it('spreads them as it spreads random keys: probe lengths and insert time', () => {
    const random = Array.from({ length: KEYS }, (_, i) => {
      const b = randomBytes(KEY_BYTES);
      b.write(`r${String(i).padStart(7, '0')}`, 0, 'latin1');
      return b.toString('latin1');
    });
    insert(random); // warm up both paths before timing
    const r = insert(random);
    const f = insert(flood);
    const hashes = new Set(flood.map((k) => hashBytes(Buffer.from(k, 'latin1'), 0, k.length)));
    const shown = `flood ${f.hitProbes.toFixed(2)} probes per hit (longest ${f.maxHitProbes}), ${f.ms.toFixed(1)} ms; random ${r.hitProbes.toFixed(2)} (longest ${r.maxHitProbes}), ${r.ms.toFixed(1)} ms; ${hashes.size} distinct hashes of ${KEYS}`;
    // Distinct keyed 32-bit hashes of 4,096 keys: ~2 pairs collide on average.
    expect(hashes.size, shown).toBeGreaterThan(KEYS - 20);
    // Random keys: ~1.5 probes per hit at the keydir's load (at most 0.75), the longest a few tens.
    expect(f.hitProbes, shown).toBeLessThan(2 * r.hitProbes + 1);
    expect(f.maxHitProbes, shown).toBeLessThan(Math.max(100, 4 * r.maxHitProbes));
    // Flooded (one hash): ~KEYS/2 probes and a key comparison each per insert, ~100x the time.
    expect(f.ms, shown).toBeLessThan(10 * r.ms + 20);
  });
});
