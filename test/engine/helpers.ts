/**
 * Shared helpers of the engine tests: temporary data directories, a pino
 * logger whose lines the test can read, an Fs wrapper that records calls,
 * and access to the compiled engine for child processes.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pino, { type Logger } from 'pino';
import { parseName } from '../../src/engine/filenames.js';
import { type Fs, nodeFs } from '../../src/engine/fs.js';
import { encodeHint, type HintEntry } from '../../src/engine/hint.js';
import { scanRecords } from '../../src/engine/segment.js';
import { SEGMENT_HEADER_BYTES } from '../../src/engine/segment-header.js';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = join(REPO, 'test', 'engine', 'fixtures');

const dirs: string[] = [];

/** A fresh directory under the OS temp dir; removed by `removeTempDirs`. */
export function tempDir(): string {
  const d = fs.mkdtempSync(os.tmpdir() + '/segkv-');
  dirs.push(d);
  return d;
}

export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** A copy of `src` in a fresh temp dir (without its LOCK). */
export function copyDir(src: string): string {
  const d = tempDir();
  fs.cpSync(src, d, { recursive: true });
  fs.rmSync(join(d, 'LOCK'), { force: true });
  return d;
}

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A pino logger writing JSON lines into `lines` (synchronously). */
export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(s: string) {
        lines.push(JSON.parse(s) as LogLine);
      },
    },
  );
  return { logger, lines };
}

/** A logger that drops everything (keeps test output quiet). */
export const silentLogger: Logger = pino({ level: 'silent' });

export function segFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.seg'))
    .sort();
}

export function flipBit(path: string, position: number, bit = 0): void {
  const fd = fs.openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, position);
    b[0] = b[0]! ^ (1 << bit);
    fs.writeSync(fd, b, 0, 1, position);
  } finally {
    fs.closeSync(fd);
  }
}

export interface FsCall {
  op: 'open' | 'read' | 'write' | 'fsync' | 'fsyncSync' | 'fsyncDir' | 'truncate';
  path: string;
  at: number;
  /** For reads and writes: bytes and file position. */
  length?: number;
  position?: number;
}

/**
 * nodeFs, recording which file each call touched. `beforeFsync`, when set,
 * runs before each async fsync and may delay it (to prove acks wait for it).
 */
export function recordingFs(): {
  fs: Fs;
  calls: FsCall[];
  hooks: { beforeFsync?: (path: string) => Promise<void> };
} {
  const calls: FsCall[] = [];
  const paths = new Map<number, string>();
  const hooks: { beforeFsync?: (path: string) => Promise<void> } = {};
  const note = (op: FsCall['op'], fd: number) =>
    calls.push({ op, path: paths.get(fd) ?? '?', at: Date.now() });
  const wrapped: Fs = {
    ...nodeFs,
    open(path, flags) {
      const fd = nodeFs.open(path, flags);
      paths.set(fd, path);
      calls.push({ op: 'open', path, at: Date.now() });
      return fd;
    },
    close(fd) {
      paths.delete(fd);
      nodeFs.close(fd);
    },
    read(fd, buf, offset, length, position) {
      calls.push({ op: 'read', path: paths.get(fd) ?? '?', at: Date.now(), length, position });
      return nodeFs.read(fd, buf, offset, length, position);
    },
    write(fd, buf, offset, length, position) {
      calls.push({ op: 'write', path: paths.get(fd) ?? '?', at: Date.now(), length, position });
      nodeFs.write(fd, buf, offset, length, position);
    },
    truncate(fd, length) {
      note('truncate', fd);
      nodeFs.truncate(fd, length);
    },
    async fsync(fd) {
      const path = paths.get(fd) ?? '?';
      if (hooks.beforeFsync) await hooks.beforeFsync(path);
      await nodeFs.fsync(fd);
      calls.push({ op: 'fsync', path, at: Date.now() });
    },
    fsyncSync(fd) {
      note('fsyncSync', fd);
      nodeFs.fsyncSync(fd);
    },
    fsyncDir(dir) {
      calls.push({ op: 'fsyncDir', path: dir, at: Date.now() });
      nodeFs.fsyncDir(dir);
    },
  };
  return { fs: wrapped, calls, hooks };
}

/**
 * Compiles the engine (src/engine only) into a private directory under
 * node_modules/.cache for the child-process tests, and returns the file URL
 * of its index.js. Private because other work in the same checkout rebuilds
 * dist/ at any moment, and a child loading a half-written dist/ fails for
 * reasons that have nothing to do with the engine. Children get it in the
 * SEGKV_ENGINE environment variable (the fixtures fall back to dist/).
 */
export function buildEngine(): string {
  const out = join(REPO, 'node_modules', '.cache', 'segkv-engine-tests', `${process.pid}`);
  builds.push(out);
  const args = ['tsc', join(REPO, 'src', 'engine', 'index.ts'), '--ignoreConfig', '--outDir', out];
  args.push('--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022');
  args.push('--skipLibCheck', '--types', 'node', '--rootDir', REPO);
  try {
    execFileSync('npx', args, { cwd: REPO, stdio: 'pipe' });
  } catch {
    // Type errors still emit JavaScript; whether it runs is what matters here.
  }
  const entry = join(out, 'src', 'engine', 'index.js');
  if (!fs.existsSync(entry)) throw new Error(`compiling the engine into ${out} produced no ${entry}`);
  return pathToFileURL(entry).href;
}

const builds: string[] = [];

export function removeEngineBuilds(): void {
  for (const d of builds.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/**
 * nodeFs without fsync: for tests about logic, not durability, so a busy disk
 * does not make them slow. Never for crash or durability tests.
 */
export const noSyncFs: Fs = {
  ...nodeFs,
  fsync: async () => {},
  fsyncSync: () => {},
  fsyncDir: () => {},
};

/** What a scan of the segment file `name` in `dir` gives as its hint: each key's last record, in record order. */
export function scannedHint(fs: Fs, dir: string, name: string): Buffer {
  const base = parseName(name)!.baseOffset;
  const fd = fs.open(join(dir, name), 'r');
  try {
    const last = new Map<string, HintEntry>();
    const r = scanRecords(fs, fd, SEGMENT_HEADER_BYTES, fs.size(fd), (rec) => {
      const h = rec.header;
      last.delete(rec.key);
      last.set(rec.key, {
        key: rec.key,
        offset: h.offset,
        position: rec.position,
        valueLength: h.valueLength,
        expiresAt: h.expiresAt,
        flags: h.flags,
      });
    });
    if (r.problem) throw new Error(`${name}: ${r.problem.reason} at ${r.problem.position}`);
    return encodeHint(base, [...last.values()]);
  } finally {
    fs.close(fd);
  }
}
