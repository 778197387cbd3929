/**
 * The rewrite's own process: runs `rewriteSegments` (rewrite.ts) with the
 * real file system in a child node process (this same module, forked), so
 * reading, CRC-checking and writing the outputs never hold the event loop,
 * and none of the rewrite's threads share the server's priority. This one
 * module is both sides: `RewriteProcess` (event loop) forks this file, and
 * the code at the bottom serves it there (argv says which side we are on).
 *
 * Why a process and not a worker thread (issue 15): a worker thread at nice
 * 19 still had its isolate's GC and JIT work done by V8's platform threads,
 * which serve every isolate of a process at the event loop's priority.
 * Measured per warm 20 MB compaction on the loaded 2-core machine (CPU of
 * each thread from /proc, 4 runs each): the server's threads other than the
 * event loop spent a median 96 ms (10% live) and 196 ms (90% live) of CPU at
 * nice 0 with the worker thread, whose own thread spent 41–131 ms at nice
 * 19; with the rewrite in this process, 19 and 77 ms (the swap's file
 * operations in the thread pool and the reaper). As Redis's fork for its AOF
 * rewrite, every thread of the child runs low (thread-priority.ts).
 *
 * The child starts with the store (Compactor.start) when it already holds
 * COMPACTION_WORKER_MIN_BYTES of sealed segments (else at the first rewrite
 * that large): a fork held the event loop 20–136 ms on the loaded machine
 * (libuv waits for the child's exec), better paid at open than in the
 * middle of serving. It is one per store, unref'd while idle (ref'd while a
 * rewrite runs), killed by the compactor's stop(); it exits by itself when
 * the server dies (its IPC channel closes, or its parent pid changes, which
 * it checks between steps), so an orphan cannot go on writing outputs.
 *
 * What crosses, over Node's IPC channel with V8 serialization: the job
 * (input names — the child opens the sealed inputs by path, which the
 * compactor keeps in place until the swap), then the liveness snapshot's
 * pairs in chunks; progress, at most every PROGRESS_EVERY_MS; the moves, in
 * chunks as the rewrite makes them, and the outputs' sparse-index entries,
 * in chunks at the end; then the outcome (output descriptors: the child
 * fsyncs and closes its outputs, and the event loop reopens them by name
 * for the swap), or an error, rebuilt on the event loop with its class
 * (CorruptionError), code and errno so it surfaces as an in-process rewrite
 * error would. Cancellation is a message the rewrite reads between steps (it
 * then deletes its outputs and fails). If the child dies mid-rewrite, that
 * rewrite fails, its `*.compacting` files stay for the next open's sweep,
 * and the next rewrite starts another child.
 *
 * Why chunks (issue 15): a message is serialized, and parsed on arrival
 * (one Buffer.concat of all its pieces, then a copy per typed array), in one
 * synchronous piece of the event loop. With the moves and snapshot sent
 * whole, sending the job and receiving the outcome were the longest stalls
 * a compaction caused (CPU profile of bench:compaction, 18k keys: 13–20 ms
 * and 13–39 ms on the loaded machine). A chunk is at most IPC_CHUNK_BYTES;
 * the event loop sends the snapshot's chunks one per loop turn, and the
 * child keeps at most IPC_CHUNKS_IN_FLIGHT chunks unacknowledged, so one
 * turn of the loop never parses more than that however large the run.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorruptionError } from '../../errors.js';
import { compactingFile } from '../filenames.js';
import { nodeFs } from '../fs.js';
import { SparseIndex } from '../sparse-index.js';
import { fullTurn } from './loop.js';
import { MOVE_BYTES, Moves, type MovesChunk, movesChunkSpan } from './moves.js';
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
import { lowerEveryThread, lowerThread } from './thread-priority.js';
import { traced } from './trace.js';
import { warmUpRewrite } from './warm-up.js';

/**
 * V8 flags of the child. `--single-threaded`: its GC and JIT work runs on
 * its main thread, not on V8's platform threads beside it, so the rewrite
 * never takes more than one core (issue 15). On the 2-core test machine,
 * per 20 MB compaction at 90% live, its platform threads had spent 147 ms
 * of CPU next to the main thread's 300 ms (`/proc/PID/task/*`): a third of
 * the time the child held the second core too, and the event loop, woken
 * onto a core running a nice-19 platform thread, waited for it (an ftrace
 * of sched_switch saw it wait behind them up to 10 ms, until a timer tick,
 * in user mode). The rewrite itself was no slower without them (idle
 * compaction time, 5 alternating pairs, BENCHMARKS.md "Compaction").
 */
