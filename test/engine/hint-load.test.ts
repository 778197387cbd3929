/**
 * The hint loader (recovery by key bytes, in batches) against the record
 * scan it replaces: the same directory opened with its hints, without them,
 * and with one of them damaged must give the same keydir — the same keys at
 * the same locations with the same expiries — and the same live bytes per
 * segment. Workloads mix multi-byte UTF-8 keys, long keys, keys whose hashes
 * collide, overwrites and deletes across segments (a later hint's entry or
 * tombstone beats an earlier one's), expiries passing before the reopen,
 * batches and compactions (whose hints are written by the rewrite). Also:
 * decodeHintBatches visits what decodeHint visits, whatever the batch size.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  decodeHint,
  decodeHintBatches,
  encodeHint,
  HintBatch,
  type HintEntry,
} from '../../src/engine/hint.js';
import { ManualClock, openStore, type Store, type StoreOptions } from '../../src/engine/index.js';
import { hashBytes } from '../../src/engine/keydir.js';
import { copyDir, flipBit, removeTempDirs, segFiles, silentLogger, tempDir } from './helpers.js';

afterAll(removeTempDirs);

/** Two distinct keys of one length whose hashBytes hashes are equal. */
function collidingPair(): [string, string] {
  const seen = new Map<number, string>();
  for (let i = 0; ; i++) {
    const k = `h${String(i).padStart(7, '0')}`;
    const h = hashBytes(Buffer.from(k, 'latin1'), 0, k.length);
    const other = seen.get(h);
    if (other !== undefined) return [other, k];
    seen.set(h, k);
  }
}

const KEYS = [
  'a',
  'k1',
  'k2',
  'é',
  'ключ',
  '日本語のキー',
  '🔑',
  'z'.repeat(300),
  'x\u0000y',
  ...collidingPair(),
  ...Array.from({ length: 20 }, (_, i) => `key-${i}`),
];

type Op =
  | { t: 'set'; key: string; size: number; ttlMs?: number }
  | { t: 'del'; key: string }
  | { t: 'batch'; keys: string[]; del: boolean }
  | { t: 'advance'; ms: number }
  | { t: 'compact' };

const key = fc.constantFrom(...KEYS);
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .record({ key, size: fc.nat({ max: 300 }), ttlMs: fc.option(fc.integer({ min: 1, max: 3000 })) })
      .map(({ ttlMs, ...o }) =>
        ttlMs === null ? { t: 'set' as const, ...o } : { t: 'set' as const, ...o, ttlMs },
      ),
  },
  { weight: 3, arbitrary: key.map((k) => ({ t: 'del' as const, key: k })) },
  {
    weight: 1,
    arbitrary: fc
      .record({ keys: fc.array(key, { minLength: 1, maxLength: 5 }), del: fc.boolean() })
      .map((o) => ({ t: 'batch' as const, ...o })),
  },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 2000 }).map((ms) => ({ t: 'advance' as const, ms })) },
  { weight: 1, arbitrary: fc.constant({ t: 'compact' as const }) },
);

function options(clock: ManualClock, readOnly: boolean): StoreOptions {
  return {
    maxSegmentBytes: 2048,
    fsync: 'never',
    cacheBytes: 0,
    clock,
    logger: silentLogger,
    compaction: { auto: false },
    readOnly,
  };
}

/**
 * What recovery rebuilt: each key's location (segment named by base offset),
 * each segment's live bytes and last offset.
 */
function keydirOf(s: Store): {
  keys: [string, string][];
  live: [number, number, number][];
  expiring: number;
} {
  const kd = s.keydir;
  const keys: [string, string][] = [];
  for (const [k] of kd.entries()) {
    const loc = kd.get(k)!;
    const seg = s.segments[loc.segment]!;
    keys.push([k, `${seg.baseOffset}@${loc.position} len ${loc.valueLength} exp ${loc.expiresAt}`]);
  }
  keys.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const live: [number, number, number][] = [];
  for (const seg of s.segments) if (seg) live.push([seg.baseOffset, seg.liveBytes, seg.lastOffset]);
  live.sort((a, b) => a[0] - b[0]);
  return { keys, live, expiring: kd.expiringKeys };
}

async function recovered(dir: string, clock: ManualClock) {
  const s = await openStore(dir, options(clock, true));
  try {
    return { keydir: keydirOf(s), recovery: s.stats().recovery };
  } finally {
    await s.close();
  }
}

const hintsOf = (dir: string) => fs.readdirSync(dir).filter((n) => n.endsWith('.hint'));

