/**
 * Model-based test (Bitcask's state-machine property test, pogreb's model
 * tests): random sequences of set (plain, NX, XX, with TTL), delete, atomic
 * batches, bursts of writes in one tick, clock advances and close/reopen, on
 * tiny segments so rotation, sealing and hints happen all the time, and
 * expire/persist of existing keys. After
 * every step the store must agree with a Map: get/getSync/getSyncBytes, has, ttl, a full
 * scan in byte order through cursors with small pages, key count and live
 * bytes.
 */
import * as fs from 'node:fs';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock, openStore, type Store, type StoreOptions } from '../../src/engine/index.js';
import { RECORD_HEADER_BYTES } from '../../src/engine/record.js';
import { noSyncFs, removeTempDirs, silentLogger, tempDir } from './helpers.js';

const KEYS = ['a', 'b', 'ab', 'k1', 'k10', 'k2', 'é', 'ключ', '日本', 'z'.repeat(200), 'x\u0000y', 'ÿ'];

type SetMode = 'plain' | 'nx' | 'xx';
type BatchMember = { type: 'set'; key: string; value: string; ttlMs?: number } | { type: 'del'; key: string };
type Op =
  | { t: 'set'; key: string; value: string; ttlMs?: number; mode: SetMode }
  | { t: 'del'; key: string }
  | { t: 'expire'; key: string; ttlMs: number | null }
  | { t: 'batch'; ops: BatchMember[] }
  | { t: 'burst'; sets: { key: string; value: string }[] }
  | { t: 'advance'; ms: number }
  | { t: 'reopen' };

const key = fc.constantFrom(...KEYS);
const value = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 400 }),
  fc.nat({ max: 900 }).map((n) => 'v'.repeat(n)),
);
const ttl = fc.option(fc.integer({ min: 1, max: 3000 }), { nil: undefined });
const withTtl = <T extends object>(o: T, ttlMs: number | undefined) =>
  ttlMs === undefined ? o : { ...o, ttlMs };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({
        key,
        value,
        ttlMs: ttl,
        mode: fc.constantFrom<SetMode>('plain', 'plain', 'plain', 'nx', 'xx'),
      })
      .map(({ ttlMs, ...o }) => withTtl({ t: 'set' as const, ...o }, ttlMs)),
  },
  { weight: 3, arbitrary: key.map((k) => ({ t: 'del' as const, key: k })) },
  {
    weight: 2,
    arbitrary: fc
      .record({ key, ttlMs: fc.option(fc.integer({ min: 1, max: 3000 }), { nil: null }) })
      .map((o) => ({ t: 'expire' as const, ...o })),
  },
  {
    weight: 2,
    arbitrary: fc
      .array(
        fc.oneof(
          fc
            .record({ key, value, ttlMs: ttl })
            .map(({ ttlMs, ...o }) => withTtl({ type: 'set' as const, ...o }, ttlMs)),
          key.map((k) => ({ type: 'del' as const, key: k })),
        ),
        { minLength: 1, maxLength: 6 },
      )
      .map((ops) => ({ t: 'batch' as const, ops })),
  },
  {
    weight: 1,
    arbitrary: fc
      .array(fc.record({ key, value }), { minLength: 2, maxLength: 8 })
      .map((sets) => ({ t: 'burst' as const, sets })),
  },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 2500 }).map((ms) => ({ t: 'advance' as const, ms })) },
  { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
);

interface Entry {
  value: Buffer;
  expiresAt: number;
}

class Model {
  readonly map = new Map<string, Entry>();
  constructor(readonly clock: ManualClock) {}

  live(k: string): Entry | undefined {
    const e = this.map.get(k);
    if (e && e.expiresAt !== 0 && e.expiresAt <= this.clock.now()) {
      this.map.delete(k);
      return undefined;
    }
    return e;
  }

  set(k: string, v: string, ttlMs: number | undefined): void {
    this.map.set(k, { value: Buffer.from(v, 'utf8'), expiresAt: ttlMs ? this.clock.now() + ttlMs : 0 });
  }
}

const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

