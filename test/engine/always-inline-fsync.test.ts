/**
 * `always` rounds fsync on the event loop when the last round was quick and
 * little was written since (Store.syncsInline), as Redis's beforeSleep
 * does, and in the thread pool otherwise. Either way a write is acknowledged
 * only after the fsync covering it returned. Observed on the real file
 * system (a caller's Fs keeps the pool), through node:fs's fdatasyncSync,
 * replaced for the test by a recorder that returns at once, and
 * fdatasync by a callback a turn later (syncBuiltinESMExports carries the
 * replacements to the named exports fs.ts calls).
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { nodeFs } from '../../src/engine/fs.js';
import { openStore, type Store, type StoreOptions } from '../../src/engine/index.js';
import { ALWAYS_INLINE_FSYNC_MAX_BYTES, ALWAYS_INLINE_FSYNC_MAX_MS } from '../../src/engine/limits.js';
import { removeTempDirs, silentLogger, tempDir } from './helpers.js';

const base: StoreOptions = { logger: silentLogger, compaction: { auto: false } };
const realFdatasyncSync = fs.fdatasyncSync;
const realFdatasync = fs.fdatasync;
let events: string[] = [];
let delayMs = 0;

function spyFdatasyncSync(): void {
  fs.fdatasyncSync = (fd: number) => {
    if (delayMs > 0) {
      const until = performance.now() + delayMs;
      delayMs = 0;
      while (performance.now() < until) {}
    }
    // Not the disk's: its time (2-60 ms on a loaded host) would decide the next round's way.
    void fd;
    events.push('fdatasyncSync');
  };
  // The pool's too: a round after one slower than ALWAYS_INLINE_FSYNC_MAX_MS goes to the pool.
  fs.fdatasync = ((_fd: number, cb: (err: NodeJS.ErrnoException | null) => void) =>
    setImmediate(() => cb(null))) as unknown as typeof fs.fdatasync;
  syncBuiltinESMExports();
}

/** A store as kv-server opens it: its rounds may fsync inline (Store.syncsInlineAllowed). */
async function served(options: StoreOptions): Promise<Store> {
  const s = await openStore(tempDir(), options);
  s.syncsInlineAllowed = true;
  return s;
}

/** Sets keys until a round fsyncs inline (the first follow the directory's fsync, in the pool, and one slower than ALWAYS_INLINE_FSYNC_MAX_MS on a loaded host). */
async function untilInline(s: Store): Promise<void> {
  const before = s.stats().fsync.inline;
  for (let i = 0; i < 50 && s.stats().fsync.inline === before; i++) await s.set(`warm${i}`, 'up');
  expect(s.stats().fsync.inline).toBeGreaterThan(before);
}

/** A served `always` store with the fsyncs recorded, past its first inline round, with the record emptied. */
async function inlineStore(): Promise<Store> {
  const s = await served({ ...base, fsync: 'always' });
  spyFdatasyncSync();
  await untilInline(s);
  events = [];
  return s;
}

afterEach(() => {
  fs.fdatasyncSync = realFdatasyncSync;
  fs.fdatasync = realFdatasync;
  syncBuiltinESMExports();
  events = [];
  delayMs = 0;
});
afterAll(removeTempDirs);

describe("fsync: 'always' on the event loop", () => {
  it('fsyncs a small round inline and acknowledges its write only after that fsync returned', async () => {
    const s = await inlineStore();
    const before = s.stats().fsync;
    for (let i = 0; i < 5; i++) {
      await s.set(`k${i}`, 'v').then(() => events.push('ack'));
    }
    expect(events).toEqual(Array(5).fill(['fdatasyncSync', 'ack']).flat());
    const after = s.stats().fsync;
    expect(after.inline - before.inline).toBe(5);
    expect(after.count - before.count).toBe(5);
    await s.close();
  });

  it('fsyncs in the thread pool a round of more than ALWAYS_INLINE_FSYNC_MAX_BYTES, and the round after a slow one', async () => {
    const s = await inlineStore();
    let st = s.stats().fsync;
    await s.set('big', Buffer.alloc(ALWAYS_INLINE_FSYNC_MAX_BYTES + 1));
    expect(s.stats().fsync.count).toBe(st.count + 1);
    expect(s.stats().fsync.inline, 'a large round fsynced inline').toBe(st.inline);
    expect(events).toEqual([]);
    // An inline round that takes longer than ALWAYS_INLINE_FSYNC_MAX_MS sends the next one to the pool.
    await untilInline(s);
    events = [];
    await s.set('small', 'v');
    expect(events).toEqual(['fdatasyncSync']);
    delayMs = ALWAYS_INLINE_FSYNC_MAX_MS + 2;
    await s.set('slow', 'v');
    expect(events).toEqual(['fdatasyncSync', 'fdatasyncSync']);
    st = s.stats().fsync;
    await s.set('after-slow', 'v');
    expect(s.stats().fsync.count).toBe(st.count + 1);
    expect(s.stats().fsync.inline, 'the round after a slow one fsynced inline').toBe(st.inline);
    expect(events.length).toBe(2);
    await s.close();
  });

  it('fsyncs in the thread pool a round that follows a read (a read waiting behind an inline fsync would wait for the disk)', async () => {
    const s = await inlineStore();
    const st = s.stats().fsync;
    expect(s.getSync('warm0')?.toString()).toBe('up');
    await s.set('after-read', 'v');
    expect(s.stats().fsync.count).toBe(st.count + 1);
    expect(s.stats().fsync.inline, 'the round after a read fsynced inline').toBe(st.inline);
    expect(events).toEqual([]);
    // No read since that round started: the next one is inline again (when the pool's round was quick).
    await untilInline(s);
    await s.close();
  });

  const reads: [string, (s: Store) => unknown][] = [
    ['getSync', (s) => s.getSync('warm0')],
    ['viewSyncBytes', (s) => s.viewSyncBytes(Buffer.from('warm0', 'latin1'), 0, 5)],
    ['has', (s) => s.has('warm0')],
    ['ttl', (s) => s.ttl('warm0')],
    ['expiresAt', (s) => s.expiresAt('warm0')],
    ['scan', (s) => s.scan({ count: 1 })],
    ['scanBuffers', (s) => s.scanBuffers({ count: 1 })],
  ];
  it.each(reads)('counts %s as a read: the round after it fsyncs in the thread pool', async (_name, read) => {
    const s = await inlineStore();
    const st = s.stats().fsync;
    read(s);
    await s.set('after-read', 'v');
    expect(s.stats().fsync.count).toBe(st.count + 1);
    expect(s.stats().fsync.inline, 'the round after the read fsynced inline').toBe(st.inline);
    expect(events).toEqual([]);
    await s.close();
  });

  it("never fsyncs inline under 'interval', through a caller's Fs, or in the embedded API's store", async () => {
    spyFdatasyncSync();
    const s = await served({ ...base, fsync: 'interval' });
    const t = await served({ ...base, fsync: 'always', fs: { ...nodeFs } });
    const u = await openStore(tempDir(), { ...base, fsync: 'always' });
    for (const store of [s, t, u]) {
      for (let i = 0; i < 5; i++) await store.set(`k${i}`, 'v');
      await store.sync();
      expect(store.stats().fsync.inline).toBe(0);
      await store.close();
    }
    expect(events).toEqual([]);
  });
});
