/**
 * The tombstone horizon's file write is off the event loop, yet ordered
 * before every compaction output it vouches for (src/replication/horizon.ts):
 * - crash order: while the HORIZON fsync is held, the swap does not begin
 *   (a power loss then finds the old segments); at every step from the swap
 *   on, a power loss finds the raised horizon on disk; `servesFrom` uses the
 *   raised value from the run's start;
 * - a failed write: the file is removed and the compaction swaps; if the
 *   removal fails too, the compaction fails before its commit point;
 * - a slow device: the event loop keeps running while the write waits;
 * - overlapping writes run one at a time, in order; the last state wins;
 *   a full resync empties the directory only after the write under way.
 * Power loss is MemFs's (it drops every byte and name not fsynced).
 */
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SwapStep } from '../../src/engine/compaction/swap.js';
import { HORIZON_FILE } from '../../src/engine/filenames.js';
import { type Fs, nodeFs } from '../../src/engine/fs.js';
import { MemFs, memPath } from '../../src/engine/mem-fs.js';
import { openStore, type Store } from '../../src/engine/store.js';
import { TombstoneHorizon } from '../../src/replication/horizon.js';
import { decodeHorizon, type HorizonState } from '../../src/replication/horizon-file.js';
import { Replication } from '../../src/replication/replication.js';
import { captureLogger, removeTempDirs, silentLogger, tempDir } from '../engine/helpers.js';
import { until } from './helpers.js';

const KEYS = 40;

/** Three rounds of KEYS keys, then half of them deleted: tombstones a prefix compaction drops. */
async function fill(store: Store): Promise<void> {
  for (let round = 0; round < 3; round++)
    for (let i = 0; i < KEYS; i++) await store.set(`k${i}`, `v${round}-${i}`.padEnd(60, '.'));
  for (let i = 0; i < KEYS; i += 2) await store.delete(`k${i}`);
}

async function expectContents(store: Store): Promise<void> {
  for (let i = 0; i < KEYS; i++) {
    const v = (await store.get(`k${i}`))?.toString();
    if (i % 2 === 0) expect(v, `k${i} was deleted`).toBeUndefined();
    else expect(v).toBe(`v2-${i}`.padEnd(60, '.'));
  }
}

/** The HORIZON file as `fs` holds it (undefined: no file). */
function onDisk(fs: Fs, dir: string): HorizonState | string | undefined {
  const path = join(dir, HORIZON_FILE);
  return fs.exists(path) ? decodeHorizon(fs.readFile(path)) : undefined;
}

function openMem(fs: MemFs, dir: string, onStep: (s: SwapStep) => void = () => {}) {
  return openStore(dir, {
    fs,
    maxSegmentBytes: 2048,
    logger: silentLogger,
    compaction: { auto: false, onStep },
  });
}

/**
 * Reopens `dir` on `fs` (a power loss's image): the horizon read there is
 * `expected(store)`, no feed is served from below it, and every key is right.
 */
async function expectReopened(fs: MemFs, dir: string, expected: (s: Store) => number): Promise<void> {
  const again = await openMem(fs, dir);
  const reread = new TombstoneHorizon(again, silentLogger);
  const horizon = expected(again);
  expect(reread.state.tombstoneHorizon).toBe(horizon);
  expect(reread.servesFrom(horizon - 1)).toBe(false);
  await expectContents(again);
  await reread.close();
  await again.close();
}

const isHorizonTmp = (p: string) => p.endsWith(`${HORIZON_FILE}.tmp`);

