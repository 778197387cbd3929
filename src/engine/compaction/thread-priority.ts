/**
 * The compaction worker's CPU priority (COMPACTION_WORKER_NICE, Linux
 * only: elsewhere the worker keeps the process's priority).
 *
 * Lowered twice. From outside, by the event loop, right after `new
 * Worker` returns: the thread exists by then, and it is the one thread id
 * in /proc/self/task that was not there just before. That covers the
 * worker's own start-up — Node's bootstrap of a worker environment and the
 * loading of rewrite-worker.ts, ~85 ms of the thread's CPU on the 2-core
 * test machine, against ~55–105 ms for a 20 MB rewrite itself — which ran
 * at the event loop's priority while the worker could only lower itself
 * from its first line of code. From inside, as the worker module's first
 * statement, for when the outside look found no single new thread (another
 * thread started at the same moment).
 *
 * What neither can lower: V8's platform threads (background JIT
 * compilation and GC helpers) serve every isolate in the process, the event
 * loop's included, and keep the process's priority.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { COMPACTION_WORKER_NICE } from '../limits.js';

const TASKS = '/proc/self/task';

/** The process's thread ids now (empty where /proc cannot be read). */
export function threadIds(): Set<number> {
  try {
    return new Set(readdirSync(TASKS).map(Number));
  } catch {
    return new Set();
  }
}

/**
 * Lowers the priority of the one thread not in `before`; false when there
 * is not exactly one (or the OS refused).
 */
export function lowerNewThread(before: Set<number>): boolean {
  if (before.size === 0) return false;
  const added = [...threadIds()].filter((tid) => !before.has(tid));
  return added.length === 1 && lower(added[0]!);
}

/** Lowers the calling thread's priority (Linux: its id from /proc/thread-self). */
export function lowerThisThread(): boolean {
  try {
    return lower(Number(readlinkSync('/proc/thread-self').split('/').pop()));
  } catch {
    return false;
  }
}

function lower(tid: number): boolean {
  if (!Number.isSafeInteger(tid) || tid <= 0) return false;
  try {
    setPriority(tid, COMPACTION_WORKER_NICE);
    return true;
  } catch {
    return false; // not allowed: keep the default priority
  }
}
