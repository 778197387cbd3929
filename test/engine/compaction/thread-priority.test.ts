/**
 * thread-priority.ts: the event loop lowers a thread it just started (one
 * that never lowers itself), and a thread lowers itself. Linux only: the
 * nice value is read back from /proc/self/task/<tid>/stat.
 */
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { lowerNewThread, threadIds } from '../../../src/engine/compaction/thread-priority.js';
import { COMPACTION_WORKER_NICE } from '../../../src/engine/limits.js';

/** A thread's nice value: field 19 of its stat line (the 17th after the command's closing parenthesis). */
function niceOf(tid: number): number {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** Starts a worker that runs `first` (a promise's expression) then reports its thread id and sleeps. */
async function sleeper(first = 'Promise.resolve()'): Promise<{ worker: Worker; tid: number }> {
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     const fs = require('node:fs');
     (${first}).then(() => {
       parentPort.postMessage(Number(fs.readlinkSync('/proc/thread-self').split('/').pop()));
       setTimeout(() => {}, 60_000);
     });`,
    { eval: true },
  );
  const tid = await new Promise<number>((resolve) => worker.once('message', resolve));
  return { worker, tid };
}

describe.runIf(process.platform === 'linux')('the compaction worker thread priority', () => {
  // The event loop's own priority, which new threads inherit (0 unless the tests run under nice).
  const mainNice = niceOf(process.pid);

  it('lowerNewThread lowers the one thread started since the ids were read, and no other', async () => {
    const before = threadIds();
    expect(before.has(process.pid), 'the main thread is listed').toBe(true);
    const worker = new Worker('setTimeout(() => {}, 60_000)', { eval: true });
    try {
      expect(lowerNewThread(before)).toBe(true);
      const added = [...threadIds()].filter((t) => !before.has(t));
      expect(added.length).toBe(1);
      expect(niceOf(added[0]!)).toBe(COMPACTION_WORKER_NICE);
      expect(niceOf(process.pid), 'the event loop keeps its priority').toBe(mainNice);
    } finally {
      await worker.terminate();
    }
  });

  it('lowerNewThread lowers nothing when no thread, or more than one, started', async () => {
    expect(lowerNewThread(threadIds())).toBe(false);
    const before = threadIds();
    const a = await sleeper();
    const b = await sleeper();
    try {
      expect(lowerNewThread(before)).toBe(false);
      expect(niceOf(a.tid)).toBe(mainNice);
      expect(niceOf(b.tid)).toBe(mainNice);
    } finally {
      await a.worker.terminate();
      await b.worker.terminate();
    }
  });

  it('lowerThisThread lowers the calling thread only', async () => {
    const url = new URL('../../../dist/src/engine/compaction/thread-priority.js', import.meta.url).href;
    const { worker, tid } = await sleeper(`import(${JSON.stringify(url)}).then((m) => m.lowerThisThread())`);
    try {
      expect(niceOf(tid)).toBe(COMPACTION_WORKER_NICE);
      expect(niceOf(process.pid)).toBe(mainNice);
    } finally {
      await worker.terminate();
    }
  });
});
