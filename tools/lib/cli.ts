/**
 * What the operator tools (kv-check, kv-dump, kv-cli, kv-bench) and the test
 * harnesses (torture, hostile) share: argument parsing with
 * usage errors, exit codes, the refusal to work on a directory a server
 * holds, and writing to stdout with backpressure.
 *
 * Exit codes: 0 clean / done, 1 problems found or the work was refused,
 * 2 usage errors (unknown flag, missing or bad argument, DIR not a directory,
 * DIR not readable by this user, DIR holding no segkv data). Every error is
 * one line on stderr, never a stack trace (but a harness's unexpected
 * failure: see runHarness).
 */
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, type Dirent, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { LOCK_FILE } from '../../src/engine/filenames.js';
import { nodeFs } from '../../src/engine/fs.js';
import { lockOwner } from '../../src/engine/lock.js';
import { viewDataDir } from './data-dir.js';

export const EXIT_OK = 0;
export const EXIT_PROBLEMS = 1;
export const EXIT_USAGE = 2;

/** A mistake in the command line: printed with a pointer to --help, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Something that stops the tool (locked directory, refused fix): printed, exit 1. */
export class ToolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ToolError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

export interface CommandLine {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** Parses argv strictly: unknown flags and missing values are usage errors. */
export function parseCommandLine(argv: string[], options: Options): CommandLine {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: values as CommandLine['values'], positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A data-directory problem the operator fixes (permissions, the wrong path): one line, exit 2, no --help pointer. */
export class DataDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataDirError';
  }
}

function uid(): string {
  return typeof process.getuid === 'function' ? ` (uid ${process.getuid()})` : '';
}

/** One line for a file-system error met on DIR or a file in it: the path, the cause, what to do. */
export function fileProblem(dir: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const path = e.path ?? dir;
  if (e.code === 'EACCES' || e.code === 'EPERM') {
    const me = typeof process.getuid === 'function' ? ` (this is uid ${process.getuid()})` : '';
    return `DIR ${dir}: permission denied on ${path}; run as the user kv-server runs as${me}, or fix its permissions`;
  }
  if (e.code === 'ENOENT') return `DIR ${dir}: ${path} does not exist`;
  if (e.code === 'ENOTDIR') return `DIR ${dir}: ${path} is not a directory`;
  if (e.code === 'EISDIR') return `DIR ${dir}: ${path} is a directory where segkv expects a file`;
  return `DIR ${dir}: ${e.message}`;
}

/** The one DIR positional: present, alone, a directory this user may read. */
export function dataDirArgument(positionals: string[]): string {
  if (positionals.length === 0) throw new UsageError('missing the data directory (DIR)');
  if (positionals.length > 1) throw new UsageError(`expected one DIR, got ${positionals.join(' ')}`);
  const dir = positionals[0]!;
  argumentDir = dir;
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
    if (isDir) accessSync(dir, constants.R_OK | constants.X_OK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UsageError(`${dir} does not exist`);
    throw new DataDirError(fileProblem(dir, err));
  }
  if (!isDir) throw new UsageError(`${dir} is not a directory`);
  return dir;
}

/** Subdirectories of `dir` (one level) that hold segment files: where the operator may have meant. */
function dataDirsBelow(dir: string): string[] {
  const found: string[] = [];
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    try {
      if (viewDataDir(nodeFs, join(dir, e.name)).segments.length > 0) found.push(join(dir, e.name));
    } catch {
      // Unreadable: not a suggestion.
    }
  }
  return found;
}

/**
 * Refuses a directory without segkv data (no segment file, no compaction
 * manifest): checking or dumping it would report an all-clear about the
 * wrong directory. Names the subdirectories that do hold data, if any.
 */
export function requireSegkvData(dir: string): void {
  const view = viewDataDir(nodeFs, dir);
  if (view.segments.length > 0 || view.compactionPending || view.manifestProblem !== undefined) return;
  const below = dataDirsBelow(dir);
  const hint =
    below.length > 0
      ? ` ${below.join(', ')} ${below.length === 1 ? 'holds' : 'hold'} segkv data.`
      : ' Give the directory kv-server uses (its --dir, default ./data).';
  throw new DataDirError(`no segkv data in ${dir}: it holds no segment files (*.seg).${hint}`);
}

/** A non-negative safe integer option, or `fallback` when absent. */
export function integerOption(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) {
    throw new UsageError(`--${name} takes a non-negative integer, got ${JSON.stringify(text)}`);
  }
  return n;
}

/**
 * An integer option of at least `min`, `fallback` when absent (the torture
 * runs' --cycles, --seed, --max-seconds, --lease-ms).
 */
export function integerAtLeast(
  name: string,
  text: string | undefined,
  fallback: number,
  min: number,
): number {
  const n = text === undefined ? fallback : Number(text);
  if (!Number.isInteger(n) || n < min)
    throw new UsageError(`--${name} must be an integer ≥ ${min}, got ${text}`);
  return n;
}

/**
 * Refuses a directory whose LOCK names a running process, unless the operator
 * asked to read it anyway. Returns the owner's pid when reading anyway.
 */
