/**
 * The small-value cache's prefaulting (slot-cache.ts, prefault.ts): a new
 * cache's arena is written by the thread pool ahead of its ring's head and its
 * table's next size before a doubling; the ring never writes the range a fill
 * is writing (a head that catches up steps over it), so every value reads
 * back as it was put, and no value is left out for it.
 */
import { describe, expect, it } from 'vitest';
import { PREFAULT_PIECE_BYTES } from '../../src/engine/limits.js';
import { type PrefaultAhead, prefault } from '../../src/engine/prefault.js';
import { SlotCache } from '../../src/engine/slot-cache.js';

const CAPACITY = 8 * 1024 * 1024;

/** Waits (event-loop turns, no clock in the assertion) until `done()` holds. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !done(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(done()).toBe(true);
}

/** A value of 100 bytes that only slot `i` has. */
function valueFor(i: number): Buffer {
  const v = Buffer.alloc(100);
  for (let j = 0; j < 100; j += 4) v.writeUInt32LE((i * 2654435761 + j) >>> 0, j);
  return v;
}

function expectAll(c: SlotCache, n: number): void {
  expect(c.size).toBe(n);
  for (let i = 0; i < n; i++) {
    const got = c.get(i);
    if (got === undefined || !got.equals(valueFor(i))) throw new Error(`slot ${i}: ${got?.toString('hex')}`);
  }
}

describe('SlotCache prefaulting', () => {
  it('fills a new arena and its next tables ahead while values arrive, and every value reads back', async () => {
    const c = new SlotCache(CAPACITY, 4096, CAPACITY);
    const inside = c as unknown as { nextTable: PrefaultAhead; fenceTo: number };
    const n = 50_000; // ~5.6 MiB of entries, tables up to 131072 buckets
    for (let i = 0; i < n; i++) {
      c.putWritten(i, valueFor(i));
      // Fills are given the event-loop turns to finish (however loaded the machine).
      if (i % 1000 === 0) await until(() => inside.fenceTo === 0);
      if (inside.nextTable.started && !inside.nextTable.isReady) await until(() => inside.nextTable.isReady);
    }
    expect(c.arenaFills).toBeGreaterThanOrEqual(3);
    expect(c.prefaultedGrows).toBeGreaterThanOrEqual(1);
    expectAll(c, n);
  });

  it('a synchronous burst steps over the range being filled: every value cached, none overwritten by the fill', async () => {
    const c = new SlotCache(CAPACITY, 4096, CAPACITY);
    // Behind two long fills (both places in flight), the arena's first fill is still pending during the burst.
    let blockersDone = 0;
    for (let b = 0; b < 2; b++) {
      prefault(Buffer.alloc(16 * 1024 * 1024), () => {
        blockersDone++;
      });
    }
    c.putWritten(0, valueFor(0)); // starts the fill one piece past the head
    expect(c.arenaFills).toBe(1);
    const n = Math.ceil((3 * PREFAULT_PIECE_BYTES) / 112); // the head passes the fenced range
    for (let i = 1; i < n; i++) c.putWritten(i, valueFor(i));
    expect(c.size).toBe(n);
    // Once the fill has written its range (random bytes), the values must be as put.
    await until(() => blockersDone === 2 && c.arenaFills >= 2);
    await new Promise((r) => setTimeout(r, 10));
    expectAll(c, n);
  });

  it('a small cache prefaults nothing', async () => {
    const c = new SlotCache(1024 * 1024, 4096, 1024 * 1024);
    for (let i = 0; i < 5000; i++) c.putWritten(i, valueFor(i));
    expect(c.arenaFills).toBe(0);
    expectAll(c, 5000);
  });

  it('the idle memory reducer drops the table prefaulted ahead', async () => {
    const c = new SlotCache(CAPACITY, 4096, CAPACITY);
    const next = (c as unknown as { nextTable: PrefaultAhead }).nextTable;
    let i = 0;
    // The table of 16384 buckets (128 KiB) is followed by one prefaulted from 3/8 full.
    while (!next.started) c.putWritten(i, valueFor(i++));
    await until(() => next.isReady);
    c.releasePrefaulted();
    expect(next.started).toBe(false);
    // The next value starts it again.
    c.putWritten(i, valueFor(i++));
    expect(next.started).toBe(true);
    expectAll(c, i);
  });
});
