/**
 * The rewrite in its own process (rewrite-process.ts) against the same
 * function on the event loop (rewrite-host.ts runs it there for any Fs but
 * the real one): same output bytes, same moves, same expired keys, for a run
 * from the oldest segment and for a run that must keep its deletions; errors
 * in the rewrite process surface as in-process ones (a CorruptionError with
 * its file); every thread of that process runs at COMPACTION_WORKER_NICE;
 * and a server SIGKILLed while the rewrite process is writing the outputs
 * loses nothing and leaves nothing behind (the orphan exits by itself).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { abortOutputs } from '../../../src/engine/compaction/rewrite.js';
import { rewrite } from '../../../src/engine/compaction/rewrite-host.js';
import { RewriteProcess } from '../../../src/engine/compaction/rewrite-process.js';
import {
  type Fs,
  ManualClock,
  nodeFs,
  openStore,
  type Store,
  type StoreOptions,
} from '../../../src/engine/index.js';
import { COMPACTION_CPU_BURST_MS, COMPACTION_WORKER_NICE } from '../../../src/engine/limits.js';
import {
  buildEngine,
  copyDir,
  FIXTURES,
  flipBit,
  removeEngineBuilds,
  removeTempDirs,
  segFiles,
  silentLogger,
  tempDir,
} from '../helpers.js';
import { dataset, keyName } from './fixtures/dataset.js';
import { leftovers, until } from './util.js';

/** Whether process `pid` still exists (a zombie counts as gone: it runs nothing). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

/** nodeFs under another identity: the rewrite then runs on the event loop, as with MemFs. */
const inThreadFs: Fs = { ...nodeFs };
const T0 = 1_700_000_000_000;

function options(fs: Fs, clock: ManualClock): StoreOptions {
  return {
    fs,
    clock,
    maxSegmentBytes: 4096,
    fsync: 'never',
    logger: silentLogger,
    cacheBytes: 0,
    compaction: { auto: false },
  };
}

/** A directory holding the crash tests' data set (sets, deletes, batches, short and long TTLs) on 4 KiB segments. */
async function dataDir(): Promise<string> {
  const dir = tempDir();
  const clock = new ManualClock(T0);
  const store = await openStore(dir, options(nodeFs, clock));
  for (const op of dataset(11, 1500, 200)) {
    if (op.t === 'set') {
      const ttlMs = op.ttl === 'short' ? 10 : op.ttl === 'long' ? 3_600_000 : undefined;
      await store.set(op.key, op.value, ttlMs === undefined ? {} : { ttlMs });
    } else if (op.t === 'del') await store.delete(op.key);
    else await store.batch(op.ops);
  }
  store.sealActive();
  await store.settleBackground();
  await store.close();
  return dir;
}

/** Both stores on copies of `dir`, at the same time: one compacts in the worker, one on the event loop. */
async function pair(dir: string): Promise<{ worker: Store; loop: Store; dirs: [string, string] }> {
  const a = copyDir(dir);
  const b = copyDir(dir);
  // Past the short TTLs: the rewrite drops (or turns into tombstones) those records.
  const worker = await openStore(a, options(nodeFs, new ManualClock(T0 + 60_000)));
  const loop = await openStore(b, options(inThreadFs, new ManualClock(T0 + 60_000)));
  await worker.settleBackground();
  await loop.settleBackground();
  return { worker, loop, dirs: [a, b] };
}

function files(dir: string, pred: (n: string) => boolean): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const n of fs.readdirSync(dir).filter(pred).sort()) out.set(n, fs.readFileSync(join(dir, n)));
  return out;
}

/** Rewrites every sealed segment of `store` (a run from the oldest: tombstones dropped) through `w`. */
function rewriteSealed(store: Store, w: RewriteProcess): ReturnType<typeof rewrite> {
  return rewrite(
    store,
    store.ordered.slice(0, -1),
    true,
    () => {},
    () => false,
    w,
    0,
  );
}

type Rewritten = Awaited<ReturnType<typeof rewrite>>;

