/**
 * Record runs (src/engine/record-run.ts): LogCursor.readRaw gives the log's
 * own bytes, whole records only, the same records `read` gives (at every
 * batch size, from any offset, across a compaction swap mid-read), and
 * Store.applyReplicatedRaw appends them to another store at the same
 * offsets: equal keys, values and expiry times, also after a reopen (hints
 * and indexes built from the raw path). A damaged run is refused whole:
 * nothing of it is applied.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type CursorRecord, LogCursor } from '../../src/engine/log-cursor.js';
import { decodeHeader, RECORD_HEADER_BYTES } from '../../src/engine/record.js';
import { BatchJoiner, checkRun, wholePrefix } from '../../src/engine/record-run.js';
import type { Store } from '../../src/engine/store.js';
import { KvError } from '../../src/errors.js';
import { removeTempDirs, tempDir } from './helpers.js';
import { churn, openLogStore as open, readAll, summary } from './log-fixture.js';

afterEach(removeTempDirs);

/** The records of a run, decoded (as `read` gives them). */
function decodeRun(run: Buffer): CursorRecord[] {
  const out: CursorRecord[] = [];
  let at = 0;
  while (at < run.length) {
    const h = decodeHeader(run, at, run.length, 1 << 16)!;
    const keyAt = at + RECORD_HEADER_BYTES;
    out.push({
      offset: h.offset,
      flags: h.flags,
      expiresAt: h.expiresAt,
      key: Buffer.from(run.subarray(keyAt, keyAt + h.keyLength)),
      value: Buffer.from(run.subarray(keyAt + h.keyLength, keyAt + h.keyLength + h.valueLength)),
    });
    at = keyAt + h.keyLength + h.valueLength;
  }
  return out;
}

/** Every run until the end of the log, each copied (readRaw's bytes live until the next read). */
function rawAll(cursor: LogCursor, maxBytes: number): Buffer[] {
  const out: Buffer[] = [];
  for (;;) {
    const run = cursor.readRaw(maxBytes);
    if (run.length === 0) return out;
    out.push(Buffer.from(run));
  }
}

/** Keys with values and expiry times, sorted. */
function state(store: Store): string[] {
  const out: string[] = [];
  for (const [k] of store.keydir.entries()) {
    const v = store.getSync(Buffer.from(k, 'latin1'));
    if (v !== undefined) out.push(`${k}=${v.toString()}@${store.expiresAt(Buffer.from(k, 'latin1'))}`);
  }
  return out.sort();
}

async function offsets(store: Store): Promise<string[]> {
  const out: string[] = [];
  for await (const r of store.readFrom(0)) out.push(`${r.offset}:${r.tombstone}:${r.key}:${r.value}`);
  return out;
}

describe('LogCursor.readRaw', () => {
  it('gives the records `read` gives, whole, within the size asked (one record at least), from any offset', async () => {
    const store = await open(tempDir());
    await churn(store, 400, 'a', true);
    for (const from of [0, 1, 57, 230, store.nextOffset - 1]) {
      const expected = summary(readAll(new LogCursor(store, from)));
      for (const maxBytes of [1, 100, 700, 5000, 1 << 20]) {
        const cursor = new LogCursor(store, from);
        const runs = rawAll(cursor, maxBytes);
        for (const run of runs) {
          const check = checkRun(run, -1, 'test');
          if (check.records > 1) expect(run.length).toBeLessThan(maxBytes + 200);
        }
        expect(summary(runs.flatMap(decodeRun))).toEqual(expected);
        cursor.close();
      }
    }
    await store.close();
  });

  it('a compaction swap mid-read: the raw cursor keeps reading the originals, nothing skipped or repeated', async () => {
    const store = await open(tempDir());
    await churn(store, 600, 'a', true);
    const from = 123;
    const before = summary(readAll(new LogCursor(store, from)));
    const cursor = new LogCursor(store, from);
    const got = decodeRun(Buffer.from(cursor.readRaw(1500)));
    expect(got.length).toBeGreaterThan(0);
    const result = await store.compact();
    expect(result?.segmentsIn).toBeGreaterThan(2);
    got.push(...rawAll(cursor, 1500).flatMap(decodeRun));
    expect(summary(got)).toEqual(before);
    await store.set('z', '1');
    expect(decodeRun(cursor.readRaw(1 << 20)).map((r) => r.offset)).toEqual([store.nextOffset - 1]);
    cursor.close();
    await store.close();
  });
});

