/**
 * Power loss (DESIGN.md §1.7): SIGKILL keeps the page cache, so these tests run
 * the store on MemFs, which at a simulated crash keeps only what was fsynced
 * (files and directory entries) and, in 'tear' mode, a random prefix of each
 * file's unsynced tail. Under `always`, every acknowledged write must survive;
 * in every mode, a batch is all there or all gone and no key holds a value
 * that was never written to it.
 */
import fc from 'fast-check';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { MemFs } from '../../src/engine/mem-fs.js';
import type { FsyncMode } from '../../src/engine/options.js';
import { openStore, type Store } from '../../src/engine/store.js';

const DIR = '/mem/db';
const silent = { level: 'silent' } as const;

interface KeyHistory {
  /** Index in `writes` of the last acknowledged write, -1 if none. */
  acked: number;
  writes: (string | undefined)[];
}

function open(fs: MemFs, fsync: FsyncMode, compaction = false): Promise<Store> {
  return openStore(DIR, {
    fs,
    fsync,
    maxSegmentBytes: 2048,
    logger: pino(silent),
    compaction: compaction
      ? { auto: true, checkIntervalMs: 10, minIntervalMs: 0, minDeadBytes: 0, minDeadRatio: 0.3 }
      : { auto: false },
  });
}

/** Runs random writes, crashes at a random moment, and checks the recovered store. */
async function crashRound(
  fs: MemFs,
  fsync: FsyncMode,
  rng: () => number,
  history: Map<string, KeyHistory>,
  batchGroups: Map<number, string[]>,
  opsBeforeCrash: number,
  withCompaction: boolean,
): Promise<MemFs> {
  const store = await open(fs, fsync, withCompaction);
  await verify(store, history, batchGroups, fsync);
  const inflight = new Set<Promise<unknown>>();
  let crashed: MemFs | undefined;
  let gen = 0;
  for (let i = 0; i < opsBeforeCrash && !crashed; i++) {
    const r = rng();
    let p: Promise<unknown>;
    if (r < 0.1) {
      // An atomic batch over one group of keys, all set to the same generation.
      const group = Math.floor(rng() * 3);
      const keys = batchGroups.get(group) ?? [`g${group}:a`, `g${group}:b`, `g${group}:c`];
      batchGroups.set(group, keys);
      const value = `gen-${Date.now()}-${gen++}`;
      p = store.batch(keys.map((key) => ({ type: 'set' as const, key, value })));
    } else if (r < 0.2 && withCompaction) {
      p = store.compact().catch(() => {});
    } else {
      const key = `k${Math.floor(rng() * 40)}`;
      const h = history.get(key) ?? { acked: -1, writes: [] };
      history.set(key, h);
      const idx = h.writes.length;
      if (r < 0.3) {
        h.writes.push(undefined);
        p = store.delete(key).then((existed) => {
          if (!existed && !crashed) h.writes[idx] = '<noop>'; // a late answer of the abandoned store must not touch the next round
        });
      } else {
        const value = `v${idx}-${'x'.repeat(Math.floor(rng() * 200))}`;
        h.writes.push(value);
        p = store.set(key, value);
      }
      p = p.then(() => {
        if (!crashed && idx > h.acked) h.acked = idx;
      });
    }
    const tracked = p.catch(() => {});
    inflight.add(tracked);
    void tracked.finally(() => inflight.delete(tracked));
    if (inflight.size >= 16) await Promise.race(inflight);
    if (rng() < 0.02) crashed = fs.crash('tear', rng);
  }
  if (!crashed) {
    if (inflight.size > 0 && rng() < 0.5) await Promise.race(inflight);
    crashed = fs.crash('tear', rng);
  }
  // The old store is abandoned, as after a power cut: whatever it does next touches the old MemFs only.
  return crashed;
}

