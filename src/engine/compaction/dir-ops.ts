/**
 * The swap's directory operations — renames, unlinks, directory fsyncs —
 * in the thread pool, so they never hold the event loop.
 *
 * Why: each is one system call, but a directory fsync forces a journal
 * commit, and renames and unlinks wait behind it while the rewrite's outputs
 * are being written back: measured with the benchmark's stall trace on the
 * 2-core machine, the swap's synchronous file step and its final
 * unlink + fsync held the loop 5–28 ms each (compaction-trace.ts).
 *
 * With the real file system (`nodeFs`, whose paths and descriptors are the
 * OS's) each call goes through node:fs's callback API; with any other `Fs`
 * (MemFs, the crash tests' counting and failing wrappers) it is the same
 * synchronous call, so those tests see the same calls in the same order.
 * Calls are made one after another (each awaited): the order of the swap's
 * steps, which its crash safety rests on, is unchanged; only the event loop
 * runs between them.
 */
import * as nodefs from 'node:fs';
import { type Fs, nodeFs } from '../fs.js';

export interface DirOps {
  exists(path: string): Promise<boolean>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Makes creations, renames and unlinks in `dir` durable. */
  fsyncDir(dir: string): Promise<void>;
}

const done =
  (resolve: () => void, reject: (err: Error) => void) =>
  (err: NodeJS.ErrnoException | null): void =>
    err ? reject(err) : resolve();

/** Thread-pool versions of nodeFs's directory operations. */
const threadPool: DirOps = {
  exists: (path) => new Promise((resolve) => nodefs.access(path, (err) => resolve(!err))),
  rename: (from, to) => new Promise((resolve, reject) => nodefs.rename(from, to, done(resolve, reject))),
  unlink: (path) => new Promise((resolve, reject) => nodefs.unlink(path, done(resolve, reject))),
  fsyncDir: (dir) =>
    new Promise((resolve, reject) =>
      nodefs.open(dir, 'r', (err, fd) => {
        if (err) return reject(err);
        nodefs.fsync(fd, (syncErr) =>
          nodefs.close(fd, (closeErr) => done(resolve, reject)(syncErr ?? closeErr)),
        );
      }),
    ),
};

/** The directory operations for `fs`: in the thread pool for nodeFs, in place for any other. */
export function dirOps(fs: Fs): DirOps {
  if (fs === nodeFs) return threadPool;
  return {
    exists: async (path) => fs.exists(path),
    rename: async (from, to) => fs.rename(from, to),
    unlink: async (path) => fs.unlink(path),
    fsyncDir: async (dir) => fs.fsyncDir(dir),
  };
}
