/**
 * The file-system layer the engine does all its I/O through. `nodeFs` is the
 * real one; `MemFs` (mem-fs.ts) keeps files in memory and simulates power
 * loss (drops or tears every byte not fsynced), for the crash tests.
 *
 * Reads and writes are synchronous on purpose: a positioned read of a cached
 * 100-byte value costs ~1 µs with readSync and ~47 µs through the thread pool
 * (DESIGN.md §4). Only fsync, which waits for the device, is asynchronous.
 */
import * as fs from 'node:fs';

export interface Fs {
  mkdirp(dir: string): void;
  readdir(dir: string): string[];
  /** flags: 'r' read-only, 'r+' read-write, 'wx' create exclusively for writing, 'wx+' same, readable too. */
  open(path: string, flags: 'r' | 'r+' | 'wx' | 'wx+'): number;
  close(fd: number): void;
  /** Positioned read; returns the bytes read (short at end of file). */
  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number;
  /** Positioned write of the whole range (loops on short writes). */
  write(fd: number, buf: Uint8Array, offset: number, length: number, position: number): void;
  size(fd: number): number;
  truncate(fd: number, length: number): void;
  fsync(fd: number): Promise<void>;
  fsyncSync(fd: number): void;
  /** Makes creations, renames and unlinks in `dir` durable. */
  fsyncDir(dir: string): void;
  rename(from: string, to: string): void;
  unlink(path: string): void;
  exists(path: string): boolean;
  readFile(path: string): Buffer;
}

export const nodeFs: Fs = {
  mkdirp(dir) {
    fs.mkdirSync(dir, { recursive: true });
  },
  readdir(dir) {
    return fs.readdirSync(dir);
  },
  open(path, flags) {
    return fs.openSync(path, flags);
  },
  close(fd) {
    fs.closeSync(fd);
  },
  read(fd, buf, offset, length, position) {
    return fs.readSync(fd, buf, offset, length, position);
  },
  write(fd, buf, offset, length, position) {
    let done = 0;
    while (done < length) {
      done += fs.writeSync(fd, buf, offset + done, length - done, position + done);
    }
  },
  size(fd) {
    return fs.fstatSync(fd).size;
  },
  truncate(fd, length) {
    fs.ftruncateSync(fd, length);
  },
  fsync(fd) {
    return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
  },
  fsyncSync(fd) {
    fs.fdatasyncSync(fd);
  },
  fsyncDir(dir) {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  },
  rename(from, to) {
    fs.renameSync(from, to);
  },
  unlink(path) {
    fs.unlinkSync(path);
  },
  exists(path) {
    return fs.existsSync(path);
  },
  readFile(path) {
    return fs.readFileSync(path);
  },
};