async function verify(
  store: Store,
  history: Map<string, KeyHistory>,
  batchGroups: Map<number, string[]>,
  fsync: FsyncMode,
): Promise<void> {
  for (const [key, h] of history) {
    const got = (await store.get(key))?.toString();
    // Allowed: the last acknowledged write, or any later one (it may have reached the disk).
    const from = fsync === 'always' ? Math.max(h.acked, 0) : 0;
    const allowed = new Set<string | undefined>();
    if (h.acked < 0 || fsync !== 'always') allowed.add(undefined);
    for (let i = from; i < h.writes.length; i++) {
      const w = h.writes[i];
      if (w === '<noop>') {
        // A delete of an absent key: the key was absent then.
        allowed.add(undefined);
        continue;
      }
      allowed.add(w);
    }
    if (h.acked >= 0 && fsync === 'always' && h.writes[h.acked] === '<noop>') {
      // Walk back to the last real write before the acknowledged no-op.
      let j = h.acked;
      while (j >= 0 && h.writes[j] === '<noop>') j--;
      allowed.add(j >= 0 ? h.writes[j] : undefined);
    }
    expect(allowed.has(got), `${key} = ${got?.slice(0, 20)} (acked #${h.acked} of ${h.writes.length})`).toBe(
      true,
    );
    // Reset the history to what the store now holds: the next round starts from here.
    h.writes = [got];
    h.acked = 0;
  }
  for (const keys of batchGroups.values()) {
    const values = await Promise.all(keys.map(async (k) => (await store.get(k))?.toString()));
    expect(new Set(values).size, `batch ${keys.join(',')} half applied: ${values.join(',')}`).toBe(1);
  }
}

