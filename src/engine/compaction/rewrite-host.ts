/**
 * Runs a rewrite for the compactor: takes the liveness snapshot on the event
 * loop (snapshot.ts), runs `rewriteSegments` (rewrite.ts) in the store's
 * rewrite process when the store uses the real file system
 * (rewrite-process.ts) and the run has at least COMPACTION_WORKER_MIN_BYTES,
 * or on the event loop in ~1 ms steps otherwise (MemFs and the crash tests'
 * wrappers cannot be shared with another process; a small run costs less
 * than the round trip), then drops from the keydir
 * the live values the rewrite found expired, in ~1 ms slices. Same function,
 * same bytes, either way (test/engine/compaction/worker.test.ts).
 */
import { nodeFs } from '../fs.js';
import { COMPACTION_WORKER_MIN_BYTES } from '../limits.js';
import type { Segment } from '../segment.js';
import type { CompactionHost } from './host.js';
import { fullTurn } from './loop.js';
import type { Moves } from './moves.js';
import {
  type OutputSegment,
  type RewriteJob,
  type RewriteOutcome,
  type RewriteProgress,
  rewriteSegments,
} from './rewrite.js';
import type { RewriteProcess } from './rewrite-process.js';
import { liveSnapshot } from './snapshot.js';
import { traced } from './trace.js';

/** Time a slice of dropping expired keys may hold the event loop, in ms. */
const EXPIRE_STEP_MS = 1;

export interface RewriteResult {
  outputs: OutputSegment[];
  moves: Moves;
  /** The log's `rollbacks` before the snapshot: if it moved, the keydir went backwards meanwhile. */
  rollbacksAtStart: number;
  bytesRead: number;
  /** CPU time the worker's thread spent on the rewrite, ms; NaN when it ran on the event loop. */
  workerCpuMs: number;
  /** Time the worker slept to keep within compaction.cpuShare, ms (0 on the event loop). */
  workerSleptMs: number;
}

export async function rewrite(
  host: CompactionHost,
  inputs: readonly Segment[],
  prefix: boolean,
  onProgress: (p: RewriteProgress) => void,
  isCancelled: () => boolean,
  worker: RewriteProcess,
  /** Runs with fewer input bytes stay on the event loop (tests pass 0 to use the worker always). */
  workerMinBytes = COMPACTION_WORKER_MIN_BYTES,
): Promise<RewriteResult> {
  const segLog = host.segmentLog;
  const { fs, maxSegmentBytes, indexIntervalBytes, clock } = segLog.options;
  const kd = segLog.keydir;
  const rollbacksAtStart = segLog.rollbacks;
  const now = clock.now();
  const inputIds = inputs.map((s) => s.id);
  const live = await liveSnapshot(kd, inputIds);
  // Building and sending the job in a turn of its own (see Compactor.runOnce).
  await fullTurn();
  if (isCancelled()) throw new Error('compaction cancelled: the store is closing');
  const job: RewriteJob = {
    dir: segLog.dir,
    maxSegmentBytes,
    indexIntervalBytes,
    prefix,
    now,
    cpuShare: segLog.options.compaction.cpuShare,
    inputs: inputs.map((s) => ({ id: s.id, name: s.name, fd: s.fd, size: s.size })),
    live,
  };
  const bytesIn = inputs.reduce((n, s) => n + s.size, 0);
  const inChild = fs === nodeFs && bytesIn >= workerMinBytes;
  const outcome: RewriteOutcome & { cpuMs?: number; sleptMs?: number } = inChild
    ? await worker.run(job, onProgress)
    : await rewriteSegments(fs, job, { pause: fullTurn, isCancelled, onProgress });
  // The outcome's message was handled in this turn (its outputs reopened): what follows, up to the
  // swap's first wait, goes in a turn of its own (issue 15: one cold piece of the loop, 2–8 ms).
  if (inChild) await fullTurn();
  const { slots, segments, positions, keys } = outcome.expired;
  for (let i = 0; i < slots.length; ) {
    const t = performance.now();
    do {
      const slot = slots[i]!;
      if (slot < kd.slotLimit && kd.segmentOf(slot) === segments[i] && kd.positionOf(slot) === positions[i])
        host.expireKey(keys[i]!);
      i++;
    } while (i < slots.length && performance.now() < t + EXPIRE_STEP_MS);
    traced('rewrite.expire-slice', t);
    if (i < slots.length) await fullTurn();
  }
  return {
    outputs: outcome.outputs,
    moves: outcome.moves,
    rollbacksAtStart,
    bytesRead: outcome.bytesRead,
    workerCpuMs: outcome.cpuMs ?? Number.NaN,
    workerSleptMs: outcome.sleptMs ?? 0,
  };
}
