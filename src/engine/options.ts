/**
 * The options of `openStore`, each with unit, default and trade-off, and the
 * one function that resolves defaults and rejects bad values.
 */
import pino, { type Logger } from 'pino';
import { KvError } from '../errors.js';
import { describe } from './arguments.js';
import { type Clock, systemClock } from './clock.js';
import { type CompactionOptions, DEFAULT_COMPACTION } from './compaction/options.js';
import { type Fs, nodeFs } from './fs.js';
import {
  DEFAULT_CACHE_BYTES,
  DEFAULT_FSYNC_INTERVAL_MS,
  DEFAULT_MAX_SEGMENT_BYTES,
  DEFAULT_SLOT_CACHE_BYTES,
  INDEX_INTERVAL_BYTES,
  MAX_MAX_SEGMENT_BYTES,
  MAX_SLOT_CACHE_BYTES,
  MIN_MAX_SEGMENT_BYTES,
} from './limits.js';

/**
 * When a write is acknowledged (its promise resolves), and what survives a crash:
 * - `always`: after fsync. Survives power loss. Writes issued in the same tick
 *   share one write and one fsync (group commit).
 * - `interval`: after the write reaches the OS; fsync every `fsyncIntervalMs`.
 *   Survives a process crash; power loss may take the last interval.
 * - `never`: after the write reaches the OS; fsync only when a segment is sealed
 *   and at close. The OS decides when data reaches the disk.
 */
export type FsyncMode = 'always' | 'interval' | 'never';

export interface StoreOptions {
  /** Seal the active segment and open a new one when it reaches this size, in bytes. Default 64 MiB. Smaller segments compact sooner but mean more files. */
  maxSegmentBytes?: number;
  /** Durability mode; see FsyncMode. Default `interval`. */
  fsync?: FsyncMode;
  /** Period of the fsync tick in `interval` mode, in ms. Default 1000. Shorter loses less on power loss, costs more fsyncs. */
  fsyncIntervalMs?: number;
  /** Bytes of hot values kept in memory (lru-cache). Default 64 MiB; 0 disables the cache. */
  cacheBytes?: number;
  /**
   * Bytes of small values (up to 4 KiB) kept in memory, addressed by keydir
   * slot: a hit costs no system call. Default 32 MiB; 0 disables it (values
   * under 512 B are then read from the file each time). Filled on read (and
   * refreshed when a cached key is written), so it is resident memory once
   * that much has been read.
   */
  slotCacheBytes?: number;
  /** Distance between sparse offset index entries, in bytes. Default 4096. */
  indexIntervalBytes?: number;
  /** pino logger for recovery, sealing and errors. Default: warnings and errors to stderr. */
  logger?: Logger;
  /** File-system layer (tests inject a fault-injecting one). Default: node:fs. */
  fs?: Fs;
  /** Time source for expiry. Default: Date.now. */
  clock?: Clock;
  /** Open without taking the lock or writing anything (kv-check --force-read-only). Default false. */
  readOnly?: boolean;
  /** Background compaction: policy thresholds and schedule (see compaction/options.ts for each default). */
  compaction?: Partial<CompactionOptions>;
}

export interface ResolvedOptions {
  maxSegmentBytes: number;
  fsync: FsyncMode;
  fsyncIntervalMs: number;
  cacheBytes: number;
  slotCacheBytes: number;
  indexIntervalBytes: number;
  logger: Logger;
  fs: Fs;
  clock: Clock;
  readOnly: boolean;
  compaction: CompactionOptions;
}

function positiveInt(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new KvError(
      'INVALID_ARGUMENT',
      `option ${name} must be an integer from ${min} to ${max}, got ${value}`,
    );
  }
  return value;
}

/** `value` as a boolean (`fallback` when undefined); INVALID_ARGUMENT otherwise (a plain JS caller's `'false'` is truthy). */
function booleanOption(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw new KvError('INVALID_ARGUMENT', `option ${name} must be true or false, got ${describe(value)}`);
  }
  return value;
}

/**
 * `value` (an injected object: logger, fs, clock) when it has every method
 * in `methods`, else INVALID_ARGUMENT naming the first one missing: a wrong
 * object would otherwise fail as a TypeError at its first use, maybe on an
 * error path long after openStore (`logger: console` has no `fatal`).
 */
