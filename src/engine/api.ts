/**
 * The embedded engine's public API: `openStore` returns a `KvStore`, a small
 * object over the internal `Store` (store.ts) that shows only what a user
 * may call. The Store's internals (sealActive, point, replaceSegments, the
 * keydir, ...) are neither in this type nor reachable at run time (the Store
 * sits in a #private field); the server and the tools keep using the Store
 * itself, compaction and recovery the segment log beneath it (segment-log.ts).
 *
 * Also the one place where a plain JavaScript caller's arguments are checked
 * (arguments.ts): unknown options and wrong shapes throw INVALID_ARGUMENT,
 * and the names shared with Redis mean what they mean in Redis: `ttl` in
 * seconds and `pttl` in ms, `expire` in seconds and `pexpire` in ms (a time
 * ≤ 0 deletes the key), `del` of several keys counts those that existed.
 *
 * Concurrency: as the Store, everything runs on the event loop.
 */
import {
  checkKey,
  checkOptions,
  integer,
  invalid,
  keyList,
  limitArity,
  noFlags,
  rejecting,
  type SetOptions,
  secondsToMs,
  setOptionsFrom,
  ttlWithinLimit,
} from './arguments.js';
import { type CompactionResult, DEFAULT_COMPACTION } from './compaction/compactor.js';
import type { Key, Value } from './keys.js';
import type { StoreOptions } from './options.js';
import {
  type BatchOp,
  type LogRecord,
  openStore as openInternalStore,
  type ScanOptions,
  type ScanPage,
  type Store,
  type StoreStats,
} from './store.js';

export type { SetOptions } from './arguments.js';
export { type Clock, ManualClock, systemClock } from './clock.js';
export type { CompactionResult } from './compaction/compactor.js';
export { type Fs, nodeFs } from './fs.js';
export type { Key, Value } from './keys.js';
export { MAX_KEY_BYTES, MAX_VALUE_BYTES } from './limits.js';
export type { FsyncMode, StoreOptions } from './options.js';
export type {
  BatchOp,
  LogRecord,
  RecoveryStats,
  ScanOptions,
  ScanPage,
  SegmentStats,
  StoreStats,
} from './store.js';

/** Events of a KvStore. */
export interface StoreEventMap {
  /** Compaction progress: `{ phase: 'start' | 'progress' | 'done' | 'error', ... }`. */
  compaction: [event: { phase: string; [field: string]: unknown }];
  /** The store closed. */
  close: [];
}

/** An open data directory: what `openStore` resolves with. */
export interface KvStore {
  /** The data directory. */
  readonly dir: string;
  /** Number of keys (expired keys not yet swept included); cheaper than stats(). */
  readonly size: number;
  readonly isClosed: boolean;

  /** The value of `key` as a Buffer, or undefined. */
  get(key: Key): Promise<Buffer | undefined>;
  /** `get` without the promise: one positioned read (or a cache hit). */
  getSync(key: Key): Buffer | undefined;
  /**
   * Sets `key`; resolves true once durable per the fsync mode, or false
   * (nothing written) when ifAbsent/ifPresent said not to write. Options:
   * see SetOptions; Redis's tokens work too: `set(k, v, 'EX', 10, 'NX')`.
   * Without a TTL option the key's earlier expiry is removed (as Redis SET).
   */
  set(key: Key, value: Value, options?: SetOptions): Promise<boolean>;
  set(key: Key, value: Value, ...redisTokens: (string | number)[]): Promise<boolean>;
  /** Deletes keys, given variadically or as arrays (atomically); resolves how many existed (a key named twice counts once). */
  del(...keys: (Key | readonly Key[])[]): Promise<number>;
  /** @deprecated Use `del(key)`: the same verb as the client SDK and Redis. Resolves whether the key existed. */
  delete(key: Key): Promise<boolean>;
  /** Whether `key` exists. */
  has(key: Key): boolean;
  /** How many of the keys exist (a key named twice counts twice, as Redis EXISTS). */
  exists(...keys: (Key | readonly Key[])[]): number;
  /** Remaining time to live in seconds, rounded (Redis TTL); -1 without expiry, -2 if the key does not exist. */
  ttl(key: Key): number;
  /** Remaining time to live in ms (Redis PTTL); -1 without expiry, -2 if the key does not exist. */
  pttl(key: Key): number;
  /**
   * Makes an existing key expire `seconds` from now (Redis EXPIRE); a time
   * ≤ 0 deletes it. Resolves whether the key existed (nothing is written if not).
   * The key's record is rewritten with its value and the new expiry.
   */
  expire(key: Key, seconds: number): Promise<boolean>;
  /** `expire` in milliseconds (Redis PEXPIRE). */
  pexpire(key: Key, ms: number): Promise<boolean>;
  /** Removes a key's expiry; resolves false if it does not exist or has none. */
  persist(key: Key): Promise<boolean>;
  /** Applies `ops` atomically (after a crash: all or none); resolves with the number of records written. */
  batch(ops: readonly BatchOp[]): Promise<number>;
  /** Resolves once everything written so far is on disk (fsync), whatever the mode. */
  sync(): Promise<void>;
  /** One page of keys in byte order, filtered by prefix and range; resumable by cursor. */
  scan(options?: ScanOptions): ScanPage;
  /** `scan` with keys as their exact bytes (for keys that are not UTF-8). */
  scanBuffers(options?: ScanOptions): ScanPage<Buffer>;
  /** Every matching key, page by page: `keys('user:*')` takes a glob pattern, as Redis's KEYS; or scan options. */
  keys(patternOrOptions?: string | Omit<ScanOptions, 'cursor'>): AsyncGenerator<string>;
  /** Records of the log from `offset` on, in offset order (tombstones and overwritten values included). */
  readFrom(offset: number, options?: { limit?: number }): AsyncGenerator<LogRecord>;
  /** Compacts the whole log now (like BGREWRITEAOF); reads and writes continue meanwhile. */
  compact(): Promise<CompactionResult | undefined>;
  stats(): StoreStats;
  /** Flushes, fsyncs, closes every file and releases the lock. Idempotent. */
  close(): Promise<void>;
  on<E extends keyof StoreEventMap>(event: E, listener: (...args: StoreEventMap[E]) => void): this;
  once<E extends keyof StoreEventMap>(event: E, listener: (...args: StoreEventMap[E]) => void): this;
  off<E extends keyof StoreEventMap>(event: E, listener: (...args: StoreEventMap[E]) => void): this;
}

