/**
 * Per-pair timeline of a loaded compaction for `bench:compaction`
 * (SEGKV_BENCH_PAIRS=FILE): while the compaction window is measured, records
 *   - each loop turn of the foreground (its timer callback): when it ran and
 *     the event loop thread's time on a CPU and waiting for one so far
 *     (/proc/thread-self/schedstat, one read per turn);
 *   - the synchronous sections the engine reports through the trace hook
 *     (compaction/trace.ts), the swap's steps and the compaction's events;
 *   - GC pauses;
 * and appends it, with the window's pairs (due time, get and set latency),
 * as one JSON line to FILE. Unlike SEGKV_BENCH_TRACE it adds no timer of its
 * own (a 1 ms interval timer wakes the loop and changes what it measures):
 * one schedstat read per foreground turn and an array push per section.
 * A reader lines each slow pair up with what ran between its due time and
 * its answer. The kernel updates a running thread's time on a CPU only at
 * scheduler events (up to a tick, 4 ms, late), so per gap between turns
 * only the wait figure is exact; for the loop's own CPU line the window up
 * (pid, monoAtZero) with a sched_switch trace of the run.
 */
import { appendFileSync } from 'node:fs';
import { listenToEngine, SchedStat } from './compaction-trace.js';

export class PairTrace {
  /** Per foreground turn: performance.now(), then the loop thread's run and wait so far, ns. */
  readonly turns: number[] = [];
  /** label, start, ms (performance.now() clock). */
  readonly sections: [string, number, number][] = [];
  /** name, performance.now(). */
  readonly marks: [string, number][] = [];
  private readonly sched = new SchedStat();
  private stopListening: (() => void) | undefined;
  private on = false;

  start(): void {
    this.on = true;
    const push = (label: string, start: number, ms: number) => this.sections.push([label, start, ms]);
    this.stopListening = listenToEngine(push, push);
  }

  /** A foreground turn began. */
  turn(): void {
    if (!this.on) return;
    const t = performance.now();
    this.sched.read();
    this.turns.push(t, this.sched.run, this.sched.wait);
  }

  mark(name: string): void {
    if (this.on) this.marks.push([name, performance.now()]);
  }

  stop(): void {
    this.on = false;
    this.stopListening?.();
    this.stopListening = undefined;
    this.sched.close();
  }

  /** Appends the window to `file` as one JSON line; `startMs` is the window's start on the performance.now() clock. */
  write(
    file: string,
    head: Record<string, unknown>,
    startMs: number,
    pairs: { getAtMs: number[]; getUs: number[]; setAtMs: number[]; setUs: number[] },
  ): void {
    appendFileSync(
      file,
      `${JSON.stringify({
        ...head,
        startMs,
        pid: process.pid,
        // CLOCK_MONOTONIC (ms) at performance.now() 0: lines the window up with a V8 CPU profile or a kernel trace.
        monoAtZero: Number(process.hrtime.bigint()) / 1e6 - performance.now(),
        get: pairs.getAtMs.map((at, i) => [at, pairs.getUs[i]]),
        set: pairs.setAtMs.map((at, i) => [at, pairs.setUs[i]]),
        turns: this.turns,
        sections: this.sections,
        marks: this.marks,
      })}\n`,
    );
  }
}
