/**
 * The swap: makes a rewrite's outputs current, atomically across crashes.
 *
 * Protocol (ARCHITECTURE.md "Compaction swap" has it with the crash cases):
 *   0. The outputs `<base>.{seg,hint,index}.compacting` are written and fsynced (rewrite.ts).
 *   1. verify    — on the event loop, after flushing pending writes: if a write
 *                  was undone since the rewrite's snapshot (the only way the
 *                  keydir moves backwards), check that every live record of the
 *                  inputs is among the outputs. Else abort. (The rewrite drops
 *                  a deletion only in a run from the oldest segment, or when an
 *                  earlier deletion of its key in the run is kept.)
 *   2. commit    — write `COMPACTION.tmp` (inputs, outputs), fsync, rename to
 *                  `COMPACTION`, fsync the directory. Before this point a crash
 *                  leaves the old set (recovery deletes `*.compacting`); after
 *                  it, the new set (recovery rolls forward from the manifest).
 *   3. files     — rename each output `.compacting` file to its final name
 *                  (replacing an input of the same name), unlink the other
 *                  inputs' files, fsync the directory. Idempotent, so recovery
 *                  can redo it from any point.
 *   4. keydir    — register the outputs; move each kept key with a
 *                  compare-and-set (a write that landed meanwhile wins), in
 *                  slices between which reads and writes go on (inputs and
 *                  outputs are both open and hold the same records); retire the
 *                  inputs once nothing points into them (closed when their last
 *                  reader lets go).
 *   5. done      — unlink `COMPACTION`, fsync the directory.
 * Steps 1–3 are short synchronous pieces with the event loop running between
 * them (the manifest's fsync, and every rename, unlink and directory fsync
 * of steps 2, 3 and 5, run in the thread pool: dir-ops.ts), so foreground
 * writes may land from the verify on. That is safe: pending writes are flushed
 * before the verify, so every later undo restores a location the keydir held
 * at or after the verify, which is either outside the inputs or a record the
 * verify vouched for (kept); step 4 moves those by compare-and-set, with a
 * second pass if an undo happened from step 3 on. Writes that stay win.
 */
import { join } from 'node:path';
import { CorruptionError } from '../../errors.js';
import { COMPACTION_MANIFEST, compactingFile, hintFile, indexFile, segmentFile } from '../filenames.js';
import type { Fs } from '../fs.js';
import type { Keydir } from '../keydir.js';
import { writeFileAtomically } from '../sealer.js';
import { Segment } from '../segment.js';
import { type DirOps, dirOps } from './dir-ops.js';
import type { CompactionHost } from './host.js';
import { fullTurn } from './loop.js';
import { decodeManifest, encodeManifest, type Manifest } from './manifest.js';
import type { Moves } from './moves.js';
import type { SwapStep } from './options.js';
import type { Reaper } from './reaper.js';
import type { RewriteResult } from './rewrite-host.js';
import { traced } from './trace.js';

export type { SwapStep } from './options.js';

/** The swap stopped before its commit point: the store is exactly as it was. */
export class SwapAborted extends Error {}

/**
 * The swap failed after its commit point: the manifest stands, the next open
 * finishes the swap. The outputs must not be deleted.
 */
export class SwapIncomplete extends Error {}

/** Step 3: idempotent file moves for a committed manifest. */
export function applyManifestFiles(fs: Fs, dir: string, m: Manifest): void {
  const { outputs, removed } = manifestFiles(m);
  for (const name of outputs) {
    const from = join(dir, compactingFile(name));
    if (fs.exists(from)) fs.rename(from, join(dir, name));
  }
  for (const name of removed) {
    const path = join(dir, name);
    if (fs.exists(path)) fs.unlink(path);
  }
  fs.fsyncDir(dir);
}

/** Step 3 as the swap runs it: the same calls as applyManifestFiles, each in the thread pool (dir-ops.ts). */
async function applyManifestFilesOffLoop(ops: DirOps, dir: string, m: Manifest): Promise<void> {
  const { outputs, removed } = manifestFiles(m);
  for (const name of outputs) {
    const from = join(dir, compactingFile(name));
    if (await ops.exists(from)) await ops.rename(from, join(dir, name));
  }
  for (const name of removed) {
    const path = join(dir, name);
    if (await ops.exists(path)) await ops.unlink(path);
  }
  await ops.fsyncDir(dir);
}

/**
 * The files a manifest's swap touches, in the order it touches them: each
 * output's files by their final names (hint and index before the segment),
 * renamed from `.compacting`; then the files of the inputs no output replaces
 * (segment first), removed. recovery's read-only view reads the same list.
 */
export function manifestFiles(m: Manifest): { outputs: string[]; removed: string[] } {
  const outputs = m.outputs.flatMap((base) => [hintFile(base), indexFile(base), segmentFile(base)]);
  const kept = new Set(m.outputs);
  const removed = m.inputs
    .filter((base) => !kept.has(base))
    .flatMap((base) => [segmentFile(base), hintFile(base), indexFile(base)]);
  return { outputs, removed };
}

