/**
 * The rewrite's worker thread: runs `rewriteSegments` (rewrite.ts) with the
 * real file system, so reading, CRC-checking and writing the outputs never
 * hold the event loop. This one module is both sides: `RewriteWorker` (event
 * loop) starts a worker on this same file, and the code at the bottom serves
 * it there (workerData says which side we are on).
 *
 * What crosses: the job (input descriptors — file descriptors are the
 * process's, so the worker reads the inputs through the segments' own — and
 * the liveness snapshot's pair lists, transferred); the outcome (output descriptors, whose files
 * the worker leaves open for the swap; the moves' typed-array pages and the
 * outputs' sparse-index entries, transferred, not copied); or an error,
 * rebuilt on the event loop with its class (CorruptionError), code and errno
 * so it surfaces as a rewrite error in-thread would.
 *
 * Progress does not cross as messages: the worker writes it into shared
 * memory (ProgressCells) and the event loop reads it every
 * PROGRESS_EVERY_MS while a rewrite runs. Why: a message from the worker
 * takes the port's lock and, still holding it, wakes the event loop, which
 * then takes the same lock to read the message. When the woken loop
 * preempted the worker (nice 19) inside that window, the loop slept on the
 * lock until the worker got a CPU again: 2–24 ms per message on the loaded
 * 2-core machine (kernel scheduler trace with user stacks: futex waits in
 * MessagePort::OnMessage, none without compaction). One message per
 * rewrite (its outcome) is left.
 *
 * Cancellation is a flag in shared memory that the rewrite reads between
 * steps (it then deletes its outputs and fails): terminating the worker
 * mid-write would leak its open descriptors and leave `*.compacting` files
 * to the next open's sweep. Descriptors opened in the worker are not
 * tracked by it (trackUnmanagedFds: false): they belong to the swap. One
 * worker per store, started on the first compaction, unref'd while idle
 * (ref'd while a rewrite runs), terminated by the compactor's stop(). The
 * worker's thread runs at a low CPU priority (COMPACTION_WORKER_NICE, set
 * as it starts: thread-priority.ts), so the event
 * loop wins the CPU whenever it has work, and keeps within its CPU budget
 * (`compaction.cpuShare`, pacer.ts) by sleeping between steps.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { CorruptionError } from '../../errors.js';
import { nodeFs } from '../fs.js';
import { SparseIndex } from '../sparse-index.js';
import { Moves, type MovesPages } from './moves.js';
import { CpuPacer, threadCpuClock } from './pacer.js';
import {
  type ExpiredLive,
  type OutputSegment,
  type RewriteHost,
  type RewriteJob,
  type RewriteOutcome,
  type RewriteProgress,
  rewriteSegments,
} from './rewrite.js';
import { lowerNewThread, lowerThisThread, threadIds } from './thread-priority.js';
import { traced } from './trace.js';

/** How often the event loop reads the running rewrite's progress from shared memory, in ms. */
const PROGRESS_EVERY_MS = 20;
const WORKER_TAG = 'segkv-rewrite';

interface WireOutput extends Omit<OutputSegment, 'index'> {
  indexInterval: number;
  relOffsets: Float64Array;
  positions: Float64Array;
}

interface WireError {
  message: string;
  stack: string | undefined;
  code: string | undefined;
  errno: number | undefined;
  syscall: string | undefined;
  path: string | undefined;
  corruption: { file: string; position: number } | undefined;
}

type Reply =
  | {
      type: 'done';
      outputs: WireOutput[];
      moves: MovesPages;
      expired: ExpiredLive;
      bytesRead: number;
      cpuMs: number;
      sleptMs: number;
    }
  | { type: 'error'; error: WireError };

function toWire(err: unknown): WireError {
  const e = (err instanceof Error ? err : new Error(String(err))) as NodeJS.ErrnoException;
  return {
    message: e.message,
    stack: e.stack,
    code: typeof e.code === 'string' ? e.code : undefined,
    errno: e.errno,
    syscall: e.syscall,
    path: e.path,
    corruption: err instanceof CorruptionError ? { file: err.file, position: err.position } : undefined,
  };
}

function fromWire(w: WireError): Error {
  let err: Error;
  if (w.corruption) {
    err = new CorruptionError(w.corruption.file, w.corruption.position, 'corruption');
    err.message = w.message;
  } else {
    const e = new Error(w.message) as NodeJS.ErrnoException;
    if (w.code !== undefined) e.code = w.code;
    if (w.errno !== undefined) e.errno = w.errno;
    if (w.syscall !== undefined) e.syscall = w.syscall;
    if (w.path !== undefined) e.path = w.path;
    err = e;
  }
  if (w.stack) err.stack = `${w.stack}\n    (in the compaction worker thread)`;
  return err;
}

