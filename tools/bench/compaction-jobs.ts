/**
 * The measurements of `npm run bench:compaction`, one per child process (see
 * compaction.ts and compaction-child.ts), so the heap and JIT state of one
 * job stay out of the next.
 *
 * Workload (shared with the Redis peer, redis-peer.ts): 16-byte keys (keyOf,
 * as in bench:engine) and 1024-byte values cut from a random pool (so neither
 * side can compress them). A data set of `records` writes over
 * `keys = records * live` keys: one write of every key in order, then the
 * remaining writes to uniformly random keys (xorshift32, fixed seed). The
 * last write of each key is live, so the live fraction of records is exactly
 * `live`, and the dead records are spread over the whole log.
 *
 * Foreground load (compact jobs with a rate): measured for `withoutMs`
 * before the compaction, during it, and for `withoutMs` after it, in the
 * same process: the windows without compaction (pooled) are the baseline.
 * Adjacent in time, they see the same load from the rest of a shared machine
 * as the compaction window does (a baseline in a separate process seconds
 * later saw a different machine: its own p99 varied 2× run to run).
 * Open-loop schedule of `rate` pairs per second (one get
 * of a random existing key, one set of a random existing key). Latency is from
 * the pair's scheduled time to the get's return / the set's ack, measured with
 * process.hrtime.bigint, so time spent queued behind background work counts
 * (no coordinated omission). Between pairs the loop sleeps in a timer until
 * the next one is due, as a server sleeps in epoll until a request arrives
 * (a busy-polling loop would compete for the CPU with the compactor and with
 * everything else on a shared machine). Timers have 1 ms granularity, so a
 * pair may start up to ~1 ms late, with or without compaction; pairs that
 * fell due while the loop was busy run at once, one after the other.
 */
import {
  closeSync,
  copyFileSync,
  fdatasyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { openStore, type Store } from '../../src/engine/index.js';
import { PairTrace } from './compaction-pairs.js';
import { SchedStat, StallTrace } from './compaction-trace.js';
import { keyOf } from './engine-jobs.js';

export const KEY_BYTES = 16;
export const VALUE_BYTES = 1024;
/** Record header (record.ts) + key + value: the bytes one write adds to the log. */
export const RECORD_BYTES = 27 + KEY_BYTES + VALUE_BYTES;

const POOL_BYTES = 1024 * 1024;
let pool: Buffer | undefined;

/** The random bytes values are cut from (same seed in every process). */
export function valuePool(): Buffer {
  if (pool) return pool;
  pool = Buffer.allocUnsafe(POOL_BYTES);
  let s = 0x9e3779b9;
  for (let i = 0; i < POOL_BYTES; i += 4) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    pool.writeUInt32LE(s >>> 0, i);
  }
  return pool;
}

export interface Shape {
  /** Fraction of records live after the load (0.1 = each key written ~10 times). */
  live: number;
  /** Writes in the data set. */
  records: number;
}

export function keysOf(shape: Shape): number {
  return Math.max(1, Math.round(shape.records * shape.live));
}

/**
 * Calls `write(keyIndex, valueAt)` for each write of the data set, in order:
 * valueAt is where the value starts in valuePool().
 */
export function forEachWrite(shape: Shape, write: (keyIndex: number, valueAt: number) => void): void {
  const keys = keysOf(shape);
  let s = 0x1234567;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  const span = POOL_BYTES - VALUE_BYTES;
  for (let i = 0; i < shape.records; i++) {
    const k = i < keys ? i : next() % keys;
    write(k, next() % span);
  }
}

export interface StoreFigures {
  segments: number;
  diskBytes: number;
  liveBytes: number;
  deadBytes: number;
  /** Every file in the directory (segments, hints, indexes). */
  dirBytes: number;
  keys: number;
}

/** A job on a working copy `dir` of the loaded data set `master` (see workingCopy), with a foreground load. */
interface CopyJob {
  master: string;
  dir: string;
  /** Hard-link the sealed segments instead of copying them (faster; hides the cost of freeing them). */
  link: boolean;
  shape: Shape;
  maxSegmentBytes: number;
  /** Foreground pairs (1 get + 1 set) per second; 0 is compaction alone. */
  rate: number;
  warmupMs: number;
  /** With a rate: ms of foreground measured without compaction just before it, and again just after. */
  withoutMs: number;
  /** compaction.cpuShare of the store; undefined: the store's default. */
  cpuShare: number | undefined;
  /**
   * Compact another working copy of the data set first, in this process and
   * without foreground, so the measured compaction is the process's second
   * (priorCompaction).
   */
  priorCompaction: boolean;
}

