/**
 * The one place that builds and parses file names in a data directory.
 *
 *   00000000000000000000.seg    segment whose first record has offset 0
 *   00000000000000000000.hint   its hint file (written when sealed or compacted)
 *   00000000000000000000.index  its sparse offset index (same moments)
 *   LOCK                        the directory lock (pid of the owner)
 *   LOCK.<pid>.<start>          the lock's owner when the disk was too full to write LOCK's content
 *   *.tmp                       a file being written; never valid, swept on open
 *   *.compacting                a compaction output not yet swapped in
 *   COMPACTION                  a committed compaction's manifest (compaction/manifest.ts)
 *   HORIZON                     replication: the tombstone horizon (replication/horizon-file.ts)
 *   EPOCHS                      replication: log id and epoch history (replication/epochs-file.ts)
 *
 * Offsets are 20-digit zero-padded decimals, so a lexical sort is a numeric sort
 * and a binary search over names finds the segment holding any offset.
 */

export const LOCK_FILE = 'LOCK';

/**
 * An empty file naming the lock's owner, for when LOCK exists but its content
 * could not be written (ENOSPC: an empty file needs no data block, only a
 * directory entry). `start` is the process start time ('' if unknown).
 */
export function lockOwnerFile(pid: number, start: string): string {
  return `${LOCK_FILE}.${pid}.${start}`;
}

/** The pid and start time named by a lockOwnerFile name, or undefined. */
export function parseLockOwnerFile(name: string): { pid: number; start: string } | undefined {
  const m = /^LOCK\.(\d+)\.(\d*)$/.exec(name);
  if (!m) return undefined;
  const pid = Number(m[1]);
  return Number.isSafeInteger(pid) && pid > 0 ? { pid, start: m[2]! } : undefined;
}
export const TEMP_SUFFIX = '.tmp';
/** The compaction manifest: present only between a compaction's commit and the end of its swap. */
export const COMPACTION_MANIFEST = 'COMPACTION';
/** Replication's tombstone horizon and compaction mark (replication/horizon-file.ts). */
export const HORIZON_FILE = 'HORIZON';
/** Replication's log id and epoch history (replication/epochs-file.ts). */
export const EPOCHS_FILE = 'EPOCHS';
/** A replica's unfinished full resync (replication/resync-file.ts). */
export const RESYNC_FILE = 'RESYNC';
/** Suffix of a compaction output not yet swapped in. */
export const COMPACTING_SUFFIX = '.compacting';

export type FileKind = 'seg' | 'hint' | 'index';

const OFFSET_DIGITS = 20;
const NAME_RE = /^(\d{20})\.(seg|hint|index)$/;

export function offsetName(offset: number): string {
  return String(offset).padStart(OFFSET_DIGITS, '0');
}

export function segmentFile(baseOffset: number): string {
  return `${offsetName(baseOffset)}.seg`;
}

export function hintFile(baseOffset: number): string {
  return `${offsetName(baseOffset)}.hint`;
}

export function indexFile(baseOffset: number): string {
  return `${offsetName(baseOffset)}.index`;
}

export function tempFile(name: string): string {
  return name + TEMP_SUFFIX;
}

export interface ParsedName {
  kind: FileKind;
  baseOffset: number;
}

/** Parses a segment, hint or index name; undefined for anything else. */
export function parseName(name: string): ParsedName | undefined {
  const m = NAME_RE.exec(name);
  if (!m) return undefined;
  const baseOffset = Number(m[1]);
  if (!Number.isSafeInteger(baseOffset)) return undefined;
  return { kind: m[2] as FileKind, baseOffset };
}

export function compactingFile(name: string): string {
  return name + COMPACTING_SUFFIX;
}

/** Files that are never valid on their own: unfinished writes. Swept at open (after a compaction is resolved). */
export function isTemporary(name: string): boolean {
  return name.endsWith(TEMP_SUFFIX) || name.endsWith(COMPACTING_SUFFIX);
}
