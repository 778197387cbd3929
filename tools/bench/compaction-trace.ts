/**
 * Stall attribution for `bench:compaction` (SEGKV_BENCH_TRACE=1): while a
 * compaction runs, records
 *   - event-loop gaps: a 1 ms interval timer that fires late by > GAP_MS;
 *   - GC pauses (PerformanceObserver 'gc');
 *   - synchronous sections the engine reports through the trace hook
 *     (globalThis.__segkvTrace, set only here; see compaction/trace.ts);
 * then prints, on stderr, which sections and GCs overlap the gaps, and how
 * each gap splits between the event loop's thread running, waiting for a CPU
 * in the run queue, and neither (blocked in a system call or a page fault),
 * from the kernel's per-thread counters (/proc/thread-self/schedstat, Linux).
 * It prints the event loop's thread id and the monotonic clock at
 * performance.now() 0, so the gaps can be lined up with a kernel scheduler
 * trace (ftrace sched_switch, trace_clock mono) of the same run: that is how
 * the loop's sleeps on the port lock and in directory fsyncs were found.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';

/** A gap longer than this (ms) counts as a stall: the 1 ms timer fired this much late. */
const GAP_MS = 2;

interface Span {
  label: string;
  start: number;
  ms: number;
}

interface Gap extends Span {
  /** Of the gap, ms the thread ran on a CPU and ms it waited in the run queue (NaN when unknown). */
  runMs: number;
  waitMs: number;
}

/** The calling thread's time on a CPU and waiting for one, ns (Linux schedstat); NaN elsewhere. */
export class SchedStat {
  private fd = -1;
  private readonly buf = Buffer.alloc(128);
  run = Number.NaN;
  wait = Number.NaN;

  constructor() {
    try {
      this.fd = openSync('/proc/thread-self/schedstat', 'r');
    } catch {
      this.fd = -1;
    }
  }

