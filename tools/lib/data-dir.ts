/**
 * The files of a data directory as the store's next open will see them, for
 * the read-only tools. Names are parsed by filenames.ts only.
 *
 * Normally that is every `<base>.seg` with its `.hint` and `.index`. While a
 * compaction's swap is half done (a committed `COMPACTION` manifest, the
 * process died before step 5), the next open rolls it forward: the outputs'
 * `.compacting` files take their final names and the other inputs go. The
 * tools see the directory that way too, so they neither count a record twice
 * nor report the overlap of old and new segments as damage. A manifest that
 * fails its checks is corruption: the store refuses to open on it.
 */
import { join } from 'node:path';
import { decodeManifest } from '../../src/engine/compaction/manifest.js';
import {
  COMPACTING_SUFFIX,
  COMPACTION_MANIFEST,
  EPOCHS_FILE,
  HORIZON_FILE,
  isTemporary,
  LOCK_FILE,
  parseLockOwnerFile,
  parseName,
  RESYNC_FILE,
} from '../../src/engine/filenames.js';
import type { Fs } from '../../src/engine/fs.js';

export interface SegmentFiles {
  baseOffset: number;
  /** File names in the directory (a `.compacting` name during a half-done swap). */
  seg: string;
  hint: string | undefined;
  index: string | undefined;
}

export interface DataDirView {
  /** In offset order; the last one is the active segment. */
  segments: SegmentFiles[];
  /** A committed compaction waits for the next open to finish its swap. */
  compactionPending: boolean;
  /** The manifest is unreadable or fails its checks: the store will not open. */
  manifestProblem: string | undefined;
  /** Leftovers and oddities that are not damage. */
  notes: string[];
}

export function viewDataDir(fs: Fs, dir: string): DataDirView {
  const view: DataDirView = { segments: [], compactionPending: false, manifestProblem: undefined, notes: [] };
  const names = fs.readdir(dir).sort();
  let replaced = new Set<number>();
  let outputs = new Set<number>();
  if (names.includes(COMPACTION_MANIFEST)) {
    let m: ReturnType<typeof decodeManifest>;
    try {
      m = decodeManifest(fs.readFile(join(dir, COMPACTION_MANIFEST)));
    } catch (err) {
      m = `cannot read the compaction manifest: ${(err as Error).message}`;
    }
    if (typeof m === 'string') view.manifestProblem = m;
    else {
      view.compactionPending = true;
      outputs = new Set(m.outputs);
      replaced = new Set(m.inputs.filter((b) => !outputs.has(b)));
      view.notes.push(
        `a compaction's swap was interrupted (${COMPACTION_MANIFEST} manifest): ` +
          'checked as the next open will see it, which finishes the swap',
      );
    }
  }

  const files = new Map<number, { seg?: string; hint?: string; index?: string }>();
  const take = (base: number, kind: 'seg' | 'hint' | 'index', name: string) => {
    let f = files.get(base);
    if (!f) files.set(base, (f = {}));
    f[kind] = name;
  };
  // Final names first, then the `.compacting` outputs of a committed swap replace them.
  for (const name of names) {
    const parsed = parseName(name);
    if (parsed) {
      if (replaced.has(parsed.baseOffset)) {
        view.notes.push(`${name} was replaced by the interrupted compaction; the next open deletes it`);
      } else take(parsed.baseOffset, parsed.kind, name);
    } else if (
      name === LOCK_FILE ||
      parseLockOwnerFile(name) !== undefined ||
      name === COMPACTION_MANIFEST ||
      name === HORIZON_FILE ||
      name === EPOCHS_FILE ||
      name === RESYNC_FILE
    ) {
      // Expected.
    } else if (!isTemporary(name)) {
      view.notes.push(`${name} is not a segkv file; ignored`);
    }
  }
  for (const name of names) {
    if (!isTemporary(name)) continue;
    const parsed = name.endsWith(COMPACTING_SUFFIX)
      ? parseName(name.slice(0, -COMPACTING_SUFFIX.length))
      : undefined;
    if (parsed && view.compactionPending && outputs.has(parsed.baseOffset))
      take(parsed.baseOffset, parsed.kind, name);
    else view.notes.push(`${name} is an unfinished write; the next open removes it`);
  }

  for (const base of [...files.keys()].sort((a, b) => a - b)) {
    const f = files.get(base)!;
    if (!f.seg) {
      for (const name of [f.hint, f.index])
        if (name) view.notes.push(`${name} has no segment; the next open removes it`);
      continue;
    }
    view.segments.push({ baseOffset: base, seg: f.seg, hint: f.hint, index: f.index });
  }
  return view;
}
