/**
 * Gives memory back once the server has gone quiet after work (issue 15;
 * ARCHITECTURE "Server memory").
 *
 * Under load V8 grows its young generation to two 16 MiB semi-spaces and
 * lets tens of MiB of dead ArrayBuffers (received chunks, outgrown tables,
 * sealed hints' chunks) wait for a major GC; idle, it runs none: after a
 * 1M-key load its own memory reducer had not acted 50 s later. So every
 * MEMORY_REDUCER_IDLE_MS the reducer looks at an activity count (bytes
 * received plus the log's next offset: clients, and a replica's feed); when
 * it has not moved for a whole interval, something happened since the last
 * reduction (or since start: recovery's buffers are garbage too), and V8's
 * heap plus external memory grew by at least
 * MEMORY_REDUCER_MIN_GROWTH_BYTES since then, it runs V8's reduce-memory
 * GC once (Heap::CollectAllAvailableGarbage, what a low-memory notification
 * runs: repeated major GCs until nothing more is freed, and the young
 * generation shrunk back to its minimum). The first requests after it grow
 * the young generation again as the load needs. A request arriving during
 * the GC waits for it (milliseconds: the keydir and the values live outside
 * V8's heap, which holds ~10 MiB at 1M keys).
 *
 * Node has no call for that GC (a plain `gc()` neither shrinks the young
 * generation nor repeats until the ArrayBuffers' holders are gone too), but
 * the inspector protocol's HeapProfiler.collectGarbage is V8's
 * LowMemoryNotification; the reducer posts it on an in-process inspector
 * session (node:inspector, no port, no domain enabled) connected for that
 * one call. (`v8.queryObjects` also runs that GC first, but then marks the
 * whole heap again to count: 345–741 ms against 40–140 ms, measured.)
 * Measured at 1M keys (kv-bench --prefill): RSS 216–222 → 162–182 MiB.
 */
import { Session } from 'node:inspector';
import v8 from 'node:v8';
import type { Logger } from 'pino';
import { unwrittenBytes } from '../engine/slabs.js';
import { MEMORY_REDUCER_IDLE_MS, MEMORY_REDUCER_MIN_GROWTH_BYTES } from '../protocol/limits.js';

/**
 * Runs V8's reduce-memory GC (see the file comment) and calls `done` after
 * it, with an error where there is no inspector (a Node built without it).
 */
export function reduceMemory(done: (err: Error | null) => void): void {
  let session: Session;
  try {
    session = new Session();
    session.connect();
  } catch (err) {
    done(err as Error);
    return;
  }
  session.post('HeapProfiler.collectGarbage', (err) => {
    // Disconnecting inside the session's own callback left the process unable to exit.
    setImmediate(() => session.disconnect());
    done(err);
  });
}

/**
 * unwrittenBytes, at most V8's external count `external`. The two move apart
 * for a moment around a freed buffer, either way: V8 may have taken its free
 * in while its FinalizationRegistry callback (which takes its share out of
 * unwrittenBytes) has not run yet, and subtracting the whole share then made
 * INFO's used_memory negative (-12 MiB, in a CI run).
 */
function unwrittenOf(external: number): number {
  return Math.min(unwrittenBytes(), external);
}

/**
 * V8's heap plus the external memory (ArrayBuffers) it tracks, in bytes,
 * less the never-written parts of big buffers (slabs.ts `unwrittenBytes`): a
 * keydir table of 8 MiB in a 36 MiB buffer counts 8 MiB, not 36.
 */
function heldBytes(): number {
  v8.getHeapStatistics(); // see usedMemoryBytes: the first read settles V8's count of freed buffers
  const h = v8.getHeapStatistics();
  return h.total_heap_size + h.external_memory - unwrittenOf(h.external_memory);
}

/**
 * What INFO reports as `used_memory` (Redis: the bytes its allocator handed
 * out): V8's live heap objects plus external memory (Buffers, typed arrays,
 * the keydir's pages and tables), less the never-written parts of big
 * buffers (slab tails, the small-value cache's arena not reached yet). Pages of node's binary, freed memory malloc keeps and thread
 * stacks are in `used_memory_rss` only, as Redis's fragmentation is.
 */
export function usedMemoryBytes(): number {
  // Read twice: after a GC, a freed buffer's share has left unwrittenBytes
  // (its FinalizationRegistry callback ran) while V8's external count still
  // holds the buffer until its ArrayBuffer sweeper's work is taken in, which
  // a heap statistics call does, after reading the count. One read right
  // after a 40k-key load gave 97 MiB, the next 26 (test/resp/info-memory).
  process.memoryUsage();
  const m = process.memoryUsage();
  return m.heapUsed + m.external - unwrittenOf(m.external);
}

export class MemoryReducer {
  /** Reductions run so far. */
  reductions = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastActivity: number;
  /** performance.now() of the check that last saw the count move (or of the start). */
  private lastMovedAt = performance.now();
  /** A reduction was asked for and has not finished. */
  private reducing = false;
  /** Activity seen since the last reduction (opening the store counts: recovery leaves garbage too). */
  private worked = true;
  /** heldBytes() right after the last reduction (0 before the first). */
  private floor = 0;

  constructor(
    /** Any count that moves while the server works (see the file comment). */
    private readonly activity: () => number,
    private readonly log: Logger,
    private readonly idleMs = MEMORY_REDUCER_IDLE_MS,
    private readonly minGrowthBytes = MEMORY_REDUCER_MIN_GROWTH_BYTES,
    /** Run just before the GC: drops buffers kept only for speed (the store's spare write chunks) so it frees them too. */
    private readonly release: () => void = () => {},
  ) {
    this.lastActivity = activity();
  }

  /** Starts the checks (the timer does not keep the process alive). */
  start(): void {
    this.timer ??= setInterval(() => this.check(), this.idleMs).unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One look (what the timer runs): reduces if the server went quiet after work. */
  check(): void {
    const now = this.activity();
    const at = performance.now();
    if (now !== this.lastActivity) {
      this.lastActivity = now;
      this.lastMovedAt = at;
      this.worked = true;
      return;
    }
    // Quiet means a whole interval of wall time: a loop turn that ran long
    // can run the interval's callback twice in a row with no I/O between.
    if (!this.worked || this.reducing || at - this.lastMovedAt < this.idleMs) return;
    this.worked = false;
    const before = heldBytes();
    if (before - this.floor < this.minGrowthBytes) return;
    const t0 = at;
    this.reducing = true;
    this.release();
    reduceMemory((err) => {
      this.reducing = false;
      this.floor = heldBytes();
      if (err !== null) {
        this.log.warn({ err }, 'idle: V8 could not be asked to give memory back; reducer off');
        this.stop();
        return;
      }
      this.reductions++;
      this.log.debug(
        { beforeBytes: before, afterBytes: this.floor, ms: Math.round(performance.now() - t0) },
        'idle: memory given back',
      );
    });
  }
}