/**
 * This file as the worker runs it: the built .js. From TypeScript sources
 * (vitest) that is its build under dist/ (`npm run build` first).
 */
function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return here;
  const built = fileURLToPath(
    new URL('../../../dist/src/engine/compaction/rewrite-worker.js', import.meta.url),
  );
  if (!existsSync(built))
    throw new Error(`the compaction worker needs the build of ${here}: run npm run build (no ${built})`);
  return built;
}

/** A rewrite's outcome from the worker, with what its thread spent. */
export interface WorkerOutcome extends RewriteOutcome {
  /** CPU time of the worker's thread during the rewrite, ms (its wall time where that cannot be read). */
  cpuMs: number;
  /** Time the worker slept to keep within compaction.cpuShare, ms. */
  sleptMs: number;
}

/**
 * A rewrite's progress in shared memory, written by the worker, read by the
 * event loop: a seqlock (an even count means the figures are whole) and
 * segmentsDone, segmentsTotal, bytesDone, bytesTotal.
 */
class ProgressCells {
  readonly seq: Int32Array;
  readonly figures: Float64Array;

  constructor(buffer = new SharedArrayBuffer(8 + 4 * 8)) {
    this.seq = new Int32Array(buffer, 0, 1);
    this.figures = new Float64Array(buffer, 8, 4);
  }

  get buffer(): SharedArrayBuffer {
    return this.seq.buffer as SharedArrayBuffer;
  }

  write(p: RewriteProgress): void {
    Atomics.add(this.seq, 0, 1);
    this.figures[0] = p.segmentsDone;
    this.figures[1] = p.segmentsTotal;
    this.figures[2] = p.bytesDone;
    this.figures[3] = p.bytesTotal;
    Atomics.add(this.seq, 0, 1);
  }

  /** The figures if they changed since `seen` (the seq returned last time) and are whole; else undefined. */
  read(seen: number): { seq: number; progress: RewriteProgress } | undefined {
    const seq = Atomics.load(this.seq, 0);
    if (seq === seen || (seq & 1) === 1) return undefined;
    const f = this.figures;
    const progress = { segmentsDone: f[0]!, segmentsTotal: f[1]!, bytesDone: f[2]!, bytesTotal: f[3]! };
    return Atomics.load(this.seq, 0) === seq ? { seq, progress } : undefined;
  }
}

interface Pending {
  resolve(o: WorkerOutcome): void;
  reject(err: Error): void;
  onProgress(p: RewriteProgress): void;
}

/** The event loop's side: one worker, one job at a time. */
export class RewriteWorker {
  private worker: Worker | undefined;
  private readonly cancelFlag = new Int32Array(new SharedArrayBuffer(4));
  private readonly progress = new ProgressCells();
  private progressSeen = 0;
  private progressTimer: NodeJS.Timeout | undefined;
  private pending: Pending | undefined;

  /** Runs a rewrite in the worker; its outputs are left open for the swap. */
  run(job: RewriteJob, onProgress: (p: RewriteProgress) => void): Promise<WorkerOutcome> {
    if (this.pending) return Promise.reject(new Error('a rewrite is already running in the worker'));
    const w = this.start();
    Atomics.store(this.cancelFlag, 0, 0);
    this.progressSeen = Atomics.load(this.progress.seq, 0);
    return new Promise<WorkerOutcome>((resolve, reject) => {
      this.pending = { resolve, reject, onProgress };
      this.progressTimer = setInterval(() => this.readProgress(), PROGRESS_EVERY_MS).unref();
      w.ref(); // a pending rewrite keeps the process alive, as an in-thread one does
      w.postMessage(
        { job },
        job.live.flatMap((pages) => pages.map((p) => p.buffer as ArrayBuffer)),
      );
    });
  }

  /**
   * The worker's thread (worker_threads' threadId) while it lives: one
   * thread serves every rewrite of the store; undefined before the first
   * one and after terminate() or the thread's death (the next run starts another).
   */
  get threadId(): number | undefined {
    return this.worker?.threadId;
  }

  /** Makes a running rewrite stop at its next step (it deletes its outputs and fails). */
  cancel(): void {
    Atomics.store(this.cancelFlag, 0, 1);
  }

