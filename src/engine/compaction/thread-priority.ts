/**
 * The rewrite process's CPU priority (COMPACTION_WORKER_NICE, Linux only:
 * elsewhere it keeps the server's priority).
 *
 * Lowered twice. From outside, by the event loop, right after the fork
 * returns (`lowerProcess`): that lowers the child's main thread for its
 * start-up (Node's bootstrap, ~40–80 ms of CPU on the 2-core test machine),
 * and every thread that main thread creates afterwards inherits it. From
 * inside, as the child's first statement (`lowerEveryThread`): V8's
 * platform threads (background JIT compilation and GC helpers) and the
 * other threads Node started before our code ran are lowered one by one,
 * so that no thread of the rewrite process keeps the server's priority.
 *
 * Why a process and not a worker thread's own priority: V8's platform
 * threads serve every isolate of a process. A worker thread at nice 19 had
 * its GC and JIT work done by those threads at the event loop's priority:
 * about twice the worker thread's own CPU (rewrite-process.ts).
 */
import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import { COMPACTION_WORKER_NICE } from '../limits.js';

/** Lowers one thread (or a process's main thread, by its pid); false if the OS refused. */
export function lowerThread(tid: number): boolean {
  if (!Number.isSafeInteger(tid) || tid <= 0) return false;
  try {
    setPriority(tid, COMPACTION_WORKER_NICE);
    return true;
  } catch {
    return false; // not allowed, or the thread is gone: keep the default priority
  }
}

/** Lowers every thread of the calling process (Linux: /proc/self/task); how many it lowered. */
export function lowerEveryThread(): number {
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return 0; // no /proc
  }
  let n = 0;
  for (const tid of tids) if (lowerThread(Number(tid))) n++;
  return n;
}