/**
 * The rewrite process's outputs in dirs[0] and the event loop's in dirs[1]:
 * a segment, a hint and an index per output each, the same names, byte for byte.
 */
function expectSameOutputs(dirs: readonly [string, string], outputs: number): void {
  const outW = files(dirs[0], (n) => n.endsWith('.compacting'));
  const outL = files(dirs[1], (n) => n.endsWith('.compacting'));
  expect(outW.size, 'outputs: segment, hint and index each').toBe(3 * outputs);
  expect([...outW.keys()]).toEqual([...outL.keys()]);
  for (const [name, bytes] of outW) expect(bytes.equals(outL.get(name)!), `${name} byte for byte`).toBe(true);
}

/** A rewrite's moves as plain rows, to compare two rewrites. */
function movesOf(r: Rewritten): number[][] {
  return Array.from({ length: r.moves.count }, (_, i) => [
    r.moves.slot(i),
    r.moves.fromSegment(i),
    r.moves.fromPosition(i),
    r.moves.toOutput(i),
    r.moves.toPosition(i),
    r.moves.size(i),
  ]);
}

/** A rewrite's outputs without their descriptors, index entries as plain arrays, to compare two rewrites. */
function described(r: Rewritten) {
  return r.outputs.map(({ fd: _, index, ...o }) => ({
    ...o,
    offsets: Array.from(index.relOffsets),
    positions: Array.from(index.positions),
  }));
}

let data: string;

beforeAll(async () => {
  data = await dataDir();
});

afterAll(() => {
  removeTempDirs();
  removeEngineBuilds();
});

describe('the rewrite in its own process', () => {
  it('writes the same bytes as on the event loop, with the same moves and expired keys, for a run that keeps its deletions', async () => {
    const { worker, loop, dirs } = await pair(data);
    const w = new RewriteProcess();
    try {
      // A run from the second segment: deletions must be kept (an older segment may hold values they shadow).
      const inputsW = worker.ordered.slice(1, -1);
      const inputsL = loop.ordered.slice(1, -1);
      expect(inputsW.length).toBeGreaterThan(5);
      const rw = await rewrite(
        worker,
        inputsW,
        false,
        () => {},
        () => false,
        w,
      );
      const rl = await rewrite(
        loop,
        inputsL,
        false,
        () => {},
        () => false,
        w,
      );
      expectSameOutputs(dirs, rw.outputs.length);
      expect(rw.moves.count).toBeGreaterThan(0);
      expect(movesOf(rw)).toEqual(movesOf(rl));
      expect(described(rw)).toEqual(described(rl));
      // The outputs hold more records than the moved values: the deletions a partial run keeps.
      const records = rw.outputs.reduce((n, o) => n + o.records, 0);
      expect(records).toBeGreaterThan(rw.moves.count);
      // The expired keys left both keydirs alike.
      for (let i = 0; i < 200; i++) expect(worker.getSync(keyName(i))).toEqual(loop.getSync(keyName(i)));
      expect(worker.stats().keys).toBe(loop.stats().keys);
      abortOutputs(nodeFs, dirs[0], rw.outputs);
      abortOutputs(inThreadFs, dirs[1], rl.outputs);
      expect(leftovers(dirs[0])).toEqual([]);
    } finally {
      await w.terminate();
      await worker.close();
      await loop.close();
    }
  });

  it('gives byte-identical merged segments, hints and indexes to the event-loop path for a run from the oldest segment', async () => {
    const { worker, loop, dirs } = await pair(data);
    const w = new RewriteProcess();
    try {
      const rw = await rewriteSealed(worker, w);
      const rl = await rewriteSealed(loop, w);
      expect(
        rw.outputs.reduce((n, o) => n + o.records, 0),
        'no deletion kept',
      ).toBe(rw.moves.count);
      expectSameOutputs(dirs, rw.outputs.length);
      abortOutputs(nodeFs, dirs[0], rw.outputs);
      abortOutputs(inThreadFs, dirs[1], rl.outputs);
    } finally {
      await w.terminate();
      await worker.close();
      await loop.close();
    }
  });
});

