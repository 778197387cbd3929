/**
 * thread-priority.ts: a process lowers every one of its threads (V8's
 * platform threads included), and the server lowers a child's main thread
 * from outside, without lowering itself. Linux only: nice values are read
 * back from /proc/<pid>/task/<tid>/stat.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lowerThread } from '../../../src/engine/compaction/thread-priority.js';
import { COMPACTION_WORKER_NICE } from '../../../src/engine/limits.js';

/** A thread's nice value: field 19 of its stat line (the 17th after the command's closing parenthesis). */
function niceOf(pid: number, tid = pid): number {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

function tasks(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map(Number);
}

/** A node child that runs `first` (a promise's expression), prints "ready" and sleeps. */
async function sleeper(first = 'Promise.resolve()'): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', `await (${first}); console.log('ready'); setTimeout(() => {}, 60_000);`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`the child exited (${code})`)));
  });
  return child;
}

describe.runIf(process.platform === 'linux')('the rewrite process priority', () => {
  // The test process's own priority, which children inherit (0 unless the tests run under nice).
  const mainNice = niceOf(process.pid);

  it('lowerEveryThread lowers every thread of the calling process, V8 platform threads included', async () => {
    const url = new URL('../../../dist/src/engine/compaction/thread-priority.js', import.meta.url).href;
    const child = await sleeper(`import(${JSON.stringify(url)}).then((m) => m.lowerEveryThread())`);
    try {
      const tids = tasks(child.pid!);
      expect(tids.length, "Node's threads: main, V8 platform, ...").toBeGreaterThan(4);
      for (const tid of tids) expect(niceOf(child.pid!, tid), `thread ${tid}`).toBe(COMPACTION_WORKER_NICE);
      for (const tid of tasks(process.pid)) expect(niceOf(process.pid, tid)).toBe(mainNice);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it("lowerThread(pid) lowers a child's main thread only, and not the caller", async () => {
    const child = await sleeper();
    try {
      expect(lowerThread(child.pid!)).toBe(true);
      expect(niceOf(child.pid!)).toBe(COMPACTION_WORKER_NICE);
      const others = tasks(child.pid!).filter((t) => t !== child.pid);
      expect(others.length).toBeGreaterThan(0);
      for (const tid of others)
        expect(niceOf(child.pid!, tid), 'threads started before keep theirs').toBe(mainNice);
      expect(niceOf(process.pid)).toBe(mainNice);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