export type Job =
  | { kind: 'disk'; dir: string; bytes: number; writeBytes: number }
  | { kind: 'load'; dir: string; shape: Shape; maxSegmentBytes: number }
  | ({ kind: 'compact' } & CopyJob);

export interface DiskResult {
  bytes: number;
  ms: number;
  mbPerSec: number;
}

export interface LoadResult {
  ms: number;
  figures: StoreFigures;
}

export interface Latencies {
  samples: number;
  /** Microseconds. */
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export interface CompactResult {
  /** Wall time of store.compact(), ms. */
  wallMs: number;
  /** CompactionResult.durationMs (rewrite + swap). */
  durationMs: number;
  bytesRead: number;
  bytesWritten: number;
  reclaimedBytes: number;
  segmentsIn: number;
  segmentsOut: number;
  keysKept: number;
  /**
   * CPU time (user + system) while store.compact() ran, ms: this process's,
   * plus the rewrite process's rewriting thread (workerCpuMs; its other threads are not counted).
   */
  cpuMs: number;
  /** Of which in the kernel (system time), ms. */
  sysMs: number;
  /**
   * Longest event-loop stall seen while store.compact() ran (perf_hooks, 1 ms
   * resolution), ms; measured until SETTLE_MS after it, since a stall is only
   * recorded when the timer that it delayed fires.
   */
  loopMaxMs: number;
  /** 99th percentile of event-loop delay while store.compact() ran, ms. */
  loopP99Ms: number;
  /** Wall time of the swap (verify, commit, rename, keydir), ms: short synchronous pieces with the event loop running between them. */
  swapMs: number;
  /** Longest event-loop stall from the swap's start to the end of store.compact() (releasing the inputs included), ms. */
  swapLoopMaxMs: number;
  /** From the last input byte read to the outputs being written and fsynced (the swap's start), ms. */
  finishMs: number;
  before: StoreFigures;
  after: StoreFigures;
  get?: Latencies;
  set?: Latencies;
  /** With a rate: the foreground in the windows before and after the compaction, pooled. */
  without?: ForegroundResult;
  /** The event loop's thread while measured: ms on a CPU and ms runnable but waiting for one (Linux; NaN elsewhere). */
  loopRunMs: number;
  loopWaitMs: number;
  /** The machine's 1-minute load average as the compaction started (other work on a shared machine). */
  loadAvg: number;
  /** With a rate: the rewrite process's rewriting thread's CPU time during the rewrite and the time it slept to keep within compaction.cpuShare, ms (NaN on the event loop). */
  workerCpuMs: number;
  workerSleptMs: number;
  /** With priorCompaction: the wall time of the compaction run before this one in the same process, ms. */
  priorMs?: number;
}

export interface ForegroundResult {
  /** Wall time measured, ms. */
  ms: number;
  get: Latencies;
  set: Latencies;
  /** The compaction window's length, ms, and the p99 (µs) of each span that long within the windows without it (spanP99s). */
  spanMs: number;
  spanGetP99: number[];
  spanSetP99: number[];
  /**
   * The window before the compaction alone (get, set): `get` and `set` pool
   * it with the one after, which runs code the compaction may have left
   * deoptimised and a heap it grew.
   */
  beforeGet: Latencies;
  beforeSet: Latencies;
  loopRunMs: number;
  loopWaitMs: number;
}

/** ms the calling thread ran and waited for a CPU since `s` was last read (and reads it again). */
function schedDelta(s: SchedStat): { runMs: number; waitMs: number } {
  const run = s.run;
  const wait = s.wait;
  s.read();
  return { runMs: (s.run - run) / 1e6, waitMs: (s.wait - wait) / 1e6 };
}

export type JobResult = DiskResult | LoadResult | CompactResult | ForegroundResult;

function storeOptions(
  maxSegmentBytes: number,
  onStep: (step: string) => void = () => {},
  cpuShare: number | undefined = undefined,
) {
  // Same fsync policy as the Redis peer (appendfsync everysec); the value
  // cache off so foreground gets read the log like any miss would.
  return {
    maxSegmentBytes,
    fsync: 'interval',
    cacheBytes: 0,
    compaction: { auto: false, onStep, ...(cpuShare !== undefined && { cpuShare }) },
  } as const;
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir)) if (f !== 'LOCK') n += statSync(join(dir, f)).size;
  return n;
}