export const REWRITE_V8_FLAGS: readonly string[] = ['--single-threaded'];

/** Least time between two progress messages from the child, in ms. */
const PROGRESS_EVERY_MS = 20;
/**
 * Most payload bytes of one chunk message (snapshot pairs, moves, index
 * entries): parsed in ~0.1 ms, and within one 64 KiB read of the channel.
 */
const IPC_CHUNK_BYTES = 48 * 1024;
/** Chunks the child sends before it waits for the event loop's acknowledgement. */
const IPC_CHUNKS_IN_FLIGHT = 2;
/** Snapshot pairs per chunk (two u32s each). */
const PAIRS_PER_CHUNK = IPC_CHUNK_BYTES / 8;
/** Index entries per chunk (two f64s each). */
const INDEX_ENTRIES_PER_CHUNK = IPC_CHUNK_BYTES / 16;
/** Moves per chunk: a power of two, so a chunk never crosses a page of the rewrite's Moves. */
export const MOVES_PER_CHUNK = movesChunkSpan(IPC_CHUNK_BYTES);
const CHILD_TAG = 'segkv-rewrite';

interface WireOutput extends Omit<OutputSegment, 'index'> {
  indexInterval: number;
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

/** From the child. `moves` and `index` are chunks: the event loop acknowledges each. */
type Reply =
  | { type: 'progress'; progress: RewriteProgress }
  | { type: 'moves'; chunk: MovesChunk }
  | {
      type: 'index';
      output: number;
      /** Index of the chunk's first entry among the output's `total`. */
      at: number;
      total: number;
      relOffsets: Float64Array;
      positions: Float64Array;
    }
  | {
      type: 'done';
      outputs: WireOutput[];
      /** Moves sent in chunks before this message. */
      movesCount: number;
      expired: ExpiredLive;
      bytesRead: number;
      cpuMs: number;
      sleptMs: number;
    }
  | { type: 'error'; error: WireError }
  | { type: 'warmed-up' };

/**
 * To the child: a job (its snapshot left out), then its `liveChunks` chunks
 * of snapshot pairs; the rewrite starts with the last chunk.
 */
type Request =
  | { type: 'job'; job: RewriteJob; liveChunks: number }
  | { type: 'live'; input: number; pairs: Uint32Array }
  | { type: 'cancel' }
  | { type: 'ack' }
  | { type: 'warm-up' };

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
  if (w.stack) err.stack = `${w.stack}\n    (in the compaction's rewrite process)`;
  return err;
}

/**
 * This file as the child runs it: the built .js. From TypeScript sources
 * (vitest) that is its build under dist/ (`npm run build` first).
 */
function childFile(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return here;
  const built = fileURLToPath(
    new URL('../../../dist/src/engine/compaction/rewrite-process.js', import.meta.url),
  );
  if (!existsSync(built))
    throw new Error(
      `the compaction's rewrite process needs the build of ${here}: run npm run build (no ${built})`,
    );
  return built;
}

/** A rewrite's outcome from the child, with what its rewrite thread spent. */
export interface ProcessOutcome extends RewriteOutcome {
  /** CPU time of the child's rewrite thread during the rewrite, ms (its wall time where that cannot be read). */
  cpuMs: number;
  /** Time the child slept to keep within compaction.cpuShare, ms. */
  sleptMs: number;
}

interface Pending {
  dir: string;
  resolve(o: ProcessOutcome): void;
  reject(err: Error): void;
  onProgress(p: RewriteProgress): void;
  /** The moves received so far. */
  moves: Moves;
  /** Per output, its index entries as they arrive. */
  indexes: { relOffsets: Float64Array; positions: Float64Array }[];
}

/** Where the chunk messages of one RewriteProcess go and how large they were (the tests read it). */
export interface ChunkCounts {
  /** Chunk messages received from the child (moves, index entries) since the process started. */
  received: number;
  /** Chunk messages sent to it (snapshot pairs). */
  sent: number;
  /** Largest payload of any one chunk, either way, in bytes. */
  maxBytes: number;
}

/** The event loop's side: one child, one job at a time. */
export class RewriteProcess {
  private child: ChildProcess | undefined;
  private pending: Pending | undefined;
  /** The child's warm-up (prewarm), settled when it reports the end of it or dies. */
  private warming: { done: Promise<void>; resolve(): void } | undefined;
  readonly chunks: ChunkCounts = { received: 0, sent: 0, maxBytes: 0 };

