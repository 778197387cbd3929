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
 * What crosses, over Node's IPC channel with V8 serialization (typed arrays
 * copied, ~1 MB per 100k moves): the job (input names — the child opens the
 * sealed inputs by path, which the compactor keeps in place until the swap
 * — and the liveness snapshot's pair lists); progress, at most every
 * PROGRESS_EVERY_MS; the outcome (output descriptors: the child fsyncs and
 * closes its outputs, and the event loop reopens them by name for the swap;
 * the moves' pages, the outputs' sparse-index entries), or an error,
 * rebuilt on the event loop with its class (CorruptionError), code and errno
 * so it surfaces as an in-process rewrite error would. Cancellation is a
 * message the rewrite reads between steps (it then deletes its outputs and
 * fails). If the child dies mid-rewrite, that rewrite fails, its
 * `*.compacting` files stay for the next open's sweep, and the next rewrite
 * starts another child.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorruptionError } from '../../errors.js';
import { compactingFile } from '../filenames.js';
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
import { lowerEveryThread, lowerThread } from './thread-priority.js';
import { traced } from './trace.js';

/** Least time between two progress messages from the child, in ms. */
const PROGRESS_EVERY_MS = 20;
const CHILD_TAG = 'segkv-rewrite';

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
  | { type: 'progress'; progress: RewriteProgress }
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

type Request = { type: 'job'; job: RewriteJob } | { type: 'cancel' };

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
}

/** The event loop's side: one child, one job at a time. */
export class RewriteProcess {
  private child: ChildProcess | undefined;
  private pending: Pending | undefined;

  /** Runs a rewrite in the child; its outputs are reopened here for the swap. */
  run(job: RewriteJob, onProgress: (p: RewriteProgress) => void): Promise<ProcessOutcome> {
    if (this.pending) return Promise.reject(new Error('a rewrite is already running in the rewrite process'));
    const c = this.start();
    return new Promise<ProcessOutcome>((resolve, reject) => {
      this.pending = { dir: job.dir, resolve, reject, onProgress };
      refs(c, true); // a pending rewrite keeps the server alive, as an in-process one does
      const inputs = job.inputs.map((i) => ({ ...i, fd: -1 })); // descriptors are this process's
      c.send({ type: 'job', job: { ...job, inputs } } satisfies Request);
    });
  }

  /** Starts the child now (the store's open), so no rewrite pays for the fork. */
  prewarm(): void {
    this.start();
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
      // Not the server's flags (--inspect, --cpu-prof, a test runner's loaders).
      execArgv: [],
      // None of the server's: a child holding the server's stdout or stderr kept them open past
      // the server's death (a supervisor or test waiting for them waited for the orphan too).
      // Its errors come back as messages; its death fails the rewrite with its exit code.
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    });
    // Its main thread before it runs much of its start-up; the threads it starts inherit that.
    if (c.pid !== undefined) lowerThread(c.pid);
    traced('worker.start', t);
    refs(c, false);
    c.on('message', (m: Reply) => this.onReply(m));
    const lost = (err: Error) => {
      if (this.child === c) this.child = undefined;
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

  private onReply(m: Reply): void {
    if (m.type === 'progress') {
      this.pending?.onProgress(m.progress);
      return;
    }
    const t = performance.now();
    const p = this.finish();
    if (!p) return;
    if (m.type === 'error') {
      p.reject(fromWire(m.error));
      return;
    }
    const opened: number[] = [];
    let outputs: OutputSegment[];
    try {
      // The index entries are kept as the typed arrays that came (copying them into arrays took 20–25 ms).
      outputs = m.outputs.map(({ indexInterval, relOffsets, positions, ...o }) => {
        const fd = nodeFs.open(join(p.dir, compactingFile(o.name)), 'r+');
        opened.push(fd);
        return { ...o, fd, index: SparseIndex.ofEntries(o.baseOffset, indexInterval, relOffsets, positions) };
      });
    } catch (err) {
      for (const fd of opened) nodeFs.close(fd);
      p.reject(err as Error);
      return;
    }
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

async function serve(job: RewriteJob, isCancelled: () => boolean): Promise<void> {
  const send = (r: Reply) => process.send!(r);
  const clock = threadCpuClock();
  const cpu0 = clock.read();
  const pacer = new CpuPacer(job.cpuShare, clock.read);
  let sleptMs = 0;
  let sentAt = Number.NEGATIVE_INFINITY;
  let unsent: RewriteProgress | undefined;
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
      send({ type: 'progress', progress: p });
    },
  };
  try {
    for (const i of job.inputs) inputs.push({ ...i, fd: openSync(join(job.dir, i.name), 'r') });
    const o = await rewriteSegments(nodeFs, { ...job, inputs }, host);
    if (unsent) send({ type: 'progress', progress: unsent }); // the last figures, before the outcome
    for (const out of o.outputs) closeSync(out.fd); // fsynced by the rewrite; the event loop reopens them
    const outputs: WireOutput[] = o.outputs.map(({ index, ...rest }) => ({
      ...rest,
      fd: -1,
      indexInterval: index.intervalBytes,
      relOffsets: Float64Array.from(index.relOffsets),
      positions: Float64Array.from(index.positions),
    }));
    send({
      type: 'done',
      outputs,
      moves: o.moves.pages(),
      expired: o.expired,
      bytesRead: o.bytesRead,
      cpuMs: clock.read() - cpu0,
      sleptMs,
    });
  } catch (err) {
    send({ type: 'error', error: toWire(err) });
  } finally {
    for (const i of inputs) closeSync(i.fd);
    clock.close();
  }
}

if (process.argv[2] === CHILD_TAG && process.send) {
  lowerEveryThread(); // the threads started before this line (thread-priority.ts)
  const parent = process.ppid;
  let cancelled = false;
  // The server is gone: stop now. Its next open sweeps the outputs.
  process.on('disconnect', () => process.exit(0));
  const orphaned = () => !process.connected || process.ppid !== parent;
  process.on('message', (m: Request) => {
    if (m.type === 'cancel') cancelled = true;
    else {
      cancelled = false;
      void serve(m.job, () => cancelled || orphaned());
    }
  });
}