function figures(store: Store): StoreFigures {
  const s = store.stats();
  return {
    segments: s.segments.length,
    diskBytes: s.diskBytes,
    liveBytes: s.liveBytes,
    deadBytes: s.deadBytes,
    dirBytes: dirBytes(store.dir),
    keys: s.keys,
  };
}

/** Sequential write bandwidth: `bytes` in `writeBytes` writes to a new file, then fdatasync. */
function runDisk(job: Extract<Job, { kind: 'disk' }>): DiskResult {
  const buf = Buffer.from(valuePool().subarray(0, Math.min(job.writeBytes, POOL_BYTES)));
  const chunk = Buffer.allocUnsafe(job.writeBytes);
  for (let at = 0; at < chunk.length; at += buf.length) buf.copy(chunk, at);
  const path = join(job.dir, 'seqwrite.bin');
  const fd = openSync(path, 'wx');
  const t0 = performance.now();
  let written = 0;
  try {
    while (written < job.bytes) {
      const n = Math.min(chunk.length, job.bytes - written);
      let done = 0;
      while (done < n) done += writeSync(fd, chunk, done, n - done, written + done);
      written += n;
    }
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const ms = performance.now() - t0;
  unlinkSync(path);
  return { bytes: written, ms, mbPerSec: written / 1e6 / (ms / 1000) };
}

/** Builds the data set, seals every segment (so a compaction run has nothing to seal first) and closes. */
async function runLoad(job: Extract<Job, { kind: 'load' }>): Promise<LoadResult> {
  const store = await openStore(job.dir, storeOptions(job.maxSegmentBytes));
  const values = valuePool();
  const keys: string[] = new Array(keysOf(job.shape));
  for (let i = 0; i < keys.length; i++) keys[i] = keyOf(i);
  const t0 = performance.now();
  let pending: Promise<boolean>[] = [];
  const writes: { k: number; v: number }[] = [];
  forEachWrite(job.shape, (k, v) => writes.push({ k, v }));
  for (const w of writes) {
    pending.push(store.set(keys[w.k]!, values.subarray(w.v, w.v + VALUE_BYTES)));
    if (pending.length >= 4096) {
      await Promise.all(pending);
      pending = [];
    }
  }
  await Promise.all(pending);
  store.sealActive();
  await store.settleBackground();
  await store.sync();
  const ms = performance.now() - t0;
  const f = figures(store);
  await store.close();
  return { ms, figures: f };
}

/**
 * A working copy of the loaded data set: real copies of the segments
 * (fdatasynced, so no writeback of them runs during the measurement), hard
 * links to their hints and indexes (nothing writes into those in place; the
 * compaction renames new files over them). With `link`, sealed segments are
 * hard-linked too: much faster to set up, but then deleting an input only
 * drops a link, and the cost of freeing its blocks (~15 ms per 64 MiB on
 * ext4, paid at its last close) never shows. The last segment is always a
 * copy: a reopen appends to it.
 */
function workingCopy(master: string, dir: string, link: boolean): void {
  const files = readdirSync(master).filter((f) => f !== 'LOCK');
  const segs = files.filter((f) => f.endsWith('.seg')).sort();
  const last = segs[segs.length - 1];
  for (const f of files) {
    if (f === last || (!link && f.endsWith('.seg'))) {
      copyFileSync(join(master, f), join(dir, f));
      const fd = openSync(join(dir, f), 'r+');
      fdatasyncSync(fd);
      closeSync(fd);
    } else linkSync(join(master, f), join(dir, f));
  }
}

function summarize(samples: number[]): Latencies {
  const a = Float64Array.from(samples).sort();
  const q = (p: number) => (a.length ? a[Math.min(a.length - 1, Math.ceil(p * a.length) - 1)]! : Number.NaN);
  return {
    samples: a.length,
    p50: q(0.5),
    p99: q(0.99),
    p999: q(0.999),
    max: a.length ? a[a.length - 1]! : Number.NaN,
  };
}

/** Where a measurement window's latencies go, µs. */
export class Samples {
  readonly getUs: number[] = [];
  readonly setUs: number[] = [];
  /** Each pair's due time, ms after the window began (same order as getUs; setUs is in ack order). */
  readonly getAtMs: number[] = [];
  readonly setAtMs: number[] = [];
  /** hrtime (ns) the window began and ended (Windows.switchTo); end 0n while it is current. */
  startNs = 0n;
  endNs = 0n;

  get ms(): number {
    return Number(this.endNs - this.startNs) / 1e6;
  }
}

/**
 * p99 (µs) of each span `spanMs` long that fits whole in one of `windows`,
 * from each window's start: the windows without compaction cut into pieces
 * as long as the compaction's window. A p99 over a long window is set by
 * its 1% worst pairs, over a short one by a handful, so one stall from
 * elsewhere moves a short window's p99 far more; compared span for span,
 * both sides have as many pairs.
 */
export function spanP99s(windows: Samples[], spanMs: number, op: 'get' | 'set'): number[] {
  const out: number[] = [];
  if (!(spanMs > 0)) return out;
  for (const w of windows) {
    const spans = Math.floor(w.ms / spanMs);
    const lat = op === 'get' ? w.getUs : w.setUs;
    const at = op === 'get' ? w.getAtMs : w.setAtMs;
    const bySpan: number[][] = Array.from({ length: spans }, () => []);
    for (let i = 0; i < lat.length; i++) bySpan[Math.floor(at[i]! / spanMs)]?.push(lat[i]!);
    for (const b of bySpan) if (b.length > 0) out.push(summarize(b).p99);
  }
  return out;
}

/**
 * Which measurement window a foreground pair counts in, by its due time: a
 * switch made at time T (measure) takes the pairs due from T on, even those
 * the loop only gets to later. Picking the window current when a pair is
 * processed instead put the pairs that fell due while the code between two
 * windows ran (a StallTrace's stop, ~8 ms of /proc reads) into the next
 * window, with that delay as their latency.
 */
export class Windows {
  /** Switch times (hrtime ns) and the window from each on, oldest first. */
  private readonly from: bigint[] = [0n];
  private readonly windows: (Samples | undefined)[] = [undefined];

  /** Pairs due at or after `at` count in `window` (undefined: in none); the window current until then ends at `at`. */
  switchTo(window: Samples | undefined, at: bigint): void {
    if (at < this.from[this.from.length - 1]!) throw new Error('window switches must come in time order');
    const ending = this.windows[this.windows.length - 1];
    if (ending) ending.endNs = at;
    if (window) window.startNs = at;
    this.from.push(at);
    this.windows.push(window);
  }

  /**
   * The window of a pair due at `due`. Pairs are asked for in due order, so
   * the switches before the one that covers `due` are dropped.
   */
  at(due: bigint): Samples | undefined {
    let i = this.from.length - 1;
    while (i > 0 && this.from[i]! > due) i--;
    if (i > 0) {
      this.from.splice(0, i);
      this.windows.splice(0, i);
    }
    return this.windows[0];
  }
}

/**
 * The open-loop foreground load; `stop()` resolves once every set issued has
 * been acked. A pair counts in the window (Samples) current at its scheduled
 * time (Windows), even if the loop only runs it, or its set is acked, after
 * the next window began.
 */
class Foreground {
  private stopped = false;
  private readonly windows = new Windows();
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private rng = 0x2545f491;

  constructor(
    private readonly store: Store,
    /**
     * Keys are built per operation (keyOf), not held: an array of a million
     * key strings made this process's heap ~50 MB, so each major GC the
     * compaction provoked paused ~18 ms; a server holds no JS string per key
     * (the keydir is typed arrays, DESIGN.md §4).
     */
    private readonly keyCount: number,
    private readonly rate: number,
    private readonly pairTrace: PairTrace | undefined = undefined,
  ) {}

  private rand(): number {
    let s = this.rng;
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    this.rng = s;
    return s >>> 0;
  }

  start(): void {
    const interval = BigInt(Math.round(1e9 / this.rate));
    const values = valuePool();
    const span = POOL_BYTES - VALUE_BYTES;
    let next = process.hrtime.bigint();
    const tick = () => {
      if (this.stopped) return;
      this.pairTrace?.turn();
      const now = process.hrtime.bigint();
      while (next <= now) {
        const due = next;
        next += interval;
        const measuring = this.windows.at(due);
        const v = this.store.getSync(keyOf(this.rand() % this.keyCount));
        if (v === undefined || v.length !== VALUE_BYTES) throw new Error('a foreground get missed');
        if (measuring) {
          measuring.getUs.push(Number(process.hrtime.bigint() - due) / 1000);
          measuring.getAtMs.push(Number(due - measuring.startNs) / 1e6);
        }
        const at = this.rand() % span;
        this.inFlight++;
        void this.store
          .set(keyOf(this.rand() % this.keyCount), values.subarray(at, at + VALUE_BYTES))
          .then(() => {
            if (measuring) {
              measuring.setUs.push(Number(process.hrtime.bigint() - due) / 1000);
              measuring.setAtMs.push(Number(due - measuring.startNs) / 1e6);
            }
            if (--this.inFlight === 0) this.drained?.();
          });
      }
      setTimeout(tick, Math.max(1, Math.floor(Number(next - process.hrtime.bigint()) / 1e6)));
    };
    setImmediate(tick);
  }

  /** Pairs due from now on count in `window` (none: not measured). */
  measure(window: Samples | undefined): void {
    this.windows.switchTo(window, process.hrtime.bigint());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** After the measured work, how long the foreground keeps being measured so late pairs are counted. */
const SETTLE_MS = 20;

/**
 * A whole compaction of a working copy of the data set next to `job.dir`,
 * in this process, then the copy deleted: the compaction's own functions
 * are then compiled (V8 compiles a function on its first call, on the
 * event loop: ~6 ms of its CPU inside a first compaction's window at
 * --quick sizes, perf record of the job process), as in a server's later
 * compaction as long as V8 has not flushed their bytecode since. The JIT's
 * optimised code is not carried over: V8's log showed the compaction's hot
 * functions (swap's move, Keydir.moveSlotIfAt) optimised again inside the
 * second one's window.
 */
async function priorCompaction(job: Extract<Job, { kind: 'compact' }>): Promise<number> {
  const dir = `${job.dir}-prior`;
  mkdirSync(dir);
  try {
    workingCopy(job.master, dir, job.link);
    const store = await openStore(
      dir,
      storeOptions(job.maxSegmentBytes, () => {}, job.cpuShare),
    );
    try {
      await store.settleBackground();
      const t = performance.now();
      if (!(await store.compact())) throw new Error('the prior compaction found nothing to compact');
      const ms = performance.now() - t;
      await store.settleBackground();
      return ms;
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runCompact(job: Extract<Job, { kind: 'compact' }>): Promise<CompactResult> {
  const priorMs = job.priorCompaction ? await priorCompaction(job) : undefined;
  workingCopy(job.master, job.dir, job.link);
  let swapFrom = 0;
  let swapMs = 0;
  let readDone = 0;
  const swapLoop = monitorEventLoopDelay({ resolution: 1 });
  const pairsFile = job.rate > 0 ? process.env.SEGKV_BENCH_PAIRS : undefined;
  const pairTrace = pairsFile ? new PairTrace() : undefined;
  const onStep = (step: string) => {
    pairTrace?.mark(`step.${step}`);
    if (step === 'outputs-written') {
      swapFrom = performance.now();
      swapLoop.enable();
    } else if (step === 'done') {
      swapMs = performance.now() - swapFrom;
    }
  };
  const store = await openStore(job.dir, storeOptions(job.maxSegmentBytes, onStep, job.cpuShare));
  await store.settleBackground();
  store.on('compaction', (e: { phase: string; bytesDone?: number; bytesTotal?: number }) => {
    if (e.phase === 'progress' && e.bytesDone === e.bytesTotal) readDone = performance.now();
    pairTrace?.mark(`compaction.${e.phase}`);
  });
  let fg: Foreground | undefined;
  if (job.rate > 0) {
    fg = new Foreground(store, keysOf(job.shape), job.rate, pairTrace);
    fg.start();
    await sleep(job.warmupMs);
  }
  const before = figures(store);
  const withoutWindows: Samples[] = [];
  const withoutSched = new SchedStat();
  let withoutMs = 0;
  let withoutRun = 0;
  let withoutWait = 0;
  /** One window of foreground without compaction. */
  const measureWithout = async () => {
    if (!fg || job.withoutMs <= 0) return;
    const w = new Samples();
    withoutWindows.push(w);
    const wTrace = process.env.SEGKV_BENCH_TRACE ? new StallTrace() : undefined;
    wTrace?.start();
    withoutSched.read();
    fg.measure(w);
    const t = performance.now();
    await sleep(job.withoutMs);
    fg.measure(undefined);
    withoutMs += performance.now() - t;
    if (wTrace)
      process.stderr.write(
        `without compaction (${withoutWindows.length === 1 ? 'before' : 'after'}) ${job.shape.live * 100}% live ${wTrace.stop()}\n`,
      );
    const d = schedDelta(withoutSched);
    withoutRun += d.runMs;
    withoutWait += d.waitMs;
  };
  await measureWithout();
  const during = new Samples();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const trace = process.env.SEGKV_BENCH_TRACE ? new StallTrace() : undefined;
  trace?.start();
  const sched = new SchedStat();
  sched.read();
  const loadAvg = loadavg()[0]!;
  const cpu0 = process.cpuUsage();
  pairTrace?.start();
  fg?.measure(during);
  const t0 = performance.now();
  const r = await store.compact();
  fg?.measure(undefined);
  const wallMs = performance.now() - t0;
  pairTrace?.mark('compact.resolved');
  const cpu = process.cpuUsage(cpu0);
  const loopSched = schedDelta(sched);
  sched.close();
  // Let the foreground catch up on the pairs that fell due during the last
  // synchronous piece: they count in the compaction's window (by due time),
  // and their latency is part of the compaction's. The loop monitors too: a
  // stall is only recorded once the timer it delayed fires.
  await sleep(SETTLE_MS);
  pairTrace?.stop();
  loop.disable();
  swapLoop.disable();
  if (trace)
    process.stderr.write(
      `${job.rate > 0 ? 'loaded' : 'idle'} ${job.shape.live * 100}% live ${trace.stop()}\n`,
    );
  if (!r) throw new Error('nothing to compact');
  await store.settleBackground();
  // Before the window after, whose writes would add to it.
  const after = figures(store);
  await measureWithout();
  withoutSched.close();
  await fg?.stop();
  await store.close();
  const out: CompactResult = {
    wallMs,
    durationMs: r.durationMs,
    bytesRead: r.bytesRead,
    bytesWritten: r.bytesWritten,
    reclaimedBytes: r.reclaimedBytes,
    segmentsIn: r.segmentsIn,
    segmentsOut: r.segmentsOut,
    keysKept: r.keysKept,
    cpuMs: (cpu.user + cpu.system) / 1000 + (r.workerCpuMs ?? 0),
    sysMs: cpu.system / 1000,
    loopMaxMs: loop.max / 1e6,
    loopP99Ms: loop.percentile(99) / 1e6,
    swapMs,
    swapLoopMaxMs: swapLoop.max / 1e6,
    finishMs: swapFrom - readDone,
    before,
    after,
    loopRunMs: loopSched.runMs,
    loopWaitMs: loopSched.waitMs,
    loadAvg,
    workerCpuMs: r.workerCpuMs ?? Number.NaN,
    workerSleptMs: r.workerSleptMs,
    ...(priorMs !== undefined && { priorMs }),
  };
  if (pairTrace && pairsFile)
    pairTrace.write(pairsFile, { live: job.shape.live, wallMs, loadAvg }, t0, during);
  if (fg) {
    out.get = summarize(during.getUs);
    out.set = summarize(during.setUs);
  }
  if (withoutWindows.length > 0) {
    out.without = {
      ms: withoutMs,
      get: summarize(withoutWindows.flatMap((w) => w.getUs)),
      set: summarize(withoutWindows.flatMap((w) => w.setUs)),
      spanMs: during.ms,
      spanGetP99: spanP99s(withoutWindows, during.ms, 'get'),
      spanSetP99: spanP99s(withoutWindows, during.ms, 'set'),
      beforeGet: summarize(withoutWindows[0]!.getUs),
      beforeSet: summarize(withoutWindows[0]!.setUs),
      loopRunMs: withoutRun,
      loopWaitMs: withoutWait,
    };
  }
  return out;
}

export async function runJob(job: Job): Promise<JobResult> {
  switch (job.kind) {
    case 'disk':
      return runDisk(job);
    case 'load':
      return runLoad(job);
    case 'compact':
      return runCompact(job);
  }
}