  /** Stops the worker (after cancel() and the rewrite's end, at the store's close). */
  async terminate(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const t = performance.now();
    const threadsBefore = threadIds();
    const w = new Worker(workerFile(), {
      workerData: { tag: WORKER_TAG, cancel: this.cancelFlag.buffer, progress: this.progress.buffer },
      // The outputs' descriptors it opens are handed to the event loop, which
      // closes them: the worker must not close them (or their reused numbers) when it exits.
      trackUnmanagedFds: false,
    });
    // Before it runs much of its start-up: Node's bootstrap and our modules' loading (thread-priority.ts).
    lowerNewThread(threadsBefore);
    traced('worker.start', t);
    w.unref();
    w.on('message', (m: Reply) => this.onReply(m));
    const lost = (err: Error) => {
      if (this.worker === w) this.worker = undefined;
      this.finish()?.reject(err);
    };
    w.on('error', (err) => lost(err));
    w.on('exit', (code) => lost(new Error(`the compaction worker exited (code ${code}) during a rewrite`)));
    this.worker = w;
    return w;
  }

  /** Reports the running rewrite's progress if it moved since the last look. */
  private readProgress(): void {
    const r = this.progress.read(this.progressSeen);
    if (!r || !this.pending) return;
    this.progressSeen = r.seq;
    this.pending.onProgress(r.progress);
  }

  private finish(): Pending | undefined {
    const p = this.pending;
    if (p) this.readProgress(); // the last figures (all bytes done), before the outcome
    clearInterval(this.progressTimer);
    this.progressTimer = undefined;
    this.pending = undefined;
    this.worker?.unref();
    return p;
  }

  private onReply(m: Reply): void {
    const t = performance.now();
    const p = this.finish();
    if (!p) return;
    if (m.type === 'error') {
      p.reject(fromWire(m.error));
      return;
    }
    // The index entries are kept as the typed arrays that came (copying them into arrays took 20–25 ms).
    const outputs: OutputSegment[] = m.outputs.map(({ indexInterval, relOffsets, positions, ...o }) => ({
      ...o,
      index: SparseIndex.ofEntries(o.baseOffset, indexInterval, relOffsets, positions),
    }));
    p.resolve({
      outputs,
      moves: Moves.fromPages(m.moves),
      expired: m.expired,
      bytesRead: m.bytesRead,
      cpuMs: m.cpuMs,
      sleptMs: m.sleptMs,
    });
    traced('worker.done', t);
  }
}

// ---- the worker's side ------------------------------------------------------------

async function serve(job: RewriteJob, cancel: Int32Array, progress: ProgressCells): Promise<void> {
  const port = parentPort!;
  const clock = threadCpuClock();
  const cpu0 = clock.read();
  const pacer = new CpuPacer(job.cpuShare, clock.read);
  let sleptMs = 0;
  const host: RewriteHost = {
    pause: () => {
      const ms = pacer.delayMs();
      if (ms <= 0) return new Promise((resolve) => setImmediate(resolve));
      sleptMs += ms;
      return new Promise((resolve) => setTimeout(resolve, ms));
    },
    isCancelled: () => Atomics.load(cancel, 0) === 1,
    onProgress: (p) => progress.write(p),
  };
  try {
    const o = await rewriteSegments(nodeFs, job, host);
    const outputs: WireOutput[] = o.outputs.map(({ index, ...rest }) => ({
      ...rest,
      indexInterval: index.intervalBytes,
      relOffsets: Float64Array.from(index.relOffsets),
      positions: Float64Array.from(index.positions),
    }));
    const moves = o.moves.pages();
    const transfer: ArrayBuffer[] = [
      ...outputs.flatMap((x) => [x.relOffsets.buffer as ArrayBuffer, x.positions.buffer as ArrayBuffer]),
      ...[
        moves.slot,
        moves.fromSegment,
        moves.fromPosition,
        moves.toOutput,
        moves.toPosition,
        moves.size,
      ].flatMap((pages) => pages.map((a) => a.buffer as ArrayBuffer)),
    ];
    const cpuMs = clock.read() - cpu0;
    port.postMessage(
      {
        type: 'done',
        outputs,
        moves,
        expired: o.expired,
        bytesRead: o.bytesRead,
        cpuMs,
        sleptMs,
      } satisfies Reply,
      transfer,
    );
  } catch (err) {
    port.postMessage({ type: 'error', error: toWire(err) } satisfies Reply);
  } finally {
    clock.close();
  }
}

if (!isMainThread && (workerData as { tag?: string } | null)?.tag === WORKER_TAG) {
  lowerThisThread(); // in case the event loop could not (thread-priority.ts)
  const data = workerData as { cancel: SharedArrayBuffer; progress: SharedArrayBuffer };
  const cancel = new Int32Array(data.cancel);
  const progress = new ProgressCells(data.progress);
  parentPort!.on('message', (m: { job: RewriteJob }) => {
    void serve(m.job, cancel, progress);
  });
}