  read(): void {
    if (this.fd < 0) return;
    const n = readSync(this.fd, this.buf, 0, this.buf.length, 0);
    const [run, wait] = this.buf.toString('latin1', 0, n).split(' ');
    this.run = Number(run);
    this.wait = Number(wait);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/**
 * What a thread of this process is, from its rank in thread-id order (all
 * but the event loop are named "node" in Node 20): Node starts V8's
 * DelayedTaskScheduler, then its 4 platform workers (background JIT and GC
 * helpers; --v8-pool-size), then the inspector's signal thread, then the
 * libuv pool (fs calls, e.g. fsync). Checked with --v8-pool-size=2 and
 * UV_THREADPOOL_SIZE=2; a guess for a process started with other sizes.
 */
function threadRole(rank: number): string {
  if (rank === 0) return 'event loop';
  if (rank === 1) return 'v8 delayed-tasks';
  if (rank <= 5) return 'v8 worker';
  if (rank === 6) return 'signal';
  return 'uv pool';
}

/** Every thread of this process: role, ns on a CPU, ns waiting for one (Linux; empty elsewhere). */
function threadTimes(): Map<string, { name: string; run: number; wait: number }> {
  const out = new Map<string, { name: string; run: number; wait: number }>();
  let tids: string[] = [];
  try {
    tids = readdirSync('/proc/self/task').sort((a, b) => Number(a) - Number(b));
  } catch {
    return out;
  }
  for (const [rank, tid] of tids.entries()) {
    try {
      const [run, wait] = readFileSync(`/proc/self/task/${tid}/schedstat`, 'latin1').split(' ');
      out.set(tid, { name: threadRole(rank), run: Number(run), wait: Number(wait) });
    } catch {
      // the thread exited meanwhile
    }
  }
  return out;
}

/** V8's GC kinds in a PerformanceObserver 'gc' entry's detail. */
const GC_KINDS: Record<number, string> = {
  1: 'gc.minor',
  4: 'gc.major',
  8: 'gc.incremental',
  16: 'gc.weakcb',
};

/**
 * Listens to the engine's traced sections (globalThis.__segkvTrace, see
 * compaction/trace.ts) and to GC pauses, each as (label, start, ms) on the
 * performance.now() clock, until the returned function is called.
 */
export function listenToEngine(
  onSection: (label: string, start: number, ms: number) => void,
  onGc: (label: string, start: number, ms: number) => void,
): () => void {
  (globalThis as { __segkvTrace?: (label: string, start: number) => void }).__segkvTrace = (label, start) =>
    onSection(label, start, performance.now() - start);
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
      onGc(GC_KINDS[kind] ?? `gc.${kind}`, e.startTime, e.duration);
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  return () => {
    obs.disconnect();
    (globalThis as { __segkvTrace?: unknown }).__segkvTrace = undefined;
  };
}

export class StallTrace {
  private threads0 = new Map<string, { name: string; run: number; wait: number }>();
  private readonly sections: Span[] = [];
  private readonly gcs: Span[] = [];
  private readonly gaps: Gap[] = [];
  private sched: SchedStat | undefined;
  private run0 = 0;
  private wait0 = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopListening: (() => void) | undefined;
  private usage0: NodeJS.ResourceUsage | undefined;
  private t0 = 0;
  /** CLOCK_MONOTONIC (ms) at performance.now() 0, to line the gaps up with the kernel's scheduler trace. */
  private monoAtZero = 0;

  start(): void {
    this.threads0 = threadTimes();
    this.usage0 = process.resourceUsage();
    this.t0 = performance.now();
    this.monoAtZero = Number(process.hrtime.bigint()) / 1e6 - performance.now();
    this.stopListening = listenToEngine(
      (label, start, ms) => this.sections.push({ label, start, ms }),
      (label, start, ms) => this.gcs.push({ label, start, ms }),
    );
    const sched = new SchedStat();
    this.sched = sched;
    sched.read();
    this.run0 = sched.run;
    this.wait0 = sched.wait;
    let last = performance.now();
    let lastRun = sched.run;
    let lastWait = sched.wait;
    this.timer = setInterval(() => {
      const now = performance.now();
      sched.read();
      if (now - last > 1 + GAP_MS)
        this.gaps.push({
          label: 'gap',
          start: last,
          ms: now - last,
          runMs: (sched.run - lastRun) / 1e6,
          waitMs: (sched.wait - lastWait) / 1e6,
        });
      last = now;
      lastRun = sched.run;
      lastWait = sched.wait;
    }, 1);
  }

  stop(): string {
    const u = process.resourceUsage();
    const u0 = this.usage0!;
    const ms = performance.now() - this.t0;
    this.cpu = `${ms.toFixed(0)} ms: CPU user ${((u.userCPUTime - u0.userCPUTime) / 1000).toFixed(0)} ms, system ${((u.systemCPUTime - u0.systemCPUTime) / 1000).toFixed(0)} ms; involuntary context switches ${u.involuntaryContextSwitches - u0.involuntaryContextSwitches}, voluntary ${u.voluntaryContextSwitches - u0.voluntaryContextSwitches}`;
    if (this.timer) clearInterval(this.timer);
    // Per thread, by role (threadRole): CPU and run-queue wait over the trace.
    const threads: string[] = [];
    for (const [tid, t] of threadTimes()) {
      const t0 = this.threads0.get(tid);
      const run = t.run - (t0?.run ?? 0);
      const wait = t.wait - (t0?.wait ?? 0);
      if (run < 1e6 && wait < 1e6) continue;
      const name = `${t.name} ${tid}`;
      threads.push(`${name} ${(run / 1e6).toFixed(0)}/${(wait / 1e6).toFixed(0)}`);
    }
    this.cpu += `\n  threads (ran / waited for a CPU, ms): ${threads.join(', ')}`;
    const sched = this.sched;
    if (sched) {
      sched.read();
      this.cpu += `; event-loop thread ran ${((sched.run - this.run0) / 1e6).toFixed(0)} ms, waited for a CPU ${((sched.wait - this.wait0) / 1e6).toFixed(0)} ms`;
      sched.close();
    }
    this.stopListening?.();
    return this.report();
  }

  private cpu = '';

  private report(): string {
    const lines: string[] = [this.cpu];
    const all = [...this.sections, ...this.gcs];
    const byLabel = new Map<
      string,
      { n: number; total: number; max: number; over2: number; inGaps: number }
    >();
    for (const s of all) {
      const b = byLabel.get(s.label) ?? { n: 0, total: 0, max: 0, over2: 0, inGaps: 0 };
      b.n++;
      b.total += s.ms;
      b.max = Math.max(b.max, s.ms);
      if (s.ms > 2) b.over2++;
      byLabel.set(s.label, b);
    }
    let gapTotal = 0;
    let gapRun = 0;
    let gapWait = 0;
    for (const g of this.gaps) {
      gapTotal += g.ms;
      gapRun += g.runMs;
      gapWait += g.waitMs;
      for (const s of all) {
        const o = Math.min(g.start + g.ms, s.start + s.ms) - Math.max(g.start, s.start);
        if (o > 0) byLabel.get(s.label)!.inGaps += o;
      }
    }
    const f = (x: number) => x.toFixed(2).padStart(9);
    lines.push(
      `stall trace: ${this.gaps.length} gaps > ${GAP_MS} ms late, ${gapTotal.toFixed(1)} ms in all, longest ${Math.max(0, ...this.gaps.map((g) => g.ms)).toFixed(1)} ms`,
    );
    lines.push(
      `  in the gaps the event loop's thread ran ${gapRun.toFixed(1)} ms, waited for a CPU ${gapWait.toFixed(1)} ms, was blocked ${(gapTotal - gapRun - gapWait).toFixed(1)} ms`,
    );
    // Counted by what the event loop's thread did for most of the gap: its own
    // work (ran), the machine's (waited for a CPU), or a system call or page fault (blocked).
    const by = { ran: 0, waited: 0, blocked: 0 };
    for (const g of this.gaps) {
      const blocked = g.ms - g.runMs - g.waitMs;
      if (g.runMs >= g.waitMs && g.runMs >= blocked) by.ran++;
      else if (g.waitMs >= blocked) by.waited++;
      else by.blocked++;
    }
    lines.push(
      `  gaps by what the event loop's thread mostly did: ran ${by.ran}, waited for a CPU ${by.waited}, blocked ${by.blocked}; monotonic clock at performance.now() 0: ${this.monoAtZero.toFixed(3)} ms, trace from ${this.t0.toFixed(1)}`,
    );
    lines.push(`  ${'section'.padEnd(28)}  count   total ms    max ms  >2ms  ms inside gaps`);
    for (const [label, b] of [...byLabel].sort((a, b) => b[1].inGaps - a[1].inGaps)) {
      lines.push(
        `  ${label.padEnd(28)} ${String(b.n).padStart(6)} ${f(b.total)} ${f(b.max)} ${String(b.over2).padStart(5)} ${f(b.inGaps)}`,
      );
    }
    const longest = [...this.gaps].sort((a, b) => b.ms - a.ms).slice(0, 12);
    // The gaps in which the event loop itself ran longest: its own work, whatever the machine did.
    const busiest = [...this.gaps]
      .sort((a, b) => b.runMs - a.runMs)
      .slice(0, 8)
      .filter((g) => !longest.includes(g));
    lines.push('  longest gaps, then those the event loop ran most in, with what overlaps them (ms):');
    for (const g of [...longest, ...busiest]) {
      const parts: string[] = [];
      for (const s of all) {
        const o = Math.min(g.start + g.ms, s.start + s.ms) - Math.max(g.start, s.start);
        if (o > 0.2) parts.push(`${s.label} ${o.toFixed(1)}`);
      }
      const split = `run ${g.runMs.toFixed(1)} wait ${g.waitMs.toFixed(1)} blocked ${(g.ms - g.runMs - g.waitMs).toFixed(1)}`;
      lines.push(
        `    ${g.ms.toFixed(1).padStart(6)} at ${g.start.toFixed(0)} (${split}): ${parts.join(', ') || '(nothing traced)'}`,
      );
    }
    return lines.join('\n');
  }
}