/**
 * At open, before anything else: finishes a compaction that committed but did
 * not complete its swap. Returns whether there was one.
 */
export function resolveCompaction(fs: Fs, dir: string): boolean {
  const path = join(dir, COMPACTION_MANIFEST);
  if (!fs.exists(path)) return false;
  const m = decodeManifest(fs.readFile(path));
  if (typeof m === 'string') throw new CorruptionError(COMPACTION_MANIFEST, 0, m);
  applyManifestFiles(fs, dir, m);
  fs.unlink(path);
  fs.fsyncDir(dir);
  return true;
}

export async function swap(
  host: CompactionHost,
  inputs: readonly Segment[],
  result: RewriteResult,
  onStep: (step: SwapStep) => void,
  reaper: Reaper,
): Promise<Segment[]> {
  const segLog = host.segmentLog;
  const { fs } = segLog.options;
  const dir = segLog.dir;
  const kd = segLog.keydir;
  const { moves, outputs } = result;
  onStep('outputs-written');

  let t = performance.now();
  // 1. verify
  // The keydir only moves forward (to newer records) except when a refused
  // write is undone. So unless that happened since the rewrite's snapshot,
  // every input record the keydir points at was live at the snapshot (and
  // kept): nothing to check.
  host.flushPending();
  if (segLog.rollbacks !== result.rollbacksAtStart) {
    // By the slot the rewrite saw (Keydir.moveSlotIfAt says why that is exact): no key hashing here.
    const movedBytes: number[] = [];
    for (let i = 0; i < moves.count; i++) {
      const slot = moves.slot(i);
      const seg = moves.fromSegment(i);
      if (kd.segmentOf(slot) === seg && kd.positionOf(slot) === moves.fromPosition(i)) {
        movedBytes[seg] = (movedBytes[seg] ?? 0) + moves.size(i);
      }
    }
    for (const seg of inputs) {
      if (seg.liveBytes !== (movedBytes[seg.id] ?? 0)) {
        throw new SwapAborted(
          `${seg.name} has live records the rewrite did not keep (a write was undone meanwhile)`,
        );
      }
    }
  }
  traced('swap.verify', t);
  onStep('verified');
  // The verify and the commit's synchronous start (the manifest's create and write) in turns of
  // their own; writes landing in between are safe as during the manifest's fsync (see the top).
  await fullTurn();
  t = performance.now();

  // 2. commit
  const manifest: Manifest = {
    inputs: inputs.map((s) => s.baseOffset),
    outputs: outputs.map((o) => o.baseOffset),
  };
  // Its fsync waits in the thread pool (fsyncSync held the loop 1–7 ms): writes
  // and undone writes meanwhile are safe (see "Steps 1–3" at the top). If it
  // fails, nothing is committed: the store is as it was, and no half-written
  // manifest is left behind.
  await writeFileAtomically(fs, dir, COMPACTION_MANIFEST, encodeManifest(manifest));
  try {
    await dirOps(fs).fsyncDir(dir);
  } catch (err) {
    // The manifest is in place, durable or not: the outputs must stay, and the
    // next open rolls forward (or, if the rename was lost, back). Never delete them now.
    for (const o of outputs) {
      try {
        fs.close(o.fd);
      } catch {
        // already closed
      }
    }
    throw new SwapIncomplete(
      `the compaction manifest may or may not be durable (${(err as Error).message}); restart to resolve it`,
      { cause: err },
    );
  }
  onStep('committed');

  try {
    await fullTurn();
    return await finish(host, inputs, result, manifest, onStep, reaper);
  } catch (err) {
    throw new SwapIncomplete(
      `the compaction committed but could not finish its swap (${(err as Error).message}); restart to complete it`,
      { cause: err },
    );
  }
}

/**
 * Time step 4 may hold the event loop before it yields, in ms (as the
 * rewrite's STEP_MS), rather than a count of moves: slices of 16k moves
 * held it 3–5 ms each (measured, 900k keys); ~1 ms keeps a slice near the
 * rewrite's steps whatever the machine.
 */
const MOVE_STEP_MS = 1;
/** Moves between two looks at the clock. */
export const MOVES_PER_CLOCK_CHECK = 256;

/**
 * Moves [from, to) of a rewrite: each kept key whose slot still points at
 * its old place (compare-and-set: a newer write wins) goes to its output
 * (`outIds`: the outputs' segment ids by output index); the bytes moved
 * out of each input and into each output add up in `delta`, by segment id.
 * A function of its own, with no closure, so the event loop's warm-up
 * (loop-warm-up.ts) leaves V8's optimised code for it, with the same
 * shapes, before a store's first compaction.
 */