function checkAgainst(store: Store, model: Model, pageSize: number, step: string): void {
  const ctx = (what: string) => `${step}: ${what}`;
  for (const k of KEYS) {
    const want = model.live(k);
    const got = store.getSync(k);
    if (want === undefined) expect(got, ctx(`get ${k}`)).toBeUndefined();
    else expect(got?.equals(want.value), ctx(`get ${k}`)).toBe(true);
    // The server's GET: the key's bytes inside a larger buffer.
    const framed = Buffer.concat([Buffer.from('<<'), Buffer.from(k, 'utf8'), Buffer.from('>>')]);
    const gotBytes = store.getSyncBytes(framed, 2, framed.length - 4);
    if (want === undefined) expect(gotBytes, ctx(`getSyncBytes ${k}`)).toBeUndefined();
    else expect(gotBytes?.equals(want.value), ctx(`getSyncBytes ${k}`)).toBe(true);
    expect(store.has(k), ctx(`has ${k}`)).toBe(want !== undefined);
    const wantTtl = want === undefined ? -2 : want.expiresAt === 0 ? -1 : want.expiresAt - model.clock.now();
    expect(store.ttl(k), ctx(`ttl ${k}`)).toBe(wantTtl);
  }
  // Full scan through cursors with small pages: every live key once, in byte order.
  const keys: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page = store.scan({ count: pageSize, ...(cursor !== null && { cursor }) });
    expect(page.keys.length, ctx('page size')).toBeLessThanOrEqual(pageSize);
    keys.push(...page.keys);
    cursor = page.cursor;
    expect(++pages, ctx('scan terminates')).toBeLessThan(100);
  } while (cursor !== null);
  const live = KEYS.filter((k) => model.live(k) !== undefined).sort(byBytes);
  expect(keys, ctx('scan')).toEqual(live);
  // A prefix scan agrees too.
  expect(store.scan({ prefix: 'k', count: 100 }).keys, ctx('prefix scan')).toEqual(
    live.filter((k) => k.startsWith('k')),
  );
  // Range scans [start, end) in byte order, paged through cursors.
  for (const [start, end] of [
    ['ab', 'k2'],
    ['k1', 'é'],
    ['b', 'b'],
  ] as const) {
    const got: string[] = [];
    let c: string | null = null;
    do {
      const page = store.scan({ start, end, count: pageSize, ...(c !== null && { cursor: c }) });
      got.push(...page.keys);
      c = page.cursor;
    } while (c !== null);
    const inRange = live.filter((k) => byBytes(k, start) >= 0 && byBytes(k, end) < 0);
    expect(got, ctx(`scan [${start}, ${end})`)).toEqual(inRange);
  }
  // Every key was touched above, so expired ones have left the keydir: counts must match.
  const stats = store.stats();
  expect(stats.keys, ctx('stats.keys')).toBe(live.length);
  let liveBytes = 0;
  for (const k of live) liveBytes += RECORD_HEADER_BYTES + Buffer.byteLength(k) + model.live(k)!.value.length;
  expect(stats.liveBytes, ctx('stats.liveBytes')).toBe(liveBytes);
}