function withMethods<T>(name: string, value: T | undefined, fallback: T, methods: readonly string[]): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'object' || value === null) {
    throw new KvError('INVALID_ARGUMENT', `option ${name} must be an object, got ${describe(value)}`);
  }
  for (const m of methods) {
    if (typeof (value as Record<string, unknown>)[m] !== 'function') {
      throw new KvError(
        'INVALID_ARGUMENT',
        `option ${name} must have the methods ${methods.join(', ')}; ${m} is missing`,
      );
    }
  }
  return value;
}

/** The logger methods the engine calls (pino's Logger has them all). */
const LOGGER_METHODS = ['debug', 'info', 'warn', 'error', 'fatal'] as const;
/** Every method of the Fs interface (fs.ts): nodeFs's names. */
const FS_METHODS = Object.keys(nodeFs);

export function resolveOptions(o: StoreOptions = {}): ResolvedOptions {
  const fsync = o.fsync ?? 'interval';
  if (fsync !== 'always' && fsync !== 'interval' && fsync !== 'never') {
    throw new KvError(
      'INVALID_ARGUMENT',
      `option fsync must be always, interval or never, got ${String(fsync)}`,
    );
  }
  return {
    maxSegmentBytes: positiveInt(
      'maxSegmentBytes',
      o.maxSegmentBytes,
      DEFAULT_MAX_SEGMENT_BYTES,
      MIN_MAX_SEGMENT_BYTES,
      MAX_MAX_SEGMENT_BYTES,
    ),
    fsync,
    fsyncIntervalMs: positiveInt(
      'fsyncIntervalMs',
      o.fsyncIntervalMs,
      DEFAULT_FSYNC_INTERVAL_MS,
      1,
      3_600_000,
    ),
    cacheBytes: positiveInt('cacheBytes', o.cacheBytes, DEFAULT_CACHE_BYTES, 0, Number.MAX_SAFE_INTEGER),
    slotCacheBytes: positiveInt(
      'slotCacheBytes',
      o.slotCacheBytes,
      DEFAULT_SLOT_CACHE_BYTES,
      0,
      MAX_SLOT_CACHE_BYTES,
    ),
    indexIntervalBytes: positiveInt(
      'indexIntervalBytes',
      o.indexIntervalBytes,
      INDEX_INTERVAL_BYTES,
      64,
      1 << 30,
    ),
    logger:
      withMethods('logger', o.logger, undefined, LOGGER_METHODS) ??
      pino({ name: 'segkv', level: process.env.SEGKV_LOG_LEVEL ?? 'warn' }, pino.destination(2)),
    fs: withMethods('fs', o.fs, nodeFs, FS_METHODS),
    clock: withMethods('clock', o.clock, systemClock, ['now']),
    readOnly: booleanOption('readOnly', o.readOnly, false),
    compaction: resolveCompaction(o.compaction),
  };
}

/** The compaction options with defaults applied; throws INVALID_ARGUMENT naming a bad one (kv-server checks its flags with it). */
export function resolveCompaction(c: Partial<CompactionOptions> = {}): CompactionOptions {
  const d = DEFAULT_COMPACTION;
  const ratio = c.minDeadRatio ?? d.minDeadRatio;
  if (typeof ratio !== 'number' || !(ratio > 0 && ratio <= 1)) {
    throw new KvError('INVALID_ARGUMENT', `option compaction.minDeadRatio must be in (0, 1], got ${ratio}`);
  }
  const cpuShare = c.cpuShare ?? d.cpuShare;
  if (typeof cpuShare !== 'number' || !(cpuShare > 0 && cpuShare <= 1)) {
    throw new KvError('INVALID_ARGUMENT', `option compaction.cpuShare must be in (0, 1], got ${cpuShare}`);
  }
  const big = Number.MAX_SAFE_INTEGER;
  return {
    auto: booleanOption('compaction.auto', c.auto, d.auto),
    minDeadRatio: ratio,
    minDeadBytes: positiveInt('compaction.minDeadBytes', c.minDeadBytes, d.minDeadBytes, 0, big),
    maxDeadBytes: positiveInt('compaction.maxDeadBytes', c.maxDeadBytes, d.maxDeadBytes, 0, big),
    checkIntervalMs: positiveInt(
      'compaction.checkIntervalMs',
      c.checkIntervalMs,
      d.checkIntervalMs,
      10,
      86_400_000,
    ),
    minIntervalMs: positiveInt('compaction.minIntervalMs', c.minIntervalMs, d.minIntervalMs, 0, 86_400_000),
    maxBackoffMs: positiveInt('compaction.maxBackoffMs', c.maxBackoffMs, d.maxBackoffMs, 10, 86_400_000),
    cpuShare,
    ...(c.onStep && { onStep: c.onStep }),
  };
}
