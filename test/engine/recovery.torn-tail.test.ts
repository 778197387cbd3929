/**
 * Torn and garbled tails of the active segment (DESIGN.md §1.3, §1.2): recovery
 * keeps exactly the intact prefix, cuts the file there, logs how many bytes it
 * dropped, drops a torn batch whole, and the store takes new writes that
 * survive another reopen. The table follows pogreb's recovery tests.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LogRecord, openStore, type StoreOptions } from '../../src/engine/index.js';
import { RECORD_HEADER_BYTES } from '../../src/engine/record.js';
import {
  captureLogger,
  copyDir,
  flipBit,
  type LogLine,
  noSyncFs,
  removeTempDirs,
  segFiles,
  tempDir,
} from './helpers.js';

const KEYS = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'y1', 'y2', 'z'];
// No fsync: this is about what recovery makes of the bytes in the files, not about durability.
const opts: StoreOptions = { fsync: 'never', cacheBytes: 0, fs: noSyncFs };

let base: string;
let records: LogRecord[];
let segPath: (dir: string) => string;

/** Writes the base log: plain sets, a delete, a 3-record batch, two more sets. */
beforeAll(async () => {
  base = tempDir();
  const s = await openStore(base, opts);
  await s.set('a', '1');
  await s.set('b', '22');
  await s.delete('a');
  await s.set('c', '333');
  await s.batch([
    { type: 'set', key: 'd', value: '4' },
    { type: 'set', key: 'e', value: '55' },
    { type: 'del', key: 'b' },
  ]);
  await s.set('f', '6666');
  await s.set('g', '77777');
  records = [];
  for await (const r of s.readFrom(0)) records.push(r);
  await s.close();
  expect(records.map((r) => r.key.toString())).toEqual(['a', 'b', 'a', 'c', 'd', 'e', 'b', 'f', 'g']);
  expect(segFiles(base)).toHaveLength(1);
  segPath = (dir) => join(dir, segFiles(dir)[0]!);
});

afterAll(removeTempDirs);

const sizeOf = (r: LogRecord) => RECORD_HEADER_BYTES + r.key.length + r.value.length;
const endOf = (r: LogRecord) => r.position + sizeOf(r);
const BATCH = [4, 5, 6]; // indexes of the batch's records

/** What recovery must keep when the segment is cut at `cut`: state and the boundary it truncates to. */
function expectedAt(cut: number): { state: Record<string, string | null>; boundary: number } {
  const state: Record<string, string | null> = {};
  for (const k of KEYS) state[k] = null;
  let boundary = records[0]!.position;
  const apply = (r: LogRecord) => {
    state[r.key.toString()] = r.tombstone ? null : r.value.toString();
  };
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    if (endOf(r) > cut) break;
    if (BATCH.includes(i)) {
      if (i !== BATCH[BATCH.length - 1]) continue;
      for (const j of BATCH) apply(records[j]!);
    } else apply(r);
    boundary = endOf(r);
  }
  return { state, boundary };
}

async function stateOf(dir: string, extra: StoreOptions = {}) {
  const s = await openStore(dir, { ...opts, ...extra });
  const state: Record<string, string | null> = {};
  for (const k of KEYS) state[k] = s.getSync(k)?.toString() ?? null;
  return { s, state };
}

function tornTailLines(lines: LogLine[]): number[] {
  return lines
    .map((l) => /truncated a torn tail of (\d+) bytes/.exec(l.msg))
    .filter((m) => m !== null)
    .map((m) => Number(m[1]));
}

/**
 * Reopens `dir` (already damaged) and checks: the recovered state, the bytes
 * dropped and logged, the file cut at the boundary, then that a write and a
 * batch after recovery survive another reopen without reviving anything torn.
 */
async function checkRecovers(
  dir: string,
  want: Record<string, string | null>,
  dropped: number,
  corruptions = 0,
): Promise<void> {
  const { logger, lines } = captureLogger();
  const sizeBefore = fs.statSync(segPath(dir)).size;
  const { s, state } = await stateOf(dir, { logger });
  expect(state).toEqual(want);
  const stats = s.stats();
  expect(stats.recovery.truncatedBytes).toBe(dropped);
  expect(stats.recovery.corruptions).toBe(corruptions);
  expect(tornTailLines(lines)).toEqual(dropped > 0 ? [dropped] : []);
  if (corruptions === 0) expect(fs.statSync(segPath(dir)).size).toBe(sizeBefore - dropped);

  await s.set('z', 'after');
  await s.batch([
    { type: 'set', key: 'y1', value: 'Y' },
    { type: 'set', key: 'y2', value: 'Y' },
  ]);
  await s.close();

  const again = await stateOf(dir, { logger: captureLogger().logger });
  expect(again.state).toEqual({ ...want, z: 'after', y1: 'Y', y2: 'Y' });
  expect(again.s.stats().recovery.truncatedBytes).toBe(0);
  expect(again.s.stats().recovery.corruptions).toBe(corruptions);
  // The log reads back: the kept prefix, then the new records, offsets increasing. Through
  // damage kept in place a reader is told (CORRUPTION); past it, the new segment reads fine.
  let from = 0;
  if (corruptions > 0) {
    await expect(async () => {
      for await (const _ of again.s.readFrom(0));
    }).rejects.toMatchObject({ code: 'CORRUPTION' });
    from = again.s.stats().segments[1]!.baseOffset;
  }
  const log: LogRecord[] = [];
  for await (const r of again.s.readFrom(from)) log.push(r);
  expect(log.slice(-3).map((r) => r.key.toString())).toEqual(['z', 'y1', 'y2']);
  for (let i = 1; i < log.length; i++) expect(log[i]!.offset).toBeGreaterThan(log[i - 1]!.offset);
  if (corruptions === 0) {
    const kept = records.filter((r) => endOf(r) <= sizeBefore - dropped).map((r) => r.offset);
    expect(log.slice(0, -3).map((r) => r.offset)).toEqual(kept);
  }
  await again.s.close();
}