/** @deprecated The store's type is `KvStore`. */
export type { KvStore as Store };

const STORE_OPTION_FIELDS = [
  'maxSegmentBytes',
  'fsync',
  'fsyncIntervalMs',
  'cacheBytes',
  'slotCacheBytes',
  'indexIntervalBytes',
  'logger',
  'fs',
  'clock',
  'readOnly',
  'compaction',
];
const SCAN_OPTION_FIELDS = ['prefix', 'match', 'start', 'end', 'cursor', 'count'];
const BATCH_SET_FIELDS = ['type', 'key', 'value', 'ttlMs'];
const BATCH_DEL_FIELDS = ['type', 'key'];

/** The events a KvStore emits: listening for any other name (a typo: 'closed') would wait forever. */
const STORE_EVENTS: readonly string[] = ['compaction', 'close'] satisfies (keyof StoreEventMap)[];

function storeEvent<E>(where: string, event: E): E {
  if (typeof event !== 'string' || !STORE_EVENTS.includes(event)) {
    throw invalid(`${where}: a KvStore emits ${STORE_EVENTS.join(' and ')}, not ${String(event)}`);
  }
  return event;
}

class EmbeddedStore implements KvStore {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  get dir(): string {
    return this.#store.dir;
  }
  get size(): number {
    return this.#store.size;
  }
  get isClosed(): boolean {
    return this.#store.isClosed;
  }

  get(key: Key): Promise<Buffer | undefined> {
    return rejecting(() => {
      return this.#store.get(checkKey('get', key));
    });
  }

  getSync(key: Key): Buffer | undefined {
    return this.#store.getSync(checkKey('getSync', key));
  }

