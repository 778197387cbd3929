/**
 * Writes a small replication state file (HORIZON, EPOCHS) durably and
 * synchronously: `name.tmp`, fsync, rename over `name`, fsync the directory.
 * A crash leaves the old file or the new one (a `.tmp` is swept at open).
 * Synchronous on purpose: these files change once per compaction, promotion
 * or resync, and the caller must know the file is on disk before it goes on.
 */
import { join } from 'node:path';
import { tempFile } from '../engine/filenames.js';
import type { Fs } from '../engine/fs.js';

export function writeFileDurably(fs: Fs, dir: string, name: string, data: Buffer): void {
  const tmp = join(dir, tempFile(name));
  if (fs.exists(tmp)) fs.unlink(tmp);
  const fd = fs.open(tmp, 'wx');
  try {
    fs.write(fd, data, 0, data.length, 0);
    fs.fsyncSync(fd);
  } finally {
    fs.close(fd);
  }
  fs.rename(tmp, join(dir, name));
  fs.fsyncDir(dir);
}
