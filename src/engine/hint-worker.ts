/**
 * The hint of a full segment, built in a worker thread from the segment's
 * file, so that neither a set nor sealing spends event-loop time on it: the
 * active segment keeps no hint while written (only its sparse index), and at
 * sealing the worker reads the segment back (from the page cache: it was
 * just written), checks each record's CRC, keeps each key's last record and
 * returns the hint file's bytes (header included, hint.ts), which the sealer
 * writes under a temporary name as before (sealer.ts). A scan that meets a
 * damaged record returns the problem instead, as the event loop's scan does.
 *
 * Only with the real file system (`nodeFs`): MemFs and the crash tests'
 * wrappers cannot be shared with a thread, so there the active segment's hint
 * is built as its records are appended (hint-builder.ts). Both give the same
 * bytes: each key's last record in the segment, in record order (test/engine/hint-worker.test.ts).
 *
 * This one module is both sides, like compaction/rewrite-worker.ts: the
 * worker runs this same file. It reads through the segment's own
 * descriptor (a process's descriptors are shared by its threads; the sealer
 * retains the segment until the reply). One worker per process, shared by
 * its stores (scans answered in the order asked), started at the first
 * seal, unref'd while idle and ref'd while a scan is pending; it holds
 * nothing between scans, so it is never stopped. A crash before the hint is written costs a scan of
 * the segment at the next open (recovery.ts), which then writes its hint.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { type Fs, nodeFs } from './fs.js';
import { HintWriter } from './hint.js';
import { scanRecords } from './segment.js';
import { SEGMENT_HEADER_BYTES } from './segment-header.js';

const WORKER_TAG = 'segkv-hint';

/** A segment to scan: its descriptor, bytes and base offset. */
export interface HintScanJob {
  fd: number;
  size: number;
  baseOffset: number;
}

/** The hint file's bytes, or the first damaged record's position and what is wrong with it. */
export type HintScanResult = { hint: Buffer } | { problem: { position: number; reason: string } };

type Reply = {
  id: number;
  hint?: Uint8Array;
  problem?: { position: number; reason: string };
  error?: string;
};

/** Wrappers of nodeFs whose descriptors are the process's own (markRealFiles). */
const realFiles = new WeakSet<Fs>();

/**
 * Marks `fs`, a wrapper of nodeFs (its descriptors are real ones), as one
 * whose segments' hints the worker may build (tests: nodeFs without fsyncs).
 */
export function markRealFiles(fs: Fs): Fs {
  realFiles.add(fs);
  return fs;
}

/** Whether a store on `fs` builds hints in the worker: nodeFs, or a wrapper marked by markRealFiles. */
export function scansInWorker(fs: Fs): boolean {
  return fs === nodeFs || realFiles.has(fs);
}

/**
 * The hint of a segment by scanning it (with `fs`'s reads, in this thread):
 * each key's last record, in record order. What the worker runs.
 */
export function scanHint(fs: Fs, job: HintScanJob): HintScanResult {
  const hint = new HintWriter();
  const last = new Map<string, number>(); // key → its entry number so far
  const r = scanRecords(fs, job.fd, SEGMENT_HEADER_BYTES, job.size, (rec) => {
    const h = rec.header;
    const earlier = last.get(rec.key);
    if (earlier !== undefined) hint.drop(earlier);
    // The record's flags as they are, as the builder keeps them (hint-builder.ts).
    last.set(rec.key, hint.add(rec.key, h.offset, rec.position, h.valueLength, h.expiresAt, h.flags));
  });
  if (r.problem) return { problem: r.problem };
  return { hint: hint.finish(job.baseOffset) };
}

/**
 * This file as the worker runs it: the built .js. From TypeScript sources
 * (vitest) that is its build under dist/ (`npm run build` first).
 */
function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return here;
  const built = fileURLToPath(new URL('../../dist/src/engine/hint-worker.js', import.meta.url));
  if (!existsSync(built))
    throw new Error(`the hint worker needs the build of ${here}: run npm run build (no ${built})`);
  return built;
}

interface Pending {
  resolve(r: HintScanResult): void;
  reject(err: Error): void;
}

/** The event loop's side: one worker, scans answered in the order asked. */
export class HintWorker {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  /** Scans a segment in the worker. The caller keeps `job.fd` open until this settles. */
  scan(job: HintScanJob): Promise<HintScanResult> {
    const w = this.start();
    const id = this.nextId++;
    return new Promise<HintScanResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.ref(); // a pending scan keeps the process alive, as one on the event loop would
      w.postMessage({ id, job });
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(workerFile(), { workerData: { tag: WORKER_TAG } });
    w.unref();
    w.on('message', (m: Reply) => this.onReply(m));
    const lost = (err: Error) => {
      if (this.worker === w) this.worker = undefined;
      const all = [...this.pending.values()];
      this.pending.clear();
      for (const p of all) p.reject(err);
    };
    w.on('error', (err) => lost(err));
    w.on('exit', (code) => lost(new Error(`the hint worker exited (code ${code})`)));
    this.worker = w;
    return w;
  }

  private onReply(m: Reply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (this.pending.size === 0) this.worker?.unref();
    if (m.error !== undefined) p.reject(new Error(`${m.error} (in the hint worker thread)`));
    else if (m.problem) p.resolve({ problem: m.problem });
    else {
      const h = m.hint!;
      p.resolve({ hint: Buffer.from(h.buffer, h.byteOffset, h.byteLength) });
    }
  }
}

let shared: HintWorker | undefined;

/** The process's hint worker, shared by its stores (started at the first scan, never keeping the process alive while idle). */
export function sharedHintWorker(): HintWorker {
  shared ??= new HintWorker();
  return shared;
}

// ---- the worker's side ------------------------------------------------------------

function serve(id: number, job: HintScanJob): void {
  const port = parentPort!;
  try {
    const r = scanHint(nodeFs, job);
    if ('problem' in r) {
      port.postMessage({ id, problem: r.problem } satisfies Reply);
      return;
    }
    // Its own ArrayBuffer, transferred (a small Buffer may sit in Node's shared pool).
    let h: Uint8Array = r.hint;
    if (h.byteOffset !== 0 || h.byteLength !== h.buffer.byteLength) h = new Uint8Array(h);
    port.postMessage({ id, hint: h } satisfies Reply, [h.buffer as ArrayBuffer]);
  } catch (err) {
    port.postMessage({ id, error: err instanceof Error ? err.message : String(err) } satisfies Reply);
  }
}

if (!isMainThread && (workerData as { tag?: string } | null)?.tag === WORKER_TAG) {
  parentPort!.on('message', (m: { id: number; job: HintScanJob }) => serve(m.id, m.job));
}