describe('torn tail: the active segment cut at every byte of its last records', () => {
  it('keeps exactly the intact prefix at every cut, drops a torn batch whole, and keeps working', async () => {
    const from = records[BATCH[0]!]!.position;
    const to = endOf(records[records.length - 1]!);
    expect(to).toBe(fs.statSync(segPath(base)).size);
    let cutsInsideBatch = 0;
    for (let cut = from; cut < to; cut++) {
      const dir = copyDir(base);
      fs.truncateSync(segPath(dir), cut);
      const { state, boundary } = expectedAt(cut);
      if (cut > from && cut < endOf(records[BATCH[2]!]!)) {
        // Torn batch: all gone, b not yet deleted.
        cutsInsideBatch++;
        expect(state).toMatchObject({ d: null, e: null, b: '22' });
      }
      try {
        await checkRecovers(dir, state, cut - boundary);
      } catch (err) {
        throw new Error(`cut at byte ${cut}: ${(err as Error).message}`);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(cutsInsideBatch).toBeGreaterThan(3 * RECORD_HEADER_BYTES);
  });

  it('drops a batch torn exactly at a record boundary (its end record missing)', async () => {
    for (const j of [BATCH[0]!, BATCH[1]!]) {
      const dir = copyDir(base);
      const cut = endOf(records[j]!);
      fs.truncateSync(segPath(dir), cut);
      await checkRecovers(dir, expectedAt(cut).state, cut - records[BATCH[0]!]!.position);
    }
  });
});

describe('torn tail: garbled last record', () => {
  const last = () => records[records.length - 1]!;
  const full = () => expectedAt(Number.POSITIVE_INFINITY).state;
  const withoutLast = () => expectedAt(last().position).state;

  const table: {
    name: string;
    damage: (path: string) => void;
    want: () => Record<string, string | null>;
    dropped: () => number;
  }[] = [
    {
      name: 'all zeroes in place of the last record',
      damage: (p) => {
        const fd = fs.openSync(p, 'r+');
        fs.writeSync(fd, Buffer.alloc(sizeOf(last())), 0, sizeOf(last()), last().position);
        fs.closeSync(fd);
      },
      want: withoutLast,
      dropped: () => sizeOf(last()),
    },
    {
      name: 'a zero-filled tail after the last record (preallocated space)',
      damage: (p) => fs.appendFileSync(p, Buffer.alloc(4096)),
      want: full,
      dropped: () => 4096,
    },
    {
      name: 'half a key-length field',
      damage: (p) => fs.truncateSync(p, last().position + 22),
      want: withoutLast,
      dropped: () => 22,
    },
    {
      name: 'half a value-length field',
      damage: (p) => fs.truncateSync(p, last().position + 25),
      want: withoutLast,
      dropped: () => 25,
    },
    {
      name: 'key without value',
      damage: (p) => fs.truncateSync(p, last().position + RECORD_HEADER_BYTES + 1),
      want: withoutLast,
      dropped: () => RECORD_HEADER_BYTES + 1,
    },
    {
      name: 'partial CRC',
      damage: (p) => fs.truncateSync(p, last().position + 2),
      want: withoutLast,
      dropped: () => 2,
    },
    {
      name: 'bad CRC',
      damage: (p) => flipBit(p, last().position + 1, 3),
      want: withoutLast,
      dropped: () => sizeOf(last()),
    },
    {
      name: 'bad value byte (CRC mismatch)',
      damage: (p) => flipBit(p, endOf(last()) - 1, 0),
      want: withoutLast,
      dropped: () => sizeOf(last()),
    },
    {
      name: 'trailing junk after the last record',
      damage: (p) => fs.appendFileSync(p, Buffer.from('this is not a record, not at all!')),
      want: full,
      dropped: () => 33,
    },
  ];

  for (const t of table) {
    it(`recovers from ${t.name}`, async () => {
      const dir = copyDir(base);
      t.damage(segPath(dir));
      await checkRecovers(dir, t.want(), t.dropped());
    });
  }

  it('keeps the good record after a corrupt one, reporting the corruption with file and position', async () => {
    const dir = copyDir(base);
    const f = records[records.length - 2]!;
    flipBit(segPath(dir), endOf(f) - 1, 2);
    const { logger, lines } = captureLogger();
    const { s, state } = await stateOf(dir, { logger });
    expect(state).toEqual({ ...full(), f: null });
    expect(s.stats().recovery.corruptions).toBe(1);
    expect(s.stats().recovery.truncatedBytes).toBe(0);
    const report = lines.find((l) => l.level >= 50 && /corruption/.test(l.msg));
    expect(report).toMatchObject({ file: segFiles(dir)[0], position: f.position });
    await s.close();
    // The damaged segment is kept as it is; writes go to a new one and survive.
    await checkRecovers(dir, { ...full(), f: null }, 0, 1);
    expect(segFiles(dir).length).toBe(2);
  });
});
