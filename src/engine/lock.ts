/**
 * The data-directory lock: `DIR/LOCK`, created exclusively and holding the
 * owner's pid and start time. One process owns a directory (DESIGN.md §1.5).
 *
 * Node has no flock, so a lock left by a dead process (SIGKILL) is detected by
 * checking the pid: if no such process runs, it is a zombie (killed, not yet
 * reaped), or a process with that pid started at another time (pid reuse),
 * the lock is stale and taken over.
 * Within one process a second open of the same directory is refused too.
 *
 * A full disk: LOCK is created (exclusively, which is what decides the
 * owner) but its content cannot be written (ENOSPC). Then the owner is named
 * by an empty `LOCK.<pid>.<start>` beside it (a directory entry, no data
 * block), and an empty LOCK is live while such a file names a live process.
 * An empty LOCK with no such file (torn by a power loss) is stale, as before.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KvError } from '../errors.js';
import { LOCK_FILE, lockOwnerFile, parseLockOwnerFile } from './filenames.js';
import type { Fs } from './fs.js';

/** Directories this process holds, per file system (a simulated one is a different disk). */
const held = new WeakMap<Fs, Set<string>>();

function heldBy(fs: Fs): Set<string> {
  let set = held.get(fs);
  if (!set) {
    set = new Set();
    held.set(fs, set);
  }
  return set;
}

/** A process's state letter and start time (clock ticks since boot) from /proc (Linux), or undefined. */
function procStat(pid: number): { state: string; startTime: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may contain spaces, so count after its ')': state is field 3, start time 22.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', startTime: fields[19] ?? '' };
  } catch {
    return undefined;
  }
}

/** Start time of a process in clock ticks since boot (Linux), or '' if unknown. */
function startTimeOf(pid: number): string {
  return procStat(pid)?.startTime ?? '';
}

/**
 * Whether the process that wrote a lock still runs. A zombie (killed, not yet
 * reaped by its parent: SIGKILL and an immediate restart) holds no files and
 * writes nothing more, so it counts as dead although `kill(pid, 0)` succeeds.
 */
function isAlive(pid: number, startTime: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  const stat = procStat(pid);
  if (stat === undefined) return true; // no /proc: kill(pid, 0) is all we know
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return startTime === '' || stat.startTime === '' || stat.startTime === startTime;
}

/** The live process named by a `LOCK.<pid>.<start>` file in `dir` (an empty LOCK's owner), else undefined. */
function liveOwnerByName(fs: Fs, dir: string): number | undefined {
  let names: string[];
  try {
    names = fs.readdir(dir);
  } catch {
    return undefined;
  }
  for (const name of names) {
    const o = parseLockOwnerFile(name);
    if (o && isAlive(o.pid, o.start)) return o.pid;
  }
  return undefined;
}

/** Removes `LOCK.<pid>.<start>` files (a stale lock's, or ours at release). */
function removeOwnerFiles(fs: Fs, dir: string, only?: string): void {
  let names: string[];
  try {
    names = fs.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!parseLockOwnerFile(name) || (only !== undefined && name !== only)) continue;
    try {
      fs.unlink(join(dir, name));
    } catch {
      // Gone already.
    }
  }
}

/** The pid that owns a LOCK with this content (an empty one: see liveOwnerByName), if it still runs. */
function liveOwnerOf(fs: Fs, dir: string, content: string): number | undefined {
  return content === '' ? liveOwnerByName(fs, dir) : liveOwner(content);
}

/** The pid named by a LOCK file's content if that process still runs, else undefined (a stale lock). */
function liveOwner(content: string): number | undefined {
  // Without its final newline the LOCK was torn (power loss before it reached the disk): its
  // digits may name an unrelated live process (pid 1 from "1234 5678"), so it is stale.
  if (!content.endsWith('\n')) return undefined;
  const [pidText = '', startTime = ''] = content.trim().split(' ');
  const pid = Number(pidText);
  return Number.isInteger(pid) && pid > 0 && isAlive(pid, startTime) ? pid : undefined;
}

/**
 * The pid of the running process that holds `dir`, or undefined when there is
 * no LOCK or it is stale. Only reads: for tools (kv-check, kv-dump) that must
 * not work on a directory a server is writing to.
 */
export function lockOwner(fs: Fs, dir: string): number | undefined {
  let content: string;
  try {
    content = fs.readFile(join(dir, LOCK_FILE)).toString();
  } catch {
    return undefined;
  }
  return liveOwnerOf(fs, dir, content);
}

export interface DirLock {
  release(): void;
}

export function lockDir(fs: Fs, dir: string): DirLock {
  const key = resolve(dir);
  const heldHere = heldBy(fs);
  if (heldHere.has(key)) {
    throw new KvError('LOCKED', `the data directory ${dir} is already open in this process; close it first`);
  }
  const path = join(dir, LOCK_FILE);
  const me = `${process.pid} ${startTimeOf(process.pid)}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = fs.open(path, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      fd = -1;
    }
    if (fd >= 0) {
      // LOCK is ours (the exclusive create decided it); now say who we are.
      let content = me;
      let ownerFile: string | undefined;
      try {
        const bytes = Buffer.from(me);
        fs.write(fd, bytes, 0, bytes.length, 0);
      } catch (err) {
        // A full disk: name the owner with an empty file instead (needs no data block).
        content = '';
        ownerFile = lockOwnerFile(process.pid, startTimeOf(process.pid));
        try {
          fs.truncate(fd, 0); // no half-written pid: an empty LOCK is what names the owner file
          fs.close(fs.open(join(dir, ownerFile), 'wx'));
        } catch {
          fs.close(fd);
          fs.unlink(path);
          throw new KvError(
            'IO_ERROR',
            `cannot write the lock file ${path}: ${(err as Error).message}; free some disk space`,
            { cause: err },
          );
        }
      }
      fs.close(fd);
      heldHere.add(key);
      return {
        release() {
          heldHere.delete(key);
          try {
            if (fs.readFile(path).toString() === content) fs.unlink(path);
          } catch {
            // Already gone: nothing to release.
          }
          if (ownerFile !== undefined) removeOwnerFiles(fs, dir, ownerFile);
        },
      };
    }
    let owner = '';
    try {
      owner = fs.readFile(path).toString();
    } catch {
      continue; // removed between our open and our read: try again
    }
    const pid = liveOwnerOf(fs, dir, owner);
    // Our own pid on a directory we do not hold: left by an instance that died
    // with its file system (a simulated power loss), so stale too.
    if (pid !== undefined && pid !== process.pid) {
      throw new KvError(
        'LOCKED',
        `the data directory ${dir} is in use by process ${pid}; stop it or use another --dir`,
      );
    }
    // Stale (dead owner, or unreadable content from a crash mid-write): take it over.
    removeOwnerFiles(fs, dir);
    try {
      fs.unlink(path);
    } catch {
      // Another process may have taken it over first; the next exclusive open decides.
    }
  }
  throw new KvError('LOCKED', `could not take the lock ${path}; another process keeps taking it`);
}
