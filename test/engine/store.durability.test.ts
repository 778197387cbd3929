/**
 * Durability modes (DESIGN.md §1.1), observed through an Fs that records and
 * can hold back fsyncs (SIGKILL keeps the page cache, so it cannot show them):
 * `always` acks only after the fsync of the write (group commit: one fsync
 * for a tick's writes, and a round waits a turn for the writes of the
 * clients the last one answered) and never acks a write whose fsync failed;
 * `interval` acks at once and fsyncs within the tick; `never` acks at once
 * and leaves fsync to sealing and close.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, type StoreOptions } from '../../src/engine/index.js';
import { recordingFs, removeTempDirs, segFiles, silentLogger, tempDir } from './helpers.js';

afterAll(removeTempDirs);

const base: StoreOptions = { logger: silentLogger, compaction: { auto: false } };
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A gate the fsyncs wait at until opened. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => {
    open = r;
  });
  return { opened, open };
}

function settled(p: Promise<unknown>): { done: boolean } {
  const state = { done: false };
  p.then(
    () => {
      state.done = true;
    },
    () => {
      state.done = true;
    },
  );
  return state;
}

describe("fsync: 'always'", () => {
  it('acknowledges a write only after the fsync of its segment has completed', async () => {
    const dir = tempDir();
    const rec = recordingFs();
    const s = await openStore(dir, { ...base, fs: rec.fs, fsync: 'always' });
    const seg = join(dir, segFiles(dir)[0]!);
    await s.set('warm', 'up');
    const before = s.stats().fsync.count;
    const g = gate();
    rec.hooks.beforeFsync = () => g.opened;
    const ack = s.set('k', 'v');
    const state = settled(ack);
    await tick(100);
    expect(state.done, 'acked while its fsync was still pending').toBe(false);
    expect(s.getSync('k')?.toString()).toBe('v'); // readable before durable
    g.open();
    await ack;
    const fsyncs = rec.calls.filter((c) => c.op === 'fsync' && c.path === seg);
    const lastWrite = rec.calls.findLastIndex((c) => c.op === 'write' && c.path === seg);
    expect(
      rec.calls.findIndex((c, i) => i > lastWrite && c.op === 'fsync' && c.path === seg),
    ).toBeGreaterThan(lastWrite);
    expect(fsyncs.length).toBeGreaterThan(0);
    expect(s.stats().fsync.count).toBeGreaterThan(before);
    await s.close();
  });

  it('answers a no-op (delete of a deleted key, NX/XX refusal, empty batch) only once what it saw is durable', async () => {
    const dir = tempDir();
    const rec = recordingFs();
    const s = await openStore(dir, { ...base, fs: rec.fs, fsync: 'always' });
    await s.set('gone', 'v');
    await s.set('here', 'v');
    const g = gate();
    rec.hooks.beforeFsync = () => g.opened;
    const del = settled(s.delete('gone')); // its fsync is held back
    const set = settled(s.set('new', 'v'));
    await tick(20);
    // Each of these saw state that a power loss right now would undo.
    const noops = [
      s.delete('gone'),
      s.set('gone', 'x', { ifPresent: true }),
      s.set('new', 'x', { ifAbsent: true }),
      s.batch([{ type: 'del', key: 'gone' }]),
    ];
    const states = noops.map(settled);
    await tick(100);
    expect(del.done || set.done).toBe(false);
    expect(
      states.map((x) => x.done),
      'a no-op answered before the write it observed was durable',
    ).toEqual([false, false, false, false]);
    g.open();
    expect(await Promise.all(noops)).toEqual([false, false, false, 0]);
    await s.close();
  });

  it('shares one fsync among the writes of a tick (group commit)', async () => {
    const dir = tempDir();
    const rec = recordingFs();
    const s = await openStore(dir, { ...base, fs: rec.fs, fsync: 'always' });
    const seg = join(dir, segFiles(dir)[0]!);
    await s.set('warm', 'up');
    const from = rec.calls.length;
    await Promise.all(Array.from({ length: 50 }, (_, i) => s.set(`k${i}`, `v${i}`)));
    const fsyncs = rec.calls.slice(from).filter((c) => c.op === 'fsync' && c.path === seg);
    expect(fsyncs.length).toBeGreaterThanOrEqual(1);
    expect(fsyncs.length).toBeLessThanOrEqual(2);
    await s.close();
  });

  it('lets a write made as a round is acked join the round queued behind it, not the one after', async () => {
    // Each client of a server waits for its ack before it writes again: the
    // queued round waits a loop turn for them (Store.gatherForRound).
    const dir = tempDir();
    const rec = recordingFs();
    const s = await openStore(dir, { ...base, fs: rec.fs, fsync: 'always' });
    await s.set('warm', 'up');
    const held: (() => void)[] = [];
    rec.hooks.beforeFsync = () => new Promise<void>((r) => held.push(r));
    const untilHeld = async () => {
      for (let i = 0; i < 500 && held.length === 0; i++) await tick(2);
      expect(held.length).toBe(1);
    };
    const a = s.set('a', '1'); // round 1, its fsync held
    await untilHeld();
    const b = s.set('b', '1'); // queued behind round 1
    await tick(20);
    expect(held.length).toBe(1);
    held.shift()?.();
    await a; // a's client is answered...
    const c = settled(s.set('c', '1')); // ...and writes again at once
    await untilHeld(); // round 2
    held.shift()?.();
    await b;
    await tick(20);
    expect(c.done, 'the write made as round 1 was acked waited for a third round').toBe(true);
    expect(held.length).toBe(0);
    delete rec.hooks.beforeFsync;
    await s.close();
  });

  it('never acknowledges a write whose fsync failed, and refuses writes after it', async () => {
    const dir = tempDir();
    const rec = recordingFs();
    const s = await openStore(dir, { ...base, fs: rec.fs, fsync: 'always' });
    await s.set('warm', 'up');
    rec.hooks.beforeFsync = async () => {
      throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
    };
    await expect(s.set('k', 'v')).rejects.toMatchObject({ code: 'IO_ERROR' });
    await expect(s.set('k2', 'v')).rejects.toMatchObject({ code: 'IO_ERROR' });
    delete rec.hooks.beforeFsync;
    await s.close();
  });
});

describe("fsync: 'interval'", () => {
  it('acknowledges without waiting for fsync, and fsyncs the write within the tick', async () => {
    const dir = tempDir();
    const rec = recordingFs();
    const s = await openStore(dir, { ...base, fs: rec.fs, fsync: 'interval', fsyncIntervalMs: 50 });
    const seg = join(dir, segFiles(dir)[0]!);
    await tick(120); // let the first tick sync the new segment
    const g = gate();
    rec.hooks.beforeFsync = () => g.opened;
    const before = s.stats().fsync.count;
    const ack = s.set('k', 'v');
    const state = settled(ack);
    await tick(20);
    expect(state.done, 'interval mode waited for an fsync').toBe(true);
    const written = rec.calls.findLastIndex((c) => c.op === 'write' && c.path === seg);
    g.open();
    await tick(200); // a few ticks
    const synced = rec.calls.findIndex((c, i) => i > written && c.op === 'fsync' && c.path === seg);
    expect(synced, 'no fsync of the segment after the write').toBeGreaterThan(written);
    expect(rec.calls[synced]!.at - rec.calls[written]!.at).toBeLessThan(150);
    expect(s.stats().fsync.count).toBeGreaterThan(before);
    // Idle ticks fsync nothing.
    const idle = s.stats().fsync.count;
    await tick(150);
    expect(s.stats().fsync.count).toBe(idle);
    await s.close();
  });
});

describe("fsync: 'never'", () => {
  it('acknowledges without any fsync, and fsyncs only at close', async () => {
    const dir = tempDir();
    const rec = recordingFs();
    const s = await openStore(dir, { ...base, fs: rec.fs, fsync: 'never' });
    const seg = join(dir, segFiles(dir)[0]!);
    for (let i = 0; i < 20; i++) await s.set(`k${i}`, `v${i}`);
    await tick(150);
    expect(rec.calls.filter((c) => c.op === 'fsync' && c.path === seg)).toEqual([]);
    expect(s.stats().fsync.count).toBe(0);
    await s.close();
    expect(rec.calls.filter((c) => c.op === 'fsync' && c.path === seg).length).toBe(1);
    const again = await openStore(dir, base);
    expect(again.getSync('k19')?.toString()).toBe('v19');
    await again.close();
  });
});