describe('Store.applyReplicatedRaw', () => {
  it('appends runs at the primary offsets; batches cut between runs wait; equal after a reopen', async () => {
    const primary = await open(tempDir());
    await churn(primary, 500, 'a', true);
    await primary.compact(); // gaps in the offsets
    await churn(primary, 300, 'b', true);
    const dir = tempDir();
    let replica = await open(dir, 1500); // other segment bounds than the primary's
    const cursor = new LogCursor(primary, 0);
    const joiner = new BatchJoiner();
    let cuts = 0;
    let joins = 0;
    for (;;) {
      const raw = cursor.readRaw(333); // small runs: batches are cut between them
      if (raw.length === 0) break;
      const wasWaiting = joiner.waiting;
      const frame = Buffer.from(raw);
      const runs = joiner.push(frame);
      if (joiner.waiting) cuts++;
      if (wasWaiting && runs.length > 0) joins++;
      if (runs.length > 0) await replica.applyReplicatedRaw(runs, 0);
      frame.fill(0xee); // a frame's buffer is not kept: what waits must be a copy
    }
    expect(joiner.waiting).toBe(false);
    expect(cuts).toBeGreaterThan(0);
    expect(joins).toBe(cuts);
    cursor.close();
    expect(replica.nextOffset).toBe(primary.nextOffset);
    expect(await offsets(replica)).toEqual(await offsets(primary));
    expect(state(replica)).toEqual(state(primary));
    await replica.close();
    replica = await open(dir, 1500);
    expect(state(replica)).toEqual(state(primary));
    expect(await offsets(replica)).toEqual(await offsets(primary));
    await replica.close();
    await primary.close();
  });

  it('points the keydir from the copied bytes: no key string per replicated SET', async () => {
    const primary = await open(tempDir(), 1 << 20);
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: 200 }, (_, i) => primary.set(`key:${i}`, `v${round}-${i}`)));
    }
    const runs = rawAll(new LogCursor(primary, 0), 4096);
    const replica = await open(tempDir(), 1 << 20);
    const stringsMade = vi.spyOn(Buffer.prototype, 'toString');
    try {
      for (const run of runs) await replica.applyReplicatedRaw(run);
      // 600 records (400 overwrites): the old path made each record's key a string (600 calls).
      expect(stringsMade.mock.calls.length).toBe(0);
    } finally {
      stringsMade.mockRestore();
    }
    expect(state(replica)).toEqual(state(primary));
    await replica.close();
    await primary.close();
  });

  it('fills the small-value cache from the copied bytes: no Buffer per replicated value', async () => {
    const primary = await open(tempDir(), 1 << 20);
    // Lengths 1..130: word copies with 0-3 tail bytes, below and above the 64-byte copy loop.
    const value = (round: number, i: number) =>
      `${round}:`.padEnd(1 + ((i * 7 + round) % 130), String.fromCharCode(97 + (i % 26)));
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: 200 }, (_, i) => primary.set(`key:${i}`, value(round, i))));
    }
    const runs = rawAll(new LogCursor(primary, 0), 4096);
    const replica = await open(tempDir(), 1 << 20);
    const viewsMade = vi.spyOn(Buffer.prototype, 'subarray');
    try {
      for (const run of runs) await replica.applyReplicatedRaw(run);
      // 600 records: the old path made a subarray of each value in its run to cache it (600 calls).
      expect(viewsMade.mock.contexts.filter((b) => runs.includes(b as Buffer)).length).toBe(0);
    } finally {
      viewsMade.mockRestore();
    }
    // Every value was cached by the apply (refilled in place or appended), and reads give them back.
    expect(replica.stats().cache.entries).toBe(200);
    for (let i = 0; i < 200; i++)
      expect(replica.getSync(Buffer.from(`key:${i}`))?.toString()).toBe(value(2, i));
    expect(replica.stats().cache).toMatchObject({ hits: 200, misses: 0 });
    expect(state(replica)).toEqual(state(primary));
    await replica.close();
    await primary.close();
  });

  it('decodes each header once: the append reads the headers checkRun kept (RunRows)', async () => {
    const primary = await open(tempDir(), 2000); // small segments: groups of a run land in several
    for (let round = 0; round < 2; round++) {
      await Promise.all(Array.from({ length: 150 }, (_, i) => primary.set(`key:${i}`, `v${round}-${i}`)));
      await primary.batch(
        Array.from({ length: 5 }, (_, i) => ({ type: 'set', key: `b:${i}`, value: `${round}` })),
      );
    }
    await primary.delete('key:3');
    const runs = rawAll(new LogCursor(primary, 0), 4096);
    const replica = await open(tempDir(), 2000);
    // Every header decode (decodeHeaderInto) reads the key length with readUInt16LE: count them.
    const keyLengthReads = vi.spyOn(Buffer.prototype, 'readUInt16LE');
    try {
      for (const run of runs) await replica.applyReplicatedRaw(run);
      // 311 records: checkRun decodes each header; before, groupEnd and appendRun decoded it again (943 reads here).
      expect(replica.nextOffset).toBe(311);
      expect(keyLengthReads.mock.calls.length).toBe(311);
    } finally {
      keyLengthReads.mockRestore();
    }
    expect(state(replica)).toEqual(state(primary));
    expect(await offsets(replica)).toEqual(await offsets(primary));
    await replica.close();
    await primary.close();
  });

  it('refuses a run with a damaged record, offsets out of order, or a cut batch, applying none of it', async () => {
    const primary = await open(tempDir(), 1 << 20);
    await primary.set('a', '1');
    await primary.batch([
      { type: 'set', key: 'b', value: '2' },
      { type: 'set', key: 'c', value: '3' },
    ]);
    await primary.set('d', '4');
    const run = Buffer.from(new LogCursor(primary, 0).readRaw(1 << 20));
    const replica = await open(tempDir());
    const refused = async (bytes: Buffer, why: RegExp) => {
      const err = await replica.applyReplicatedRaw(bytes).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KvError);
      expect((err as KvError).message).toMatch(why);
      expect(replica.nextOffset).toBe(0);
      expect(replica.size).toBe(0);
    };
    const damaged = Buffer.from(run);
    damaged[damaged.length - 1]! ^= 0x40; // the last value byte
    await refused(damaged, /offset 3\) failing its CRC/);
    const torn = run.subarray(0, run.length - 1);
    await refused(torn, /truncated record/);
    const first = RECORD_HEADER_BYTES + 2;
    await refused(Buffer.concat([run.subarray(first), run.subarray(0, first)]), /offset 0 out of order/);
    const cut = wholePrefix(run.subarray(0, first + RECORD_HEADER_BYTES + 2));
    expect(cut).toBe(first); // the batch's first record waits for its end
    await refused(run.subarray(0, first + RECORD_HEADER_BYTES + 2), /inside a batch/);
    // Several runs at once: checked together, so a damaged second run leaves the first unapplied too.
    const cutAt = first + 2 * (RECORD_HEADER_BYTES + 2); // after the batch
    const err = await replica
      .applyReplicatedRaw([run.subarray(0, cutAt), damaged.subarray(cutAt)])
      .catch((e: unknown) => e);
    expect((err as KvError).code).toBe('CORRUPTION');
    expect(replica.nextOffset).toBe(0);
    const reordered = await replica
      .applyReplicatedRaw([run.subarray(cutAt), run.subarray(0, cutAt)])
      .catch((e: unknown) => e);
    expect((reordered as KvError).message).toMatch(/out of order/);
    expect(replica.nextOffset).toBe(0);
    // The intact runs apply, together.
    await replica.applyReplicatedRaw([run.subarray(0, cutAt), run.subarray(cutAt)]);
    expect(state(replica)).toEqual(state(primary));
    await replica.close();
    await primary.close();
  });
});
