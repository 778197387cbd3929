/**
 * The measurements of `npm run bench:engine`, one per child process (see
 * engine.ts): each job opens an engine in a directory the parent chose, does
 * its work, and reports one result. A fresh process per job keeps the heap,
 * the JIT state and the memory figures of one job out of the next.
 *
 * Keys are 16 bytes ("key" + 13 digits of a bijective scramble of i, so
 * inserts arrive in pseudo-random order), built as flat strings; values are
 * one Buffer of `valueBytes` (default 100).
 */
import { readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { type CacheMode, type EngineName, type Mode, openEngine } from './adapters.js';

export const KEY_BYTES = 16;
export const VALUE_BYTES = 100;

export type Job =
  | {
      kind: 'sets';
      engine: EngineName;
      dir: string;
      mode: Mode;
      keys: number;
      concurrency: number;
      /** Stop issuing writes after this long; ops/s is over the writes done. */
      maxSeconds: number;
      valueBytes?: number;
      /**
       * Keys per call of the engine's batch API (putBatch), `concurrency`
       * such calls outstanding; absent: one put (one promise) per key.
       */
      batch?: number;
    }
  | {
      kind: 'gets';
      engine: EngineName;
      dir: string;
      keys: number;
      reads: number;
      cache: CacheMode;
      valueBytes?: number;
    }
  | { kind: 'restart'; engine: EngineName; dir: string; keys: number; hints: boolean; memory: boolean };

export interface SetsResult {
  ops: number;
  seconds: number;
  opsPerSec: number;
}
export interface GetsResult {
  reads: number;
  misses: number;
  seconds: number;
  opsPerSec: number;
}
export interface RestartResult {
  keys: number;
  ms: number;
  keysPerSec: number;
  /** segkv only: heap + arrayBuffers after open minus before, after gc, per key. */
  bytesPerKey?: number;
  /** segkv only: the recovery's own statistics. */
  fromHints?: number;
  scanned?: number;
}
export type JobResult = SetsResult | GetsResult | RestartResult;

/**
 * The i-th key, as a flat 16-char string: "key000" and the ten decimal
 * digits of x = the scramble of i (x < 2^32, so the first three of the 13
 * digits are always 0). The digits are integer divisions of the two
 * five-digit halves of x and the string is made in one fromCharCode: the
 * earlier loop (`x % 10` of a double above 2^31 is a float modulo, a C call,
 * then a Buffer's latin1 slice) took ~160 ns a key, ~10% of a set's time in
 * the sets rows, this ~40 ns. Same keys (test/tools/bench-keys.test.ts).
 */
export function keyOf(i: number): string {
  const x = Math.imul(i, 0x9e3779b1) >>> 0; // bijective on u32: unique keys in scrambled order
  const hi = Math.floor(x / 100000); // x's first five digits (< 42950)
  const lo = x - hi * 100000; // its last five
  const h1 = (hi / 10) | 0;
  const h2 = (h1 / 10) | 0;
  const h3 = (h2 / 10) | 0;
  const h4 = (h3 / 10) | 0;
  const l1 = (lo / 10) | 0;
  const l2 = (l1 / 10) | 0;
  const l3 = (l2 / 10) | 0;
  const l4 = (l3 / 10) | 0;
  return String.fromCharCode(
    0x6b, // k
    0x65, // e
    0x79, // y
    0x30,
    0x30,
    0x30,
    0x30 + h4,
    0x30 + h3 - h4 * 10,
    0x30 + h2 - h3 * 10,
    0x30 + h1 - h2 * 10,
    0x30 + hi - h1 * 10,
    0x30 + l4,
    0x30 + l3 - l4 * 10,
    0x30 + l2 - l3 * 10,
    0x30 + l1 - l2 * 10,
    0x30 + lo - l1 * 10,
  );
}

export function makeValue(n = VALUE_BYTES): Buffer {
  const v = Buffer.alloc(n);
  for (let i = 0; i < n; i++) v[i] = 0x61 + (i % 26);
  return v;
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('run with --expose-gc');
  for (let i = 0; i < 4; i++) g();
}

function usedBytes(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

async function runSets(job: Extract<Job, { kind: 'sets' }>): Promise<SetsResult> {
  const eng = await openEngine(job.engine, job.dir, job.mode, 'default');
  const value = makeValue(job.valueBytes);
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  const deadline = t0 + job.maxSeconds * 1000;
  const batch = job.batch ?? 0;
  const batchWriter = async () => {
    for (;;) {
      const from = next;
      if (from >= job.keys) return;
      if (performance.now() > deadline) {
        next = job.keys;
        return;
      }
      const to = Math.min(job.keys, from + batch);
      next = to;
      const keys: string[] = []; // a fresh array: an engine may read it after the call returns
      for (let i = from; i < to; i++) keys.push(keyOf(i));
      await eng.putBatch(keys, value);
      done += to - from;
    }
  };
  const writer = async () => {
    for (;;) {
      const i = next++;
      if (i >= job.keys) return;
      if ((i & 1023) === 0 && performance.now() > deadline) {
        next = job.keys;
        return;
      }
      await eng.put(keyOf(i), value);
      done++;
    }
  };
  const writers: Promise<void>[] = [];
  for (let w = 0; w < job.concurrency; w++) writers.push(batch > 0 ? batchWriter() : writer());
  await Promise.all(writers);
  const seconds = (performance.now() - t0) / 1000;
  const ops = done;
  await eng.close();
  return { ops, seconds, opsPerSec: ops / seconds };
}

async function runGets(job: Extract<Job, { kind: 'gets' }>): Promise<GetsResult> {
  const eng = await openEngine(job.engine, job.dir, 'never', job.cache);
  // Random key order, drawn before the clock starts (xorshift32, fixed seed).
  const order: string[] = new Array(job.reads);
  let s = 0x2545f491;
  for (let i = 0; i < job.reads; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    order[i] = keyOf((s >>> 0) % job.keys);
  }
  if (job.cache === 'hot' || job.cache === 'lru') for (let i = 0; i < job.keys; i++) eng.get(keyOf(i));
  let misses = 0;
  let bytes = 0;
  const t0 = performance.now();
  for (let i = 0; i < job.reads; i++) {
    const v = eng.get(order[i]!);
    if (v === undefined) misses++;
    else bytes += v.length;
  }
  const seconds = (performance.now() - t0) / 1000;
  await eng.close();
  if (bytes !== (job.reads - misses) * (job.valueBytes ?? VALUE_BYTES))
    throw new Error('a read returned a value of the wrong size');
  return { reads: job.reads, misses, seconds, opsPerSec: job.reads / seconds };
}

async function runRestart(job: Extract<Job, { kind: 'restart' }>): Promise<RestartResult> {
  if (job.engine === 'segkv' && !job.hints) {
    for (const f of readdirSync(job.dir)) if (f.endsWith('.hint')) unlinkSync(join(job.dir, f));
  }
  let before = 0;
  if (job.memory) {
    gc();
    before = usedBytes();
  }
  const t0 = performance.now();
  // The memory run measures the keydir: caches off, or the small-value cache's
  // 32 MiB arena, reserved at open (and not resident until filled), would count.
  const eng = await openEngine(job.engine, job.dir, 'never', job.memory ? 'cold' : 'default');
  // Both peers load lazily: one read makes sure the open has really finished.
  if (eng.get(keyOf(0)) === undefined) throw new Error('key 0 missing after restart');
  const ms = performance.now() - t0;
  const result: RestartResult = { keys: job.keys, ms, keysPerSec: job.keys / (ms / 1000) };
  if (job.memory) {
    gc();
    result.bytesPerKey = (usedBytes() - before) / job.keys;
  }
  if (eng.recovery) Object.assign(result, eng.recovery());
  await eng.close();
  return result;
}

export function runJob(job: Job): Promise<JobResult> {
  if (job.kind === 'sets') return runSets(job);
  if (job.kind === 'gets') return runGets(job);
  return runRestart(job);
}
