#!/usr/bin/env node
import { join } from 'node:path';
/**
 * kv-check DIR: verifies a segkv data directory (like redis-check-aof for an
 * AOF) and, with --fix, truncates a torn tail of the active segment.
 *
 * Reads only, unless --fix: then it takes the directory's lock (so no server
 * starts meanwhile), re-checks, asks (or takes --yes), cuts the active
 * segment at the first byte of its torn tail, fsyncs, and checks again. It
 * never cuts valid records, never touches a sealed segment, and refuses when
 * the damage is followed by valid records (that is not a torn tail).
 */
import { createInterface } from 'node:readline';
import { nodeFs } from '../src/engine/fs.js';
import { lockDir } from '../src/engine/lock.js';
import { encodeSegmentHeader } from '../src/engine/segment-header.js';
import { type CheckReport, checkDir, type TornTail } from './lib/check.js';
import { describeProblem, formatReport } from './lib/check-report.js';
import {
  dataDirArgument,
  EXIT_OK,
  EXIT_PROBLEMS,
  parseCommandLine,
  refuseLockedDir,
  requireSegkvData,
  runTool,
  ToolError,
  UsageError,
} from './lib/cli.js';

const HELP = `Usage: kv-check DIR [options]

Verifies every file of a segkv data directory: segment headers, the CRC of
every record, offsets (increasing within and across segments), batches
(complete), hint files (each entry against its record) and sparse indexes
(each entry at a record start with its offset). Prints a report and exits
0 if everything is clean, 1 if anything is wrong (or the directory is in use
by a running server), 2 on a usage error or a DIR that holds no segkv data
or that this user may not read. Reads only, unless --fix.

Options:
  --fix              Truncate a torn tail of the active (last) segment, after
                     asking on the terminal, as recovery would. Never cuts a
                     complete record (a batch missing its end record goes whole,
                     as at recovery); refuses damage that valid records follow
                     or that sits in a sealed segment (restore those files).
  --yes, -y          With --fix: do not ask.
  --force-read-only  Check a directory whose LOCK names a running process
                     (read only; the active segment may be mid-write).
  --json             Print the report as one JSON object.
  --verbose, -v      Also list every segment with its counts and files.
  --help, -h         Show this help.

Examples:
  kv-check /var/lib/segkv
  kv-check /var/lib/segkv --fix --yes
  kv-check /var/lib/segkv --json | jq .problems
`;

