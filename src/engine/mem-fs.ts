/**
 * An in-memory `Fs` that simulates power loss, like LevelDB's fault-injection
 * env and SQLite's crash VFS (DESIGN.md §1.7): SIGKILL keeps the page cache,
 * so it cannot test fsync discipline; this can.
 *
 * Each file has its live bytes and its durable bytes (as of its last fsync).
 * Each directory has its live entries and its durable entries (as of its last
 * directory fsync): a created, renamed or unlinked name is durable only once
 * its directory was fsynced. `crash()` returns the file system a reboot would
 * find: durable entries, each with its durable bytes, plus, in 'tear' mode, a
 * random prefix of the bytes appended since the last fsync (a torn write).
 *
 * Faults: `failWrites(pred)` / `failFsync(pred)` make matching operations
 * throw an errno error (ENOSPC, EIO) until cleared.
 *
 * Timing: `holdFsyncs(pred)` makes matching fsyncs wait until
 * `releaseFsyncs()`, as a slow device does. A held fsync makes durable what
 * the file held when it was called, but only when released, so a test can
 * finish fsyncs out of order and crash in between.
 */
import { basename, dirname, join, resolve } from 'node:path';
import type { Fs } from './fs.js';

interface MemFile {
  data: Buffer;
  length: number;
  durable: Buffer;
}

function errno(code: string, message: string): NodeJS.ErrnoException {
  const err = new Error(`${code}: ${message}`) as NodeJS.ErrnoException;
  err.code = code;
  return err;
}

export type CrashMode = 'drop' | 'tear';

export class MemFs implements Fs {
  /** Live directory entries: dir → name → file. */
  private dirs = new Map<string, Map<string, MemFile>>();
  /** Durable directory entries, as of each directory's last fsync. */
  private durableDirs = new Map<string, Map<string, MemFile>>();
  private fds = new Map<number, { file: MemFile; path: string; writable: boolean }>();
  private nextFd = 100;
  private writeFault: ((path: string) => string | undefined) | undefined;
  private fsyncFault: ((path: string) => string | undefined) | undefined;
  private holdFault: ((path: string) => boolean) | undefined;
  private held: { path: string; finish: () => void }[] = [];
  /** Count of fsyncs (files and directories). */
  fsyncs = 0;
  /** Count of writes that reached a file (refused ones not counted). */
  writes = 0;

  /** Makes writes to paths for which `pred` returns an errno code (e.g. 'ENOSPC') fail. */
  failWrites(pred: ((path: string) => string | undefined) | undefined): void {
    this.writeFault = pred;
  }

  failFsync(pred: ((path: string) => string | undefined) | undefined): void {
    this.fsyncFault = pred;
  }

  /** Makes file fsyncs of paths for which `pred` is true wait for releaseFsyncs (undefined: stop holding new ones). */
  holdFsyncs(pred: ((path: string) => boolean) | undefined): void {
    this.holdFault = pred;
  }

  /** Paths of the fsyncs waiting now, in call order. */
  heldFsyncs(): string[] {
    return this.held.map((h) => h.path);
  }

  /** Completes the held fsyncs whose path `pred` accepts (default all), in call order; returns how many. */
  releaseFsyncs(pred: (path: string) => boolean = () => true): number {
    const go = this.held.filter((h) => pred(h.path));
    this.held = this.held.filter((h) => !pred(h.path));
    for (const h of go) h.finish();
    return go.length;
  }

  private dir(path: string, create = false): Map<string, MemFile> {
    const d = resolve(path);
    let entries = this.dirs.get(d);
    if (!entries) {
      if (!create) throw errno('ENOENT', `no such directory, ${path}`);
      entries = new Map();
      this.dirs.set(d, entries);
      this.durableDirs.set(d, new Map());
    }
    return entries;
  }

  private lookup(path: string): MemFile | undefined {
    return this.dir(dirname(resolve(path))).get(basename(path));
  }

  private fd(fd: number) {
    const f = this.fds.get(fd);
    if (!f) throw errno('EBADF', 'bad file descriptor');
    return f;
  }

  mkdirp(dir: string): void {
    this.dir(dir, true);
  }

  readdir(dir: string): string[] {
    return [...this.dir(dir).keys()].sort();
  }

  open(path: string, flags: 'r' | 'r+' | 'wx' | 'wx+'): number {
    const entries = this.dir(dirname(resolve(path)));
    const name = basename(path);
    let file = entries.get(name);
    if (flags === 'wx' || flags === 'wx+') {
      if (file) throw errno('EEXIST', `file already exists, open '${path}'`);
      file = { data: Buffer.alloc(0), length: 0, durable: Buffer.alloc(0) };
      entries.set(name, file);
    } else if (!file) {
      throw errno('ENOENT', `no such file or directory, open '${path}'`);
    }
    const fd = this.nextFd++;
    this.fds.set(fd, { file, path: resolve(path), writable: flags !== 'r' });
    return fd;
  }

