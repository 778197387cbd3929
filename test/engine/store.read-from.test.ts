/**
 * readFrom(offset) (DESIGN.md §2, the change feed): across many segments it
 * yields exactly the records from that offset on, in order, tombstones and
 * overwritten values included, whether the sparse indexes come from the
 * write path, from `.index` files or are rebuilt. And stats() agrees with a
 * recount of keys, live and dead bytes, per segment and in total.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LogRecord, openStore, type Store, type StoreOptions } from '../../src/engine/index.js';
import { RECORD_HEADER_BYTES } from '../../src/engine/record.js';
import { SEGMENT_HEADER_BYTES } from '../../src/engine/segment-header.js';
import { removeTempDirs, segFiles, silentLogger, tempDir } from './helpers.js';

const opts: StoreOptions = {
  maxSegmentBytes: 1024,
  indexIntervalBytes: 64,
  fsync: 'never',
  logger: silentLogger,
  compaction: { auto: false },
};

interface Expected {
  offset: number;
  key: string;
  value: string;
  tombstone: boolean;
}

let dir: string;
let expected: Expected[];
let model: Map<string, string>;

function rng(seed: number) {
  let x = seed;
  return () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 2 ** 32;
  };
}

/** Writes ~400 records of sets, deletes and batches; records what each got. */
beforeAll(async () => {
  dir = tempDir();
  expected = [];
  model = new Map();
  const s = await openStore(dir, opts);
  const rand = rng(42);
  const keyOf = () => `key-${Math.floor(rand() * 40)}`;
  const push = (key: string, value: string | null) => {
    expected.push({ offset: expected.length, key, value: value ?? '', tombstone: value === null });
    if (value === null) model.delete(key);
    else model.set(key, value);
  };
  while (expected.length < 400) {
    const r = rand();
    if (r < 0.6) {
      const k = keyOf();
      const v = `v${expected.length}${'~'.repeat(Math.floor(rand() * 60))}`;
      await s.set(k, v);
      push(k, v);
    } else if (r < 0.8) {
      const k = keyOf();
      if (await s.delete(k)) push(k, null);
      else expect(model.has(k)).toBe(false);
    } else {
      const ops = Array.from({ length: 1 + Math.floor(rand() * 4) }, (_, i) => ({
        type: 'set' as const,
        key: keyOf(),
        value: `b${expected.length}.${i}`,
      }));
      await s.batch(ops);
      for (const o of ops) push(o.key, o.value);
    }
  }
  await s.close();
  expect(segFiles(dir).length).toBeGreaterThan(10);
});

afterAll(removeTempDirs);

async function readAll(s: Store, offset: number, limit?: number): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const r of s.readFrom(offset, limit === undefined ? {} : { limit })) out.push(r);
  return out;
}

function startOffsets(s: Store): number[] {
  const last = expected.length - 1;
  const offsets = new Set([0, 1, 2, last - 1, last, last + 1, last + 100]);
  for (const seg of s.stats().segments) {
    for (const d of [-1, 0, 1]) if (seg.baseOffset + d >= 0) offsets.add(seg.baseOffset + d);
  }
  for (let o = 3; o < last; o += 17) offsets.add(o);
  return [...offsets];
}

async function checkReadFrom(s: Store): Promise<void> {
  const segments = s.stats().segments;
  for (const offset of startOffsets(s)) {
    const got = await readAll(s, offset);
    const want = expected.filter((r) => r.offset >= offset);
    expect(
      got.map((r) => ({
        offset: r.offset,
        key: r.key.toString(),
        value: r.value.toString(),
        tombstone: r.tombstone,
      })),
      `readFrom(${offset})`,
    ).toEqual(want);
    // Each record is reported in the segment that holds its offset, at increasing positions.
    for (let i = 0; i < got.length; i++) {
      const r = got[i]!;
      const seg = segments.filter((x) => x.baseOffset <= r.offset).pop()!;
      expect(r.segment).toBe(seg.file);
      const prev = got[i - 1];
      if (prev && prev.segment === r.segment) {
        expect(r.position).toBe(prev.position + RECORD_HEADER_BYTES + prev.key.length + prev.value.length);
      }
    }
    const limited = await readAll(s, offset, 7);
    expect(limited.map((r) => r.offset)).toEqual(want.slice(0, 7).map((r) => r.offset));
  }
}

