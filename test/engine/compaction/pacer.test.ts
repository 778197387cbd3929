/**
 * The compaction worker's CPU budget (compaction/pacer.ts) with hand-driven
 * clocks: it lets the thread run while its CPU stays within `share` of the
 * wall time (plus COMPACTION_CPU_BURST_MS), asks for exactly the sleep that
 * pays back what it overspent, does not hold back a thread that waited
 * for a CPU instead of using one, and never sleeps at share 1.
 */
import { describe, expect, it } from 'vitest';
import { CpuPacer, threadCpuClock } from '../../../src/engine/compaction/pacer.js';
import { COMPACTION_CPU_BURST_MS } from '../../../src/engine/limits.js';

function clocks() {
  const c = { cpu: 0, wall: 0 };
  return { c, cpu: () => c.cpu, wall: () => c.wall };
}

describe('CpuPacer', () => {
  it('asks for the sleep that brings the CPU used back to share x wall time', () => {
    const { c, cpu, wall } = clocks();
    const p = new CpuPacer(0.25, cpu, wall);
    // 1 ms steps of pure CPU: 0.25 ms earned per ms, 0.75 ms owed per step.
    c.cpu += 1;
    c.wall += 1;
    expect(p.delayMs()).toBeCloseTo(3, 9); // 0.75 owed / 0.25
    // It slept the 3 ms: 0.75 earned, back to zero.
    c.wall += 3;
    expect(p.delayMs()).toBe(0);
    // Over many steps with the sleeps it asks for, CPU / wall converges to the share.
    for (let i = 0; i < 1000; i++) {
      c.cpu += 1;
      c.wall += 1;
      c.wall += p.delayMs();
    }
    expect(c.cpu / c.wall).toBeGreaterThan(0.249);
    expect(c.cpu / c.wall).toBeLessThanOrEqual(0.25 + COMPACTION_CPU_BURST_MS / c.wall);
  });

  it('lets a burst of COMPACTION_CPU_BURST_MS through after an idle spell, not more', () => {
    const { c, cpu, wall } = clocks();
    const p = new CpuPacer(0.5, cpu, wall);
    c.wall += 10_000; // idle for 10 s: the budget is capped, not 5 s of CPU
    expect(p.delayMs()).toBe(0);
    c.cpu += COMPACTION_CPU_BURST_MS;
    c.wall += COMPACTION_CPU_BURST_MS;
    // Spent the burst, earned half of it back: still ahead.
    expect(p.delayMs()).toBe(0);
    c.cpu += COMPACTION_CPU_BURST_MS;
    c.wall += COMPACTION_CPU_BURST_MS;
    // 2 x burst spent, 2 x burst x 0.5 earned, the burst in hand: exactly used up; the next step goes below.
    expect(p.delayMs()).toBe(0);
    c.cpu += 2;
    c.wall += 2;
    expect(p.delayMs()).toBeCloseTo(2, 9); // 1 ms owed / 0.5
  });

  it('does not sleep for time the thread spent waiting for a CPU rather than on one', () => {
    const { c, cpu, wall } = clocks();
    const p = new CpuPacer(0.25, cpu, wall);
    // A step that took 4 ms of wall but only 1 ms on a CPU (the scheduler held it back).
    c.cpu += 1;
    c.wall += 4;
    expect(p.delayMs()).toBe(0);
  });

  it('never sleeps at share 1', () => {
    const { c, cpu, wall } = clocks();
    const p = new CpuPacer(1, cpu, wall);
    for (let i = 0; i < 100; i++) {
      c.cpu += 5;
      c.wall += 1; // more CPU than wall (cannot happen for one thread, still no sleep)
      expect(p.delayMs()).toBe(0);
    }
  });
});

describe('threadCpuClock', () => {
  it("reads this thread's CPU time: it grows with work done and not with sleeping", async () => {
    const clock = threadCpuClock();
    try {
      const wallStart = performance.now();
      const a = clock.read();
      const until = performance.now() + 30;
      let x = 0;
      while (performance.now() < until) x += Math.sqrt(x + 1);
      const b = clock.read();
      const wall = performance.now() - wallStart;
      expect(b).toBeGreaterThan(a);
      if (clock.measured) {
        // The kernel brings a running thread's schedstat up to date at its
        // scheduler ticks (and switches), so each read may lag by up to one
        // tick (4 ms at HZ=250, 10 ms at HZ=100): CPU time can show as more
        // than the wall time between the two reads by that much, never more.
        const tickMs = 10;
        expect(b - a).toBeLessThanOrEqual(wall + tickMs);
        await new Promise((r) => setTimeout(r, 50));
        expect(clock.read() - b, 'sleeping costs (almost) no CPU').toBeLessThan(20);
      }
      expect(x).toBeGreaterThan(0);
    } finally {
      clock.close();
    }
  });
});
