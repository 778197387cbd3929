/**
 * The swap: makes a rewrite's outputs current, atomically across crashes.
 *
 * Protocol (ARCHITECTURE.md "Compaction swap" has it with the crash cases):
 *   0. The outputs `<base>.{seg,hint,index}.compacting` are written and fsynced (rewrite.ts).
 *   1. verify    — on the event loop, after flushing pending writes: if a write
 *                  was undone since the rewrite began (the only way the keydir
 *                  moves backwards), check that every live record of the inputs
 *                  is among the outputs and every dropped deletion is still
 *                  shadowed. Else abort.
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
 * Steps 1–3 run synchronously: no foreground write interleaves with them.
 */
import { join } from 'node:path';
import { CorruptionError } from '../../errors.js';
import {
  COMPACTION_MANIFEST,
  compactingFile,
  hintFile,
  indexFile,
  segmentFile,
  tempFile,
} from '../filenames.js';
import type { Fs } from '../fs.js';
import { recordSize } from '../record.js';
import { Segment } from '../segment.js';
import type { Store } from '../store.js';
import { decodeManifest, encodeManifest, type Manifest } from './manifest.js';
import type { RewriteResult } from './rewrite.js';

/** Named steps of the protocol; a test hook can crash the process at each. */
export type SwapStep =
  | 'outputs-written'
  | 'verified'
  | 'committed'
  | 'files-swapped'
  | 'keydir-swapped'
  | 'done';

/** The swap stopped before its commit point: the store is exactly as it was. */
export class SwapAborted extends Error {}

/**
 * The swap failed after its commit point: the manifest stands, the next open
 * finishes the swap. The outputs must not be deleted.
 */
export class SwapIncomplete extends Error {}

/** Step 3: idempotent file moves for a committed manifest. */
export function applyManifestFiles(fs: Fs, dir: string, m: Manifest): void {
  const outputs = new Set(m.outputs);
  for (const base of m.outputs) {
    for (const name of [hintFile(base), indexFile(base), segmentFile(base)]) {
      const from = join(dir, compactingFile(name));
      if (fs.exists(from)) fs.rename(from, join(dir, name));
    }
  }
  for (const base of m.inputs) {
    if (outputs.has(base)) continue;
    for (const name of [segmentFile(base), hintFile(base), indexFile(base)]) {
      const path = join(dir, name);
      if (fs.exists(path)) fs.unlink(path);
    }
  }
  fs.fsyncDir(dir);
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
  store: Store,
  inputs: readonly Segment[],
  result: RewriteResult,
  onStep: (step: SwapStep) => void,
): Promise<Segment[]> {
  const { fs } = store.options;
  const dir = store.dir;
  const kd = store.keydir;
  const { moves, outputs } = result;
  onStep('outputs-written');

  // 1. verify
  // The keydir only moves forward (to newer records) except when a refused
  // write is undone. So unless that happened since the rewrite began, every
  // input record the keydir points at was live when the rewrite read it (and
  // kept), and every deletion it dropped is still shadowed: nothing to check.
  store.flushPending();
  if (store.rollbacks !== result.rollbacksAtStart) {
    // By the slot the rewrite saw (Keydir.moveSlotIfAt says why that is exact): no key hashing here.
    const movedBytes: number[] = [];
    for (let i = 0; i < moves.keys.length; i++) {
      const slot = moves.slots[i]!;
      const seg = moves.fromSegment[i]!;
      if (kd.segmentOf(slot) === seg && kd.positionOf(slot) === moves.fromPosition[i]) {
        movedBytes[seg] = (movedBytes[seg] ?? 0) + recordSize(moves.keys[i]!.length, moves.valueLength[i]!);
      }
    }
    for (const seg of inputs) {
      if (seg.liveBytes !== (movedBytes[seg.id] ?? 0)) {
        throw new SwapAborted(
          `${seg.name} has live records the rewrite did not keep (a write was undone meanwhile)`,
        );
      }
    }
    for (const key of result.shadowedBy) {
      if (kd.slot(key) < 0)
        throw new SwapAborted('a deletion the rewrite dropped is needed again (a write was undone)');
    }
  }
  onStep('verified');

  // 2. commit
  const manifest: Manifest = {
    inputs: inputs.map((s) => s.baseOffset),
    outputs: outputs.map((o) => o.baseOffset),
  };
  const data = encodeManifest(manifest);
  const tmp = join(dir, tempFile(COMPACTION_MANIFEST));
  if (fs.exists(tmp)) fs.unlink(tmp);
  try {
    const fd = fs.open(tmp, 'wx');
    try {
      fs.write(fd, data, 0, data.length, 0);
      fs.fsyncSync(fd);
    } finally {
      fs.close(fd);
    }
    fs.rename(tmp, join(dir, COMPACTION_MANIFEST));
  } catch (err) {
    // Not committed: the store is as it was, and no half-written manifest is left behind.
    try {
      if (fs.exists(tmp)) fs.unlink(tmp);
    } catch {
      // Swept at the next open.
    }
    throw err;
  }
  try {
    fs.fsyncDir(dir);
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
    return await finish(store, inputs, result, manifest, onStep);
  } catch (err) {
    throw new SwapIncomplete(
      `the compaction committed but could not finish its swap (${(err as Error).message}); restart to complete it`,
      { cause: err },
    );
  }
}

