/**
 * Foreground work during a long compaction (DESIGN.md §1.4, §3):
 * - reads and writes keep working and return the right values while a
 *   compaction of hundreds of segments runs (thousands of them land meanwhile);
 * - a write that lands during the merge wins over the compactor's copy
 *   (nutsdb #392: a merge overwrote a newer write): the swap moves a key
 *   only if the keydir still points where the rewrite read it
 *   (compare-and-set), checked after the compaction and after a reopen;
 *   the precise case is a set and a delete made at the last instant, inside
 *   the swap's first step, of keys the rewrite has already copied;
 * - a readFrom iterator opened before the compaction and consumed during
 *   and after it yields each record at most once, in offset order, exactly
 *   as it was written, never crashes on a closed file, and the segments it
 *   held are closed once it lets go (Bitcask #249).
 */
import { readdirSync } from 'node:fs';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { SwapStep } from '../../../src/engine/compaction/swap.js';
import {
  type LogRecord,
  ManualClock,
  openStore,
  type Store,
  type StoreOptions,
} from '../../../src/engine/index.js';
import { silentLogger } from '../helpers.js';
import { keyName, prng } from './fixtures/dataset.js';
import {
  deletedButOpen,
  expectModel,
  expectRecount,
  fastTempDir,
  leftovers,
  Model,
  removeFastTempDirs,
  tick,
} from './util.js';

afterAll(removeFastTempDirs);

const KEYS = Array.from({ length: 300 }, (_, i) => keyName(i));

/** Opens a store with many small segments: each key written up to `rounds` times. */
async function bigLog(
  rounds: number,
  hook: { onStep?: ((s: SwapStep) => void) | undefined } = {},
): Promise<{ dir: string; store: Store; model: Model; opts: StoreOptions }> {
  const dir = fastTempDir();
  const clock = new ManualClock();
  const opts: StoreOptions = {
    maxSegmentBytes: 4096,
    fsync: 'never',
    logger: silentLogger,
    cacheBytes: 0,
    clock,
    compaction: { auto: false, onStep: (s) => hook.onStep?.(s) },
  };
  const store = await openStore(dir, opts);
  const model = new Model(clock);
  for (let r = 0; r < rounds; r++) {
    const acks: Promise<boolean>[] = [];
    // Key i is last written in round i % rounds: live records are spread over the whole log,
    // so the rewrite copies some early and writes made while it goes on hit keys already copied.
    for (const [i, k] of KEYS.entries()) {
      if (r > i % rounds) continue;
      const v = `r${r}:${k}:`.padEnd(150, '.');
      acks.push(store.set(k, v));
      model.set(k, v);
    }
    await Promise.all(acks);
  }
  return { dir, store, model, opts };
}

/** Closes `store`, reopens `dir` and checks the model there (and the live counts, with `recount`). */
async function expectReopened(
  store: Store,
  dir: string,
  opts: StoreOptions,
  model: Model,
  recount: boolean,
): Promise<void> {
  await store.close();
  const again = await openStore(dir, opts);
  try {
    expectModel(again, model, KEYS, 'reopened');
    if (recount) await expectRecount(again, Date.now(), 'reopened');
  } finally {
    await again.close();
  }
}

