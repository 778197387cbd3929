/**
 * What the operator tools (kv-check, kv-dump) share: argument parsing with
 * usage errors, exit codes, the refusal to work on a directory a server
 * holds, and writing to stdout with backpressure.
 *
 * Exit codes: 0 clean / done, 1 problems found or the work was refused,
 * 2 usage errors (unknown flag, missing or bad argument, DIR not a directory).
 */
import { statSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { nodeFs } from '../../src/engine/fs.js';
import { lockOwner } from '../../src/engine/lock.js';

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

/** The one DIR positional: present, alone, and a directory. */
export function dataDirArgument(positionals: string[]): string {
  if (positionals.length === 0) throw new UsageError('missing the data directory (DIR)');
  if (positionals.length > 1) throw new UsageError(`expected one DIR, got ${positionals.join(' ')}`);
  const dir = positionals[0]!;
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new UsageError(`${dir} does not exist`);
  }
  if (!isDir) throw new UsageError(`${dir} is not a directory`);
  return dir;
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
 * Refuses a directory whose LOCK names a running process, unless the operator
 * asked to read it anyway. Returns the owner's pid when reading anyway.
 */
export function refuseLockedDir(dir: string, tool: string, forceReadOnly: boolean): number | undefined {
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