export function refuseLockedDir(dir: string, tool: string, forceReadOnly: boolean): number | undefined {
  if (!forceReadOnly) {
    // lockOwner takes an unreadable LOCK for no lock; a server may hold it all the same.
    const lock = join(dir, LOCK_FILE);
    try {
      if (statSync(lock, { throwIfNoEntry: false })) accessSync(lock, constants.R_OK);
    } catch (err) {
      throw new DataDirError(
        `DIR ${dir}: cannot read its lock file ${lock} (${(err as NodeJS.ErrnoException).code}), so ${tool} cannot ` +
          `tell whether a server is using it; run as the server's user${uid()}, or pass --force-read-only`,
      );
    }
  }
  const pid = lockOwner(nodeFs, dir);
  if (pid === undefined || forceReadOnly) return pid;
  throw new ToolError(
    `${dir} is in use by process ${pid} (its LOCK file names a running process). ` +
      `Stop that process first, or run ${tool} with --force-read-only to read the files as they are ` +
      `(the active segment may be mid-write).`,
  );
}

/**
 * Runs a tool's main and exits with its code; errors go to stderr with the
 * tool's name. Output already written to stdout is flushed first.
 */
export function runTool(tool: string, main: (argv: string[]) => Promise<number>): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT_OK); // the reader (head, less) went away
    throw err;
  });
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      if (err instanceof UsageError) {
        process.stderr.write(`${tool}: ${err.message}\nRun \`${tool} --help\` for usage.\n`);
        process.exitCode = EXIT_USAGE;
      } else if (err instanceof DataDirError) {
        process.stderr.write(`${tool}: ${err.message}\n`);
        process.exitCode = EXIT_USAGE;
      } else if (isErrno(err)) {
        // A file of DIR this user may not read, or that vanished: one line, not a stack trace.
        process.stderr.write(`${tool}: ${fileProblem(dirOf(err), err)}\n`);
        process.exitCode = err.code === 'EACCES' || err.code === 'EPERM' ? EXIT_USAGE : EXIT_PROBLEMS;
      } else if (err instanceof ToolError) {
        process.stderr.write(`${tool}: ${err.message}\n`);
        process.exitCode = EXIT_PROBLEMS;
      } else {
        const message = err instanceof Error ? err.message : String(err);
        process.stderr.write(`${tool}: ${message}\n`);
        process.exitCode = EXIT_PROBLEMS;
      }
    },
  );
}

/** A Node system error (it has a syscall), not a KvError, which has a code too. */
function isErrno(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}

/** The DIR argument, once dataDirArgument has read it: messages about its files name it. */
let argumentDir: string | undefined;

function dirOf(err: NodeJS.ErrnoException): string {
  return argumentDir ?? err.path ?? '.';
}

/** Writes text or bytes to stdout in large pieces, waiting when the pipe is full. */
export class Output {
  private parts: (string | Buffer)[] = [];
  private bytes = 0;

  async write(s: string | Buffer): Promise<void> {
    this.parts.push(s);
    this.bytes += s.length;
    if (this.bytes >= 64 * 1024) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.parts.length === 0) return;
    const text = this.parts.some(Buffer.isBuffer)
      ? Buffer.concat(this.parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)))
      : this.parts.join('');
    this.parts = [];
    this.bytes = 0;
    if (!process.stdout.write(text)) {
      await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
    }
  }
}

/** Servers a harness started that have not exited (ownChild): killed when the harness exits. */
const children = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Makes `child` (a kv-server or etcd a harness started) die with the harness:
 * killed when the harness exits, also when runHarness turns a SIGTERM or
 * SIGINT (a test's timeout, Ctrl-C) into an exit, which would otherwise
 * leave it running.
 */
export function ownChild(child: ChildProcess): ChildProcess {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of children) c.kill('SIGKILL');
    });
  }
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/**
 * Runs a test harness's main (torture, hostile; `tool` is its npm script):
 * a usage error is one line and a pointer to --help, exit 2; anything else
 * prints its stack (a harness's failure is for its developer to read) and
 * exits 1. A run that finished exits with the code main set. SIGTERM and
 * SIGINT exit too (143, 130), so the servers it owns (ownChild) go with it.
 */
export function runHarness(tool: string, main: () => Promise<void>): void {
  process.once('SIGTERM', () => process.exit(143));
  process.once('SIGINT', () => process.exit(130));
  main().catch((err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`${tool}: ${err.message}\nRun \`npm run ${tool} -- --help\` for usage.\n`);
      process.exit(EXIT_USAGE);
    }
    process.stderr.write(`${tool}: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(EXIT_PROBLEMS);
  });
}

/** What parseOptionsStrictly returns for `options`: parseArgs's typed values. */
export type StrictValues<T extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: false }>
>['values'];

/** node:util parseArgs, strict and without positionals, its errors as usage errors. */
export function parseOptionsStrictly<T extends Options>(argv: string[], options: T): StrictValues<T> {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError((err as Error).message.split('. ')[0]!);
  }
}