/** stats() against a recount from the model, the log and the files. */
function checkStats(s: Store): void {
  const stats = s.stats();
  expect(stats.keys).toBe(model.size);
  expect(stats.nextOffset).toBe(expected.length);
  expect(stats.firstOffset).toBe(0);
  // The latest record of each live key is live; everything else is dead.
  const latest = new Map<string, Expected>();
  for (const r of expected) latest.set(r.key, r);
  const livePerSegment = new Map<string, number>();
  const segOf = (offset: number) => stats.segments.filter((x) => x.baseOffset <= offset).pop()!.file;
  let live = 0;
  for (const [k, v] of model) {
    const r = latest.get(k)!;
    expect(r.value).toBe(v);
    const bytes = RECORD_HEADER_BYTES + Buffer.byteLength(k) + Buffer.byteLength(v);
    live += bytes;
    livePerSegment.set(segOf(r.offset), (livePerSegment.get(segOf(r.offset)) ?? 0) + bytes);
  }
  let disk = 0;
  for (const seg of stats.segments) {
    const size = fs.statSync(join(dir, seg.file)).size;
    disk += size;
    expect(seg.bytes, seg.file).toBe(size);
    expect(seg.liveBytes, seg.file).toBe(livePerSegment.get(seg.file) ?? 0);
    expect(seg.deadBytes, seg.file).toBe(size - SEGMENT_HEADER_BYTES - seg.liveBytes);
  }
  expect(stats.liveBytes).toBe(live);
  expect(stats.diskBytes).toBe(disk);
  expect(stats.deadBytes).toBe(disk - stats.segments.length * SEGMENT_HEADER_BYTES - live);
}

describe('readFrom(offset)', () => {
  it('yields exactly the records from any offset on, across many segments (indexes from .index files)', async () => {
    const s = await openStore(dir, opts);
    await checkReadFrom(s);
    await s.close();
  });

  it('gives the same records when the .index and .hint files are gone (indexes rebuilt)', async () => {
    for (const n of fs.readdirSync(dir)) if (/\.(index|hint)$/.test(n)) fs.rmSync(join(dir, n));
    const s = await openStore(dir, opts);
    await checkReadFrom(s);
    await s.close();
  });

  it('includes writes not yet acknowledged, and records written after the iteration started', async () => {
    const d = tempDir();
    const s = await openStore(d, opts);
    await s.set('a', '1');
    const pending = s.set('b', '2');
    const it = s.readFrom(0);
    expect((await it.next()).value).toMatchObject({ offset: 0 });
    await s.delete('a');
    const rest: LogRecord[] = [];
    for await (const r of { [Symbol.asyncIterator]: () => it }) rest.push(r);
    expect(rest.map((r) => [r.offset, r.key.toString(), r.tombstone])).toEqual([
      [1, 'b', false],
      [2, 'a', true],
    ]);
    await pending;
    await s.close();
  });

  it('carries the expiry of records written with a TTL', async () => {
    const d = tempDir();
    const s = await openStore(d, opts);
    const before = Date.now();
    await s.set('t', 'v', { ttlMs: 60_000 });
    const [r] = await readAll(s, 0);
    expect(r!.expiresAt).toBeGreaterThanOrEqual(before + 60_000);
    expect(r!.expiresAt).toBeLessThanOrEqual(Date.now() + 60_000);
    await s.close();
  });
});

describe('stats()', () => {
  it('agrees with a recount of keys, live and dead bytes, per segment and in total, before and after reopen', async () => {
    const s = await openStore(dir, opts);
    checkStats(s);
    await s.close();
    const again = await openStore(dir, opts);
    expect(again.stats().recovery.fromHints).toBe(again.stats().segments.length - 1);
    checkStats(again);
    await again.close();
  });
});
