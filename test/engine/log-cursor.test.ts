/**
 * LogCursor (src/engine/log-cursor.ts): records by offset, exactly once and
 * in order, even when a compaction swaps segments under a cursor that is
 * part-way through them — including a compaction from the oldest segment,
 * which drops tombstones the cursor has not read yet.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type CursorRecord, LogCursor } from '../../src/engine/log-cursor.js';
import { removeTempDirs, tempDir } from './helpers.js';
import { churn, openLogStore as open, readAll, summary } from './log-fixture.js';

afterEach(removeTempDirs);

describe('LogCursor', () => {
  it('reads every record in offset order, then what is written after it caught up', async () => {
    const store = await open(tempDir());
    await churn(store, 300, 'a');
    const expected = [];
    for await (const r of store.readFrom(0)) expected.push(r.offset);
    const cursor = new LogCursor(store.segmentLog, 0);
    const first = readAll(cursor, 500);
    expect(first.map((r) => r.offset)).toEqual(expected);
    expect(cursor.read(500)).toEqual([]);
    const woke = cursor.waitForRecords();
    await store.set('late', 'v');
    await woke;
    expect(summary(cursor.read(500))).toEqual([`${store.nextOffset - 1}:0:0:late=v`]);
    cursor.close();
    await store.close();
  });

  it('a compaction from the oldest segment mid-read: the cursor still reads the originals, tombstones included', async () => {
    const store = await open(tempDir());
    await churn(store, 600, 'a');
    const from = 123;
    const before: CursorRecord[] = [];
    for await (const r of store.readFrom(from)) {
      before.push({
        offset: r.offset,
        flags: r.tombstone ? 1 : 0,
        expiresAt: r.expiresAt,
        key: r.key,
        value: r.value,
      });
    }
    const cursor = new LogCursor(store.segmentLog, from);
    const got = cursor.read(1500); // part-way into the log
    expect(got.length).toBeGreaterThan(0);
    expect(got.length).toBeLessThan(before.length);
    const result = await store.compact();
    expect(result?.segmentsIn).toBeGreaterThan(2);
    // The compacted log no longer holds every record from `from` on...
    const after = [];
    for await (const r of store.readFrom(from)) after.push(r.offset);
    expect(after.length).toBeLessThan(before.length);
    // ...but the cursor, which held the segments it had not finished, reads them all, once.
    got.push(...readAll(cursor, 1500));
    expect(summary(got)).toEqual(summary(before));
    // Writes after the compaction follow.
    await store.set('z', '1');
    expect(cursor.read(1 << 20).map((r) => r.offset)).toEqual([store.nextOffset - 1]);
    cursor.close();
    await store.close();
  });

  it('compactions that start and finish between reads neither skip nor repeat a record', async () => {
    const store = await open(tempDir());
    await churn(store, 200, 'a');
    const cursor = new LogCursor(store.segmentLog, 0);
    const seen: number[] = [];
    for (let round = 0; round < 6; round++) {
      for (const r of cursor.read(700)) seen.push(r.offset);
      await churn(store, 150, `r${round}`);
      await store.compact();
    }
    for (const r of readAll(cursor)) seen.push(r.offset);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]!);
    // Everything written after the cursor started reading is there exactly (nothing was compacted
    // away from under it): the last 150 writes of each round, at least.
    expect(seen[seen.length - 1]).toBe(store.nextOffset - 1);
    cursor.close();
    await store.close();
  });
});
