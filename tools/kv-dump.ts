#!/usr/bin/env node
/**
 * kv-dump DIR [--from OFFSET] [--limit N]: prints the log's records from an
 * offset, found like Store.readFrom (binary search over segment names, then
 * the sparse index), never by scanning from the start. Reads only.
 */
import { nodeFs } from '../src/engine/fs.js';
import { FLAG_BATCH, FLAG_BATCH_END } from '../src/engine/record.js';
import {
  dataDirArgument,
  EXIT_OK,
  EXIT_PROBLEMS,
  integerOption,
  Output,
  parseCommandLine,
  refuseLockedDir,
  requireSegkvData,
  runTool,
  UsageError,
} from './lib/cli.js';
import { type DumpDamage, type DumpRecord, LogReader } from './lib/log-reader.js';
import { type BinaryEncoding, PREVIEW_BYTES, show, showText } from './lib/show.js';

const HELP = `Usage: kv-dump DIR [options]

Prints the records of a segkv log from an offset on, in offset order:
overwritten values and tombstones included. The start is found by binary
search over the segment files and their sparse indexes, so a dump from the
end of a large log is immediate.

Options:
  --from OFFSET      First offset to print (default: the start of the log).
                     After compaction, offsets have gaps: an offset in a gap
                     starts at the next record kept.
  --limit N          Print at most N records (default: all).
  --json             Print one JSON object: {dir, from, limit, records, damage, next}.
  --full             Print whole values (default: the first ${PREVIEW_BYTES} bytes).
  --binary hex|base64
                     How values and keys that are not printable UTF-8 are shown
                     (default: hex in text, base64 in --json).
  --force-read-only  Read a directory whose LOCK names a running process.
  --help, -h         Show this help.

Text output, one record per line:
  OFFSET  SEGMENT:POSITION  SET|DEL  KEY  VALUE  [expires=ISO-TIME] [batch|batch-end]
Strings are JSON-quoted; binary is shown as hex:... or base64:....
A summary (and where to continue) goes to stderr.

Exit status: 0 done (a torn tail at the end of the log is only warned about),
1 damage was found or the directory is in use, 2 usage error.
`;

const OPTIONS = {
  from: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
  full: { type: 'boolean' },
  binary: { type: 'string' },
  'force-read-only': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, OPTIONS);
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT_OK;
  }
  const dir = dataDirArgument(positionals);
  const json = values.json === true;
  const full = values.full === true;
  const binaryText = values.binary as string | undefined;
  if (binaryText !== undefined && binaryText !== 'hex' && binaryText !== 'base64') {
    throw new UsageError(`--binary takes hex or base64, got ${JSON.stringify(binaryText)}`);
  }
  const binary: BinaryEncoding = (binaryText as BinaryEncoding | undefined) ?? (json ? 'base64' : 'hex');
  const limit = integerOption('limit', values.limit as string | undefined, Number.POSITIVE_INFINITY);
  const owner = refuseLockedDir(dir, 'kv-dump', values['force-read-only'] === true);
  if (owner !== undefined) {
    process.stderr.write(
      `kv-dump: warning: ${dir} is in use by process ${owner}; reading it anyway (--force-read-only)\n`,
    );
  }
  requireSegkvData(dir);

  const reader = new LogReader(nodeFs, dir);
  for (const note of reader.notes) process.stderr.write(`kv-dump: note: ${note}\n`);
  const from = integerOption('from', values.from as string | undefined, reader.segments[0]?.baseOffset ?? 0);

  const out = new Output();
  const damage: DumpDamage[] = [];
  let count = 0;
  let first = -1;
  let last = -1;
  if (json) {
    const lim = Number.isFinite(limit) ? limit : null;
    await out.write(`{"dir":${JSON.stringify(dir)},"from":${from},"limit":${lim},"records":[`);
  }
  for (const item of reader.read(from, limit)) {
    if (item.type === 'damage') {
      damage.push(item);
      if (!json) process.stderr.write(`kv-dump: ${describeDamage(item)}\n`);
      continue;
    }
    if (first < 0) first = item.offset;
    last = item.offset;
    if (json) await out.write((count > 0 ? ',' : '') + JSON.stringify(recordJson(item, binary, full)));
    else await out.write(recordLine(item, binary, full));
    count++;
  }
  const next = count === limit ? last + 1 : null;
  if (json) await out.write(`],"damage":${JSON.stringify(damage)},"next":${next}}\n`);
  await out.flush();

  const span = count > 0 ? ` (offsets ${first}..${last})` : '';
  const more =
    next !== null ? `; continue with --from ${next}` : count === 0 ? `; ${endOfLog(reader, from)}` : '';
  process.stderr.write(`kv-dump: ${count} record${count === 1 ? '' : 's'}${span}${more}\n`);
  return damage.some((d) => !d.tornTail) ? EXIT_PROBLEMS : EXIT_OK;
}

/** Where the log ends, for a dump that found nothing from `from` on. */
function endOfLog(reader: LogReader, from: number): string {
  const last = reader.lastOffset();
  if (last < 0) return 'the log holds no records';
  return from > last
    ? `--from ${from} is past the end of the log: its last record is offset ${last}`
    : `no record from offset ${from} on (the last is offset ${last})`;
}

function describeDamage(d: DumpDamage): string {
  return d.tornTail
    ? `warning: the log ends with a torn tail at byte ${d.position} of ${d.segment} (${d.reason}); ` +
        'opening the store or kv-check --fix truncates it'
    : `damage in ${d.segment} at byte ${d.position}: ${d.reason}; records there are skipped, run kv-check`;
}

/** ISO time of an expiry in ms, or the raw number if no Date can hold it. */
function expiryText(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

function batchOf(flags: number): 'member' | 'end' | null {
  if ((flags & FLAG_BATCH) === 0) return null;
  return (flags & FLAG_BATCH_END) !== 0 ? 'end' : 'member';
}

function recordLine(r: DumpRecord, binary: BinaryEncoding, full: boolean): string {
  let line = `${r.offset}  ${r.segment}:${r.position}  ${r.tombstone ? 'DEL' : 'SET'}  ${showText(show(r.key, binary, true))}`;
  if (!r.tombstone) line += `  ${showText(show(r.value, binary, full))}`;
  if (r.expiresAt !== 0) line += `  expires=${expiryText(r.expiresAt)}`;
  const batch = batchOf(r.flags);
  if (batch) line += batch === 'end' ? '  batch-end' : '  batch';
  return line + '\n';
}

function recordJson(r: DumpRecord, binary: BinaryEncoding, full: boolean): Record<string, unknown> {
  const key = show(r.key, binary, true);
  const value = show(r.value, binary, full);
  return {
    offset: r.offset,
    segment: r.segment,
    position: r.position,
    size: r.size,
    key: key.text,
    keyEncoding: key.encoding,
    tombstone: r.tombstone,
    value: r.tombstone ? null : value.text,
    valueEncoding: value.encoding,
    valueBytes: value.bytes,
    valueTruncated: value.truncated,
    expiresAt: r.expiresAt === 0 ? null : r.expiresAt,
    batch: batchOf(r.flags),
  };
}

runTool('kv-dump', main);