export function moveRange(
  kd: Keydir,
  moves: Moves,
  outIds: Int32Array,
  delta: Float64Array,
  from: number,
  to: number,
): void {
  for (let i = from; i < to; i++) {
    const fromSegment = moves.fromSegment(i);
    const outId = outIds[moves.toOutput(i)]!;
    if (kd.moveSlotIfAt(moves.slot(i), fromSegment, moves.fromPosition(i), outId, moves.toPosition(i))) {
      const size = moves.size(i);
      delta[fromSegment]! -= size;
      delta[outId]! += size;
    }
  }
}

/**
 * Adds a segment's moved bytes (moveRange) to its liveBytes and clears them.
 * The sum is stored as a small integer where it is one (`| 0`): a number read
 * from a Float64Array is a heap number, and storing one in `liveBytes`, a
 * small-integer field everywhere else, made V8 widen the field to a double on
 * every Segment, which deprecates the class's map and deoptimises the
 * foreground's optimised code that touches a segment (readValue, appended,
 * the slot cache's makeRoom, ...: `--trace-deopt`, "wrong map", at the
 * swap's first keydir slice of a store's first compaction), which then ran
 * unoptimised until V8 compiled it again, during and after the compaction.
 */
function takeDelta(seg: Segment, delta: Float64Array): void {
  const live = seg.liveBytes + delta[seg.id]!;
  seg.liveBytes = live === (live | 0) ? live | 0 : live;
  delta[seg.id] = 0;
}

async function finish(
  host: CompactionHost,
  inputs: readonly Segment[],
  result: RewriteResult,
  manifest: Manifest,
  onStep: (step: SwapStep) => void,
  reaper: Reaper,
): Promise<Segment[]> {
  const segLog = host.segmentLog;
  const { fs } = segLog.options;
  const dir = segLog.dir;
  const kd = segLog.keydir;
  const { moves, outputs } = result;

  // 3. files
  let t = performance.now();
  // Taken before the yields below: an undo from here on gets the second move pass.
  const rollbacks = segLog.rollbacks;
  for (const o of outputs) fs.close(o.fd);
  traced('swap.close-outputs', t);
  // Held open once more, so that freeing their blocks happens in the thread pool, not at their close (reaper.ts).
  for (const seg of inputs) reaper.hold(seg);
  await applyManifestFilesOffLoop(dirOps(fs), dir, manifest);
  onStep('files-swapped');
  await fullTurn();
  t = performance.now();

  // 4. keydir
  const fresh = outputs.map((o) => {
    const seg = new Segment(fs, dir, o.name, o.baseOffset, fs.open(join(dir, o.name), 'r'), o.size);
    seg.sealed = true;
    seg.hinted = true;
    seg.index = o.index;
    seg.records = o.records;
    seg.lastOffset = o.lastOffset;
    segLog.addSegment(seg);
    return seg;
  });
  segLog.replaceSegments(inputs, fresh);
  traced('swap.open-outputs', t);
  // Moved bytes by segment id while a slice runs, added to the segments' liveBytes at its end.
  const outIds = Int32Array.from(fresh, (seg) => seg.id);
  const delta = new Float64Array([...inputs, ...fresh].reduce((m, seg) => Math.max(m, seg.id), 0) + 1);
  const settle = () => {
    for (const seg of inputs) takeDelta(seg, delta);
    for (const seg of fresh) takeDelta(seg, delta);
  };
  // In slices, so the event loop keeps serving (a single pass held it ~50 ms
  // for 900k keys). Meanwhile reads find a key in its input or its output:
  // both are open and hold the same record.
  const n = moves.count;
  for (let i = 0; i < n; ) {
    t = performance.now();
    const until = t + MOVE_STEP_MS;
    let from = i;
    do {
      i = Math.min(n, i + MOVES_PER_CLOCK_CHECK);
      moveRange(kd, moves, outIds, delta, from, i);
      from = i;
    } while (i < n && performance.now() < until);
    settle();
    traced('swap.move-slice', t);
    await fullTurn();
  }
  // An undone write restores the location the key had when it was written:
  // possibly an input record this pass had not moved yet (and that the rewrite
  // kept, since it was live). One more pass moves those.
  t = performance.now();
  host.flushPending();
  if (segLog.rollbacks !== rollbacks) {
    moveRange(kd, moves, outIds, delta, 0, n);
    settle();
  }
  const stranded = inputs.filter((s) => s.liveBytes !== 0);
  if (stranded.length > 0) {
    // Cannot happen by the reasoning above; if it does, keep the inputs open so reads stay right until a restart.
    throw new Error(
      `keydir entries still point into ${stranded.map((s) => s.name).join(', ')} after the swap`,
    );
  }
  reaper.retire(segLog, inputs);
  traced('swap.retire', t);
  onStep('keydir-swapped');

  // 5. done
  const ops = dirOps(fs);
  await ops.unlink(join(dir, COMPACTION_MANIFEST));
  await ops.fsyncDir(dir);
  onStep('done');
  return fresh;
}