describe('loading hints by key bytes', () => {
  it('rebuilds the keydir the record scan rebuilds, with or without a damaged hint', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 20, maxLength: 150 }),
        fc.nat(),
        fc.integer({ min: 0, max: 4000 }),
        async (ops, victimPick, lastAdvance) => {
          const clock = new ManualClock();
          const dir = tempDir();
          const s = await openStore(dir, options(clock, false));
          for (const o of ops) {
            if (o.t === 'set') {
              await s.set(
                o.key,
                `${o.key}:${'v'.repeat(o.size)}`,
                o.ttlMs === undefined ? {} : { ttlMs: o.ttlMs },
              );
            } else if (o.t === 'del') {
              await s.delete(o.key);
            } else if (o.t === 'batch') {
              await s.batch(
                o.keys.map((k) =>
                  o.del ? { type: 'del' as const, key: k } : { type: 'set' as const, key: k, value: k },
                ),
              );
            } else if (o.t === 'advance') {
              clock.advance(o.ms);
            } else {
              await s.compact();
            }
          }
          await s.close();
          clock.advance(lastAdvance); // some expiries pass between close and reopen

          const sealed = segFiles(dir).length - 1;
          const hints = hintsOf(dir);
          expect(hints.length).toBe(sealed);

          const withHints = await recovered(copyDir(dir), clock);
          expect(withHints.recovery).toMatchObject({ fromHints: sealed, scanned: 1, corruptions: 0 });

          const bare = copyDir(dir);
          for (const h of hints) fs.rmSync(join(bare, h));
          const scanned = await recovered(bare, clock);
          expect(scanned.recovery).toMatchObject({ fromHints: 0, scanned: sealed + 1 });
          expect(withHints.keydir).toEqual(scanned.keydir);

          if (hints.length > 0) {
            const damaged = copyDir(dir);
            const victim = join(damaged, hints[victimPick % hints.length]!);
            flipBit(victim, victimPick % fs.statSync(victim).size, victimPick % 8);
            const fallback = await recovered(damaged, clock);
            expect(fallback.recovery).toMatchObject({ fromHints: sealed - 1, scanned: 2 });
            expect(fallback.keydir).toEqual(scanned.keydir);
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it('lets a later hint overwrite and delete what an earlier hint set', async () => {
    const clock = new ManualClock();
    const dir = tempDir();
    const s = await openStore(dir, options(clock, false));
    const fill = async (tag: string) => {
      for (let i = 0; i < 30; i++) await s.set(`fill-${tag}-${i}`, 'f'.repeat(100));
    };
    await s.set('ключ', 'old');
    await s.set('gone', 'soon');
    await s.set('kept', 'here');
    await fill('a');
    await s.set('ключ', 'new');
    await s.delete('gone');
    await fill('b');
    await s.close();
    expect(hintsOf(dir).length).toBeGreaterThanOrEqual(2);

    const r = await openStore(copyDir(dir), options(clock, true));
    expect(r.stats().recovery).toMatchObject({ fromHints: segFiles(dir).length - 1, scanned: 1 });
    expect(r.getSync('ключ')?.toString()).toBe('new');
    expect(r.getSync('gone')).toBeUndefined();
    expect(r.getSync('kept')?.toString()).toBe('here');
    expect(r.keydir.size).toBe(2 + 60);
    await r.close();
  });
});

describe('decodeHintBatches', () => {
  const entry: fc.Arbitrary<HintEntry> = fc.record({
    key: fc
      .string({ unit: 'binary', minLength: 1, maxLength: 40 })
      .map((k) => Buffer.from(k, 'utf8').toString('latin1')),
    offset: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
    position: fc.nat({ max: 2 ** 32 - 1 }),
    valueLength: fc.nat({ max: 2 ** 31 - 1 }),
    expiresAt: fc.oneof(fc.constant(0), fc.nat({ max: Number.MAX_SAFE_INTEGER })),
    flags: fc.nat({ max: 255 }),
  });

  /** Entries as decodeHintBatches gives them, keys read back from the buffer. */
  function viaBatches(
    buf: Buffer,
    base: number,
    capacity: number,
  ): { problem?: string; entries: HintEntry[] } {
    const entries: HintEntry[] = [];
    const problem = decodeHintBatches(buf, base, new HintBatch(capacity), (b) => {
      expect(b.length).toBeGreaterThan(0);
      expect(b.length).toBeLessThanOrEqual(capacity);
      for (let j = 0; j < b.length; j++) {
        entries.push({
          key: buf.toString('latin1', b.keyStart[j]!, b.keyStart[j]! + b.keyLength[j]!),
          offset: b.offset[j]!,
          position: b.position[j]!,
          valueLength: b.valueLength[j]!,
          expiresAt: b.expiresAt[j]!,
          flags: b.flags[j]!,
        });
      }
    });
    return problem === undefined ? { entries } : { problem, entries };
  }

  function viaDecodeHint(buf: Buffer, base: number): { problem?: string; entries: HintEntry[] } {
    const entries: HintEntry[] = [];
    const problem = decodeHint(buf, base, (key, offset, position, valueLength, expiresAt, flags) =>
      entries.push({ key, offset, position, valueLength, expiresAt, flags }),
    );
    return problem === undefined ? { entries } : { problem, entries };
  }

  it('visits the entries decodeHint visits, in order, at any batch size', () => {
    fc.assert(
      fc.property(
        fc.array(entry, { maxLength: 200 }),
        fc.nat({ max: 2 ** 40 }),
        fc.integer({ min: 1, max: 70 }),
        (entries, base, capacity) => {
          const buf = encodeHint(base, entries);
          const got = viaBatches(buf, base, capacity);
          expect(got).toEqual({ entries });
          expect(got).toEqual(viaDecodeHint(buf, base));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('visits nothing of a damaged hint and names the same problem decodeHint names', () => {
    fc.assert(
      fc.property(
        fc.array(entry, { minLength: 1, maxLength: 50 }),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        fc.boolean(),
        (entries, at, bit, truncate) => {
          const buf = encodeHint(7, entries);
          const bad = truncate ? buf.subarray(0, at % buf.length) : Buffer.from(buf);
          if (!truncate) bad[at % bad.length] = bad[at % bad.length]! ^ (1 << bit);
          const got = viaBatches(bad, 7, 16);
          expect(got.problem).toBeDefined();
          expect(got.entries).toEqual([]);
          expect(got).toEqual(viaDecodeHint(bad, 7));
        },
      ),
      { numRuns: 200 },
    );
    expect(viaBatches(encodeHint(7, []), 8, 16).problem).toBe('hint is for base offset 7, not 8');
  });
});