describe('HORIZON is durable before a compaction swaps, and written off the event loop', () => {
  it('a held HORIZON fsync holds the swap; a power loss at any swap step finds the raised horizon', async () => {
    const fs = new MemFs();
    const dir = memPath('held');
    const steps: { step: SwapStep; disk: HorizonState | string | undefined }[] = [];
    // At each swap step: what a power loss right now would leave of HORIZON.
    const store = await openMem(fs, dir, (step) => steps.push({ step, disk: onDisk(fs.crash(), dir) }));
    const horizon = new TombstoneHorizon(store, silentLogger);
    await fill(store);
    await horizon.close();
    const before = horizon.state;
    expect(onDisk(fs.crash(), dir)).toEqual(before);

    let raised = -1;
    let atStart: { state: HorizonState; servesBelow: boolean; disk: unknown } | undefined;
    let rewritten = false;
    store.on(
      'compaction',
      (e: { phase: string; lastOffset?: number; segmentsDone?: number; segmentsTotal?: number }) => {
        if (e.phase === 'start') {
          raised = e.lastOffset! + 1;
          atStart = {
            state: { ...horizon.state },
            servesBelow: horizon.servesFrom(raised - 1),
            disk: onDisk(fs, dir),
          };
        }
        if (e.phase === 'progress' && e.segmentsDone === e.segmentsTotal) rewritten = true;
      },
    );
    fs.holdFsyncs(isHorizonTmp);
    const run = store.compact();
    await until('the run to start', () => atStart !== undefined);

    // From the run's start the raised value is what feeds are judged by, though the file is not written yet.
    expect(raised).toBeGreaterThan(before.tombstoneHorizon);
    expect(atStart!.state.tombstoneHorizon).toBe(raised);
    expect(atStart!.servesBelow).toBe(false);
    expect(atStart!.disk).toEqual(before);

    await until(
      'the rewrite to finish and the HORIZON fsync to wait',
      () => rewritten && fs.heldFsyncs().length === 1,
    );
    await new Promise((r) => setTimeout(r, 100)); // many loop turns: the swap had every chance to start
    expect(steps, 'no swap step while HORIZON is not durable').toEqual([]);
    expect(fs.exists(join(dir, 'COMPACTION'))).toBe(false);
    expect(fs.exists(join(dir, 'COMPACTION.tmp'))).toBe(false);
    // A power loss now: the old segments and a horizon that matches them.
    const lost = fs.crash();
    expect(onDisk(lost, dir)).toEqual(before);
    const old = await openMem(lost, dir);
    await expectContents(old);
    await old.close();

    fs.holdFsyncs(undefined);
    expect(fs.releaseFsyncs(isHorizonTmp)).toBe(1);
    const result = await run;
    expect(result?.segmentsIn).toBeGreaterThan(2);
    expect(steps.map((s) => s.step)).toEqual([
      'outputs-written',
      'verified',
      'committed',
      'files-swapped',
      'keydir-swapped',
      'done',
    ]);
    for (const s of steps)
      expect(s.disk, `power loss at '${s.step}'`).toMatchObject({ tombstoneHorizon: raised });
    await expectContents(store);
    await store.close();

    // And a reopen after a power loss now reads the raised horizon.
    await expectReopened(fs.crash(), dir, () => raised);
  });

  it('a failed HORIZON write removes the file (full resync at worst) and the compaction still swaps', async () => {
    const fs = new MemFs();
    const dir = memPath('fail-removed');
    const { logger, lines } = captureLogger();
    const store = await openMem(fs, dir);
    const horizon = new TombstoneHorizon(store, logger);
    await fill(store);
    await horizon.close();
    expect(onDisk(fs, dir)).toBeDefined();
    fs.failFsync((p) => (isHorizonTmp(p) ? 'EIO' : undefined));
    const result = await store.compact();
    fs.failFsync(undefined);
    expect(result?.segmentsIn).toBeGreaterThan(2);
    expect(lines.some((l) => /writing the HORIZON file failed/.test(l.msg))).toBe(true);
    expect(onDisk(fs, dir)).toBeUndefined();
    const lost = fs.crash();
    expect(onDisk(lost, dir)).toBeUndefined();
    expect(lost.readdir(dir).filter((n) => n.startsWith(HORIZON_FILE))).toEqual([]);
    await store.close();
    // The missing file reads as "everything compacted".
    await expectReopened(lost, dir, (again) => again.nextOffset);
  });

  it('when the stale file cannot be removed either, the compaction fails before its commit point', async () => {
    const fs = new MemFs();
    const dir = memPath('fail-kept');
    const steps: SwapStep[] = [];
    const store = await openMem(fs, dir, (s) => steps.push(s));
    const horizon = new TombstoneHorizon(store, silentLogger);
    await fill(store);
    await horizon.close();
    const before = horizon.state;
    const files = fs.readdir(dir);
    // The HORIZON fsync fails, and so does the next directory fsync: the one that would make the
    // file's removal durable (it follows within the same loop turn; the rewrite fsyncs no directory).
    let removalArmed = false;
    fs.failFsync((p) => {
      if (isHorizonTmp(p)) {
        removalArmed = true;
        return 'EIO';
      }
      if (removalArmed && p === resolve(dir)) {
        removalArmed = false;
        return 'EIO';
      }
      return undefined;
    });
    await expect(store.compact()).rejects.toThrow(/EIO/);
    fs.failFsync(undefined);
    expect(steps, 'the swap never began').toEqual([]);
    const now = fs.readdir(dir);
    for (const f of files.filter((n) => n !== HORIZON_FILE))
      expect(now, 'the old segments stay').toContain(f);
    expect(
      now.filter((n) => n.includes('COMPACT')),
      'no outputs, no manifest',
    ).toEqual([]);
    // A power loss now finds the old segments with the old horizon (the removal was not made durable).
    const lost = fs.crash();
    expect(onDisk(lost, dir)).toEqual(before);
    expect(lost.readdir(dir).filter((n) => n.includes('COMPACT'))).toEqual([]);
    expect(store.stats().compaction.failures).toBe(1);
    await expectContents(store);
    // The next run, with a working disk, writes the raised horizon and swaps.
    const result = await store.compact();
    expect(result?.segmentsIn).toBeGreaterThan(2);
    expect(steps).toContain('committed');
    const disk = onDisk(fs.crash(), dir) as HorizonState;
    expect(disk.tombstoneHorizon).toBeGreaterThan(before.tombstoneHorizon);
    expect(disk).toEqual(horizon.state);
    await expectContents(store);
    await horizon.close();
    await store.close();
  });

  it('overlapping writes run one at a time in call order: the later state is the one left on disk', async () => {
    const fs = new MemFs();
    const dir = memPath('order');
    const store = await openMem(fs, dir);
    const horizon = new TombstoneHorizon(store, silentLogger);
    await horizon.close();
    fs.holdFsyncs(isHorizonTmp);
    const first = horizon.raiseTo(100);
    const second = horizon.raiseTo(200);
    expect(horizon.state.tombstoneHorizon).toBe(200);
    let firstDone = false;
    let secondDone = false;
    void first.then(() => (firstDone = true));
    void second.then(() => (secondDone = true));
    await until('the first write to wait in fsync', () => fs.heldFsyncs().length === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(fs.heldFsyncs(), 'the second write waits for the first').toHaveLength(1);
    expect(fs.releaseFsyncs()).toBe(1);
    await first;
    expect((onDisk(fs.crash(), dir) as HorizonState).tombstoneHorizon).toBe(100);
    expect(secondDone).toBe(false);
    await until('the second write to wait in fsync', () => fs.heldFsyncs().length === 1);
    expect(fs.releaseFsyncs()).toBe(1);
    await second;
    expect(firstDone).toBe(true);
    expect((onDisk(fs.crash(), dir) as HorizonState).tombstoneHorizon).toBe(200);

    // A write that fails does not stop the ones after it.
    fs.holdFsyncs(undefined);
    let failures = 1;
    fs.failFsync((p) => (isHorizonTmp(p) && failures-- > 0 ? 'EIO' : undefined));
    const third = horizon.raiseTo(300);
    const fourth = horizon.raiseTo(400);
    await third; // removed the file
    await fourth;
    expect((onDisk(fs.crash(), dir) as HorizonState).tombstoneHorizon).toBe(400);
    expect(fs.readdir(dir).filter((n) => n.startsWith(HORIZON_FILE))).toEqual([HORIZON_FILE]);
    await store.close();
  });

  it('a full resync waits for the HORIZON write under way before emptying the directory', async () => {
    const fs = new MemFs();
    const dir = memPath('reset');
    const store = await openMem(fs, dir);
    await fill(store);
    const repl = new Replication(store, silentLogger);
    await repl.horizon.close();
    fs.holdFsyncs(isHorizonTmp);
    const raised = repl.horizon.raiseTo(10_000);
    await until('the write to wait in fsync', () => fs.heldFsyncs().length === 1);
    let reset = false;
    const resetting = repl.resetLog().then(() => (reset = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(reset, 'the directory is not emptied under the write').toBe(false);
    fs.holdFsyncs(undefined);
    fs.releaseFsyncs();
    await raised;
    await resetting;
    await repl.horizon.close();
    // The emptied log's own state, not the old log's raised horizon written over it.
    expect(repl.store.nextOffset).toBe(0);
    expect(onDisk(fs, dir)).toEqual({ tombstoneHorizon: 0, compactedThrough: 0 });
    expect(onDisk(fs.crash(), dir)).toEqual({ tombstoneHorizon: 0, compactedThrough: 0 });
    expect(fs.readdir(dir).filter((n) => n.startsWith(HORIZON_FILE))).toEqual([HORIZON_FILE]);
    await repl.close();
    await repl.store.close();
  });

  it('a slow HORIZON fsync on real files: the event loop keeps serving, the swap waits for it', async () => {
    const SLOW_MS = 1000;
    const horizonFds = new Set<number>();
    let fsyncs = 0;
    const slowFs: Fs = {
      ...nodeFs,
      open(path, flags) {
        const fd = nodeFs.open(path, flags);
        if (isHorizonTmp(path)) horizonFds.add(fd);
        return fd;
      },
      close(fd) {
        horizonFds.delete(fd);
        nodeFs.close(fd);
      },
      async fsync(fd) {
        if (horizonFds.has(fd)) {
          fsyncs++;
          await new Promise((r) => setTimeout(r, SLOW_MS));
        }
        return nodeFs.fsync(fd);
      },
      fsyncSync(fd) {
        if (horizonFds.has(fd)) {
          fsyncs++;
          const until = Date.now() + SLOW_MS; // the device, as a synchronous write would wait for it
          while (Date.now() < until) {}
        }
        nodeFs.fsyncSync(fd);
      },
    };
    const dir = tempDir();
    try {
      const store = await openStore(dir, {
        fs: slowFs,
        maxSegmentBytes: 2048,
        logger: silentLogger,
        compaction: { auto: false },
      });
      const horizon = new TombstoneHorizon(store, silentLogger);
      await fill(store);
      await horizon.close();
      fsyncs = 0;

      // Foreground traffic and a timer measuring the loop's longest stall, while the compaction runs.
      let stop = false;
      let served = 0;
      const traffic = (async () => {
        for (let i = 0; !stop; i++) {
          await store.set(`t${i % 50}`, 'x');
          await store.get(`k${i % KEYS}`);
          served++;
          await new Promise((r) => setImmediate(r));
        }
      })();
      let last = performance.now();
      let worstGap = 0;
      const timer = setInterval(() => {
        const now = performance.now();
        worstGap = Math.max(worstGap, now - last);
        last = now;
      }, 5);
      const t0 = performance.now();
      let compactedAt = 0;
      const result = await store.compact().finally(() => {
        compactedAt = performance.now();
      });
      clearInterval(timer);
      stop = true;
      await traffic;
      expect(fsyncs).toBe(1);
      expect(result?.segmentsIn).toBeGreaterThan(2);
      // The swap waited for the slow fsync (generous margin: timers fire late, never early).
      expect(compactedAt - t0).toBeGreaterThanOrEqual(SLOW_MS - 20);
      // A synchronous write would have stalled the loop SLOW_MS; the bound is generous for a noisy machine.
      expect(worstGap, `longest event-loop stall ${worstGap.toFixed(1)} ms`).toBeLessThan(SLOW_MS / 2);
      expect(served, 'requests answered while the HORIZON write waited').toBeGreaterThan(20);
      expect(onDisk(nodeFs, dir)).toEqual(horizon.state);
      await expectContents(store);
      await horizon.close();
      await store.close();
    } finally {
      removeTempDirs();
    }
  });

  it('the real file system: the file is written through the thread pool, no temporary file left', async () => {
    const dir = tempDir();
    try {
      const store = await openStore(dir, {
        maxSegmentBytes: 2048,
        logger: silentLogger,
        compaction: { auto: false },
      });
      const horizon = new TombstoneHorizon(store, silentLogger);
      await fill(store);
      await store.compact();
      expect(onDisk(nodeFs, dir)).toEqual(horizon.state);
      expect(horizon.state.tombstoneHorizon).toBe(store.nextOffset);
      await horizon.raiseTo(store.nextOffset + 1000);
      expect((onDisk(nodeFs, dir) as HorizonState).tombstoneHorizon).toBe(store.nextOffset + 1000);
      expect(nodeFs.readdir(dir).filter((n) => n.startsWith(HORIZON_FILE))).toEqual([HORIZON_FILE]);
      await horizon.close();
      await store.close();
    } finally {
      removeTempDirs();
    }
  });
});
