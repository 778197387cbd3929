/**
 * prefault (prefault.ts) runs two fills at once. PrefaultPool: units come
 * back prefaulted only once their fill has completed, zero-filled when
 * asked, never written by a fill after they were handed out; drop forgets
 * ready and in-flight units. And the two users: a keydir whose record pages
 * come prefaulted (several pages, with the fills given time to finish
 * between them) and a hint builder past its spare chunks agree with what was
 * written.
 */
import { describe, expect, it } from 'vitest';
import { HintBuilder } from '../../src/engine/hint-builder.js';
import { Keydir } from '../../src/engine/keydir.js';
import { HINT_CHUNK_BYTES, HINT_SPARE_CHUNKS, KEYDIR_PAGE_SLOTS } from '../../src/engine/limits.js';
import { PrefaultAhead, PrefaultPool, prefault, prefaultFillsInFlight } from '../../src/engine/prefault.js';

const UNIT = 64 * 1024;

/** Waits (event-loop turns, no clock in the assertion) until `done()` holds. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !done(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(done()).toBe(true);
}

function counted(zeroed: boolean, ahead: number) {
  const carved: Buffer[] = [];
  const pool = new PrefaultPool(
    () => {
      const b = Buffer.alloc(UNIT);
      carved.push(b);
      return b;
    },
    ahead,
    zeroed,
  );
  return { pool, carved };
}

describe('prefault', () => {
  it('runs two fills at once, the rest queued until one completes, and completes every one', async () => {
    await until(() => prefaultFillsInFlight() === 0);
    const bufs = [0, 1, 2, 3, 4].map(() => Buffer.alloc(UNIT));
    const done: number[] = [];
    const inFlightAtDone: number[] = [];
    for (const [i, b] of bufs.entries()) {
      prefault(b, (ok) => {
        expect(ok).toBe(true);
        inFlightAtDone.push(prefaultFillsInFlight());
        done.push(i);
      });
    }
    // Two in the pool at once: with one, the thread idled from a fill's end to the event loop's next start.
    expect(prefaultFillsInFlight()).toBe(2);
    await until(() => done.length === 5);
    // While three were still queued, a completion left the other fill running.
    expect(inFlightAtDone[0]).toBe(1);
    expect(prefaultFillsInFlight()).toBe(0);
    expect([...done].sort()).toEqual([0, 1, 2, 3, 4]);
    for (const b of bufs) expect(b.some((x) => x !== 0)).toBe(true);
  });
});

describe('PrefaultPool', () => {
  it('hands out a fresh unit until a prefaulted one is ready, then the prefaulted one, zero-filled', async () => {
    const { pool, carved } = counted(true, 2);
    const first = pool.take();
    // The fresh unit handed out, and two being filled: none of them ready yet.
    expect(carved.length).toBe(3);
    expect(carved.at(-1)).toBe(first);
    expect(pool.readyCount).toBe(0);
    await until(() => pool.readyCount === 2);
    const second = pool.take();
    expect(carved.slice(0, 2)).toContain(second); // one of the two filled ones
    expect(second.every((b) => b === 0)).toBe(true);
  });

  it('leaves a prefaulted unit as the fill wrote it when not zeroed', async () => {
    const { pool } = counted(false, 1);
    pool.take();
    await until(() => pool.readyCount === 1);
    // randomFill wrote it: 64 KiB of zeros has odds of 2^-524288.
    expect(pool.take().some((b) => b !== 0)).toBe(true);
  });

  it('never lets a fill write a unit after it was handed out', async () => {
    const { pool } = counted(false, 3);
    const taken: Buffer[] = [];
    for (let round = 0; round < 20; round++) {
      // Taken while fills are queued and in flight, and between them.
      for (let i = 0; i < 3; i++) {
        const b = pool.take();
        b.fill(0xa5);
        taken.push(b);
      }
      await new Promise((r) => setImmediate(r));
    }
    await until(() => pool.readyCount === 3);
    expect(new Set(taken).size).toBe(taken.length);
    for (const b of taken) expect(b.every((x) => x === 0xa5)).toBe(true);
  });

  it('drop forgets ready units and fills still in flight', async () => {
    const { pool, carved } = counted(true, 2);
    pool.take();
    pool.drop(); // both fills queued or in flight
    expect(pool.readyCount).toBe(0);
    const other = counted(true, 1); // its fill runs after the dropped ones (one FIFO)
    other.pool.take();
    await until(() => other.pool.readyCount === 1);
    expect(pool.readyCount).toBe(0);
    pool.take();
    expect(carved.length).toBe(3 + 1 + 2); // a fresh unit again, and two new fills
    await until(() => pool.readyCount === 2);
    pool.drop();
    expect(pool.readyCount).toBe(0);
  });
});

describe('PrefaultAhead', () => {
  it('hands its buffer out only once the fill completed, zero-filled when asked', async () => {
    const ahead = new PrefaultAhead(true);
    const early = Buffer.alloc(3 * UNIT);
    ahead.start(early);
    expect(ahead.started).toBe(true);
    // Taken before its pieces were filled: nothing, and the buffer is forgotten.
    expect(ahead.take()).toBeUndefined();
    expect(ahead.started).toBe(false);
    const buf = Buffer.alloc(3 * UNIT);
    ahead.start(buf);
    await until(() => ahead.isReady);
    const got = ahead.take();
    expect(got).toBe(buf);
    expect(got!.every((b) => b === 0)).toBe(true);
    expect(ahead.take()).toBeUndefined(); // handed out once
  });

  it('leaves the buffer as the fill wrote it when not zeroed, and drop forgets it', async () => {
    const ahead = new PrefaultAhead(false);
    ahead.start(Buffer.alloc(UNIT));
    await until(() => ahead.isReady);
    expect(ahead.take()!.some((b) => b !== 0)).toBe(true);
    ahead.start(Buffer.alloc(UNIT));
    ahead.drop();
    await new Promise((r) => setTimeout(r, 20));
    expect(ahead.isReady).toBe(false);
    expect(ahead.take()).toBeUndefined();
  });

  it('a buffer taken early is never handed out, whatever its fill does later', async () => {
    const ahead = new PrefaultAhead(false);
    // Queued behind another fill, so the pieces are still pending when taken.
    prefault(Buffer.alloc(4 * UNIT), () => {});
    const buf = Buffer.alloc(UNIT);
    ahead.start(buf);
    expect(ahead.take()).toBeUndefined();
    const next = Buffer.alloc(UNIT);
    ahead.start(next);
    await until(() => ahead.isReady);
    expect(ahead.take()).toBe(next);
  });
});

describe('prefaulted users', () => {
  it('a keydir whose doublings take prefaulted tables holds every key (deleted ones gone), and a rebuild forgets a table of the old size', async () => {
    const kd = new Keydir();
    const next = (kd as unknown as { nextTable: PrefaultAhead }).nextTable;
    // Tables from 32768 buckets (128 KiB) have the next one prefaulted from 3/4 of their doubling count:
    // 130k keys, a fifth deleted, cross the doublings at 24576, 49152 and 98304 keys.
    const n = 130_000;
    const loc = (i: number) => ({ segment: i % 7, position: i, valueLength: i % 1000, expiresAt: 0 });
    for (let i = 0; i < n; i++) {
      kd.set(`key:${i}`, i % 7, i, i % 1000, 0);
      if (i % 5 === 0 && i > 0) kd.delete(`key:${i - 5}`);
      // The fill is given the event-loop turns to finish (however loaded the machine).
      if (next.started && !next.isReady) await until(() => next.isReady);
    }
    expect(kd.prefaultedTables).toBe(3);
    for (let i = 0; i < n; i++) {
      if (i % 5 === 0 && i < n - 5) expect(kd.get(`key:${i}`)).toBeUndefined();
      else expect(kd.get(`key:${i}`)).toEqual(loc(i));
    }
    // On to 3/4 of the next doubling: its table is being prefaulted; a rebuild to another size forgets it.
    let i = n;
    for (; !next.started; i++) kd.set(`key:${i}`, i % 7, i, i % 1000, 0);
    await until(() => next.isReady);
    kd.reserve(4 * n);
    expect(next.started).toBe(false);
    for (let j = 0; j < 2 * n; j++, i++) kd.set(`key:${i}`, i % 7, i, i % 1000, 0);
    expect(kd.prefaultedTables).toBe(3); // the doubling past the reserve found no table of its size prefaulted
    for (let j = n; j < i; j++) expect(kd.get(`key:${j}`)).toEqual(loc(j));
  });

  it('the idle memory reducer drops the keydir table prefaulted ahead, and the next new key starts it again', async () => {
    const kd = new Keydir();
    const next = (kd as unknown as { nextTable: PrefaultAhead }).nextTable;
    let i = 0;
    while (!next.started) kd.set(`key:${i++}`, 1, i, 5, 0);
    await until(() => next.isReady);
    kd.releaseSparePages();
    expect(next.started).toBe(false);
    kd.set(`key:${i++}`, 1, i, 5, 0);
    expect(next.started).toBe(true);
    await until(() => next.isReady);
    const before = kd.prefaultedTables;
    const doublingAt = kd.size / 0.75 / 0.75; // tables double at 3/4 full: the next one at 0.75 x its buckets x 0.75
    while (kd.size < doublingAt) kd.set(`key:${i++}`, 1, i, 5, 0);
    expect(kd.prefaultedTables).toBe(before + 1);
    for (let j = 0; j < i; j++) expect(kd.get(`key:${j}`)?.position).toBe(j + 1);
  });

  it('a keydir over several prefaulted record pages holds every key', async () => {
    const kd = new Keydir();
    const n = 3 * KEYDIR_PAGE_SLOTS + 100;
    for (let i = 0; i < n; i++) {
      kd.set(`key:${i}`, i % 7, i, i % 1000, 0);
      // Give the page prefaulted ahead time to be filled before the next page starts.
      if (i % KEYDIR_PAGE_SLOTS === 100) await new Promise((r) => setTimeout(r, 50));
    }
    expect(kd.size).toBe(n);
    for (let i = 0; i < n; i++)
      expect(kd.get(`key:${i}`)).toEqual({
        segment: i % 7,
        position: i,
        valueLength: i % 1000,
        expiresAt: 0,
      });
    kd.releaseSparePages();
    for (let i = n; i < n + KEYDIR_PAGE_SLOTS; i++) kd.set(`key:${i}`, 1, i, 5, 0);
    expect(kd.get(`key:${n + KEYDIR_PAGE_SLOTS - 1}`)).toEqual({
      segment: 1,
      position: n + KEYDIR_PAGE_SLOTS - 1,
      valueLength: 5,
      expiresAt: 0,
    });
  });

  it('a hint builder past its spare chunks, its arrays grown into prefaulted ones, encodes what a fresh one does', async () => {
    const entries = Math.ceil(((HINT_SPARE_CHUNKS + 14) * HINT_CHUNK_BYTES) / 43);
    const add = (h: HintBuilder, i: number) =>
      h.add(`key:${String(i).padStart(12, '0')}`, i, i * 143, 100, 0, 0);
    const prefaulted = new HintBuilder();
    const next = (prefaulted as unknown as { nextArrays: PrefaultAhead }).nextArrays;
    for (let i = 0; i < entries; i++) {
      add(prefaulted, i);
      if (i % 2000 === 0) await new Promise((r) => setTimeout(r, 2));
      // Arrays being prefaulted are given the event-loop turns to finish (however loaded the machine).
      if (next.started && !next.isReady) await until(() => next.isReady);
    }
    const reference = new HintBuilder();
    for (let i = 0; i < entries; i++) add(reference, i);
    expect(prefaulted.encode(7).equals(reference.encode(7))).toBe(true);
    // 32768 -> 65536 -> 131072 entries from slabs, each prefaulted from 3/4 of the size before.
    expect(prefaulted.prefaultedGrows).toBeGreaterThanOrEqual(1);
    expect(reference.prefaultedGrows).toBe(0);
    prefaulted.release();
    reference.release();
  });

  it('drops the arrays a hint builder prefaulted ahead on releasePrefaulted (the idle reducer)', async () => {
    const h = new HintBuilder();
    const add = (i: number) => h.add(`key:${String(i).padStart(12, '0')}`, i, i * 143, 100, 0, 0);
    const next = (h as unknown as { nextArrays: PrefaultAhead }).nextArrays;
    let i = 0;
    while (!next.started) add(i++);
    await until(() => next.isReady);
    h.releasePrefaulted();
    expect(next.started).toBe(false);
    const grown = h.prefaultedGrows;
    for (let j = 0; j < 40_000; j++) add(i++); // past the next doubling: fresh arrays
    expect(h.prefaultedGrows).toBe(grown);
    const reference = new HintBuilder();
    for (let j = 0; j < i; j++) reference.add(`key:${String(j).padStart(12, '0')}`, j, j * 143, 100, 0, 0);
    expect(h.encode(3).equals(reference.encode(3))).toBe(true);
    h.release();
    reference.release();
  });
});
