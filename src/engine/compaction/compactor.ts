/**
 * The compaction scheduler: runs one compaction at a time, automatically by
 * policy (policy.ts) every `checkIntervalMs` and at most once per
 * `minIntervalMs`, or on demand (`store.compact()`). A failed run leaves the
 * store as it was (rewrite.ts deletes its outputs; swap.ts aborts before its
 * commit point), is logged with its cause, counted in stats, and retried with
 * exponential backoff (KAFKA-8725: a cleaner that dies silently while the disk
 * grows).
 *
 * Progress is emitted on the store as 'compaction' events:
 *   { phase: 'start', reason, segments, bytes, prefix, lastOffset, holdSwap }
 *     (prefix: the run starts at the oldest segment, so it drops every
 *     tombstone up to lastOffset, its last input's last offset; emitted
 *     synchronously before the rewrite reads anything — the replication
 *     tombstone horizon is raised from it. holdSwap(promise), called by a
 *     listener during the event: the swap does not begin until the promise
 *     resolves, and the run fails before its commit point, outputs deleted,
 *     if it rejects — how the horizon's file write, started here, is made
 *     durable before any output can be: replication/horizon.ts)
 *   { phase: 'progress', segmentsDone, segmentsTotal, bytesDone, bytesTotal }
 *   { phase: 'done', result } | { phase: 'error', error }
 */
import type { Logger } from 'pino';
import { CorruptionError, KvError } from '../../errors.js';
import { nodeFs } from '../fs.js';
import { COMPACTION_WORKER_MIN_BYTES } from '../limits.js';
import type { Segment } from '../segment.js';
import type { CompactionHost } from './host.js';
import { fullTurn } from './loop.js';
import { warmUpLoopSide } from './loop-warm-up.js';
import type { CompactionOptions } from './options.js';
import { type CompactionChoice, choose, everything } from './policy.js';
import { Reaper } from './reaper.js';
import { abortOutputs } from './rewrite.js';
import { rewrite } from './rewrite-host.js';
import { RewriteProcess } from './rewrite-process.js';
import { SwapIncomplete, swap } from './swap.js';
import { traced } from './trace.js';

export { type CompactionOptions, DEFAULT_COMPACTION } from './options.js';

export interface CompactionResult {
  reason: CompactionChoice['reason'];
  segmentsIn: number;
  segmentsOut: number;
  keysKept: number;
  bytesRead: number;
  bytesWritten: number;
  reclaimedBytes: number;
  durationMs: number;
  /** CPU time of the rewrite process's thread that ran the rewrite, ms; null when it ran on the event loop. */
  workerCpuMs: number | null;
  /** Time that process slept to keep within compaction.cpuShare, ms. */
  workerSleptMs: number;
}

export interface CompactionStats {
  running: boolean;
  runs: number;
  failures: number;
  bytesRead: number;
  bytesWritten: number;
  reclaimedBytes: number;
  lastDurationMs: number;
  lastRunAt: number;
  lastError: string | null;
  progress: { segmentsDone: number; segmentsTotal: number; bytesDone: number; bytesTotal: number } | null;
}

export class Compactor {
  readonly stats: CompactionStats = {
    running: false,
    runs: 0,
    failures: 0,
    bytesRead: 0,
    bytesWritten: 0,
    reclaimedBytes: 0,
    lastDurationMs: 0,
    lastRunAt: 0,
    lastError: null,
    progress: null,
  };
  private current: Promise<CompactionResult | undefined> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Set when a swap failed past its commit point: no compaction until a restart finishes it. */
  private incomplete: SwapIncomplete | undefined;
  private failuresInARow = 0;
  private nextAutoAt = 0;
  /** Frees the compacted-away files' blocks a few MiB per loop turn after their close. */
  private readonly reaper: Reaper;
  /** Where the rewrite runs with the real file system (rewrite-host.ts). */
  private readonly rewriter = new RewriteProcess();
  /** The event loop's warm-up of its compaction passes, started at open (loop-warm-up.ts). */
  private loopWarmUp: Promise<void> = Promise.resolve();

