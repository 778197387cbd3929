/**
 * The hint built while a segment is active (hint-builder.ts) against the hint
 * a scan of the segment gives (each key's last record in it, in record order,
 * tombstones and expired values included): equal for the active segment after
 * every step, and every sealed segment's `.hint` file equal to the scan of its
 * file, under random sets (with and without TTLs), deletes, batches (a key
 * twice in one, deletes in them), PEXPIRE/PERSIST, expiries passing (lazily
 * on read and by the sweep), replicated records with offset gaps, clean
 * reopens and power losses mid-segment (a torn tail cut at recovery). Then a
 * restart from those hints gives the keydir a restart by scanning gives.
 * Also the builder alone: squeezing out dropped entries changes nothing, in
 * a hint small enough for its own chunks and in one big enough for slabs; a
 * drop finds its entry reading at most one block's search of positions; a
 * released big hint gives its memory back to the OS; and a clean close seals
 * a big active segment, whose hint the next open loads.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/engine/clock.js';
import { encodeHint, HINT_ENTRY_BYTES, HINT_HEADER_BYTES, type HintEntry } from '../../src/engine/hint.js';
import {
  dropRecycledHintStorage,
  HintBuilder,
  recycledHintChunks,
  SQUEEZE_STEP_ENTRIES,
} from '../../src/engine/hint-builder.js';
import { HINT_SPARE_CHUNKS, SEAL_AT_CLOSE_MIN_BYTES, SLAB_BYTES } from '../../src/engine/limits.js';
import { MemFs } from '../../src/engine/mem-fs.js';
import { prefaultFillsInFlight } from '../../src/engine/prefault.js';
import { FLAG_BATCH, FLAG_BATCH_END, FLAG_TOMBSTONE } from '../../src/engine/record.js';
import { openStore, type Store } from '../../src/engine/store.js';
import { scannedHint, silentLogger } from './helpers.js';

const DIR = '/mem/db';

/** The active segment's built hint and every sealed segment's hint file equal their scans. */
async function checkHints(s: Store, fs: MemFs): Promise<void> {
  s.flushPending();
  const active = s.active;
  expect(active.hint).toBeDefined();
  expect(active.hint!.encode(active.baseOffset).equals(scannedHint(fs, DIR, active.name))).toBe(true);
  await s.settleBackground();
  for (const seg of s.ordered) {
    if (seg === active) continue;
    expect(seg.hinted).toBe(true);
    const file = fs.readFile(`${DIR}/${seg.name.replace('.seg', '.hint')}`);
    expect(file.equals(scannedHint(fs, DIR, seg.name))).toBe(true);
  }
}

function keydirOf(s: Store): string[] {
  const out: string[] = [];
  for (const [k] of s.keydir.entries()) {
    const loc = s.keydir.get(k)!;
    out.push(
      `${k} ${s.segments[loc.segment]!.baseOffset}@${loc.position} ${loc.valueLength} ${loc.expiresAt}`,
    );
  }
  return out.sort();
}

type Op =
  | { t: 'set'; key: number; size: number; ttlMs: number | null }
  | { t: 'del'; key: number }
  | { t: 'batch'; items: { key: number; del: boolean }[] }
  | { t: 'expire'; key: number; ttlMs: number | null }
  | { t: 'advance'; ms: number }
  | { t: 'get'; key: number }
  | { t: 'replicate'; gap: number; items: { key: number; del: boolean; ttlMs: number | null }[] }
  | { t: 'reopen' }
  | { t: 'crash'; seed: number };

const key = fc.integer({ min: 0, max: 15 });
const ttl = fc.option(fc.integer({ min: 1, max: 3000 }), { freq: 3 });
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({ t: fc.constant('set' as const), key, size: fc.nat({ max: 200 }), ttlMs: ttl }),
  },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('del' as const), key }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('batch' as const),
      items: fc.array(fc.record({ key, del: fc.boolean() }), { minLength: 1, maxLength: 5 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('expire' as const),
      key,
      ttlMs: fc.option(fc.integer({ min: 1, max: 3000 })),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 2000 }) }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('get' as const), key }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('replicate' as const),
      gap: fc.nat({ max: 3 }),
      items: fc.array(fc.record({ key, del: fc.boolean(), ttlMs: ttl }), { minLength: 1, maxLength: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('crash' as const), seed: fc.nat() }) },
);