describe('the warm-up of the rewrite process (warm-up.ts)', () => {
  it('a rewrite sent while the warm-up runs waits for it, then writes the same bytes and moves as on the event loop', async () => {
    const { worker, loop, dirs } = await pair(data);
    const w = new RewriteProcess();
    try {
      w.prewarm(); // forks and starts the warm-up; the rewrite below is sent at once
      const rw = await rewriteSealed(worker, w);
      const rl = await rewriteSealed(loop, w);
      expect(rw.workerCpuMs, 'the rewrite ran in the rewrite process').toBeGreaterThan(0);
      expectSameOutputs(dirs, rw.outputs.length);
      expect(movesOf(rw)).toEqual(movesOf(rl));
      expect(described(rw)).toEqual(described(rl));
      abortOutputs(nodeFs, dirs[0], rw.outputs);
      abortOutputs(inThreadFs, dirs[1], rl.outputs);
    } finally {
      await w.terminate();
      await worker.close();
      await loop.close();
    }
  });
});

describe('the worker on a larger log: SIGKILL while it writes, close() while it runs, a damaged record', () => {
  const KEYS = 3000;
  const VERSIONS = 6;
  const SEGMENT_BYTES = 1 << 20;
  const value = (k: number, v: number) =>
    `${keyName(k)}:${v}:`.padEnd(1000, String.fromCharCode(97 + ((k + v) % 26)));
  let engine: string;
  let big: string;
  /** A store on `dir` (the larger log or a copy of it) with no automatic compaction; `cpuShare` paces its rewrites. */
  const openCopy = (dir: string, cpuShare?: number) =>
    openStore(dir, {
      maxSegmentBytes: SEGMENT_BYTES,
      fsync: 'never',
      logger: silentLogger,
      compaction: cpuShare === undefined ? { auto: false } : { auto: false, cpuShare },
    });

  beforeAll(async () => {
    engine = buildEngine();
    big = tempDir();
    const store = await openCopy(big);
    for (let v = 0; v < VERSIONS; v++) {
      const acks: Promise<unknown>[] = [];
      for (let k = 0; k < KEYS; k++) {
        if (v === VERSIONS - 1 && k % 10 === 0) acks.push(store.delete(keyName(k)));
        else acks.push(store.set(keyName(k), value(k, v)));
      }
      await Promise.all(acks);
    }
    store.sealActive();
    await store.settleBackground();
    await store.close();
  }, 120_000);

  /**
   * Runs the fixture on a copy; SIGKILLs it once `ready(dir)` holds. Returns the copy, how it
   * ended, and the pid of its rewrite process (which, orphaned, exits by itself).
   */
  function killWhen(
    ready: (dir: string) => boolean,
  ): Promise<{ dir: string; killed: boolean; stderr: string; rewriter: number }> {
    const dir = copyDir(big);
    return new Promise((resolve, reject) => {
      const child: ChildProcess = spawn(
        process.execPath,
        [join(FIXTURES, 'worker-compact.mjs'), dir, String(SEGMENT_BYTES)],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SEGKV_ENGINE: engine } },
      );
      let stderr = '';
      let stdout = '';
      let killed = false;
      child.stderr!.on('data', (b: Buffer) => {
        stderr += b.toString();
      });
      child.stdout!.on('data', (b: Buffer) => {
        stdout += b.toString();
      });
      const poll = setInterval(() => {
        if (!killed && ready(dir)) {
          killed = true;
          child.kill('SIGKILL');
        }
      }, 1);
      child.on('error', reject);
      child.on('close', () => {
        clearInterval(poll);
        resolve({ dir, killed, stderr, rewriter: Number(/^rewriter (\d+)$/m.exec(stdout)?.[1] ?? 0) });
      });
    });
  }

  const outputBytes = (dir: string) => {
    let n = 0;
    for (const f of fs.readdirSync(dir))
      if (f.endsWith('.seg.compacting')) n += fs.statSync(join(dir, f)).size;
    return n;
  };

  for (const [what, threshold] of [
    ['as its first output bytes land', 1],
    ['with about 1 MiB of outputs written', SEGMENT_BYTES],
  ] as const) {
    it(`${what}: the next open loses nothing and sweeps the outputs`, async () => {
      // SIGKILLs the child once its outputs pass `threshold` before the commit, then waits for
      // its orphaned rewrite process to exit (at its next step, or when it sees its channel
      // closed; until then it may still finish a step, possibly creating an output, which the
      // open below would not have swept: on a loaded machine the nice-19 orphan can wait long
      // for a CPU). `mid`: outputs were left under .compacting names.
      const killMidRewrite = async () => {
        const run = await killWhen(
          (d) => outputBytes(d) >= threshold && !fs.existsSync(join(d, 'COMPACTION')),
        );
        if (!run.killed) return { run, mid: false };
        expect(run.rewriter, 'the fixture printed its rewrite process').toBeGreaterThan(0);
        await until(() => !alive(run.rewriter), 60_000, 'the orphaned rewrite process exits by itself');
        return { run, mid: fs.readdirSync(run.dir).some((f) => f.endsWith('.seg.compacting')) };
      };
      // The child may finish between two polls (a busy machine), or commit between the poll's
      // look at its outputs and the kill (a quiet one: a CI run saw no .compacting name left):
      // either way the kill missed the rewrite, so try again.
      let { run, mid } = await killMidRewrite();
      for (let i = 0; i < 3 && !mid; i++) ({ run, mid } = await killMidRewrite());
      expect(run.killed, `the child was killed mid-rewrite (${run.stderr})`).toBe(true);
      expect(mid, 'the kill left outputs under .compacting names').toBe(true);
      const store = await openStore(run.dir, {
        maxSegmentBytes: SEGMENT_BYTES,
        fsync: 'never',
        logger: silentLogger,
        compaction: { auto: false },
      });
      try {
        expect(leftovers(run.dir)).toEqual([]);
        expect(store.stats().keys).toBe(KEYS - KEYS / 10);
        for (let k = 0; k < KEYS; k++) {
          const got = store.getSync(keyName(k))?.toString();
          if (k % 10 === 0) expect(got, keyName(k)).toBeUndefined();
          else expect(got, keyName(k)).toBe(value(k, VERSIONS - 1));
        }
        // And it compacts, in the worker, after the crash.
        const r = await store.compact();
        expect(r?.keysKept).toBe(KEYS - KEYS / 10);
        for (let k = 1; k < KEYS; k += 7)
          if (k % 10 !== 0) expect(store.getSync(keyName(k))?.toString()).toBe(value(k, VERSIONS - 1));
      } finally {
        await store.close();
      }
    });
  }

  it('close() during the rewrite cancels it in the worker: compact() rejects, no output is left, nothing is lost', async () => {
    const dir = copyDir(big);
    const opts = {
      maxSegmentBytes: SEGMENT_BYTES,
      fsync: 'never',
      logger: silentLogger,
      compaction: { auto: false },
    } as const;
    const store = await openStore(dir, opts);
    const running = store.compact().then(
      () => 'resolved',
      (e: unknown) => e,
    );
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (outputBytes(dir) > 0 || store.stats().compaction.runs > 0) {
          clearInterval(poll);
          resolve();
        }
      }, 1);
    });
    await store.close();
    const outcome = await running;
    // On a very busy machine the rewrite may have finished first: then it completed normally.
    if (outcome !== 'resolved') expect(outcome).toBeInstanceOf(Error);
    expect(leftovers(dir)).toEqual([]);
    const again = await openStore(dir, opts);
    try {
      expect(again.stats().keys).toBe(KEYS - KEYS / 10);
      for (let k = 1; k < KEYS; k += 7)
        if (k % 10 !== 0) expect(again.getSync(keyName(k))?.toString()).toBe(value(k, VERSIONS - 1));
    } finally {
      await again.close();
    }
  });

  it('keeps the worker within compaction.cpuShare: its thread CPU stays under share x wall time plus the burst', async () => {
    // Small enough to bind even on a loaded machine, where the unthrottled worker at nice 19 got ~7% of a CPU.
    const share = 0.02;
    const measure = async (cpuShare: number) => {
      const dir = copyDir(big);
      const store = await openCopy(dir, cpuShare);
      const w = new RewriteProcess();
      try {
        const t = performance.now();
        const r = await rewriteSealed(store, w);
        const wallMs = performance.now() - t;
        abortOutputs(nodeFs, dir, r.outputs);
        return { wallMs, cpuMs: r.workerCpuMs, sleptMs: r.workerSleptMs };
      } finally {
        await w.terminate();
        await store.close();
      }
    };
    const paced = await measure(share);
    const free = await measure(1);
    expect(free.sleptMs, 'cpuShare 1 never sleeps').toBe(0);
    expect(free.cpuMs).toBeGreaterThan(0);
    // The bucket allows COMPACTION_CPU_BURST_MS ahead, and the last step and the reply run past the last check.
    const bound = share * paced.wallMs + COMPACTION_CPU_BURST_MS + 15;
    expect(paced.cpuMs, `worker CPU ${paced.cpuMs} ms in ${paced.wallMs} ms wall`).toBeLessThanOrEqual(bound);
    // It slept for what it would otherwise have spent: at least (cpu / share - cpu - burst / share) ms.
    expect(paced.sleptMs, 'it slept to keep within its share').toBeGreaterThan(0);
  }, 120_000);

  it("replaces a stale output of the same name (a dead server's rewrite process may write one after the next open's sweep)", async () => {
    const dir = copyDir(big);
    const store = await openCopy(dir);
    const w = new RewriteProcess();
    const run = () =>
      rewrite(
        store,
        store.ordered.slice(0, -1),
        true,
        () => {},
        () => false,
        w,
        0,
      );
    try {
      const first = await run();
      const names = first.outputs.map((o) => `${o.name}.compacting`);
      abortOutputs(nodeFs, dir, first.outputs);
      // As an orphan's half-written outputs: same names, other bytes.
      for (const n of names) fs.writeFileSync(join(dir, n), 'stale');
      const again = await run();
      expect(again.outputs.map((o) => `${o.name}.compacting`)).toEqual(names);
      for (const o of again.outputs) expect(fs.statSync(join(dir, `${o.name}.compacting`)).size).toBe(o.size);
      abortOutputs(nodeFs, dir, again.outputs);
      expect(leftovers(dir)).toEqual([]);
    } finally {
      await w.terminate();
      await store.close();
    }
  }, 120_000);

  it('fails with the CorruptionError of the damaged record, deletes its outputs, and leaves the store as it was', async () => {
    const dir = copyDir(big);
    const victim = segFiles(dir)[2]!;
    flipBit(join(dir, victim), 5000, 3); // a value byte of an early record; its hint still loads
    const opts = {
      maxSegmentBytes: SEGMENT_BYTES,
      fsync: 'never',
      logger: silentLogger,
      compaction: { auto: false },
    } as const;
    const store = await openStore(dir, opts);
    try {
      const before = segFiles(dir);
      const err = await store.compact().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).name).toBe('CorruptionError');
      expect((err as { code?: string }).code).toBe('CORRUPTION');
      expect((err as { file?: string }).file).toBe(victim);
      expect((err as Error).message).toContain(victim);
      expect((err as Error).stack).toContain("in the compaction's rewrite process");
      expect(store.stats().compaction.failures).toBe(1);
      expect(leftovers(dir)).toEqual([]);
      expect(segFiles(dir)).toEqual(before);
    } finally {
      await store.close();
    }
  });

  it("sends the snapshot, the moves and the index entries in chunks of at most 48 KiB, and they arrive whole (same moves and indexes as the event loop's rewrite)", async () => {
    const dirW = copyDir(big);
    const dirL = copyDir(big);
    const store = await openCopy(dirW);
    const loop = await openStore(dirL, {
      fs: inThreadFs,
      maxSegmentBytes: SEGMENT_BYTES,
      fsync: 'never',
      logger: silentLogger,
      compaction: { auto: false },
    });
    const w = new RewriteProcess();
    try {
      const rw = await rewriteSealed(store, w);
      const rl = await rewriteSealed(loop, w);
      expect(rw.workerCpuMs, 'the rewrite ran in the rewrite process').toBeGreaterThan(0);
      expect(Number.isNaN(rl.workerCpuMs), 'and the other on the event loop').toBe(true);
      // 2,700 moves of 24 bytes: two chunks of moves at least, and one of index entries per output.
      expect(rw.moves.count).toBe(KEYS - KEYS / 10);
      expect(w.chunks.received).toBeGreaterThanOrEqual(2 + rw.outputs.length);
      const withLive = new Set(movesOf(rw).map((m) => m[1])).size;
      expect(w.chunks.sent, 'a chunk of snapshot pairs per input holding live keys').toBeGreaterThanOrEqual(
        withLive,
      );
      expect(w.chunks.maxBytes).toBeLessThanOrEqual(48 * 1024);
      expect(movesOf(rw)).toEqual(movesOf(rl));
      expect(described(rw)).toEqual(described(rl));
      expect(rw.outputs.every((o) => o.index.positions.length > 100)).toBe(true);
      abortOutputs(nodeFs, dirW, rw.outputs);
      abortOutputs(inThreadFs, dirL, rl.outputs);
    } finally {
      await w.terminate();
      await store.close();
      await loop.close();
    }
  }, 120_000);

  it("runs one store's rewrites one after another in the same process, every thread of it at COMPACTION_WORKER_NICE, with V8's background tasks off", async () => {
    const dir = copyDir(big);
    const store = await openCopy(dir);
    const w = new RewriteProcess();
    const once = async () => {
      const r = await rewriteSealed(store, w);
      abortOutputs(nodeFs, dir, r.outputs);
      expect(r.workerCpuMs, 'the rewrite ran in the rewrite process').toBeGreaterThan(0);
      return w.pid;
    };
    try {
      expect(w.pid, 'no process before the first rewrite (or prewarm)').toBeUndefined();
      const first = await once();
      expect(first).toBeGreaterThan(0);
      expect(await once(), "the second rewrite ran in the first one's process").toBe(first);
      if (process.platform === 'linux') {
        const tids = fs.readdirSync(`/proc/${first}/task`);
        expect(tids.length, "Node's threads: main, V8 platform, thread pool").toBeGreaterThan(4);
        for (const tid of tids) {
          const stat = fs.readFileSync(`/proc/${first}/task/${tid}/stat`, 'utf8');
          const nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
          expect(nice, `thread ${tid} of the rewrite process`).toBe(COMPACTION_WORKER_NICE);
        }
        // No V8 background threads beside its main one: the rewrite takes one core at most.
        const argv = fs.readFileSync(`/proc/${first}/cmdline`, 'utf8').split('\0');
        expect(argv).toContain('--single-threaded');
      }
    } finally {
      await w.terminate();
      await store.close();
    }
    expect(w.pid, 'terminate() ends the process').toBeUndefined();
  }, 120_000);

  it('a rewrite process that dies mid-rewrite fails that rewrite; the next rewrite starts a new process and completes', async () => {
    const dir = copyDir(big);
    // Paced (compaction.cpuShare), so the rewrite is still running when its process is killed.
    const store = await openCopy(dir, 0.05);
    const w = new RewriteProcess();
    const inputs = store.ordered.slice(0, -1);
    try {
      let midway!: () => void;
      const progressed = new Promise<void>((resolve) => (midway = resolve));
      const failed = rewrite(
        store,
        inputs,
        true,
        (p) => {
          if (p.bytesDone < p.bytesTotal) midway();
        },
        () => false,
        w,
        0,
      ).then(
        () => 'resolved',
        (e: unknown) => e,
      );
      await progressed;
      const dead = w.pid;
      // The process dies under the RewriteProcess (as a crash would), not through its terminate().
      process.kill(dead!, 'SIGKILL');
      const err = await failed;
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/rewrite process exited \(SIGKILL\)/);
      expect(w.pid, 'the dead process is forgotten').toBeUndefined();
      const r = await rewrite(
        store,
        inputs,
        true,
        () => {},
        () => false,
        w,
        0,
      );
      expect(w.pid).toBeGreaterThan(0);
      expect(w.pid).not.toBe(dead);
      expect(r.bytesRead).toBe(inputs.reduce((n, s) => n + s.size, 0));
      expect(r.outputs.length).toBeGreaterThan(0);
      abortOutputs(nodeFs, dir, r.outputs);
    } finally {
      await w.terminate();
      await store.close();
    }
  }, 120_000);

  it('reports progress monotone and ending with every byte read, at most one message per 20 ms', async () => {
    const dir = copyDir(big);
    // Paced, so the rewrite spans several of the event loop's looks at its progress.
    const store = await openCopy(dir, 0.2);
    const w = new RewriteProcess();
    const inputs = store.ordered.slice(0, -1);
    const bytesIn = inputs.reduce((n, s) => n + s.size, 0);
    try {
      const seen: { segmentsDone: number; segmentsTotal: number; bytesDone: number; bytesTotal: number }[] =
        [];
      let messages = 0;
      const running = rewrite(
        store,
        inputs,
        true,
        (p) => seen.push(p),
        () => false,
        w,
        0,
      );
      const t = performance.now();
      // The process exists once the run has started (after the liveness snapshot's slices).
      while (w.pid === undefined) await new Promise((resolve) => setImmediate(resolve));
      (w as unknown as { child: ChildProcess }).child.on('message', (m: { type: string }) => {
        if (m.type === 'progress') messages++;
      });
      const r = await running;
      const wallMs = performance.now() - t;
      abortOutputs(nodeFs, dir, r.outputs);
      expect(seen.length, 'several progress reports').toBeGreaterThan(1);
      for (let i = 1; i < seen.length; i++) {
        expect(seen[i]!.bytesDone).toBeGreaterThanOrEqual(seen[i - 1]!.bytesDone);
        expect(seen[i]!.segmentsDone).toBeGreaterThanOrEqual(seen[i - 1]!.segmentsDone);
      }
      expect(seen.every((p) => p.bytesTotal === bytesIn && p.segmentsTotal === inputs.length)).toBe(true);
      expect(seen[seen.length - 1]).toEqual({
        segmentsDone: inputs.length,
        segmentsTotal: inputs.length,
        bytesDone: bytesIn,
        bytesTotal: bytesIn,
      });
      // Progress at most every 20 ms, and one last figure.
      expect(messages, `${messages} progress messages in ${wallMs} ms`).toBeLessThanOrEqual(
        Math.ceil(wallMs / 20) + 2,
      );
    } finally {
      await w.terminate();
      await store.close();
    }
  }, 120_000);

  for (const mode of ['close', 'no-close'] as const) {
    it(`the process exits by itself after a compaction in the rewrite process (${mode === 'close' ? 'store closed' : 'store left open: the idle rewrite process holds no handle'})`, async () => {
      const dir = copyDir(big);
      const child = spawn(
        process.execPath,
        [join(FIXTURES, 'worker-compact.mjs'), dir, String(SEGMENT_BYTES), mode],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SEGKV_ENGINE: engine } },
      );
      let out = '';
      let stderr = '';
      child.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
      });
      child.stderr!.on('data', (b: Buffer) => {
        stderr += b.toString();
      });
      const code = await new Promise<number | null | 'still running'>((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve('still running');
        }, 60_000);
        child.on('close', (c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
      expect(code, `exit code (${stderr})`).toBe(0);
      const cpu = /done (\S+)/.exec(out)?.[1];
      expect(Number(cpu), `the compaction ran in the worker (${out})`).toBeGreaterThan(0);
    }, 90_000);
  }
});
