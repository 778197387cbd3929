/**
 * Writes a small replication state file (HORIZON, EPOCHS, RESYNC) durably:
 * `name.tmp`, fsync, rename over `name`, fsync the directory. A crash leaves
 * the old file or the new one (a `.tmp` is swept at open).
 *
 * Two forms, the same steps in the same order:
 * - `writeFileDurably`, synchronous: for a caller that must know the file is
 *   on disk before its next statement (EPOCHS at a promotion, RESYNC before
 *   the log is emptied). These run once per role change, not per request.
 * - `writeFileDurablyOffLoop`: the event loop runs while the device works.
 *   With the real file system every call goes to the thread pool (the file's
 *   fsync and the directory's fsync took a few ms, tens under I/O load, on the
 *   loop: at every compaction start for HORIZON); with any other `Fs` (MemFs,
 *   the tests' fault-injecting wrappers) the same `Fs` calls, with its
 *   asynchronous fsync, so those tests see and can hold each step. Callers
 *   must not run two for the same `name` at once (they share `name.tmp`):
 *   horizon.ts chains its writes.
 */
import * as nodefs from 'node:fs/promises';
import { join } from 'node:path';
import { dirOps } from '../engine/compaction/dir-ops.js';
import { tempFile } from '../engine/filenames.js';
import { type Fs, nodeFs } from '../engine/fs.js';

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

/**
 * `writeFileDurably` with the event loop free meanwhile. Resolves once the
 * new file and its name are durable; on failure `name` is the old file or
 * the new one (the rename may have happened before the directory fsync
 * failed), and a temporary file left behind is removed when it can be.
 */
export async function writeFileDurablyOffLoop(
  fs: Fs,
  dir: string,
  name: string,
  data: Buffer,
): Promise<void> {
  const tmp = join(dir, tempFile(name));
  const ops = dirOps(fs);
  try {
    if (await ops.exists(tmp)) await ops.unlink(tmp);
    if (fs === nodeFs) {
      const fh = await nodefs.open(tmp, 'wx');
      try {
        await fh.writeFile(data);
        await fh.datasync();
      } finally {
        await fh.close();
      }
    } else {
      const fd = fs.open(tmp, 'wx');
      try {
        fs.write(fd, data, 0, data.length, 0);
        await fs.fsync(fd);
      } finally {
        fs.close(fd);
      }
    }
    await ops.rename(tmp, join(dir, name));
  } catch (err) {
    try {
      if (await ops.exists(tmp)) await ops.unlink(tmp);
    } catch {
      // Swept at the next open.
    }
    throw err;
  }
  await ops.fsyncDir(dir);
}