describe('foreground work during a long compaction', () => {
  it('reads and writes keep working and are right; writes that land during the merge win, after it and after a reopen', async () => {
    const { dir, store, model, opts } = await bigLog(12);
    const segments = store.stats().segments.length;
    expect(segments).toBeGreaterThan(60);
    const rand = prng(42);
    let during = 0;
    let done = false;
    const p = store.compact().finally(() => {
      done = true;
    });
    while (!done) {
      const k = KEYS[Math.floor(rand() * KEYS.length)]!;
      // Writes until 4000 operations landed during the compaction, then only reads (keeps the test short).
      const x = during < 4000 ? rand() : 1;
      if (x < 0.45) {
        const v = `during:${during}:${k}`;
        await store.set(k, v);
        model.set(k, v);
      } else if (x < 0.55) {
        await store.delete(k);
        model.delete(k);
      } else {
        const want = model.live(k);
        const got = store.getSync(k);
        if (want === undefined) expect(got, `${k} during the compaction`).toBeUndefined();
        else expect(got?.toString(), `${k} during the compaction`).toBe(want.value.toString());
      }
      if (store.stats().compaction.running) during++;
      if (x === 1) await tick();
    }
    await p;
    expect(during, 'operations done while the compaction ran').toBeGreaterThan(20);
    expect(store.stats().compaction.runs).toBe(1);
    expectModel(store, model, KEYS, 'after the compaction');
    await expectRecount(store, Date.now(), 'after the compaction');
    await expectReopened(store, dir, opts, model, true);
  });

  it('a set and a delete made inside the swap, of keys the rewrite already copied, win over the copies (compare-and-set)', async () => {
    const hook: { onStep?: ((s: SwapStep) => void) | undefined } = {};
    const { dir, store, model, opts } = await bigLog(3, hook);
    const acks: Promise<boolean>[] = [];
    hook.onStep = (step) => {
      if (step !== 'outputs-written') return;
      // The rewrite has copied every live value; these land before the verify step flushes.
      for (const k of KEYS.slice(0, 20)) {
        acks.push(store.set(k, `newer:${k}`));
        model.set(k, `newer:${k}`);
      }
      for (const k of KEYS.slice(20, 40)) {
        acks.push(store.delete(k));
        model.delete(k);
      }
    };
    const r = await store.compact();
    hook.onStep = undefined;
    await Promise.all(acks);
    expect(r?.keysKept, 'the rewrite copied the old values of those keys too').toBe(KEYS.length);
    expectModel(store, model, KEYS, 'after the compaction');
    await expectRecount(store, Date.now(), 'after the compaction');
    await store.close();
    const again = await openStore(dir, opts);
    try {
      expectModel(again, model, KEYS, 'reopened');
      // And a second compaction, with nothing racing, keeps them too.
      await again.compact();
      expectModel(again, model, KEYS, 'compacted again');
    } finally {
      await again.close();
    }
  });
});

describe('the swap yields to the foreground between its verify and its commit', () => {
  it('a callback queued at the verify runs before the manifest is created, and a set made there wins', async () => {
    const hook: { onStep?: ((s: SwapStep) => void) | undefined } = {};
    const { dir, store, model, opts } = await bigLog(3, hook);
    let manifestAtCallback: string[] | undefined;
    let ack: Promise<boolean> | undefined;
    hook.onStep = (step) => {
      if (step !== 'verified') return;
      setImmediate(() => {
        manifestAtCallback = readdirSync(dir).filter((f) => f.startsWith('COMPACTION'));
        ack = store.set(KEYS[0]!, 'at-verify');
        model.set(KEYS[0]!, 'at-verify');
      });
    };
    await store.compact();
    hook.onStep = undefined;
    await ack;
    // Without the loop turn after the verify, the manifest's temporary file was already there.
    expect(manifestAtCallback, 'files named COMPACTION* when the callback ran').toEqual([]);
    expectModel(store, model, KEYS, 'after the compaction');
    await expectReopened(store, dir, opts, model, false);
  });
});

describe('several store.compact() calls at once', () => {
  it('run one after the other, never two rewrites at once: all resolve, data and stats right', async () => {
    const { dir, store, model, opts } = await bigLog(6);
    let running = 0;
    let maxRunning = 0;
    store.on('compaction', (e: { phase: string }) => {
      if (e.phase === 'start') maxRunning = Math.max(maxRunning, ++running);
      if (e.phase === 'done' || e.phase === 'error') running--;
    });
    const calls = [store.compact(), store.compact(), store.compact()];
    await store.set(KEYS[0]!, 'between the calls');
    model.set(KEYS[0]!, 'between the calls');
    calls.push(store.compact());
    const results = await Promise.all(calls);
    expect(maxRunning, 'compactions running at the same time').toBe(1);
    expect(results[0]).toBeDefined();
    const st = store.stats().compaction;
    expect(st.failures, `${st.lastError}`).toBe(0);
    expect(st.runs).toBe(results.filter((r) => r !== undefined).length);
    expectModel(store, model, KEYS, 'after concurrent compact() calls');
    await expectRecount(store, Date.now(), 'after concurrent compact() calls');
    await expectReopened(store, dir, opts, model, false);
  });
});