describe('the hint built while appending', () => {
  it('equals the hint a scan of the segment gives, through reopens and power losses; a restart from it gives the scanned keydir', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 10, maxLength: 120 }),
        fc.boolean(),
        async (ops, bigSegments) => {
          const clock = new ManualClock();
          let fs = new MemFs();
          const open = (f: MemFs) =>
            openStore(DIR, {
              fs: f,
              fsync: 'never',
              maxSegmentBytes: bigSegments ? 64 * 1024 : 1500,
              cacheBytes: 0,
              clock,
              logger: silentLogger,
              compaction: { auto: false },
            });
          let s = await open(fs);
          try {
            for (const o of ops) {
              const k = `key-${'key' in o ? o.key : 0}`;
              if (o.t === 'set') {
                await s.set(k, `${k}:${'v'.repeat(o.size)}`, o.ttlMs === null ? {} : { ttlMs: o.ttlMs });
              } else if (o.t === 'del') {
                await s.delete(k);
              } else if (o.t === 'batch') {
                await s.batch(
                  o.items.map((it) =>
                    it.del
                      ? { type: 'del' as const, key: `key-${it.key}` }
                      : { type: 'set' as const, key: `key-${it.key}`, value: `b${it.key}` },
                  ),
                );
              } else if (o.t === 'expire') {
                await s.expire(k, o.ttlMs);
              } else if (o.t === 'advance') {
                clock.advance(o.ms);
              } else if (o.t === 'get') {
                s.getSync(k);
              } else if (o.t === 'replicate') {
                let offset = s.nextOffset + o.gap;
                const n = o.items.length;
                await s.applyReplicated(
                  o.items.map((it, i) => ({
                    offset: offset++,
                    flags:
                      (it.del ? FLAG_TOMBSTONE : 0) |
                      (n > 1 ? FLAG_BATCH | (i === n - 1 ? FLAG_BATCH_END : 0) : 0),
                    expiresAt: it.ttlMs === null ? 0 : clock.now() + it.ttlMs,
                    key: Buffer.from(`key-${it.key}`),
                    value: it.del ? null : Buffer.from(`r${it.key}`),
                  })),
                );
              } else if (o.t === 'reopen') {
                await s.close();
                s = await open(fs);
              } else {
                s.flushPending();
                let seed = o.seed;
                const crashed = fs.crash(
                  'tear',
                  () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31,
                );
                await s.close();
                fs = crashed;
                s = await open(fs);
              }
              await checkHints(s, fs);
            }
            await s.close();
            const withHints = await open(fs);
            const fromHints = keydirOf(withHints);
            const stats = withHints.recoveryStats;
            await withHints.close();
            expect(stats.fromHints).toBe(stats.segments - 1);
            for (const name of fs.readdir(DIR)) if (name.endsWith('.hint')) fs.unlink(`${DIR}/${name}`);
            const scanned = await open(fs);
            expect(scanned.recoveryStats.fromHints).toBe(0);
            expect(keydirOf(scanned)).toEqual(fromHints);
            await scanned.close();
          } finally {
            await s.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});

/** Adds `entry` to the builder and to the entries it must keep. */
function addKept(b: HintBuilder, kept: HintEntry[], entry: HintEntry): void {
  b.add(entry.key, entry.offset, entry.position, entry.valueLength, entry.expiresAt, entry.flags);
  kept.push(entry);
}

/** Drops `drops` earlier entries (never the last), picked from the entry number `i`, from both. */
function dropEarlier(b: HintBuilder, kept: HintEntry[], i: number, drops: number): void {
  for (let d = 0; d < drops && kept.length > 1; d++) {
    const victim = kept.splice(Math.floor((i * 7919 + d) % (kept.length - 1)), 1)[0]!;
    b.dropAt(victim.position, victim.key.length);
  }
}

describe('HintBuilder', () => {
  it('squeezing out dropped entries keeps the kept ones, in order, and finds them by position', () => {
    fc.assert(
      fc.property(
        // Enough bytes (≥ 300 entries of ≥ 4 KiB) that HINT_COMPACT_MIN_BYTES of them get dropped.
        fc.array(fc.record({ keyLength: fc.integer({ min: 4096, max: 16384 }), drop: fc.nat({ max: 3 }) }), {
          minLength: 300,
          maxLength: 1000,
        }),
        (entries) => {
          const b = new HintBuilder();
          const kept: HintEntry[] = [];
          let position = 100;
          entries.forEach((e, i) => {
            const entry = {
              key: String.fromCharCode(97 + (i % 26)).repeat(e.keyLength),
              offset: i,
              position,
              valueLength: i * 7,
              expiresAt: i % 3 === 0 ? 0 : 1_700_000_000_000 + i,
              flags: i % 5 === 0 ? FLAG_TOMBSTONE : 0,
            };
            addKept(b, kept, entry);
            position += 27 + e.keyLength + entry.valueLength;
            // Drop a few earlier entries now and then: enough dropped bytes make it squeeze.
            dropEarlier(b, kept, i, e.drop);
          });
          expect(b.count).toBe(kept.length);
          expect(b.encode(42).equals(encodeHint(42, kept))).toBe(true);
          b.release();
          expect(b.count).toBe(0);
        },
      ),
      { numRuns: 10 },
    );
  });
});

describe('HintBuilder finds an entry within one block', () => {
  it('a drop reads at most 5 record positions (a binary search of one block of 16) once squeezes have left the kept entries unevenly spread', () => {
    // A SET load's shape: 20k keys overwritten at random, 139-byte records, each
    // overwrite dropping the key's earlier entry; after squeezes, older kept entries
    // are sparser than newer ones (interpolation then read ~16 positions a find).
    const keys = 20_000;
    const b = new HintBuilder();
    const internals = b as unknown as { positions: Uint32Array };
    let reads = 0;
    let counting = false;
    let wrapped: Uint32Array | undefined;
    const wrap = () => {
      if (internals.positions === wrapped) return;
      const target = internals.positions;
      wrapped = new Proxy(target, {
        get(t, k) {
          if (counting && typeof k === 'string' && /^\d+$/.test(k)) reads++;
          const v = Reflect.get(t, k, t);
          return typeof v === 'function' ? v.bind(t) : v;
        },
        set(t, k, v) {
          return Reflect.set(t, k, v, t);
        },
      });
      internals.positions = wrapped;
    };
    const last = new Map<string, HintEntry>();
    let seed = 12345;
    let position = 100;
    let counted = 0;
    let most = 0;
    let squeezes = 0;
    for (let i = 0; i < 150_000; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const key = `key:${String(seed % keys).padStart(12, '0')}`;
      const earlier = last.get(key);
      if (earlier !== undefined) {
        wrap();
        const quiet = !b.squeezeUnderWay;
        const before = b.squeezes;
        reads = 0;
        counting = true;
        b.dropAt(earlier.position, key.length);
        counting = false;
        // A drop that takes a squeeze step reads positions for the squeeze too.
        if (quiet && !b.squeezeUnderWay && b.squeezes === before && b.squeezes > 0) {
          counted++;
          most = Math.max(most, reads);
        }
        last.delete(key);
      }
      const entry = { key, offset: i, position, valueLength: 100, expiresAt: 0, flags: 0 };
      b.add(entry.key, entry.offset, entry.position, entry.valueLength, entry.expiresAt, entry.flags);
      last.set(key, entry);
      position += 139;
      squeezes = b.squeezes;
    }
    expect(squeezes).toBeGreaterThan(2);
    expect(counted).toBeGreaterThan(50_000);
    expect(most).toBeLessThanOrEqual(5);
    // And every drop found its entry: the hint is each key's last record, in record order.
    expect(b.count).toBe(last.size);
    expect(b.encode(7).equals(encodeHint(7, [...last.values()]))).toBe(true);
    b.release();
  });
});

describe('HintBuilder squeezes a step at a time', () => {
  it('holds the kept entries in order before, during and after each squeeze, which ends within its entries / (step - 1) calls', () => {
    fc.assert(
      fc.property(
        // ~1 KiB keys: HINT_COMPACT_MIN_BYTES of drops is ~1,000 entries, so squeezes
        // of thousands of entries run over many calls, with adds, drops and reads between.
        fc.array(
          fc.record({
            op: fc.integer({ min: 0, max: 99 }),
            keyLength: fc.integer({ min: 500, max: 1500 }),
            pick: fc.nat(),
          }),
          { minLength: 6000, maxLength: 9000 },
        ),
        (ops) => {
          const b = new HintBuilder();
          const kept: HintEntry[] = [];
          let position = 100;
          let calls = 0; // adds and drops since the squeeze under way began
          let bound = 0;
          const call = (f: () => void) => {
            const before = b.squeezeUnderWay;
            const held = b.entriesHeld;
            const squeezes = b.squeezes;
            f();
            // The call that starts a squeeze of more than a step's entries does not finish it.
            if (b.squeezes > squeezes && held > SQUEEZE_STEP_ENTRIES) expect(b.squeezeUnderWay).toBe(true);
            if (!before && b.squeezeUnderWay) {
              calls = 0;
              // It visits every entry held when it began (and the one added then), and one more per later call.
              bound = Math.ceil((held + 1) / (SQUEEZE_STEP_ENTRIES - 1)) + 1;
            }
            if (b.squeezeUnderWay) {
              calls++;
              expect(calls, 'the squeeze ends within its bound of calls').toBeLessThanOrEqual(bound);
            }
          };
          ops.forEach((o, i) => {
            // Mostly adds over the first half, mostly drops after: squeezes of thousands of entries.
            if (o.op < (i < ops.length / 2 ? 85 : 30) || kept.length < 2) {
              const entry = {
                key: `${i}:`.padEnd(o.keyLength, 'k'),
                offset: i,
                position,
                valueLength: i % 100,
                expiresAt: i % 3 === 0 ? 1_700_000_000_000 + i : 0,
                flags: 0,
              };
              call(() => addKept(b, kept, entry));
              position += 27 + entry.key.length + entry.valueLength;
            } else if (o.op < 99) {
              const victim = kept.splice(o.pick % (kept.length - 1), 1)[0]!;
              call(() => b.dropAt(victim.position, victim.key.length));
              // Dropping it again (a stale position) changes nothing (and takes no squeeze step).
              if (o.op === 97) b.dropAt(victim.position, victim.key.length);
            } else if (o.op === 99) {
              expect(b.count).toBe(kept.length);
              expect(b.encode(3).equals(encodeHint(3, kept))).toBe(true);
            }
          });
          expect(b.squeezes).toBeGreaterThan(0);
          expect(b.encode(3).equals(encodeHint(3, kept))).toBe(true);
          b.release();
        },
      ),
      { numRuns: 4, endOnFailure: true },
    );
  });
});

describe('HintBuilder past its own chunks (slabs)', () => {
  it('keeps the kept entries through array growth and squeezes, and builds the same hint again after a release', () => {
    fc.assert(
      fc.property(
        // 4,000-5,000 entries of 300-900 bytes: 1.2-4.5 MiB, past HINT_SPARE_CHUNKS chunks and INITIAL_ENTRIES entries.
        fc.array(fc.record({ keyLength: fc.integer({ min: 270, max: 870 }), drop: fc.nat({ max: 3 }) }), {
          minLength: 4000,
          maxLength: 5000,
        }),
        (entries) => {
          const b = new HintBuilder();
          for (let round = 0; round < 2; round++) {
            const kept: HintEntry[] = [];
            let position = 100;
            entries.forEach((e, i) => {
              const entry = {
                key: `${i}:`.padEnd(e.keyLength, String.fromCharCode(97 + ((i + round) % 26))),
                offset: i,
                position,
                valueLength: i % 300,
                expiresAt: i % 4 === 0 ? 1_700_000_000_000 + i : 0,
                flags: 0,
              };
              addKept(b, kept, entry);
              position += 27 + entry.key.length + entry.valueLength;
              // Few drops over the first 85% (the arrays grow into a slab and fill it), many after (squeezes).
              dropEarlier(b, kept, i, i < 0.85 * entries.length ? Number(e.drop === 0) : e.drop);
            });
            expect(b.count).toBe(kept.length);
            expect(b.encode(7).equals(encodeHint(7, kept))).toBe(true);
            b.release();
            expect(b.count).toBe(0);
          }
        },
      ),
      { numRuns: 4, endOnFailure: true },
    );
  });

  it.skipIf(process.platform !== 'linux')(
    'gives a released full-segment hint back to the OS, after a mapped buffer was freed and with a buffer allocated after it',
    () => {
      // In a child of its own: the test depends on the state of glibc's malloc (fixtures/hint-memory.mjs).
      const r = spawnSync(
        process.execPath,
        ['--expose-gc', join(import.meta.dirname, 'fixtures', 'hint-memory.mjs')],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expect(r.stderr).toBe('');
      const { before, after } = JSON.parse(r.stdout) as { before: number; after: number };
      // The hint is ~23 MiB of entries plus ~4.5 MiB of arrays; chunks freed into malloc's heap gave back ~0.
      expect(before - after).toBeGreaterThan(16 * 1024 * 1024);
    },
  );
});

describe('HintBuilder recycles the memory of released builders', () => {
  /** Adds `n` entries of 17-byte keys tagged `tag` as the server does (addFrom a record's bytes), dropping one now and then; returns the kept ones. */
  const build = (b: HintBuilder, n: number, tag: string, kept: HintEntry[] = [], from = 0): HintEntry[] => {
    let position = 100 + from * 150;
    const record = Buffer.alloc(64);
    const view = new DataView(record.buffer, record.byteOffset, record.length);
    for (let i = from; i < from + n; i++) {
      const key = `${tag}:${String(i).padStart(15, '0')}`;
      record.write(key, 8, 'latin1');
      b.addFrom(view, 8, key.length, i, position, 100, 0, 0);
      kept.push({ key, offset: i, position, valueLength: 100, expiresAt: 0, flags: 0 });
      position += 150;
      if (i % 10 === 0) dropEarlier(b, kept, i, 1);
    }
    return kept;
  };
  /** Whether two buffers share a byte. */
  const overlap = (a: ArrayBufferView, b: ArrayBufferView) =>
    a.buffer === b.buffer &&
    a.byteOffset < b.byteOffset + b.byteLength &&
    b.byteOffset < a.byteOffset + a.byteLength;
  /** The memory of `b`'s slab chunks and arrays: a WeakSet to test it, WeakRefs to see it freed. */
  const weakly = (b: HintBuilder) => {
    const recycled = new WeakSet<ArrayBufferLike>();
    const refs: WeakRef<ArrayBufferLike>[] = [];
    for (const c of [...b.held.chunks.slice(HINT_SPARE_CHUNKS), b.held.positions]) {
      recycled.add(c.buffer);
      refs.push(new WeakRef(c.buffer));
    }
    return { recycled, refs };
  };
  // 70,000 entries: ~3 MiB of chunks (past the HINT_SPARE_CHUNKS of their own) and arrays of 131,072 entries.
  const N = 70_000;

  it("a new builder takes a released one's slab chunks and arrays, and nothing of one not yet released (a hint being written)", () => {
    dropRecycledHintStorage();
    const released = new HintBuilder();
    build(released, N, 'a');
    const releasedChunks = released.held.chunks.slice(HINT_SPARE_CHUNKS);
    const releasedArrays = released.held.positions;
    expect(releasedChunks.length).toBeGreaterThan(4);
    const sealed = new HintBuilder();
    const sealedKept = build(sealed, N, 'b');
    const sealedHeld = [...sealed.held.chunks, sealed.held.positions];
    released.release();
    expect(recycledHintChunks()).toBe(releasedChunks.length);

    const next = new HintBuilder();
    const kept = build(next, N, 'c');
    const took = next.held.chunks.slice(HINT_SPARE_CHUNKS);
    expect(took.length).toBe(releasedChunks.length);
    expect(took.every((c) => releasedChunks.includes(c))).toBe(true);
    expect(next.held.positions).toBe(releasedArrays);
    for (const mine of [...next.held.chunks, next.held.positions])
      for (const theirs of sealedHeld) expect(overlap(mine, theirs)).toBe(false);
    expect(sealed.encode(5).equals(encodeHint(5, sealedKept))).toBe(true);
    expect(next.encode(5).equals(encodeHint(5, kept))).toBe(true);
    sealed.release();
    next.release();
    dropRecycledHintStorage();
  });

  /**
   * After releaseRecycled: the recycled memory (`refs`) is freed by the GC once nothing else keeps
   * it alive, `b`'s hint (`kept`, its first `from` keys) is unchanged, and `b` builds on.
   */
  async function expectFreedAndBuildsOn(
    refs: WeakRef<ArrayBufferLike>[],
    b: HintBuilder,
    kept: HintEntry[],
    from: number,
  ): Promise<void> {
    // Nothing else keeps them alive once the prefault fills queued before are done (they hold
    // their buffers; a dropped one is discarded when it completes), and a WeakRef's target lives
    // to the end of the job that made it.
    do await new Promise((r) => setTimeout(r, 10));
    while (prefaultFillsInFlight() > 0);
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
    expect(refs.filter((r) => r.deref() !== undefined).length).toBe(0);
    expect(b.encode(9).equals(encodeHint(9, kept))).toBe(true);
    build(b, N, 'c', kept, from);
    expect(b.encode(9).equals(encodeHint(9, kept))).toBe(true);
    b.release();
    dropRecycledHintStorage();
  }

  it('releaseRecycled moves the builder out of the recycled memory, which the GC then frees; its hint unchanged, and it builds on', async () => {
    // In a function of its own: a value this async function's frame held (a chunk or the arrays
    // of the recycled memory, even as a temporary) would keep it alive across the await below.
    const { b, kept, refs } = (() => {
      dropRecycledHintStorage();
      const released = new HintBuilder();
      build(released, N, 'a');
      const { recycled, refs } = weakly(released);
      released.release();
      const b = new HintBuilder();
      const kept = build(b, N / 2, 'c');
      expect(b.held.chunks.slice(HINT_SPARE_CHUNKS).some((c) => recycled.has(c.buffer))).toBe(true);
      expect(recycled.has(b.held.positions.buffer)).toBe(true);
      dropRecycledHintStorage();
      b.releaseRecycled();
      for (const c of b.held.chunks) expect(recycled.has(c.buffer)).toBe(false);
      expect(recycled.has(b.held.positions.buffer)).toBe(false);
      return { b, kept, refs };
    })();
    await expectFreedAndBuildsOn(refs, b, kept, N / 2);
  });

  it('a builder started while the last one is held (its segment being sealed) carves no new slab: it goes on in the one the last left', () => {
    // A fresh SLAB_BYTES ArrayBuffer at the rotation is young in V8's new space: past 32 MiB of young
    // backing stores every ArrayBuffer allocation forces a scavenge ("external memory pressure"),
    // two of 3-9 ms until it is promoted, then a mark-compact, all in the seal window (BENCHMARKS.md).
    dropRecycledHintStorage();
    const sealed = new HintBuilder();
    build(sealed, N, 'a');
    const slab = sealed.held.chunks[HINT_SPARE_CHUNKS]!.buffer;
    expect(slab.byteLength === SLAB_BYTES).toBe(true);
    const allocs: number[] = [];
    const real = Buffer.allocUnsafeSlow;
    const spy = vi.spyOn(Buffer, 'allocUnsafeSlow').mockImplementation((n: number) => {
      allocs.push(n);
      return real.call(Buffer, n);
    });
    const next = new HintBuilder();
    let kept: HintEntry[];
    try {
      kept = build(next, N, 'b');
    } finally {
      spy.mockRestore();
    }
    expect(next.held.chunks.length).toBeGreaterThan(HINT_SPARE_CHUNKS + 4);
    const mine = [...next.held.chunks.slice(HINT_SPARE_CHUNKS), next.held.positions];
    expect(mine.every((c) => c.buffer === slab)).toBe(true); // in the slab the last builder left
    // Only its own first chunks (no spare ones yet: none was released), not a slab.
    expect(allocs.reduce((a, n) => a + n, 0)).toBeLessThanOrEqual(HINT_SPARE_CHUNKS * 256 * 1024);
    expect(next.encode(5).equals(encodeHint(5, kept))).toBe(true);
    sealed.release();
    next.release();
    dropRecycledHintStorage();
  });

  it('releaseRecycled also moves what the builder carved itself from a slab that dropped storage shares, which the GC then frees', async () => {
    const { b, kept, refs } = (() => {
      dropRecycledHintStorage();
      const released = new HintBuilder();
      build(released, N, 'a');
      const { recycled, refs } = weakly(released);
      // Started before `released` is released: it carves its own chunks from the same slab.
      const b = new HintBuilder();
      const kept = build(b, N, 'c');
      released.release();
      expect(b.held.chunks.slice(HINT_SPARE_CHUNKS).every((c) => recycled.has(c.buffer))).toBe(true);
      dropRecycledHintStorage();
      b.releaseRecycled();
      for (const c of b.held.chunks) expect(recycled.has(c.buffer)).toBe(false);
      expect(recycled.has(b.held.positions.buffer)).toBe(false);
      return { b, kept, refs };
    })();
    await expectFreedAndBuildsOn(refs, b, kept, N);
  });

  it('hint files stay those a scan gives while sealed segments wait for their fsync and later builders recycle', async () => {
    const fs = new MemFs();
    const s = await openStore(DIR, {
      fs,
      fsync: 'never',
      cacheBytes: 0,
      logger: silentLogger,
      compaction: { auto: false },
      maxSegmentBytes: 4 * 1024 * 1024,
    });
    const value = Buffer.alloc(16, 'v');
    let i = 0;
    const fillSegments = async (n: number) => {
      const until = s.ordered.length + n;
      for (; s.ordered.length < until; i++) {
        const write = s.set(`k:${String(i).padStart(14, '0')}`, value);
        if (i % 1000 === 0) await write;
      }
    };
    await fillSegments(2);
    await s.settleBackground(); // two builders released: their memory waits for the next ones
    expect(recycledHintChunks()).toBeGreaterThan(0);
    // The next sealed segments' fsyncs (and so their hint files) wait while three more fill.
    fs.holdFsyncs(() => true);
    await fillSegments(3);
    s.flushPending();
    expect(recycledHintChunks(), 'the later builders took them, and none was released').toBe(0);
    fs.holdFsyncs(undefined);
    fs.releaseFsyncs();
    await checkHints(s, fs);
    expect(s.ordered.length).toBeGreaterThanOrEqual(6);
    await s.close();
    dropRecycledHintStorage();
  });
});

describe('HintBuilder.fill', () => {
  it('copies the kept entries in order through any output size, many short entries spanning chunks, some dropped', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ keyLength: fc.integer({ min: 1, max: 40 }), dropped: fc.boolean() }), {
          minLength: 1,
          maxLength: 12_000, // ~ up to 700 KiB of entries: several 256 KiB chunks
        }),
        fc.integer({ min: 0, max: 4000 }),
        (entries, extraOut) => {
          const b = new HintBuilder();
          const kept: HintEntry[] = [];
          let position = 100;
          const all = entries.map((e, i) => {
            const entry = {
              key: `${i}:`.padEnd(e.keyLength + String(i).length + 1, 'k'),
              offset: i,
              position,
              valueLength: i % 200,
              expiresAt: 0,
              flags: 0,
            };
            b.add(entry.key, entry.offset, entry.position, entry.valueLength, entry.expiresAt, entry.flags);
            position += 27 + entry.key.length + entry.valueLength;
            return entry;
          });
          entries.forEach((e, i) => {
            if (e.dropped) b.dropAt(all[i]!.position, all[i]!.key.length);
            else kept.push(all[i]!);
          });
          const want = encodeHint(0, kept).subarray(HINT_HEADER_BYTES);
          // The smallest output sealing may use: one entry of the longest key.
          const out = Buffer.alloc(HINT_ENTRY_BYTES + 60 + extraOut);
          const got: Buffer[] = [];
          const cursor = { entry: 0 };
          for (let n = b.fill(out, cursor); n > 0; n = b.fill(out, cursor))
            got.push(Buffer.from(out.subarray(0, n)));
          expect(Buffer.concat(got).equals(want)).toBe(true);
          b.release();
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('HintBuilder.fill copies short runs without Buffer.copy', () => {
  it('every other entry dropped: the runs are copied by words (no Buffer.copy, which makes a Uint8Array each call), the same bytes', () => {
    const b = new HintBuilder();
    const kept: HintEntry[] = [];
    let position = 100;
    for (let i = 0; i < 20_000; i++) {
      const entry = { key: `key-${i}`, offset: i, position, valueLength: 100, expiresAt: 0, flags: 0 };
      b.add(entry.key, entry.offset, entry.position, entry.valueLength, entry.expiresAt, entry.flags);
      position += 27 + entry.key.length + entry.valueLength;
      if (i % 2 === 0) b.dropAt(entry.position, entry.key.length);
      else kept.push(entry);
    }
    const want = encodeHint(0, kept).subarray(HINT_HEADER_BYTES);
    const copy = vi.spyOn(Buffer.prototype, 'copy');
    const got: Buffer[] = [];
    let copies = 0;
    try {
      const out = Buffer.alloc(64 * 1024);
      const cursor = { entry: 0 };
      for (let n = b.fill(out, cursor); n > 0; n = b.fill(out, cursor))
        got.push(Buffer.from(out.subarray(0, n)));
      copies = copy.mock.calls.length; // not toHaveBeenCalled: its message would print every call's buffers
    } finally {
      copy.mockRestore();
    }
    expect(copies).toBe(0);
    expect(Buffer.concat(got).equals(want)).toBe(true);
    b.release();
  });
});

describe('sealing at a clean close', () => {
  const open = (fs: MemFs) =>
    openStore(DIR, { fs, fsync: 'never', cacheBytes: 0, logger: silentLogger, compaction: { auto: false } });
  const fill = async (s: Store, from: number, bytes: number) => {
    const value = Buffer.alloc(1000, 'v');
    let i = from;
    for (; s.active.dataBytes < bytes; i++) {
      void s.set(`key-${i}`, value);
      if (i % 500 === 0) await s.delete(`key-${i - 250}`);
    }
    await s.sync();
    return i;
  };

  it(`seals an active segment of ${SEAL_AT_CLOSE_MIN_BYTES} bytes or more: the next open loads it from its hint, appends after it, and has the keydir a scan gives`, async () => {
    const fs = new MemFs();
    const s = await open(fs);
    const n = await fill(s, 0, SEAL_AT_CLOSE_MIN_BYTES + 1000);
    expect(s.ordered.length).toBe(1);
    const name = s.active.name;
    await s.close();
    expect(fs.readFile(`${DIR}/${name.replace('.seg', '.hint')}`).equals(scannedHint(fs, DIR, name))).toBe(
      true,
    );

    const again = await open(fs);
    expect(again.recoveryStats).toMatchObject({ segments: 1, fromHints: 1, scanned: 0 });
    expect(again.ordered.length).toBe(2); // a fresh active segment after it
    expect(again.ordered[0]!.sealed && again.ordered[0]!.hinted).toBe(true);
    const fromHint = keydirOf(again);
    await again.set('after', 'close');
    expect(again.active.name).not.toBe(name);
    await again.close();

    for (const f of fs.readdir(DIR)) if (f.endsWith('.hint')) fs.unlink(`${DIR}/${f}`);
    const scanned = await open(fs);
    expect(scanned.recoveryStats.fromHints).toBe(0);
    expect(scanned.getSync('after')?.toString()).toBe('close');
    expect(scanned.getSync(`key-${n - 1}`)?.length).toBe(1000);
    expect(scanned.getSync('key-250')).toBeUndefined();
    await scanned.delete('after');
    // The same keydir as from the hint, the record written after it apart.
    expect(keydirOf(scanned)).toEqual(fromHint);
    await scanned.close();
  });

  it('scans a segment sealed at close whose hint fails its checks, and appends to it as the active one', async () => {
    const fs = new MemFs();
    const s = await open(fs);
    const n = await fill(s, 0, SEAL_AT_CLOSE_MIN_BYTES);
    const name = s.active.name;
    await s.close();
    const hintPath = `${DIR}/${name.replace('.seg', '.hint')}`;
    const hint = fs.readFile(hintPath);
    hint[hint.length - 3]! ^= 1;
    const fd = fs.open(hintPath, 'r+');
    fs.write(fd, hint, 0, hint.length, 0);
    fs.close(fd);
    const again = await open(fs);
    expect(again.recoveryStats).toMatchObject({ segments: 1, fromHints: 0, scanned: 1, corruptions: 0 });
    expect(again.active.name).toBe(name);
    expect(again.getSync(`key-${n - 1}`)?.length).toBe(1000);
    await again.set('after', 'bad hint');
    expect(again.active.name).toBe(name);
    await again.close();
    const third = await open(fs); // sealed again at this close, with a good hint
    expect(third.recoveryStats).toMatchObject({ fromHints: 1, scanned: 0 });
    expect(third.getSync('after')?.toString()).toBe('bad hint');
    await third.close();
  });

  it('leaves a smaller active segment active: the next open scans it and appends to it', async () => {
    const fs = new MemFs();
    const s = await open(fs);
    await fill(s, 0, 100_000);
    const name = s.active.name;
    await s.close();
    expect(fs.readdir(DIR).filter((f) => f.endsWith('.hint'))).toEqual([]);
    const again = await open(fs);
    expect(again.recoveryStats).toMatchObject({ segments: 1, fromHints: 0, scanned: 1 });
    expect(again.active.name).toBe(name);
    await again.close();
  });
});
