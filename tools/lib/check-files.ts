/**
 * kv-check's checks of a segment's accelerator files against the segment's
 * records (as scanned by check.ts): the hint (each entry matches the record
 * at its position, and it holds exactly the last record of each key) and the
 * sparse index (each entry is a record start with its offset). Each returns
 * the first problem found, with its byte position in the hint or index file.
 */
import { join } from 'node:path';
import type { Fs } from '../../src/engine/fs.js';
import { decodeHint, HINT_ENTRY_BYTES, HINT_HEADER_BYTES } from '../../src/engine/hint.js';
import { toUserKey } from '../../src/engine/keys.js';
import { INDEX_INTERVAL_BYTES } from '../../src/engine/limits.js';
import { FLAG_TOMBSTONE } from '../../src/engine/record.js';
import { INDEX_ENTRY_BYTES, INDEX_HEADER_BYTES, SparseIndex } from '../../src/engine/sparse-index.js';
import type { SegmentFiles } from './data-dir.js';

/** What the scan saw at a record start. */
export interface RecordInfo {
  offset: number;
  key: string;
  valueLength: number;
  expiresAt: number;
  flags: number;
}

/** Byte ranges [start, end) of a segment that hold no valid record (already reported as damage). */
export type Damage = readonly [number, number][];

export interface FileProblem {
  position: number;
  reason: string;
}

function inDamage(damage: Damage, position: number): boolean {
  return damage.some(([start, end]) => position >= start && position < end);
}

export function checkHint(
  fs: Fs,
  dir: string,
  files: SegmentFiles,
  byPosition: Map<number, RecordInfo>,
  damage: Damage,
  lastByKey: Map<string, number> | undefined,
): FileProblem | undefined {
  const base = files.baseOffset;
  let buf: Buffer;
  try {
    buf = fs.readFile(join(dir, files.hint!));
  } catch (err) {
    return { position: 0, reason: `cannot read the hint: ${(err as Error).message}` };
  }
  let first: FileProblem | undefined;
  let at = HINT_HEADER_BYTES;
  const seen = new Set<string>();
  const invalid = decodeHint(buf, base, (key, offset, position, valueLength, expiresAt, flags) => {
    const entryAt = at;
    at += HINT_ENTRY_BYTES + key.length;
    if (first) return;
    const rec = byPosition.get(position);
    let what: string | undefined;
    if (!rec) {
      // Inside damage already reported as the segment's, the hint is not to blame.
      if (!inDamage(damage, position))
        what = `points at byte ${position} of ${files.seg}, where no valid record starts`;
    } else if (rec.key !== key) {
      what = `points at byte ${position}, whose record has key ${JSON.stringify(toUserKey(rec.key))}`;
    } else if (rec.offset !== offset) {
      what = `says offset ${offset}, the record has ${rec.offset}`;
    } else if (rec.valueLength !== valueLength) {
      what = `says value length ${valueLength}, the record has ${rec.valueLength}`;
    } else if (rec.expiresAt !== expiresAt) {
      what = `says expiry ${expiresAt}, the record has ${rec.expiresAt}`;
    } else if ((rec.flags & FLAG_TOMBSTONE) !== (flags & FLAG_TOMBSTONE)) {
      what = `says tombstone=${(flags & FLAG_TOMBSTONE) !== 0}, the record disagrees`;
    } else if (seen.has(key)) {
      what = 'appears twice';
    } else if (lastByKey && lastByKey.get(key) !== position) {
      what = `points at offset ${offset}, but a later record of that key is at byte ${lastByKey.get(key)}`;
    }
    seen.add(key);
    if (what)
      first = { position: entryAt, reason: `the entry for key ${JSON.stringify(toUserKey(key))} ${what}` };
  });
  if (invalid) return { position: 0, reason: invalid };
  if (first) return first;
  if (lastByKey) {
    for (const [key, position] of lastByKey) {
      if (!seen.has(key)) {
        const offset = byPosition.get(position)?.offset;
        return {
          position: 0,
          reason: `the hint lacks key ${JSON.stringify(toUserKey(key))} (offset ${offset} at byte ${position} of ${files.seg})`,
        };
      }
    }
  }
  return undefined;
}

export function checkIndex(
  fs: Fs,
  dir: string,
  files: SegmentFiles,
  byPosition: Map<number, RecordInfo>,
  damage: Damage,
): FileProblem | undefined {
  const base = files.baseOffset;
  let decoded: SparseIndex | string;
  try {
    decoded = SparseIndex.decode(fs.readFile(join(dir, files.index!)), base, INDEX_INTERVAL_BYTES);
  } catch (err) {
    return { position: 0, reason: `cannot read the index: ${(err as Error).message}` };
  }
  if (typeof decoded === 'string') return { position: 0, reason: decoded };
  for (let i = 0; i < decoded.positions.length; i++) {
    const position = decoded.positions[i]!;
    const offset = base + decoded.relOffsets[i]!;
    const rec = byPosition.get(position);
    const at = INDEX_HEADER_BYTES + i * INDEX_ENTRY_BYTES;
    if (!rec) {
      if (inDamage(damage, position)) continue; // already reported as the segment's damage
      return {
        position: at,
        reason: `entry ${i} (offset ${offset}) points at byte ${position} of ${files.seg}, where no valid record starts`,
      };
    }
    if (rec.offset !== offset) {
      return {
        position: at,
        reason: `entry ${i} says offset ${offset} at byte ${position}, the record there has offset ${rec.offset}`,
      };
    }
  }
  return undefined;
}
