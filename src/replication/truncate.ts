/**
 * Cutting a divergent tail (KIP-101), on a closed data directory: every
 * record at or after `offset` is removed, so that the next open recovers a
 * log whose next offset is at most `offset`. Segments based at or after it
 * are deleted (with their hint and index), the one holding it is cut at the
 * first record at or after it, and its hint and index are deleted (recovery
 * rescans the last segment anyway). Directory fsynced after.
 *
 * Only safe when no compaction ran after the first removed record was
 * written (HORIZON's compactedThrough ≤ offset): a compaction may have
 * dropped an older value of a key because a removed record superseded it.
 * The caller checks; replica.ts falls back to a full resync otherwise.
 */
import { join } from 'node:path';
import { hintFile, indexFile, parseName, segmentFile } from '../engine/filenames.js';
import type { Fs } from '../engine/fs.js';
import { scanRecords } from '../engine/segment.js';
import { SEGMENT_HEADER_BYTES } from '../engine/segment-header.js';

export function truncateLogFiles(fs: Fs, dir: string, offset: number): void {
  const bases = fs
    .readdir(dir)
    .map(parseName)
    .filter((p) => p?.kind === 'seg')
    .map((p) => p!.baseOffset)
    .sort((a, b) => a - b);
  const unlinkIfThere = (name: string) => {
    if (fs.exists(join(dir, name))) fs.unlink(join(dir, name));
  };
  for (const base of bases) {
    if (base >= offset) {
      unlinkIfThere(hintFile(base));
      unlinkIfThere(indexFile(base));
      unlinkIfThere(segmentFile(base));
    }
  }
  const holder = bases.filter((b) => b < offset).pop();
  if (holder !== undefined) {
    const fd = fs.open(join(dir, segmentFile(holder)), 'r+');
    try {
      const size = fs.size(fd);
      let cut = -1;
      scanRecords(fs, fd, SEGMENT_HEADER_BYTES, size, (rec) => {
        if (cut < 0 && rec.header.offset >= offset) cut = rec.position;
      });
      if (cut >= 0) {
        fs.truncate(fd, cut);
        fs.fsyncSync(fd);
      }
    } finally {
      fs.close(fd);
    }
    unlinkIfThere(hintFile(holder));
    unlinkIfThere(indexFile(holder));
  }
  fs.fsyncDir(dir);
}
