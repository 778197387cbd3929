/**
 * bench:server's server CPU per request (tools/bench/server-procs.ts
 * cpuMs): a process's user + system time from /proc/PID/stat, all its
 * threads, counted from the fields after the command name (which may hold
 * spaces and parentheses).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { cpuMs } from '../../tools/bench/server-procs.js';

describe('cpuMs', () => {
  it('counts the CPU a process spends, not the time it sleeps', async () => {
    // Spins until it has used 400 ms of CPU (however loaded the machine), says so, then sleeps.
    // Named with a space and a ')' so a naive split of /proc/PID/stat would read the wrong fields.
    const script =
      'process.title = "busy (x) y"; const cpu = () => { const u = process.cpuUsage(); return u.user + u.system; };' +
      'while (cpu() < 400_000); process.stdout.write("spun\\n"); setTimeout(() => {}, 30_000);';
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await once(child.stdout!, 'data');
      const spun = cpuMs(child.pid!);
      expect(spun).toBeGreaterThanOrEqual(390); // 400 ms less one clock tick
      await new Promise((r) => setTimeout(r, 500));
      expect(cpuMs(child.pid!) - spun).toBeLessThan(100);
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  });

  it('is NaN for a process that is not there', () => {
    expect(cpuMs(2 ** 22 + 12345)).toBeNaN();
  });
});
