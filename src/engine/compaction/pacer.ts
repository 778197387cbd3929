/**
 * The rewrite worker's CPU budget (`compaction.cpuShare`): a token bucket
 * over the rewrite process's rewriting thread's own CPU time, as RocksDB's rate limiter and
 * Kafka's cleaner throttler (`log.cleaner.io.max.bytes.per.second`) meter
 * bytes. Between two steps of the rewrite the worker asks `delayMs()`: the
 * budget grows by `share` ms of CPU per ms of wall time (at most
 * COMPACTION_CPU_BURST_MS ahead), each step spends what the thread used,
 * and while the budget is below zero the worker sleeps until it is back.
 *
 * Why CPU time and not bytes: the foreground's stalls during compaction
 * are the event loop waiting for a CPU (bench:compaction's stall trace),
 * and the rewrite's CPU is mostly the kernel's page-cache copies of its
 * reads and writes, so CPU time meters both. The thread's own CPU time
 * (Linux: /proc/thread-self/schedstat) does not count time spent waiting
 * for a CPU, so a worker the scheduler already holds back is not held back
 * twice. Where it cannot be read, the wall time of the steps stands in
 * (stricter: it counts those waits too).
 *
 * Runs in the rewrite process only (rewrite-process.ts); the in-thread rewrite (small runs, test
 * file systems) is paced by its ~1 ms steps and full loop turns instead.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { COMPACTION_CPU_BURST_MS } from '../limits.js';

/** Reads a thread's CPU time in ms (monotonic). */
export type CpuClock = () => number;

export class CpuPacer {
  /** CPU ms the thread may still spend before it must sleep (negative: owed). */
  private budget = 0;
  private lastCpu: number;
  private lastWall: number;

  constructor(
    /** Share of one CPU, (0, 1]; 1 never sleeps. */
    private readonly share: number,
    private readonly cpu: CpuClock,
    private readonly wall: () => number = () => performance.now(),
  ) {
    this.lastCpu = cpu();
    this.lastWall = this.wall();
  }

  /** After a step: ms to sleep before the next one (0: go on). */
  delayMs(): number {
    if (this.share >= 1) return 0;
    const cpu = this.cpu();
    const wall = this.wall();
    this.budget = Math.min(
      COMPACTION_CPU_BURST_MS,
      this.budget + (wall - this.lastWall) * this.share - (cpu - this.lastCpu),
    );
    this.lastCpu = cpu;
    this.lastWall = wall;
    return this.budget < 0 ? -this.budget / this.share : 0;
  }
}

/**
 * The calling thread's CPU clock: the first field of
 * /proc/thread-self/schedstat (ns on a CPU), or, where that cannot be read,
 * the wall clock. `close()` releases the file.
 */
export function threadCpuClock(): { read: CpuClock; close(): void; measured: boolean } {
  let fd = -1;
  try {
    fd = openSync('/proc/thread-self/schedstat', 'r');
  } catch {
    return { read: () => performance.now(), close: () => {}, measured: false };
  }
  const buf = Buffer.alloc(64);
  const read = () => {
    const n = readSync(fd, buf, 0, buf.length, 0);
    let ns = 0;
    for (let i = 0; i < n; i++) {
      const c = buf[i]!;
      if (c < 48 || c > 57) break;
      ns = ns * 10 + (c - 48);
    }
    return ns / 1e6;
  };
  return {
    read,
    close: () => {
      if (fd >= 0) closeSync(fd);
      fd = -1;
    },
    measured: true,
  };
}