  constructor(
    private readonly host: CompactionHost,
    private readonly options: CompactionOptions,
    private readonly log: Logger,
  ) {
    this.reaper = new Reaper(host.segmentLog.options.fs, log);
  }

  start(): void {
    // The rewrite process starts with a store that already holds enough sealed bytes for a
    // rewrite there, not in the middle of serving; else at the first such rewrite (rewrite-process.ts).
    const log = this.host.segmentLog;
    const sealed = log.ordered.reduce((n, s) => (s.sealed ? n + s.size : n), 0);
    if (log.options.fs === nodeFs && sealed >= COMPACTION_WORKER_MIN_BYTES) {
      this.rewriter.prewarm();
      // The event loop's side of a compaction too (loop-warm-up.ts): a bug there must not fail the open.
      this.loopWarmUp = warmUpLoopSide(() => this.stopped).catch((err: unknown) =>
        this.log.warn({ err }, "the compaction's event-loop warm-up failed"),
      );
    }
    if (!this.options.auto) return;
    this.timer = setInterval(() => this.tick(), this.options.checkIntervalMs).unref();
  }

  /**
   * Resolves when the warm-ups started at open, if any, are over: the
   * rewrite process's (rewrite-process.ts prewarm) and the event loop's
   * (loop-warm-up.ts).
   */
  get warmedUp(): Promise<void> {
    return Promise.all([this.rewriter.warmedUp, this.loopWarmUp]).then(() => {});
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.rewriter.cancel();
    await this.current?.catch(() => {});
    await this.rewriter.terminate();
    await this.reaper.stop();
  }

  private tick(): void {
    if (this.current || this.stopped || Date.now() < this.nextAutoAt) return;
    const choice = choose(this.figures(), this.options);
    if (!choice) return;
    void this.run(choice).catch(() => {});
  }

  /** Sealed segments in offset order with their figures; the active one last and never compactable. */
  private figures() {
    return this.host.segmentLog.ordered.map((s) => ({
      baseOffset: s.baseOffset,
      bytes: s.size,
      deadBytes: s.deadBytes,
      compactable: s.sealed && s.hinted,
    }));
  }

  /**
   * Compacts the whole log now: seals the active segment, waits for its hint,
   * then merges every sealed segment. Waits for a running compaction first.
   */
  async compactAll(): Promise<CompactionResult | undefined> {
    do {
      while (this.current) await this.current.catch(() => {});
      if (this.stopped) throw this.incomplete ?? new KvError('CLOSED', 'the store is closing');
      this.host.sealActive();
      await this.host.settleBackground();
      // The compaction's start in a turn of its own, not after the sealing's last piece (issue 15).
      await fullTurn();
      // An automatic run may have started while we waited: never run two at once.
    } while (this.current);
    if (this.stopped) throw this.incomplete ?? new KvError('CLOSED', 'the store is closing');
    const choice = everything(this.figures());
    if (!choice) return undefined;
    return this.run({ ...choice, reason: 'manual' });
  }

  private run(choice: CompactionChoice): Promise<CompactionResult | undefined> {
    const p = this.runOnce(choice);
    this.current = p;
    void p.then(
      () => {
        if (this.current === p) this.current = undefined;
      },
      () => {
        if (this.current === p) this.current = undefined;
      },
    );
    return p;
  }