  set(key: Key, value: Value, ...rest: unknown[]): Promise<boolean> {
    return rejecting(() => {
      const o = setOptionsFrom('set', rest);
      return this.#store.set(key, value, {
        ...(o.ttlMs !== undefined && { ttlMs: o.ttlMs }),
        ...(o.ifAbsent && { ifAbsent: true }),
        ...(o.ifPresent && { ifPresent: true }),
      });
    });
  }

  del(...args: (Key | readonly Key[])[]): Promise<number> {
    return rejecting(() => {
      const keys = keyList('del', args);
      if (keys.length === 1) return this.#store.delete(keys[0]!).then((existed) => (existed ? 1 : 0));
      // Deletes of absent keys (and repeats) write nothing: the records written are the keys that existed.
      return this.#store.batch(keys.map((key) => ({ type: 'del' as const, key })));
    });
  }

  delete(key: Key): Promise<boolean> {
    return rejecting(() => {
      return this.#store.delete(checkKey('delete', key));
    });
  }

  has(key: Key): boolean {
    return this.#store.has(checkKey('has', key));
  }

  exists(...args: (Key | readonly Key[])[]): number {
    let n = 0;
    for (const key of keyList('exists', args)) if (this.#store.has(key)) n++;
    return n;
  }

  ttl(key: Key): number {
    const ms = this.#store.ttl(checkKey('ttl', key));
    // As Redis rounds: (ms + 500) / 1000; the negative answers pass through.
    return ms < 0 ? ms : Math.floor((ms + 500) / 1000);
  }

  pttl(key: Key): number {
    return this.#store.ttl(checkKey('pttl', key));
  }

  expire(key: Key, seconds: number, ...flags: never[]): Promise<boolean> {
    return rejecting(() => {
      noFlags('expire', flags);
      if (seconds === null) throw invalid('expire: to remove an expiry use persist(key)');
      const s = integer('expire', 'seconds', seconds, 'seconds');
      return this.expireMs(checkKey('expire', key), s <= 0 ? 0 : secondsToMs('expire', s));
    });
  }

  pexpire(key: Key, ms: number, ...flags: never[]): Promise<boolean> {
    return rejecting(() => {
      noFlags('pexpire', flags);
      return this.expireMs(checkKey('pexpire', key), integer('pexpire', 'ms', ms, 'milliseconds'));
    });
  }

  /** Redis: a time ≤ 0 deletes the key (and answers whether it existed). */
  private expireMs(key: Key, ms: number): Promise<boolean> {
    return ms <= 0
      ? this.#store.delete(key)
      : this.#store.expire(key, ttlWithinLimit('expire', 'the time', ms));
  }

  persist(key: Key): Promise<boolean> {
    return rejecting(() => {
      return this.#store.expire(checkKey('persist', key), null);
    });
  }

  batch(ops: readonly BatchOp[]): Promise<number> {
    return rejecting(() => {
      if (!Array.isArray(ops)) throw invalid('batch takes an array of operations');
      for (const op of ops) {
        if (op === null || typeof op !== 'object') continue; // the Store names it
        const fields =
          op.type === 'set' ? BATCH_SET_FIELDS : op.type === 'del' ? BATCH_DEL_FIELDS : undefined;
        if (fields) checkOptions(`batch ${op.type} op`, op, fields);
      }
      return this.#store.batch(ops);
    });
  }

  sync(): Promise<void> {
    return this.#store.sync();
  }

  scan(options?: ScanOptions): ScanPage {
    return this.#store.scan(checkOptions<ScanOptions>('scan', options, SCAN_OPTION_FIELDS) ?? {});
  }

  scanBuffers(options?: ScanOptions): ScanPage<Buffer> {
    return this.#store.scanBuffers(
      checkOptions<ScanOptions>('scanBuffers', options, SCAN_OPTION_FIELDS) ?? {},
    );
  }

  keys(patternOrOptions?: string | Omit<ScanOptions, 'cursor'>): AsyncGenerator<string> {
    const options = typeof patternOrOptions === 'string' ? { match: patternOrOptions } : patternOrOptions;
    const fields = SCAN_OPTION_FIELDS.filter((f) => f !== 'cursor');
    return this.#store.keys(checkOptions<ScanOptions>('keys', options, fields) ?? {});
  }

  readFrom(offset: number, options?: { limit?: number }): AsyncGenerator<LogRecord> {
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
      throw invalid(`readFrom: offset must be an integer ≥ 0, got ${String(offset)}`);
    }
    const o = checkOptions<{ limit: number }>('readFrom', options, ['limit']);
    const limit = o?.limit;
    if (limit !== undefined && (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0)) {
      throw invalid(`readFrom: option limit must be an integer ≥ 0, got ${String(limit)}`);
    }
    return this.#store.readFrom(offset, o ?? {});
  }

  compact(): Promise<CompactionResult | undefined> {
    return this.#store.compact();
  }

  stats(): StoreStats {
    return this.#store.stats();
  }

  close(): Promise<void> {
    return this.#store.close();
  }

  on<E extends keyof StoreEventMap>(event: E, listener: (...args: StoreEventMap[E]) => void): this {
    this.#store.on(storeEvent('on', event), listener as (...args: unknown[]) => void);
    return this;
  }

  once<E extends keyof StoreEventMap>(event: E, listener: (...args: StoreEventMap[E]) => void): this {
    this.#store.once(storeEvent('once', event), listener as (...args: unknown[]) => void);
    return this;
  }

  off<E extends keyof StoreEventMap>(event: E, listener: (...args: StoreEventMap[E]) => void): this {
    this.#store.off(storeEvent('off', event), listener as (...args: unknown[]) => void);
    return this;
  }
}

// The methods with a fixed number of parameters; the variadic ones (and expire's flags) check their rest themselves.
limitArity(
  EmbeddedStore.prototype,
  {
    get: ['key'],
    delete: ['key'],
    persist: ['key'],
    batch: ['ops'],
    sync: [],
    compact: [],
    close: [],
  },
  {
    getSync: ['key'],
    has: ['key'],
    ttl: ['key'],
    pttl: ['key'],
    scan: ['options'],
    scanBuffers: ['options'],
    keys: ['patternOrOptions'],
    readFrom: ['offset', 'options'],
    stats: [],
  },
);

/**
 * Opens (creating if needed) the store in `dir`. Recovers the keydir from
 * hints and segments, truncating a torn tail. Rejects with LOCKED if another
 * process has the directory open, INVALID_ARGUMENT for an unknown option.
 */
export async function openStore(dir: string, options?: StoreOptions): Promise<KvStore> {
  if (typeof dir !== 'string' || dir === '') {
    throw invalid(`openStore: dir must be a non-empty path string, got ${typeof dir}`);
  }
  const o = checkOptions<StoreOptions>('openStore', options, STORE_OPTION_FIELDS);
  if (o?.compaction !== undefined) {
    checkOptions('openStore compaction', o.compaction, Object.keys(DEFAULT_COMPACTION));
  }
  return new EmbeddedStore(await openInternalStore(dir, o));
}