  /** Runs a rewrite in the child; its outputs are reopened here for the swap. */
  run(job: RewriteJob, onProgress: (p: RewriteProgress) => void): Promise<ProcessOutcome> {
    if (this.pending) return Promise.reject(new Error('a rewrite is already running in the rewrite process'));
    const c = this.start();
    return new Promise<ProcessOutcome>((resolve, reject) => {
      const p: Pending = { dir: job.dir, resolve, reject, onProgress, moves: new Moves(), indexes: [] };
      this.pending = p;
      refs(c, true); // a pending rewrite keeps the server alive, as an in-process one does
      const inputs = job.inputs.map((i) => ({ ...i, fd: -1 })); // descriptors are this process's
      const chunks: { input: number; pairs: Uint32Array }[] = [];
      job.live.forEach((pages, input) => {
        for (const page of pages)
          for (let at = 0; at < page.length; at += 2 * PAIRS_PER_CHUNK)
            chunks.push({ input, pairs: page.subarray(at, at + 2 * PAIRS_PER_CHUNK) });
      });
      const t = performance.now();
      c.send({ type: 'job', job: { ...job, inputs, live: [] }, liveChunks: chunks.length } satisfies Request);
      traced('worker.send-job', t);
      void this.sendLive(c, p, chunks);
    });
  }

  /** The snapshot's chunks, one per loop turn (the first not in the job's), while `p` is still the rewrite running. */
  private async sendLive(c: ChildProcess, p: Pending, chunks: { input: number; pairs: Uint32Array }[]) {
    for (const { input, pairs } of chunks) {
      await fullTurn();
      if (this.pending !== p || this.child !== c || !c.connected) return;
      const t = performance.now();
      c.send({ type: 'live', input, pairs } satisfies Request);
      this.counted('sent', pairs.byteLength);
      traced('worker.send-live', t);
    }
  }

  private counted(way: 'sent' | 'received', bytes: number): void {
    this.chunks[way]++;
    if (bytes > this.chunks.maxBytes) this.chunks.maxBytes = bytes;
  }

  /**
   * Starts the child now (the store's open), so no rewrite pays for the
   * fork, and has it warm up (warm-up.ts), so no rewrite pays for V8's
   * compilation of the rewrite's code. A rewrite sent meanwhile waits for it.
   */
  prewarm(): void {
    if (this.child) return;
    const c = this.start();
    let resolve = () => {};
    const done = new Promise<void>((r) => {
      resolve = r;
    });
    this.warming = { done, resolve };
    refs(c, true); // as a rewrite does: a process waiting for the warm-up (settleBackground) must not exit first
    c.send({ type: 'warm-up' } satisfies Request);
  }

  /** Resolves when the warm-up prewarm() started is over (or its process gone); at once without one. */
  get warmedUp(): Promise<void> {
    return this.warming?.done ?? Promise.resolve();
  }

  private warmUpOver(): void {
    if (!this.warming) return;
    this.warming.resolve();
    this.warming = undefined;
    if (this.child && !this.pending) refs(this.child, false);
  }

  /**
   * The child's pid while it lives: one process serves every rewrite of the
   * store; undefined before it starts and after terminate() or its death
   * (the next run starts another).
   */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Makes a running rewrite stop at its next step (it deletes its outputs and fails). */
  cancel(): void {
    if (this.pending && this.child?.connected) this.child.send({ type: 'cancel' } satisfies Request);
  }

  /** Stops the child (after cancel() and the rewrite's end, at the store's close). */
  async terminate(): Promise<void> {
    const c = this.child;
    this.child = undefined;
    this.warmUpOver();
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((resolve) => c.once('exit', resolve));
    // Ref'd while it dies: an unref'd child's exit let a process end before its own pending IPC writes went out.
    refs(c, true);
    c.kill('SIGKILL');
    await exited;
  }

  private start(): ChildProcess {
    if (this.child) return this.child;
    const t = performance.now();
    const c = fork(childFile(), [CHILD_TAG], {
      serialization: 'advanced',
      // Not the server's flags (--inspect, --cpu-prof, a test runner's loaders). V8 without
      // background tasks (REWRITE_V8_FLAGS): the child never runs on more than one core.
      execArgv: [...REWRITE_V8_FLAGS],
      // None of the server's: a child holding the server's stdout or stderr kept them open past
      // the server's death (a supervisor or test waiting for them waited for the orphan too).
      // Its errors come back as messages; its death fails the rewrite with its exit code.
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    });
    // Its main thread before it runs much of its start-up; the threads it starts inherit that.
    if (c.pid !== undefined) lowerThread(c.pid);
    traced('worker.start', t);
    refs(c, false);
    c.on('message', (m: Reply) => this.onReply(c, m));
    const lost = (err: Error) => {
      if (this.child === c) {
        this.child = undefined;
        this.warmUpOver();
      }
      this.finish()?.reject(err);
    };
    c.on('error', (err) => lost(err));
    c.on('exit', (code, signal) =>
      lost(
        new Error(`the compaction's rewrite process exited (${signal ?? `code ${code}`}) during a rewrite`),
      ),
    );
    this.child = c;
    return c;
  }