  private async runOnce(choice: CompactionChoice): Promise<CompactionResult | undefined> {
    const host = this.host;
    const inputs: Segment[] = host.segmentLog.ordered.slice(choice.from, choice.to);
    const prefix = choice.from === 0;
    const t0 = performance.now();
    const bytesIn = inputs.reduce((n, s) => n + s.size, 0);
    this.stats.running = true;
    this.stats.lastRunAt = Date.now();
    this.nextAutoAt = Date.now() + this.options.minIntervalMs;
    const holds: Promise<unknown>[] = [];
    host.emit('compaction', {
      phase: 'start',
      reason: choice.reason,
      segments: inputs.length,
      bytes: bytesIn,
      prefix,
      lastOffset: inputs[inputs.length - 1]?.lastOffset ?? -1,
      holdSwap: (until: Promise<unknown>) => {
        until.catch(() => {}); // awaited before the swap; a run that fails earlier never looks
        holds.push(until);
      },
    });
    this.log.info({ reason: choice.reason, segments: inputs.length, bytes: bytesIn }, 'compaction started');
    for (const s of inputs) s.retain();
    traced('compactor.start', t0);
    try {
      // The start's pieces each in a turn of their own (issue 15): a first compaction runs all of
      // this code cold (V8 compiles each function at its first call), ~3 ms of the loop in one piece.
      await fullTurn();
      const result = await rewrite(
        host,
        inputs,
        prefix,
        (p) => {
          this.stats.progress = p;
          host.emit('compaction', { phase: 'progress', ...p });
        },
        () => this.stopped,
        this.rewriter,
      );
      let fresh: Segment[];
      try {
        await Promise.all(holds);
        fresh = await swap(host, inputs, result, this.options.onStep ?? (() => {}), this.reaper);
      } catch (err) {
        if (err instanceof SwapIncomplete) {
          // Past the commit point: the outputs are the truth now. Stop compacting until a restart finishes the swap.
          this.stopped = true;
          this.incomplete = err;
          this.log.fatal({ err }, err.message);
        } else {
          abortOutputs(host.segmentLog.options.fs, host.segmentLog.dir, result.outputs);
        }
        throw err;
      }
      const tAfter = performance.now();
      const bytesOut = fresh.reduce((n, s) => n + s.size, 0);
      const r: CompactionResult = {
        reason: choice.reason,
        segmentsIn: inputs.length,
        segmentsOut: fresh.length,
        keysKept: result.moves.count,
        bytesRead: result.bytesRead,
        bytesWritten: bytesOut,
        reclaimedBytes: bytesIn - bytesOut,
        durationMs: Math.round(performance.now() - t0),
        workerCpuMs: Number.isNaN(result.workerCpuMs) ? null : Math.round(result.workerCpuMs),
        workerSleptMs: Math.round(result.workerSleptMs),
      };
      const st = this.stats;
      st.runs++;
      st.bytesRead += r.bytesRead;
      st.bytesWritten += r.bytesWritten;
      st.reclaimedBytes += r.reclaimedBytes;
      st.lastDurationMs = r.durationMs;
      st.lastError = null;
      this.failuresInARow = 0;
      this.log.info(r, `compaction reclaimed ${r.reclaimedBytes} bytes in ${r.durationMs} ms`);
      host.emit('compaction', { phase: 'done', result: r });
      traced('compactor.after-swap', tAfter);
      return r;
    } catch (err) {
      if (err instanceof CorruptionError) this.host.segmentLog.noteCorruptRead(err, false);
      this.stats.failures++;
      this.stats.lastError = err instanceof Error ? err.message : String(err);
      this.failuresInARow++;
      const backoff = Math.min(
        this.options.maxBackoffMs,
        this.options.checkIntervalMs * 2 ** this.failuresInARow,
      );
      this.nextAutoAt = Date.now() + backoff;
      if (!this.stopped) {
        this.log.error(
          { err, retryInMs: backoff },
          'compaction failed; the store is unchanged and it will be retried',
        );
        host.emit('compaction', { phase: 'error', error: err });
      }
      throw err;
    } finally {
      const tRelease = performance.now();
      for (const s of inputs) s.release();
      traced('compactor.release-inputs', tRelease);
      // The inputs nobody else reads are closed now: free their space before reporting done (Bitcask #249).
      await this.reaper.settle();
      this.stats.running = false;
      this.stats.progress = null;
    }
  }
}
