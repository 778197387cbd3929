/**
 * The checks behind kv-server's settings that are not one setting's value:
 * the `ConfigError` every bad setting becomes, the closest-name suggestion
 * for a misspelt flag, variable or field, the `SEGKV_*` namespace (a
 * variable kv-server does not know is refused, not ignored), and the
 * `--compaction-<name>` / `SEGKV_COMPACTION_<NAME>` / `compaction.<name>`
 * options, one per store compaction option, each converted and checked by
 * the store's own rules (engine/options.ts resolveCompaction) while the
 * command line is parsed, so `--print-config` never shows a value the store
 * would refuse and a typo stops kv-server before it opens anything.
 */
import { type CompactionOptions, DEFAULT_COMPACTION } from '../engine/compaction/compactor.js';
import { resolveCompaction } from '../engine/options.js';
import { KvError } from '../errors.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The store's compaction options as kv-server passes them (the test hook `onStep` is not a setting). */
export type CompactionSettings = Partial<Omit<CompactionOptions, 'onStep'>>;
export type CompactionKey = keyof CompactionSettings;

/** The compaction options settable from the command line, env or file (camelCase), from the store's defaults. */
export const COMPACTION_KEYS = Object.keys(DEFAULT_COMPACTION) as readonly CompactionKey[];

export const COMPACTION_FLAG_PREFIX = 'compaction-';
export const COMPACTION_ENV_PREFIX = 'SEGKV_COMPACTION_';

/**
 * `SEGKV_*` variables that belong to other segkv programs, so kv-server leaves
 * them alone (a shell that sets one for kv-cli still starts kv-server). Any
 * other unknown `SEGKV_*` variable is refused as a likely misspelling.
 */
export const OTHER_PROGRAMS_ENV: Readonly<Record<string, string>> = {
  SEGKV_CLI_AUTH: 'kv-cli: the password',
  SEGKV_HISTORY: 'kv-cli: the history file',
  SEGKV_BENCH_TRACE: 'npm run bench:compaction: stall attribution',
  SEGKV_BENCH_PAIRS: 'npm run bench:compaction: per-pair timeline of each loaded compaction',
  SEGKV_BENCH_CHILD_ARGS: 'npm run bench:compaction: node flags of the job processes',
  SEGKV_QUICK_NODE_ARGS: 'tools/bench/server-quick.ts: node flags of the server',
  SEGKV_ENGINE: 'the test suite: which compiled engine the crash fixtures load',
  SEGKV_ACK_FILE: 'the test suite: the compaction crash fixture',
  SEGKV_FC_RUNS: 'the test suite: fast-check runs of the store model',
  SEGKV_TEST_VERBOSE: 'the test suite: extra output',
};

function kebab(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** `minDeadRatio` → `compaction-min-dead-ratio` (without the dashes). */
export function compactionFlag(key: CompactionKey): string {
  return `${COMPACTION_FLAG_PREFIX}${kebab(key)}`;
}

/** `minDeadRatio` → `SEGKV_COMPACTION_MIN_DEAD_RATIO`. */
export function compactionEnv(key: CompactionKey): string {
  return `${COMPACTION_ENV_PREFIX}${kebab(key).toUpperCase().replace(/-/g, '_')}`;
}

/** Edit distance (insertions, deletions, substitutions), for suggestions. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * The candidate closest to `name` if it is close enough to be a typo of it:
 * at most a third of the name's own part (after `--`, `SEGKV_` and the
 * compaction prefix) differs, or two characters.
 */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = distance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const own = name.replace(/^(--|SEGKV_)?(compaction-|COMPACTION_)?/, '').length;
  return bestDistance <= Math.max(2, Math.floor(own / 3)) ? best : undefined;
}

/** ` Did you mean X?` or nothing. */
export function suggestion(name: string, candidates: Iterable<string>): string {
  const c = closest(name, candidates);
  return c === undefined ? '' : ` Did you mean ${c}?`;
}

/** Checks one compaction value by the store's rules; the message names `source`. */
function checked(key: CompactionKey, value: number | boolean, source: string): number | boolean {
  if (key === 'auto' ? typeof value !== 'boolean' : typeof value !== 'number') {
    const want = key === 'auto' ? 'true or false' : 'a number';
    throw new ConfigError(`${source} must be ${want}, got ${JSON.stringify(value)}`);
  }
  try {
    resolveCompaction({ [key]: value });
  } catch (err) {
    if (!(err instanceof KvError)) throw err;
    // "option compaction.minDeadRatio must be in (0, 1], got 7" → "<source> must be in (0, 1], got 7"
    throw new ConfigError(`${source} ${err.message.replace(/^option \S+ /, '')}`);
  }
  return value;
}

/** A flag's or variable's text to the compaction option's value, checked. */
export function compactionFromText(key: CompactionKey, raw: string, source: string): number | boolean {
  if (key === 'auto') {
    if (raw !== 'true' && raw !== 'false') {
      throw new ConfigError(`${source} must be true or false, got '${raw}'`);
    }
    return raw === 'true';
  }
  const n = raw.trim() === '' ? Number.NaN : Number(raw);
  if (!Number.isFinite(n)) throw new ConfigError(`${source} must be a number, got '${raw}'`);
  return checked(key, n, source);
}

/** A config file's `compaction.<name>` value (any JSON) to the option's value, checked. */
export function compactionFromJson(key: CompactionKey, value: unknown, source: string): number | boolean {
  if (typeof value !== 'number' && typeof value !== 'boolean') {
    const want = key === 'auto' ? 'true or false' : 'a number';
    throw new ConfigError(`${source} must be ${want}, got ${JSON.stringify(value)}`);
  }
  return checked(key, value, source);
}