  private finish(): Pending | undefined {
    const p = this.pending;
    this.pending = undefined;
    if (this.child) refs(this.child, false);
    return p;
  }

  private onReply(c: ChildProcess, m: Reply): void {
    if (m.type === 'warmed-up') {
      if (this.child === c) this.warmUpOver();
      return;
    }
    if (m.type === 'progress') {
      this.pending?.onProgress(m.progress);
      return;
    }
    if (m.type === 'moves' || m.type === 'index') {
      const t = performance.now();
      // Acknowledged even when no rewrite waits for it (one that failed meanwhile): the child counts them.
      if (c.connected) c.send({ type: 'ack' } satisfies Request);
      const p = this.pending;
      if (m.type === 'moves') {
        this.counted('received', m.chunk.slot.length * MOVE_BYTES);
        p?.moves.append(m.chunk);
      } else {
        this.counted('received', m.relOffsets.byteLength + m.positions.byteLength);
        if (p) {
          if (m.at === 0)
            p.indexes[m.output] = {
              relOffsets: new Float64Array(m.total),
              positions: new Float64Array(m.total),
            };
          const index = p.indexes[m.output]!;
          index.relOffsets.set(m.relOffsets, m.at);
          index.positions.set(m.positions, m.at);
        }
      }
      traced('worker.chunk', t);
      return;
    }
    const t = performance.now();
    const p = this.finish();
    if (!p) return;
    if (m.type === 'error') {
      p.reject(fromWire(m.error));
      return;
    }
    if (p.moves.count !== m.movesCount) {
      p.reject(new Error(`the rewrite process sent ${p.moves.count} of its ${m.movesCount} moves`));
      return;
    }
    const opened: number[] = [];
    let outputs: OutputSegment[];
    try {
      // The index entries are kept as the typed arrays that came (copying them into arrays took 20–25 ms).
      outputs = m.outputs.map(({ indexInterval, ...o }, k) => {
        const fd = nodeFs.open(join(p.dir, compactingFile(o.name)), 'r+');
        opened.push(fd);
        const e = p.indexes[k] ?? { relOffsets: new Float64Array(0), positions: new Float64Array(0) };
        return {
          ...o,
          fd,
          index: SparseIndex.ofEntries(o.baseOffset, indexInterval, e.relOffsets, e.positions),
        };
      });
    } catch (err) {
      for (const fd of opened) nodeFs.close(fd);
      p.reject(err as Error);
      return;
    }
    p.resolve({
      outputs,
      moves: p.moves,
      expired: m.expired,
      bytesRead: m.bytesRead,
      cpuMs: m.cpuMs,
      sleptMs: m.sleptMs,
    });
    traced('worker.done', t);
  }
}

/** Whether the child (its process handle and its IPC channel) keeps this process alive. */
function refs(c: ChildProcess, on: boolean): void {
  const channel = c.channel as { ref?(): void; unref?(): void } | null | undefined;
  if (on) {
    c.ref();
    channel?.ref?.();
  } else {
    c.unref();
    channel?.unref?.();
  }
}

// ---- the child's side ------------------------------------------------------------

/**
 * The child's messages in order: chunks go out while fewer than
 * IPC_CHUNKS_IN_FLIGHT await the event loop's acknowledgement; the
 * messages behind them wait their turn.
 */
class Outbox {
  private readonly queue: { m: Reply; chunk: boolean }[] = [];
  private inFlight = 0;

  post(m: Reply, chunk: boolean): void {
    this.queue.push({ m, chunk });
    this.pump();
  }

  acked(): void {
    this.inFlight--;
    this.pump();
  }

  /** Forgets what is not sent yet (its rewrite failed). */
  drop(): void {
    this.queue.length = 0;
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      if (next.chunk && this.inFlight >= IPC_CHUNKS_IN_FLIGHT) return;
      this.queue.shift();
      if (next.chunk) this.inFlight++;
      process.send!(next.m);
    }
  }
}