  close(fd: number): void {
    this.fd(fd);
    this.fds.delete(fd);
  }

  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    const { file } = this.fd(fd);
    const n = Math.max(0, Math.min(length, file.length - position));
    if (n > 0) buf.set(file.data.subarray(position, position + n), offset);
    return n;
  }

  write(fd: number, buf: Uint8Array, offset: number, length: number, position: number): void {
    const f = this.fd(fd);
    if (!f.writable) throw errno('EBADF', 'file not open for writing');
    const code = this.writeFault?.(f.path);
    if (code) throw errno(code, `injected fault writing ${f.path}`);
    const file = f.file;
    const end = position + length;
    if (end > file.data.length) {
      const grown = Buffer.alloc(Math.max(end, file.data.length * 2, 4096));
      file.data.copy(grown, 0, 0, file.length);
      file.data = grown;
    }
    if (position > file.length) file.data.fill(0, file.length, position);
    file.data.set(buf.subarray(offset, offset + length), position);
    file.length = Math.max(file.length, end);
    this.writes++;
  }

  size(fd: number): number {
    return this.fd(fd).file.length;
  }

  truncate(fd: number, length: number): void {
    const { file } = this.fd(fd);
    if (length > file.length) {
      const grown = Buffer.alloc(length);
      file.data.copy(grown, 0, 0, file.length);
      file.data = grown;
    }
    file.length = length;
  }

  private syncFile(fd: number): void {
    const f = this.fd(fd);
    const code = this.fsyncFault?.(f.path);
    if (code) throw errno(code, `injected fault in fsync of ${f.path}`);
    f.file.durable = Buffer.from(f.file.data.subarray(0, f.file.length));
    this.fsyncs++;
  }

  fsync(fd: number): Promise<void> {
    const f = this.fds.get(fd);
    if (f && this.holdFault?.(f.path)) {
      const snapshot = Buffer.from(f.file.data.subarray(0, f.file.length));
      const file = f.file;
      return new Promise((resolve) => {
        this.held.push({
          path: f.path,
          finish: () => {
            if (snapshot.length >= file.durable.length) file.durable = snapshot;
            this.fsyncs++;
            resolve();
          },
        });
      });
    }
    try {
      this.syncFile(fd);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  fsyncSync(fd: number): void {
    this.syncFile(fd);
  }

  fsyncDir(dir: string): void {
    const d = resolve(dir);
    const code = this.fsyncFault?.(d);
    if (code) throw errno(code, `injected fault in fsync of ${d}`);
    this.durableDirs.set(d, new Map(this.dir(d)));
    this.fsyncs++;
  }

  rename(from: string, to: string): void {
    const src = this.dir(dirname(resolve(from)));
    const file = src.get(basename(from));
    if (!file) throw errno('ENOENT', `no such file or directory, rename '${from}'`);
    src.delete(basename(from));
    this.dir(dirname(resolve(to))).set(basename(to), file);
  }

  unlink(path: string): void {
    const entries = this.dir(dirname(resolve(path)));
    if (!entries.delete(basename(path))) throw errno('ENOENT', `no such file or directory, unlink '${path}'`);
  }

  exists(path: string): boolean {
    try {
      return this.lookup(path) !== undefined;
    } catch {
      return false;
    }
  }

  readFile(path: string): Buffer {
    const file = this.lookup(path);
    if (!file) throw errno('ENOENT', `no such file or directory, open '${path}'`);
    return Buffer.from(file.data.subarray(0, file.length));
  }

  /**
   * The file system after a process crash (SIGKILL) at this instant: every
   * byte and name stays (the page cache survives), and what is durable stays
   * as durable as it was, so a later crash() of the copy can still lose it.
   */
  killProcess(): MemFs {
    const next = new MemFs();
    const copies = new Map<MemFile, MemFile>();
    const copyOf = (file: MemFile): MemFile => {
      let copy = copies.get(file);
      if (!copy) {
        const data = Buffer.from(file.data.subarray(0, file.length));
        copy = { data, length: data.length, durable: Buffer.from(file.durable) };
        copies.set(file, copy);
      }
      return copy;
    };
    for (const [d, entries] of this.dirs) {
      next.dirs.set(d, new Map([...entries].map(([name, file]) => [name, copyOf(file)])));
    }
    for (const [d, entries] of this.durableDirs) {
      next.durableDirs.set(d, new Map([...entries].map(([name, file]) => [name, copyOf(file)])));
    }
    return next;
  }

  /**
   * The file system after a power loss at this instant. `random` (0 ≤ x < 1)
   * decides how much of each file's unsynced appended tail survives in 'tear' mode.
   */
  crash(mode: CrashMode = 'drop', random: () => number = Math.random): MemFs {
    const next = new MemFs();
    const copies = new Map<MemFile, MemFile>();
    for (const [d, entries] of this.durableDirs) {
      const out = new Map<string, MemFile>();
      for (const [name, file] of entries) {
        let copy = copies.get(file);
        if (!copy) {
          let bytes = file.durable;
          const live = file.data.subarray(0, file.length);
          if (mode === 'tear' && file.length > bytes.length && live.subarray(0, bytes.length).equals(bytes)) {
            const keep = Math.floor(random() * (file.length - bytes.length + 1));
            bytes = Buffer.from(live.subarray(0, bytes.length + keep));
          }
          copy = { data: Buffer.from(bytes), length: bytes.length, durable: Buffer.from(bytes) };
          copies.set(file, copy);
        }
        out.set(name, copy);
      }
      next.dirs.set(d, out);
      next.durableDirs.set(d, new Map(out));
    }
    return next;
  }
}

/** Paths in a MemFs are plain strings; this helper keeps tests short. */
export function memPath(...parts: string[]): string {
  return join('/mem', ...parts);
}