async function run(ops: Op[], options: StoreOptions, pageSize: number): Promise<void> {
  const dir = tempDir();
  const clock = new ManualClock();
  const opts: StoreOptions = { ...options, clock, logger: silentLogger, fsync: 'never', fs: noSyncFs };
  const model = new Model(clock);
  let store = await openStore(dir, opts);
  try {
    for (let i = 0; i < ops.length; i++) {
      const o = ops[i]!;
      const step = `step ${i} ${JSON.stringify(o).slice(0, 120)}`;
      switch (o.t) {
        case 'set': {
          const exists = model.live(o.key) !== undefined;
          const write = o.mode === 'plain' || (o.mode === 'nx' && !exists) || (o.mode === 'xx' && exists);
          const got = await store.set(o.key, o.value, {
            ...(o.ttlMs !== undefined && { ttlMs: o.ttlMs }),
            ...(o.mode === 'nx' && { ifAbsent: true }),
            ...(o.mode === 'xx' && { ifPresent: true }),
          });
          expect(got, step).toBe(write);
          if (write) model.set(o.key, o.value, o.ttlMs);
          break;
        }
        case 'del': {
          const existed = model.live(o.key) !== undefined;
          expect(await store.delete(o.key), step).toBe(existed);
          model.map.delete(o.key);
          break;
        }
        case 'expire': {
          const e = model.live(o.key);
          const write = e !== undefined && (o.ttlMs !== null || e.expiresAt !== 0);
          expect(await store.expire(o.key, o.ttlMs), step).toBe(write);
          if (e && write) e.expiresAt = o.ttlMs === null ? 0 : clock.now() + o.ttlMs;
          break;
        }
        case 'batch': {
          let written = 0;
          const present = new Map<string, boolean>();
          for (const m of o.ops) {
            const exists = present.get(m.key) ?? model.live(m.key) !== undefined;
            if (m.type === 'set') {
              written++;
              present.set(m.key, true);
            } else if (exists) {
              written++;
              present.set(m.key, false);
            }
          }
          expect(await store.batch(o.ops), step).toBe(written);
          for (const m of o.ops) {
            if (m.type === 'set') model.set(m.key, m.value, m.ttlMs);
            else model.map.delete(m.key);
          }
          break;
        }
        case 'burst': {
          const acks = o.sets.map((s) => store.set(s.key, s.value));
          // Reads see the writes before they are acknowledged.
          const lastOf = new Map(o.sets.map((s) => [s.key, s.value]));
          for (const [k, v] of lastOf)
            expect(store.getSync(k)?.toString(), step).toBe(Buffer.from(v).toString());
          expect(await Promise.all(acks), step).toEqual(o.sets.map(() => true));
          for (const s of o.sets) model.set(s.key, s.value, undefined);
          break;
        }
        case 'advance':
          clock.advance(o.ms);
          break;
        case 'reopen': {
          await store.close();
          store = await openStore(dir, opts);
          const r = store.stats().recovery;
          expect(r.truncatedBytes, `${step}: a clean close leaves no torn tail`).toBe(0);
          expect(r.corruptions, step).toBe(0);
          break;
        }
      }
      checkAgainst(store, model, pageSize, step);
    }
    // Finally a reopen must give the same state, from hints for every sealed segment.
    await store.close();
    store = await openStore(dir, opts);
    const r = store.stats().recovery;
    expect(r.fromHints).toBe(r.segments - 1);
    checkAgainst(store, model, pageSize, 'final reopen');
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

afterAll(removeTempDirs);

/** Runs of the property; raise with SEGKV_FC_RUNS=5000 to hunt harder. */
const RUNS = Number(process.env.SEGKV_FC_RUNS ?? 100);
const TIME_LIMIT_MS = RUNS > 100 ? RUNS * 200 : 25_000;

describe('store against a Map model', () => {
  it(
    'agrees after every step of random set/delete/batch/TTL/reopen sequences on tiny segments',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(op, { minLength: 5, maxLength: 80, size: 'max' }),
          fc.record({
            maxSegmentBytes: fc.integer({ min: 1024, max: 4096 }),
            cacheBytes: fc.constantFrom(0, 1 << 20),
            indexIntervalBytes: fc.constantFrom(64, 4096),
          }),
          fc.integer({ min: 1, max: 4 }),
          (ops, options, pageSize) => run(ops, options, pageSize),
        ),
        { numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS },
      );
    },
    TIME_LIMIT_MS + 20_000,
  );

  it('rotates, seals and hints a lot at these sizes (the property above is not vacuous)', async () => {
    const dir = tempDir();
    const s = await openStore(dir, { maxSegmentBytes: 1024, logger: silentLogger, fsync: 'never' });
    for (let i = 0; i < 60; i++) await s.set(`k${i % 7}`, 'v'.repeat(100));
    const segments = s.stats().segments.length;
    await s.close();
    const again = await openStore(dir, { maxSegmentBytes: 1024, logger: silentLogger });
    expect(segments).toBeGreaterThan(5);
    expect(again.stats().recovery.fromHints).toBe(segments - 1);
    await again.close();
  });
});