async function serve(job: RewriteJob, outbox: Outbox, isCancelled: () => boolean): Promise<void> {
  const clock = threadCpuClock();
  const cpu0 = clock.read();
  const pacer = new CpuPacer(job.cpuShare, clock.read);
  let sleptMs = 0;
  let sentAt = Number.NEGATIVE_INFINITY;
  let unsent: RewriteProgress | undefined;
  let movesSent = 0;
  /** The moves made since the last call, in chunks of MOVES_PER_CHUNK (`all`: the rest too). */
  const sendMoves = (moves: Moves, all: boolean) => {
    while (moves.count - movesSent >= MOVES_PER_CHUNK || (all && moves.count > movesSent)) {
      const to = Math.min(moves.count, movesSent + MOVES_PER_CHUNK);
      outbox.post({ type: 'moves', chunk: moves.chunk(movesSent, to) }, true);
      movesSent = to;
    }
  };
  const inputs: typeof job.inputs = [];
  const host: RewriteHost = {
    pause: () => {
      const ms = pacer.delayMs();
      if (ms <= 0) return new Promise((resolve) => setImmediate(resolve));
      sleptMs += ms;
      return new Promise((resolve) => setTimeout(resolve, ms));
    },
    isCancelled,
    onProgress: (p) => {
      unsent = p;
      const now = performance.now();
      if (now - sentAt < PROGRESS_EVERY_MS) return;
      sentAt = now;
      unsent = undefined;
      process.send!({ type: 'progress', progress: p } satisfies Reply);
    },
    onMoves: (moves) => sendMoves(moves, false),
  };
  try {
    for (const i of job.inputs) inputs.push({ ...i, fd: openSync(join(job.dir, i.name), 'r') });
    const o = await rewriteSegments(nodeFs, { ...job, inputs }, host);
    if (unsent) process.send!({ type: 'progress', progress: unsent } satisfies Reply); // the last figures
    for (const out of o.outputs) closeSync(out.fd); // fsynced by the rewrite; the event loop reopens them
    sendMoves(o.moves, true);
    o.outputs.forEach(({ index }, output) => {
      const relOffsets = Float64Array.from(index.relOffsets);
      const positions = Float64Array.from(index.positions);
      const total = relOffsets.length;
      for (let at = 0; at < total; at += INDEX_ENTRIES_PER_CHUNK) {
        const end = Math.min(total, at + INDEX_ENTRIES_PER_CHUNK);
        const chunk = { relOffsets: relOffsets.subarray(at, end), positions: positions.subarray(at, end) };
        outbox.post({ type: 'index', output, at, total, ...chunk }, true);
      }
    });
    const outputs: WireOutput[] = o.outputs.map(({ index, ...rest }) => ({
      ...rest,
      fd: -1,
      indexInterval: index.intervalBytes,
    }));
    outbox.post(
      {
        type: 'done',
        outputs,
        movesCount: o.moves.count,
        expired: o.expired,
        bytesRead: o.bytesRead,
        cpuMs: clock.read() - cpu0,
        sleptMs,
      },
      false,
    );
  } catch (err) {
    outbox.drop();
    outbox.post({ type: 'error', error: toWire(err) }, false);
  } finally {
    for (const i of inputs) closeSync(i.fd);
    clock.close();
  }
}

if (process.argv[2] === CHILD_TAG && process.send) {
  lowerEveryThread(); // the threads started before this line (thread-priority.ts)
  const parent = process.ppid;
  let cancelled = false;
  const outbox = new Outbox();
  /** A job whose snapshot chunks are still arriving. */
  let receiving: { job: RewriteJob; remaining: number } | undefined;
  /** The warm-up (warm-up.ts) if one was asked for: a job starts once it is over. */
  let warmedUp: Promise<void> = Promise.resolve();
  // The server is gone: stop now. Its next open sweeps the outputs.
  process.on('disconnect', () => process.exit(0));
  const orphaned = () => !process.connected || process.ppid !== parent;
  process.on('message', (m: Request) => {
    switch (m.type) {
      case 'ack':
        outbox.acked();
        return;
      case 'warm-up':
        warmedUp = warmUpRewrite().then(() => outbox.post({ type: 'warmed-up' }, false));
        return;
      case 'cancel':
        cancelled = true;
        if (receiving) {
          receiving = undefined;
          const err = new Error('compaction cancelled: the store is closing');
          outbox.post({ type: 'error', error: toWire(err) }, false);
        }
        return;
      case 'job':
        cancelled = false;
        receiving = { job: { ...m.job, live: m.job.inputs.map(() => []) }, remaining: m.liveChunks };
        break;
      case 'live':
        if (!receiving) return; // its job was cancelled
        receiving.job.live[m.input]!.push(m.pairs);
        receiving.remaining--;
        break;
    }
    if (receiving && receiving.remaining === 0) {
      const job = receiving.job;
      receiving = undefined;
      void warmedUp.then(() => serve(job, outbox, () => cancelled || orphaned()));
    }
  });
}