describe('power loss (MemFs)', () => {
  for (const fsync of ['always', 'interval', 'never'] as const) {
    it(`${fsync}: acknowledged writes survive per the mode, batches stay whole`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 31 - 1 }), async (seed) => {
          let s = seed;
          const rng = () => {
            s = (Math.imul(s, 1103515245) + 12345) >>> 0;
            return s / 2 ** 32;
          };
          let fs = new MemFs();
          const history = new Map<string, KeyHistory>();
          const groups = new Map<number, string[]>();
          for (let round = 0; round < 6; round++) {
            fs = await crashRound(
              fs,
              fsync,
              rng,
              history,
              groups,
              50 + Math.floor(rng() * 250),
              round % 2 === 1,
            );
          }
          const last = await open(fs, fsync);
          await verify(last, history, groups, fsync);
          await last.close();
        }),
        { numRuns: fsync === 'always' ? 12 : 6 },
      );
    });
  }

  it('interval: a power cut loses only a suffix of the log, with fsyncs finishing late and out of order', async () => {
    // Issue 11 D. Keys u<i> are written once each, in order; hot keys are overwritten (dead
    // bytes, so the compactor runs). Half the segment files are slow (their fsyncs are held and
    // released one at a time in a random order), sync() is called now and then (a second sync
    // round), and the power is cut after a random number of writes: the u keys that survive must
    // be a prefix of the order they were written in. (Before the sync rounds, seed 930604516:
    // 61 keys written after a lost one survived.)
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 31 - 1 }), async (seed) => {
        let s = seed;
        const rng = () => {
          s = (Math.imul(s, 1103515245) + 12345) >>> 0;
          return s / 2 ** 32;
        };
        const fs = new MemFs();
        const store = await openStore(DIR, {
          fs,
          fsync: 'interval',
          fsyncIntervalMs: 2,
          maxSegmentBytes: 2048,
          logger: pino(silent),
          compaction: {
            auto: true,
            checkIntervalMs: 10,
            minIntervalMs: 0,
            minDeadBytes: 0,
            minDeadRatio: 0.2,
          },
        });
        // Some segment files sit on a slow part of the device: every fsync of theirs is held.
        const slow = new Map<string, boolean>();
        fs.holdFsyncs((p) => {
          if (!p.endsWith('.seg')) return false;
          if (!slow.has(p)) slow.set(p, rng() < 0.5);
          return slow.get(p)!;
        });
        const order: string[] = [];
        const inflight = new Set<Promise<unknown>>();
        const ops = 30 + Math.floor(rng() * 300);
        for (let i = 0; i < ops; i++) {
          let p: Promise<unknown>;
          if (rng() < 0.5) {
            order.push(`u${i}`);
            p = store.set(`u${i}`, 'u'.repeat(Math.floor(rng() * 150)));
          } else {
            p = store.set(`hot${Math.floor(rng() * 5)}`, 'h'.repeat(100));
          }
          if (rng() < 0.15) p = Promise.all([p, store.sync()]);
          const tracked = p.catch(() => {});
          inflight.add(tracked);
          void tracked.finally(() => inflight.delete(tracked));
          if (rng() < 0.02) {
            const held = fs.heldFsyncs();
            const pick = held[Math.floor(rng() * held.length)];
            if (pick !== undefined) fs.releaseFsyncs((path) => path === pick);
          }
          if (rng() < 0.3) await new Promise((r) => setTimeout(r, rng() < 0.5 ? 0 : 3));
          while (inflight.size >= 16) {
            // Writes stuck behind held fsyncs (sync() waits for them): let one finish.
            const held = fs.heldFsyncs();
            const pick = held[Math.floor(rng() * held.length)];
            if (pick !== undefined) fs.releaseFsyncs((path) => path === pick);
            await Promise.race([...inflight, new Promise((r) => setTimeout(r, 5))]);
          }
        }
        const crashed = fs.crash('drop');
        // The old store goes on against the old MemFs only; let it finish and close.
        fs.holdFsyncs(undefined);
        fs.releaseFsyncs();
        await store.close().catch(() => {});
        const after = await openStore(DIR, {
          fs: crashed,
          logger: pino(silent),
          compaction: { auto: false },
        });
        const present = order.map((k) => after.has(k));
        await after.close();
        const firstLost = present.indexOf(false);
        if (firstLost >= 0) {
          const kept = present.slice(firstLost).filter(Boolean).length;
          expect(kept, `seed ${seed}: ${kept} keys written after the lost ${order[firstLost]} survived`).toBe(
            0,
          );
        }
      }),
      { numRuns: 12 },
    );
  });

  it('a sync round asked for just as the previous one ends waits for the queued one (no overlap)', async () => {
    // The "only a suffix" property above failed under CPU load (seed 953174544: 9 keys
    // written after the lost u221 survived): code resuming from a finished round, in the
    // microtasks before the round queued behind it started, found no round running and
    // started one, so two ran at once and a later segment's fsync was counted while an
    // earlier one's was still pending. Here that moment is made on purpose.
    const fs = new MemFs();
    const store = await openStore(DIR, {
      fs,
      fsync: 'never',
      logger: pino(silent),
      compaction: { auto: false },
    });
    await store.set('a0', 'x');
    fs.holdFsyncs((p) => p.endsWith('.seg'));
    const first = store.syncLog(); // its fsync of the segment is held
    let windowSync: Promise<void> | undefined;
    // Runs as soon as the first round ends, before the queued one starts.
    void first.then(() => {
      windowSync = store.syncLog();
    });
    await store.set('a1', 'x'); // written after the first round took its list
    const queued = store.syncLog(); // must cover a1
    let image: MemFs | undefined;
    void queued.then(() => {
      image = fs.crash('drop');
    });
    fs.releaseFsyncs(); // the first round's fsync completes
    while (image === undefined) {
      await new Promise((r) => setTimeout(r, 1));
      fs.releaseFsyncs();
    }
    await windowSync;
    fs.holdFsyncs(undefined);
    await store.close();
    const after = await openStore(DIR, { fs: image, logger: pino(silent), compaction: { auto: false } });
    expect(after.has('a1'), 'a1 was written before the sync that resolved').toBe(true);
    await after.close();
  });

  it('a write whose fsync is lost is not acknowledged (always)', async () => {
    const fs = new MemFs();
    const store = await open(fs, 'always');
    await store.set('a', '1');
    fs.failFsync((p) => (p.endsWith('.seg') ? 'EIO' : undefined));
    await expect(store.set('a', '2')).rejects.toMatchObject({ code: 'IO_ERROR' });
    // After a failed fsync nothing more can be promised: writes are refused, reads go on.
    await expect(store.set('b', '1')).rejects.toMatchObject({ code: 'IO_ERROR' });
    const after = await open(fs.crash('drop'), 'always');
    expect((await after.get('a'))?.toString()).toBe('1');
    await after.close();
  });

  it('a refused write (ENOSPC) is undone: not readable, not acknowledged, the store stays up', async () => {
    const fs = new MemFs();
    const store = await open(fs, 'interval');
    await store.set('a', '1');
    fs.failWrites((p) => (p.endsWith('.seg') ? 'ENOSPC' : undefined));
    await expect(store.set('a', '2')).rejects.toMatchObject({ code: 'IO_ERROR' });
    await expect(store.set('new', 'x')).rejects.toMatchObject({ code: 'IO_ERROR' });
    expect((await store.get('a'))?.toString()).toBe('1');
    expect(await store.get('new')).toBeUndefined();
    fs.failWrites(undefined);
    await store.set('a', '3');
    expect((await store.get('a'))?.toString()).toBe('3');
    await store.close();
    const again = await open(fs, 'interval');
    expect((await again.get('a'))?.toString()).toBe('3');
    expect(await again.get('new')).toBeUndefined();
    await again.close();
  });
});