/** Keydir entries moved per event-loop turn in step 4. */
const MOVES_PER_STEP = 16384;

async function finish(
  store: Store,
  inputs: readonly Segment[],
  result: RewriteResult,
  manifest: Manifest,
  onStep: (step: SwapStep) => void,
): Promise<Segment[]> {
  const { fs } = store.options;
  const dir = store.dir;
  const kd = store.keydir;
  const { moves, outputs } = result;

  // 3. files
  for (const o of outputs) fs.close(o.fd);
  applyManifestFiles(fs, dir, manifest);
  onStep('files-swapped');

  // 4. keydir
  const fresh = outputs.map((o) => {
    const seg = new Segment(fs, dir, o.name, o.baseOffset, fs.open(join(dir, o.name), 'r'), o.size);
    seg.sealed = true;
    seg.hinted = true;
    seg.index = o.index;
    seg.records = o.records;
    seg.lastOffset = o.lastOffset;
    store.addSegment(seg);
    return seg;
  });
  store.replaceSegments(inputs, fresh);
  const move = (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const key = moves.keys[i]!;
      const out = fresh[moves.toOutput[i]!]!;
      const size = recordSize(key.length, moves.valueLength[i]!);
      if (
        kd.moveSlotIfAt(
          moves.slots[i]!,
          moves.fromSegment[i]!,
          moves.fromPosition[i]!,
          out.id,
          moves.toPosition[i]!,
        )
      ) {
        store.segments[moves.fromSegment[i]!]!.liveBytes -= size;
        out.liveBytes += size;
      }
    }
  };
  // In slices, so the event loop keeps serving (a single pass held it ~50 ms
  // for 900k keys). Meanwhile reads find a key in its input or its output:
  // both are open and hold the same record.
  const rollbacks = store.rollbacks;
  const n = moves.keys.length;
  for (let i = 0; i < n; i += MOVES_PER_STEP) {
    move(i, Math.min(n, i + MOVES_PER_STEP));
    if (i + MOVES_PER_STEP < n) await new Promise((resolve) => setImmediate(resolve));
  }
  // An undone write restores the location the key had when it was written:
  // possibly an input record this pass had not moved yet (and that the rewrite
  // kept, since it was live). One more pass moves those.
  store.flushPending();
  if (store.rollbacks !== rollbacks) move(0, n);
  const stranded = inputs.filter((s) => s.liveBytes !== 0);
  if (stranded.length > 0) {
    // Cannot happen by the reasoning above; if it does, keep the inputs open so reads stay right until a restart.
    throw new Error(
      `keydir entries still point into ${stranded.map((s) => s.name).join(', ')} after the swap`,
    );
  }
  store.retireSegments(inputs);
  onStep('keydir-swapped');

  // 5. done
  fs.unlink(join(dir, COMPACTION_MANIFEST));
  fs.fsyncDir(dir);
  onStep('done');
  return fresh;
}
