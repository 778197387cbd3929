/**
 * Helpers shared by the benchmarks under tools/bench/: statistics, the plain
 * aligned table, child processes that run one job each, temporary data
 * directories (removed at exit and on Ctrl-C), and the JSON results file in
 * tools/bench/results/.
 */
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ParseArgsConfig, parseArgs } from 'node:util';

/** dist/tools/bench/, where this file and the benchmark scripts run from. */
export const BENCH_DIST_DIR = dirname(fileURLToPath(import.meta.url));

/** tools/bench/ in the source tree. */
export const BENCH_SOURCE_DIR = join(BENCH_DIST_DIR, '..', '..', '..', 'tools', 'bench');

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >>> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The q-quantile (0..1) of an ascending array, nearest rank; NaN if empty. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

/** A number for a table cell: integers with separators from 100 on, else one decimal. */
export function fmt(n: number | undefined): string {
  if (n === undefined || Number.isNaN(n)) return '-';
  if (n >= 100) return Math.round(n).toLocaleString('en-US');
  return n.toFixed(1);
}

/**
 * Lays out rows of cells as a plain aligned table: the first `leftColumns`
 * columns left-aligned, the others right-aligned, a dashed rule under the head.
 */
export function formatTable(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  leftColumns = 2,
): string {
  const lines = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length)));
  const out = lines.map((l) =>
    widths
      .map((w, i) => {
        const cell = l[i] ?? '';
        return i < leftColumns ? cell.padEnd(w) : cell.padStart(w);
      })
      .join('  ')
      .trimEnd(),
  );
  out.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return out.join('\n');
}

/**
 * Runs one job in a fresh child process (`script` receives it over IPC and
 * answers `{ok: true, result}` or `{ok: false, error}`).
 */
export function runChild<R>(script: string, job: { kind: string }, execArgv: string[] = []): Promise<R> {
  return new Promise((resolve, reject) => {
    const child = fork(script, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let result: { ok: true; result: R } | { ok: false; error: string } | undefined;
    child.on('message', (m) => {
      result = m as typeof result;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (result?.ok) resolve(result.result);
      else reject(new Error(`${job.kind} job failed (exit ${code}): ${result?.error ?? ''}`));
    });
    child.send(job);
  });
}

/** The child side of runChild: answers the first job message with `run(job)`'s result, then exits. */
export function serveOneJob<J, R>(run: (job: J) => Promise<R>): void {
  process.once('message', (job: J) => {
    run(job).then(
      (result) => process.send!({ ok: true, result }, () => process.exit(0)),
      (err: unknown) =>
        process.send!(
          { ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) },
          () => process.exit(1),
        ),
    );
  });
}

/** A temporary root under os.tmpdir(), removed at exit (Ctrl-C and SIGTERM included), with numbered subdirectories. */
export class TempRoot {
  readonly path: string;
  private count = 0;
  private readonly hooks: (() => void)[] = [];

  constructor(prefix: string) {
    this.path = mkdtempSync(join(tmpdir(), prefix));
    process.on('exit', () => this.cleanup());
    process.on('SIGINT', () => process.exit(130));
    process.on('SIGTERM', () => process.exit(143));
  }

  /** A fresh empty directory under the root. */
  dir(label: string): string {
    const d = join(this.path, `${this.count++}-${label}`);
    mkdirSync(d);
    return d;
  }

  /** Runs `fn` (synchronously) before the root is removed, e.g. to stop a server using it. */
  onCleanup(fn: () => void): void {
    this.hooks.push(fn);
  }

  cleanup(): void {
    for (const fn of this.hooks.splice(0)) {
      try {
        fn();
      } catch {
        // best effort at exit
      }
    }
    rmSync(this.path, { recursive: true, force: true });
  }
}

/** `2026-11-27T09-23-54Z`: a results-file time stamp. */
export function fileStamp(d: Date): string {
  return d
    .toISOString()
    .replace(/:/g, '-')
    .replace(/\.\d+Z$/, 'Z');
}

/** Writes `data` as JSON to `out`, or to tools/bench/results/<name>-<stamp>.json; returns the path. */
export function writeResults(name: string, started: Date, data: unknown, out?: string): string {
  const path = out ?? join(BENCH_SOURCE_DIR, 'results', `${name}-${fileStamp(started)}.json`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
  return path;
}

/** An integer option value ≥ `min`, or an error naming the option. */
export function intOption(name: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${name} needs an integer ≥ ${min}, got ${v}`);
  return n;
}

/** Option specs for benchArgs: node:util parseArgs's, string or boolean. */
export type BenchOptionSpecs = NonNullable<ParseArgsConfig['options']>;

/** Parsed options: a string option's value (or undefined), a boolean option's presence. */
export class BenchArgs {
  constructor(private readonly values: Record<string, string | boolean | (string | boolean)[] | undefined>) {}

  /** The value of string option `name`, or undefined when it was not given. */
  string(name: string): string | undefined {
    const v = this.values[name];
    return typeof v === 'string' ? v : undefined;
  }

  /** Integer option `name` (≥ `min`), or `fallback` when it was not given. */
  int(name: string, fallback: number, min: number): number {
    const v = this.string(name);
    return v === undefined ? fallback : intOption(`--${name}`, v, min);
  }

  /** Whether boolean option `name` was given. */
  flag(name: string): boolean {
    return this.values[name] === true;
  }
}

/**
 * The command line of a benchmark, parsed by node:util parseArgs (strict, no
 * positionals) with `--help`/`-h` added: prints `help` and exits on --help,
 * and turns parseArgs's errors into one line that points at --help.
 */
export function benchArgs(argv: readonly string[], help: string, options: BenchOptionSpecs): BenchArgs {
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('. ')[0]}; see --help`);
  }
  if (values.help === true) {
    process.stdout.write(help);
    process.exit(0);
  }
  return new BenchArgs(values);
}

/** A timestamped progress line on stderr. */
export function logLine(tag: string, msg: string): void {
  process.stderr.write(`[${tag} ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** A benchmark target (from the issue that set it) and what one run measured against it. */
export interface Target {
  target: string;
  measured: string;
  met: boolean;
}

/** Prints `targets (issue N):` and a MET / NOT MET line per target on stdout. */
export function printTargets(issue: number, targets: readonly Target[]): void {
  process.stdout.write(`\ntargets (issue ${issue}):\n`);
  for (const t of targets)
    process.stdout.write(`  ${t.met ? 'MET    ' : 'NOT MET'}  ${t.target}: ${t.measured}\n`);
}

/** This run's command line as `npm run <script> -- <arguments>`. */
export function commandLine(script: string): string {
  return `npm run ${script} -- ${process.argv.slice(2).join(' ')}`.trim();
}

/** The first fields of a results file: the command, when it started, Node and the platform. */
export function runInfo(command: string, started: Date) {
  return {
    command,
    started: started.toISOString(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

/** A mistake on the command line: reported in one line, exit status 2. */
export class UsageError extends Error {}

/**
 * Runs a benchmark's main: a UsageError prints its message and exits 2, any
 * other failure prints its stack and exits 1.
 */
export function runMain(main: () => Promise<void>): void {
  main().catch((err) => {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