describe('close() during a compaction', () => {
  for (const after of ['start', 'progress'] as const) {
    it(`cancels it cleanly when called at its ${after}: no temporary file is left, every key is there after reopen`, async () => {
      const { dir, store, model, opts } = await bigLog(6);
      let closing: Promise<void> | undefined;
      store.on('compaction', (e: { phase: string }) => {
        if (e.phase === after && !closing) closing = store.close();
      });
      const outcome = await store.compact().then(
        () => 'resolved',
        (e: Error) => e.message,
      );
      await closing;
      expect(closing, 'close() was called while the compaction ran').toBeDefined();
      expect(outcome, 'cancelled, or finished first').toMatch(/^resolved$|cancelled/);
      expect(leftovers(dir), 'temporary files left by a cancelled compaction').toEqual([]);
      const again = await openStore(dir, opts);
      try {
        expect(again.stats().recovery.corruptions).toBe(0);
        expectModel(again, model, KEYS, 'reopened');
        await expectRecount(again, Date.now(), 'reopened');
        await again.compact();
        expectModel(again, model, KEYS, 'reopened and compacted');
      } finally {
        await again.close();
      }
    });
  }
});

describe('a readFrom iterator across a compaction', () => {
  /** Checks the records an iterator yielded against the log as it was before the compaction. */
  function expectFaithful(
    got: LogRecord[],
    truth: Map<number, LogRecord>,
    survivors: number[],
    ctx: string,
  ): void {
    let prev = -1;
    for (const r of got) {
      expect(r.offset, `${ctx}: offsets strictly increase (no record twice)`).toBeGreaterThan(prev);
      prev = r.offset;
      const t = truth.get(r.offset);
      expect(t, `${ctx}: offset ${r.offset} was written`).toBeDefined();
      expect(
        r.key.equals(t!.key) && r.value.equals(t!.value) && r.tombstone === t!.tombstone,
        `${ctx}: record ${r.offset} as written`,
      ).toBe(true);
    }
    const yielded = new Set(got.map((r) => r.offset));
    const missing = survivors.filter((o) => o >= got[0]!.offset && !yielded.has(o));
    expect(missing, `${ctx}: records that survive the compaction were all yielded`).toEqual([]);
  }

  it('opened before, consumed during and after: each record at most once, in order, as written; no crash', async () => {
    const { dir, store } = await bigLog(6);
    try {
      const truth = new Map<number, LogRecord>();
      for await (const r of store.readFrom(0)) truth.set(r.offset, r);
      const it = store.readFrom(0);
      const got: LogRecord[] = [];
      const take = async (n: number) => {
        for (let i = 0; i < n; i++) {
          const x = await it.next();
          if (x.done) return false;
          got.push(x.value);
        }
        return true;
      };
      await take(truth.size / 3);
      let done = false;
      const p = store.compact().then(() => {
        done = true;
      });
      // A few records per turn while the compaction runs, then the rest after it.
      while (!done) {
        await take(5);
        await tick();
      }
      await p;
      while (await take(100));
      const survivors: number[] = [];
      for await (const r of store.readFrom(0)) survivors.push(r.offset);
      expect(survivors.length).toBeLessThan(truth.size / 2);
      expectFaithful(got, truth, survivors, 'iterator across a compaction');
      expect(deletedButOpen(dir), 'no replaced segment is held open once the iterator is done').toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('a reader holding a replaced segment keeps reading it; it is closed when the reader lets go early', async () => {
    const { dir, store } = await bigLog(6);
    try {
      const it = store.readFrom(0);
      const first = await it.next();
      expect(first.done).toBe(false);
      await store.compact();
      // The iterator still holds the first (now replaced, unlinked) segment open.
      expect(deletedButOpen(dir).length, 'the segment being read stays open').toBeGreaterThan(0);
      const next = await it.next();
      expect(next.done).toBe(false);
      expect(next.value!.offset).toBeGreaterThan(first.value!.offset);
      await it.return(undefined);
      // Its blocks are then freed a few MiB per event-loop turn, and the file closed (reaper.ts).
      await vi.waitFor(() => expect(deletedButOpen(dir), 'closed once the reader let go').toEqual([]), {
        timeout: 2000,
        interval: 5,
      });
    } finally {
      await store.close();
    }
  });
});
