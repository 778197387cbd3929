/**
 * The log's fsyncs under interval mode, with fsyncs held and finished out of
 * order by MemFs (a slow device):
 * - D: a power cut loses only a suffix of the log: a later segment's fsync
 *   is never counted while an earlier segment's data is still waiting for
 *   its own (two overlapping sync rounds finishing out of order kept a later
 *   write and lost an earlier one);
 * - A: a compaction that retires segments while a sync round waits on a
 *   slow fsync makes no fsync go through a closed descriptor (EBADF refused
 *   every write until restart; a reused descriptor number would sync
 *   another file);
 * - after a process crash, what the dead process wrote but never fsynced is
 *   synced by the next process before its own later writes count: recovered
 *   segments are synced first (their hints used to be written, durable,
 *   over data that was not).
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { MemFs } from '../../src/engine/mem-fs.js';
import { openStore, type Store } from '../../src/engine/store.js';

const DIR = '/mem/db';

function open(fs: MemFs, fsyncIntervalMs: number): Promise<Store> {
  return openStore(DIR, {
    fs,
    fsync: 'interval',
    fsyncIntervalMs,
    maxSegmentBytes: 2048,
    cacheBytes: 0,
    logger: pino({ level: 'silent' }),
    compaction: { auto: false },
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The keys of `order` present after recovery must be a prefix of it: nothing after a lost one. */
async function expectPrefix(fs: MemFs, order: string[]): Promise<number> {
  const store = await open(fs, 60_000);
  const present = order.map((k) => store.has(k));
  await store.close();
  const n = present.indexOf(false) < 0 ? order.length : present.indexOf(false);
  expect(
    present.slice(n),
    `kept ${present.filter(Boolean).length} of ${order.length}, first lost #${n}`,
  ).toEqual(present.slice(n).map(() => false));
  return n;
}

describe('sync order (interval mode, MemFs)', () => {
  it('D: a write in a new segment is never durable while an earlier one in the sealed segment is not', async () => {
    const fs = new MemFs();
    const store = await open(fs, 5);
    await store.sync();
    const first = store.stats().segments[0]!.file;
    const order: string[] = [];
    const put = async (k: string) => {
      order.push(k);
      await store.set(k, 'v'.repeat(600));
    };
    // Three records fill the first segment (2 KiB): the next write rotates.
    for (let i = 0; i < 3; i++) await put(`k${i}`);
    expect(store.stats().segments.length).toBe(1);
    // A sync round starts and its fsync of the first segment is slow.
    fs.holdFsyncs((p) => p.endsWith(first));
    const syncing = store.sync();
    // Writes go on in a new segment; interval ticks pass.
    for (let i = 3; i < 6; i++) await put(`k${i}`);
    expect(store.stats().segments.length).toBe(2);
    await sleep(60);
    // Power cut while the first segment's fsync is still under way.
    const kept = await expectPrefix(fs.crash('drop'), order);
    expect(kept).toBeLessThan(order.length); // the held fsync did hold something back
    // Once it finishes, the rounds queued behind it make everything durable.
    fs.holdFsyncs(undefined);
    fs.releaseFsyncs();
    await syncing;
    await sleep(60);
    expect(await expectPrefix(fs.crash('drop'), order)).toBe(order.length);
    await store.close();
  });

  it('A: a compaction retiring segments during a slow sync round never syncs a closed descriptor', async () => {
    const fs = new MemFs();
    const store = await open(fs, 60_000);
    for (let r = 0; r < 6; r++) {
      await Promise.all(Array.from({ length: 20 }, (_, k) => store.set(`k${k}`, `r${r}-${'x'.repeat(100)}`)));
    }
    await store.settleBackground();
    expect(store.stats().segments.length).toBeGreaterThan(4);
    // The first sealed segment's fsync is slow: a sync round waits on it.
    const first = store.stats().segments[0]!.file;
    fs.holdFsyncs((p) => p.endsWith(first));
    const syncing = store.sync();
    const result = await store.compact();
    expect(result?.segmentsIn ?? 0).toBeGreaterThan(1);
    fs.holdFsyncs(undefined);
    fs.releaseFsyncs();
    await syncing;
    // Writes are still accepted and the store reads right.
    await store.set('after', '1');
    await store.sync();
    for (let k = 0; k < 20; k++) expect((await store.get(`k${k}`))?.toString()).toMatch(/^r5-/);
    await store.close();
    const again = await open(fs.crash('drop'), 60_000);
    expect((await again.get('after'))?.toString()).toBe('1');
    expect((await again.get('k3'))?.toString()).toMatch(/^r5-/);
    await again.close();
  });

  it('segments recovered after a process crash are synced before later writes count (and before their hints)', async () => {
    const fs = new MemFs();
    const first = await open(fs, 60_000);
    fs.holdFsyncs(() => true); // the first process's fsyncs never finish: it dies with nothing durable
    const order: string[] = [];
    for (let i = 0; i < 30; i++) {
      order.push(`u${i}`);
      await first.set(`u${i}`, 'u'.repeat(150));
    }
    expect(first.stats().segments.length).toBeGreaterThan(2);
    const afterKill = fs.killProcess(); // SIGKILL: the page cache keeps every byte
    const second = await open(afterKill, 5);
    for (let i = 0; i < 10; i++) {
      order.push(`w${i}`);
      await second.set(`w${i}`, 'w'.repeat(150));
    }
    await second.settleBackground();
    await sleep(50);
    // Power cut: whatever survives is a prefix, and reads find what the hints promise.
    const image = afterKill.crash('drop');
    const kept = await expectPrefix(image, order);
    expect(kept).toBe(order.length); // interval ticks have passed since: all of it
    const third = await open(image, 60_000);
    for (const k of order) expect(() => third.getSync(k)).not.toThrow();
    await third.close();
    await second.close();
  });
});