const OPTIONS = {
  fix: { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  'force-read-only': { type: 'boolean' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, OPTIONS);
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT_OK;
  }
  const dir = dataDirArgument(positionals);
  const forceReadOnly = values['force-read-only'] === true;
  if (values.fix && forceReadOnly)
    throw new UsageError('--fix writes; it cannot be combined with --force-read-only');
  if (values.yes && !values.fix) throw new UsageError('--yes only applies to --fix');
  const json = values.json === true;
  const verbose = values.verbose === true;
  const owner = refuseLockedDir(dir, 'kv-check', forceReadOnly);
  if (owner !== undefined) {
    process.stderr.write(
      `kv-check: warning: ${dir} is in use by process ${owner}; reading it anyway (--force-read-only)\n`,
    );
  }
  // An empty or wrong directory is not an all-clear.
  requireSegkvData(dir);

  if (!values.fix) {
    const report = checkDir(nodeFs, dir);
    print(report, json, verbose);
    return report.ok ? EXIT_OK : EXIT_PROBLEMS;
  }

  // --fix: hold the lock so no server opens the directory while we cut.
  let lock: { release(): void };
  try {
    lock = lockDir(nodeFs, dir);
  } catch (err) {
    // A system error (EACCES on the LOCK) is printed by runTool as one line naming the path.
    if (typeof (err as NodeJS.ErrnoException).syscall === 'string') throw err;
    throw new ToolError((err as Error).message);
  }
  try {
    const before = checkDir(nodeFs, dir);
    const torn = before.tornTail;
    if (torn && before.compactionPending) {
      print(before, json, verbose);
      process.stderr.write(
        "kv-check: refusing to fix while a compaction's swap is half done: open the store once " +
          '(it finishes the swap and truncates the torn tail itself), then run kv-check again\n',
      );
      return EXIT_PROBLEMS;
    }
    if (!torn) {
      print(before, json, verbose);
      if (before.ok) {
        process.stderr.write('kv-check: nothing to fix\n');
        return EXIT_OK;
      }
      process.stderr.write(`kv-check: refusing to fix: ${refusal(before)}\n`);
      return EXIT_PROBLEMS;
    }
    if (!json) process.stdout.write(formatReport(before, verbose, true) + '\n');
    const what = torn.rewriteHeader
      ? `rewrite the header of ${torn.file} (${torn.bytes} bytes, no records)`
      : `truncate ${torn.file} from byte ${torn.position}, dropping ${torn.bytes} bytes`;
    if (!values.yes && !(await confirm(`This will ${what}. Continue? [y/N]: `))) {
      process.stderr.write('kv-check: not fixed (no confirmation)\n');
      if (json) print(before, json, verbose);
      return EXIT_PROBLEMS;
    }
    cutTornTail(dir, torn);
    const done = what.replace(/^rewrite/, 'rewrote').replace(/^truncate/, 'truncated');
    const after = checkDir(nodeFs, dir);
    // Said once: on stdout with the report, or on stderr beside the JSON.
    if (json) {
      process.stderr.write(`kv-check: fixed: ${done}\n`);
      process.stdout.write(JSON.stringify({ ...after, fixed: torn }) + '\n');
    } else if (after.ok && !verbose) {
      // The report above still holds but for the cut bytes: one line for the check after the fix.
      process.stdout.write(
        `FIXED: ${done}.\nChecked again: ${after.records} records, ${after.keys} live keys, no problems.\n\nRESULT: OK\n`,
      );
    } else {
      process.stdout.write(`FIXED: ${done}.\n\nAfter the fix:\n${formatReport(after, verbose)}`);
    }
    if (!after.ok && !after.tornTail) {
      process.stderr.write(
        'kv-check: the remaining problems are not a torn tail and are not fixable by kv-check\n',
      );
    }
    return after.ok ? EXIT_OK : EXIT_PROBLEMS;
  } finally {
    lock.release();
  }
}

/** Why --fix will not cut anything, for the first problem of a report without a torn tail. */
function refusal(report: CheckReport): string {
  const p = report.problems[0]!;
  const active = report.segmentFiles[report.segmentFiles.length - 1]?.file;
  const where = describeProblem(p);
  if (p.kind === 'hint' || p.kind === 'index') {
    return `${where}. A bad ${p.kind} is not fixed by truncation; delete ${p.file} and the store rescans the segment.`;
  }
  if (p.file !== active) {
    return `${where}. It is in a sealed segment, not in the torn tail of the active one; cutting there would drop valid records. Restore ${p.file} from a backup or replica (the store loads everything else).`;
  }
  return `${where}. Valid records follow it, so it is not a torn tail; cutting there would drop them. Restore ${p.file} from a backup or replica (the store loads everything else).`;
}

function print(report: CheckReport, json: boolean, verbose: boolean): void {
  process.stdout.write(json ? JSON.stringify(report) + '\n' : formatReport(report, verbose));
}

/** Asks on the terminal (stdin/stderr, so stdout stays the report). EOF or anything but y/yes is no. */
async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: process.stdin.isTTY });
  try {
    const answer = await new Promise<string>((resolve) => {
      rl.once('close', () => resolve(''));
      rl.question(question, resolve);
    });
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

function cutTornTail(dir: string, torn: TornTail): void {
  const fd = nodeFs.open(join(dir, torn.file), 'r+');
  try {
    if (nodeFs.size(fd) !== torn.position + torn.bytes) {
      throw new ToolError(`${torn.file} changed size while kv-check ran; run it again`);
    }
    if (torn.rewriteHeader) {
      const header = encodeSegmentHeader(torn.baseOffset);
      nodeFs.truncate(fd, 0);
      nodeFs.write(fd, header, 0, header.length, 0);
    } else {
      nodeFs.truncate(fd, torn.position);
    }
    nodeFs.fsyncSync(fd);
  } finally {
    nodeFs.close(fd);
  }
}

runTool('kv-check', main);
