/**
 * The store: the embedded API over the segmented log and the keydir.
 *
 * Write path: validate → encode the record into the active segment's write
 * buffer → point the keydir at it (reads see it at once) → flush: one write
 * per tick (setImmediate) → ack per durability mode (`always`: after a shared
 * fsync, i.e. group commit). A write the OS refuses is undone in the keydir
 * and rejected: nothing unacknowledged stays visible. A failed fsync is
 * different (the bytes reached the OS, their durability is unknown): its
 * writes are rejected, every later write is refused until the store is
 * reopened, and reads may still see the rejected writes until then.
 *
 * Read path: keydir → slot → the small-value cache by slot (values up to
 * 4 KiB, slot-cache.ts: no system call, no key string) or the lru-cache
 * (larger values) → else one positioned read of the record, checked against
 * its CRC, which fills the cache. Writes fill the small-value cache too; the
 * keydir drops a slot's cached value whenever the slot changes.
 *
 * Invariants upheld here (DESIGN.md §1): acks follow the durability mode (1);
 * batches are written contiguously in one segment, flagged so recovery applies
 * them whole or not at all (2); one owner per directory via lock.ts (5).
 *
 * Beneath it, the segment log (segment-log.ts) owns the segments, the
 * appends at nextOffset and the keydir's compare-and-set; recovery and
 * compaction work on that log, never on the Store (compaction through
 * compaction/host.ts, which the Store implements).
 *
 * Concurrency: everything runs on the event loop; the only asynchronous steps
 * are fsyncs and the background sealing of full segments (hint + index files).
 */
import { EventEmitter } from 'node:events';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { CorruptionError, closedError, ioError, KvError } from '../errors.js';
import { type CompactionResult, type CompactionStats, Compactor } from './compaction/compactor.js';
import { dirOps } from './compaction/dir-ops.js';
import type { CompactionHost } from './compaction/host.js';
import { traced } from './compaction/trace.js';
import { type Fs, nodeFs } from './fs.js';
import { compileGlob } from './glob.js';
import { dropRecycledHintStorage, type HintBuilder } from './hint-builder.js';
import { KeyIndex } from './key-index.js';
import { Keydir } from './keydir.js';
import {
  checkTtlMs,
  internalizeKey,
  type Key,
  toInternalKey,
  toKeyBytes,
  toUserKey,
  toValueBytes,
  type Value,
} from './keys.js';
import {
  ACTIVE_SEGMENT_RETRY_MS,
  ALWAYS_DEFERRED_FLUSH_BYTES,
  ALWAYS_INLINE_FSYNC_MAX_BYTES,
  ALWAYS_INLINE_FSYNC_MAX_MS,
  ALWAYS_ZERO_AHEAD_BYTES,
  EXPIRE_SWEEP_INTERVAL_MS,
  EXPIRE_SWEEP_KEYS,
  KEYDIR_REHASH_TIMER_INTERVAL_MS,
  KEYDIR_REHASH_TIMER_MS,
  MAX_CACHED_VALUE_BYTES,
  MAX_KEY_BYTES,
  MAX_SCAN_COUNT,
  MIN_CACHED_VALUE_BYTES,
  SEAL_AT_CLOSE_MIN_BYTES,
  SLOT_CACHE_MAX_VALUE_BYTES,
} from './limits.js';
import { type DirLock, lockDir } from './lock.js';
import { type LogRecord, readLog } from './log-reader.js';
import { type ResolvedOptions, resolveOptions, type StoreOptions } from './options.js';
import { FLAG_BATCH, FLAG_BATCH_END, FLAG_TOMBSTONE, type RecordHeader, recordSize } from './record.js';
import { checkRun, RunRows } from './record-run.js';
import { type RecoveryStats, recover } from './recovery.js';
import { RepeatedErrorLog } from './repeated-error-log.js';
import { decodeCursor, encodeCursor } from './scan-cursor.js';
import { sealSegment } from './sealer.js';
import { releaseSpareWriteChunks, type Segment } from './segment.js';
import { SEGMENT_HEADER_BYTES } from './segment-header.js';
import { type LogWatcher, SegmentLog } from './segment-log.js';
import { SlotCache } from './slot-cache.js';
import { TickAck } from './tick-ack.js';
import { AS_DOUBLE, AS_VARIABLE } from './v8-fields.js';

export type { LogRecord } from './log-reader.js';
export type { RecoveryStats } from './recovery.js';

export interface SetOptions {
  /** Time to live in ms; the key reads as absent once it has passed. */
  ttlMs?: number;
  /** Only write if the key does not exist (Redis NX). */
  ifAbsent?: boolean;
  /** Only write if the key exists (Redis XX). */
  ifPresent?: boolean;
}

export type BatchOp = { type: 'set'; key: Key; value: Value; ttlMs?: number } | { type: 'del'; key: Key };

export interface ScanOptions {
  /** Only keys starting with this (a string stands for its UTF-8 bytes). */
  prefix?: Key;
  /** Only keys ≥ this (byte order). */
  start?: Key;
  /** Only keys < this (byte order). */
  end?: Key;
  /** Resume after a previous page: its `cursor`. */
  cursor?: string;
  /**
   * Keys per page, default 100, at most 100,000. With `match`: keys examined
   * per page, so a page may hold fewer, even none, with a cursor (as Redis's
   * SCAN COUNT).
   */
  count?: number;
  /**
   * Only keys matching this glob pattern (Redis's: `*`, `?`, `[a-z]`, `[^x]`,
   * backslash escapes; by bytes; see glob.ts). Its literal prefix narrows the scan.
   */
  match?: Key;
}

/** A page of keys: strings from `scan` (UTF-8 decoded), Buffers from `scanBuffers` (exact bytes). */
export interface ScanPage<K = string> {
  keys: K[];
  /** Pass back to get the next page; null when the scan is complete. */
  cursor: string | null;
}

/** A record from a primary's log (applyReplicated): value null for a tombstone. */
export interface ReplicatedRecord {
  offset: number;
  flags: number;
  expiresAt: number;
  key: Uint8Array;
  value: Uint8Array | null;
}

export interface SegmentStats {
  file: string;
  baseOffset: number;
  lastOffset: number;
  bytes: number;
  liveBytes: number;
  deadBytes: number;
  sealed: boolean;
}

export interface StoreStats {
  keys: number;
  expiringKeys: number;
  segments: SegmentStats[];
  liveBytes: number;
  deadBytes: number;
  diskBytes: number;
  firstOffset: number;
  nextOffset: number;
  cache: { entries: number; bytes: number; hits: number; misses: number };
  /** `inline`: of `count`, the fsyncs made on the event loop (an `always` round's, Store.syncsInline). */
  fsync: { mode: string; count: number; inline: number; totalMs: number };
  recovery: RecoveryStats;
  /** Damage found by reads since the store opened (what recovery found is in `recovery.corruptions`). */
  corruption: ReadCorruptionStats;
  compaction: CompactionStats;
}

export interface ReadCorruptionStats {
  /** Distinct damaged records that reads (and compactions) met; each logged once, at error, with file and position. */
  records: number;
  /** Reads answered CORRUPTION: by key or by offset (a client retrying a damaged key counts each time). */
  reads: number;
}

export class Store extends EventEmitter implements CompactionHost {
  readonly dir: string;
  readonly options: ResolvedOptions;
  readonly keydir = new Keydir();
  /**
   * @internal The log beneath the store (segment-log.ts): its segments, the
   * active one, the next offset and the keydir's compare-and-set. Recovery,
   * compaction and the log's readers use it, not the Store.
   */
  readonly segmentLog: SegmentLog;
  /** Segment table, indexed by segment id (what the keydir stores): the log's. */
  readonly segments: readonly (Segment | undefined)[];
  recoveryStats: RecoveryStats = {
    ms: 0,
    segments: 0,
    fromHints: 0,
    scanned: 0,
    truncatedBytes: 0,
    corruptions: 0,
  };

  private readonly fs: Fs;
  private readonly log: Logger;
  private lock: DirLock | undefined;
  private readonly cache: LRUCache<string, Buffer> | undefined;
  /** The small-value cache (also keydir.values, which drops its entries): undefined when off. */
  private readonly slotCache: SlotCache | undefined;
  /** Values of this length and under go to the small-value cache (-1: it is off). */
  private readonly slotCacheMax: number;
  private cacheHits = 0;
  private cacheMisses = 0;
  private keyIndex: KeyIndex | undefined;
  private closed = false;
  /** Set when an fsync failed: durability can no longer be promised, writes are refused. */
  private failure: KvError | undefined;
  /** Set while there is no active segment to append to (openActiveSegment failed): writes are refused with it. */
  private noActive: KvError | undefined;
  /** The log of failed log writes: a full disk fails every tick's, and must not flood it. */
  private readonly writeErrors: RepeatedErrorLog;
  private lastActiveAttempt = 0;

  // Write path state.
  private flushScheduled = false;
  /** The ack of the writes buffered this tick (tick-ack.ts), made by the first of them. */
  private tickAck: TickAck | undefined;
  /** batchNow's ops, validated, reused by every batch (values cleared after each). */
  private readonly batchKeys: string[] = [];
  private readonly batchValues: (Uint8Array | undefined)[] = [];
  private readonly batchExpires: number[] = [];
  /**
   * @internal The server (server.ts): called right after an `always` ack
   * settled with its fsync round, in that promise reaction (never inside a
   * caller's stack), so the replies its listeners queued are written at once
   * rather than at the end of the event loop's poll phase, behind the reads
   * of every other request ready then (Redis writes its replies right after
   * the fdatasync of beforeSleep).
   */
  afterSyncAck: (() => void) | undefined;
  /**
   * @internal The server (server.ts): `always` rounds may fsync on the event
   * loop (syncsInline). Off for the embedded API, whose caller's loop may
   * have other work than this store's clients.
   */
  syncsInlineAllowed = false;
  /** The sync round running (syncLog), and the one queued behind it. */
  private syncing: Promise<void> | undefined;
  private nextSync:
    | { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void }
    | undefined;
  private fsyncCount = 0;
  private fsyncMs = 0;
  /** Of fsyncCount, those made on the event loop (syncsInline). */
  private fsyncInlineCount = 0;
  /** How long the last sync round's fsyncs took (ms). */
  private lastRoundMs = 0;
  /** Reads answered (getSync, viewSyncBytes, has, ttl, expiresAt, scan), and their count when the last sync round started (syncsInline). */
  private reads = 0;
  private readsAtRound = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly background = new Set<Promise<void>>();
  private expiryCursor: Iterator<[string, number]> | undefined;
  private readonly compactor: Compactor;

  constructor(dir: string, options: ResolvedOptions) {
    super();
    // The fields the first sync round changes (v8-fields.ts): fsyncMs and
    // lastRoundMs take fractions of a ms. Stored as small integers first,
    // the first round (the first `interval` tick or rotation) changed the
    // Store's map and deoptimised every optimised method of the write path
    // ("wrong map": set, checkWritable, makeRoom, tickAckNow, pointValue...).
    this.fsyncMs = AS_DOUBLE;
    this.fsyncMs = 0;
    this.lastRoundMs = AS_DOUBLE;
    this.lastRoundMs = 0;
    this.fsyncCount = AS_VARIABLE;
    this.fsyncCount = 0;
    this.readsAtRound = AS_VARIABLE;
    this.readsAtRound = 0;
    this.dir = dir;
    this.options = options;
    this.segmentLog = new SegmentLog(dir, options, this.keydir);
    this.segments = this.segmentLog.segments;
    this.fs = options.fs;
    this.log = options.logger;
    this.writeErrors = new RepeatedErrorLog(
      this.log,
      options.clock,
      'a write to the log',
      'the writes of this tick are refused',
    );
    if (options.cacheBytes > 0) {
      this.cache = new LRUCache<string, Buffer>({
        maxSize: options.cacheBytes,
        sizeCalculation: (v, k) => v.length + k.length + 64,
      });
    }
    if (options.slotCacheBytes > 0) {
      this.slotCache = new SlotCache(options.slotCacheBytes, SLOT_CACHE_MAX_VALUE_BYTES);
      this.keydir.values = this.slotCache;
      this.slotCacheMax = this.slotCache.maxValueBytes;
    } else {
      this.slotCacheMax = -1;
    }
    this.compactor = new Compactor(this, options.compaction, options.logger);
  }

  /** Live segments in offset order; the last one is active (the log's). */
  get ordered(): readonly Segment[] {
    return this.segmentLog.ordered;
  }

  get active(): Segment {
    return this.segmentLog.active;
  }

  /** The offset the next record gets. */
  get nextOffset(): number {
    return this.segmentLog.nextOffset;
  }

  /** @internal Count of undone write ticks; the compaction swap checks it. */
  get rollbacks(): number {
    return this.segmentLog.rollbacks;
  }

  /** @internal Log cursors (change feed, replication) told of flushes and compaction swaps (log-cursor.ts). */
  get watchers(): Set<LogWatcher> {
    return this.segmentLog.watchers;
  }

  /** @internal Opens the directory: lock, recovery, timers. */
  async start(): Promise<void> {
    if (!this.options.readOnly) {
      this.fs.mkdirp(this.dir);
      this.lock = lockDir(this.fs, this.dir);
    }
    try {
      const result = recover(this.segmentLog);
      this.recoveryStats = result.stats;
      if (result.needActive) this.openActiveSegment();
      // A read-only open writes nothing, not even a missing hint.
      // Data first, then the hint (a durable hint over data that is not would point past the file's end).
      if (!this.options.readOnly) for (const s of result.needHints) this.sealInBackground(s, true);
    } catch (err) {
      this.lock?.release();
      throw err;
    }
    if (this.options.readOnly) return;
    // The recovered last segment stays active: its file keeps zeros ahead too (segment-log.ts createSegment).
    const last = this.segmentLog.ordered[this.segmentLog.ordered.length - 1];
    if (this.options.fsync === 'always' && last !== undefined && !last.sealed)
      last.startZerosAhead(ALWAYS_ZERO_AHEAD_BYTES);
    if (this.options.fsync === 'interval') {
      this.timers.push(setInterval(() => this.syncInterval(), this.options.fsyncIntervalMs).unref());
    }
    this.timers.push(setInterval(() => this.sweepExpired(), EXPIRE_SWEEP_INTERVAL_MS).unref());
    // A keydir doubling (or arena evacuation) moves its keys as calls come (keydir.ts); this finishes one on an idle store.
    this.timers.push(
      setInterval(
        () => this.keydir.rehashFor(KEYDIR_REHASH_TIMER_MS),
        KEYDIR_REHASH_TIMER_INTERVAL_MS,
      ).unref(),
    );
    this.compactor.start();
  }

  // ---- segments ---------------------------------------------------------

  /** @internal Seals the active segment if it holds any record (for a full compaction). */
  sealActive(): void {
    this.checkWritable();
    if (this.active.records > 0) this.rotate();
  }

  /**
   * @internal Resolves when the background sealing tasks running now have
   * finished, and the compaction's rewrite process has warmed up if it is
   * doing so (compaction/warm-up.ts). Not tasks started meanwhile: under
   * steady writes on small segments there always is one, and
   * store.compact() waited forever.
   */
  async settleBackground(): Promise<void> {
    await Promise.allSettled([...this.background, this.compactor.warmedUp]);
  }

  /**
   * Seals the active segment and opens a new one; the hint and index are
   * written in the background. If the new one cannot be created, nothing
   * changes (the active segment stays active) and the IO_ERROR goes to the
   * write that needed the room.
   */
  private rotate(): void {
    const t = performance.now();
    this.flushNow();
    const old = this.segmentLog.rotate();
    // Its hint, built while it was active, is frozen from now on: the sealer writes it out.
    const hint = old.hint;
    old.hint = undefined;
    this.sealInBackground(old, true, hint);
    traced('store.rotate', t);
  }

  /**
   * @internal The end of recovery: appends go to a fresh active segment. If it
   * cannot be created (a full disk), the store opens anyway: reads are served
   * and writes refused with that IO_ERROR until a retry succeeds (checkWritable).
   */
  openActiveSegment(): void {
    try {
      this.segmentLog.createSegment();
      this.noActive = undefined;
    } catch (err) {
      this.noActive = err as KvError;
      this.noActive.message +=
        '; the store is read-only until a new segment can be created (free disk space; writes resume by themselves)';
      this.lastActiveAttempt = performance.now();
      this.log.error(
        { err },
        'cannot create the active segment; serving reads, refusing writes until it can',
      );
    }
  }

  /**
   * Makes a sealed segment fast to load, in the background (sealer.ts):
   * fsync it, write its hint and index. A failure only costs a rescan at open.
   * `hint`: the hint built while it was active; without one, the sealer scans it.
   */
  private sealInBackground(seg: Segment, fsyncData: boolean, hint?: HintBuilder): void {
    seg.retain();
    const task = sealSegment(this.segmentLog, () => this.syncLog(), seg, fsyncData, this.log, hint)
      .catch((err) => {
        this.log.error(
          { err, file: seg.name },
          'writing the hint failed; the segment will be rescanned at open',
        );
      })
      .finally(() => seg.release());
    this.background.add(task);
    void task.finally(() => this.background.delete(task));
  }

  // ---- write path ---------------------------------------------------------

  private checkWritable(): void {
    if (this.closed) throw closedError();
    if (this.options.readOnly) throw new KvError('INVALID_ARGUMENT', 'the store was opened read-only');
    if (this.failure) throw this.failure;
    if (this.noActive) {
      if (performance.now() - this.lastActiveAttempt < ACTIVE_SEGMENT_RETRY_MS) throw this.noActive;
      this.openActiveSegment();
      if (this.noActive) throw this.noActive;
      this.log.info({ file: this.active.name }, 'created the active segment; writes are accepted again');
    }
  }

  /** Rotates if `bytes` more would overflow the active segment; a batch makes room once, so it never spans two. */
  private makeRoom(bytes: number): void {
    const seg = this.active;
    if (seg.size + bytes > this.options.maxSegmentBytes && seg.size > SEGMENT_HEADER_BYTES) this.rotate();
  }

  /**
   * The acknowledgement of the writes of this tick (tick-ack.ts): one object
   * shared by all of them (they are flushed, fsynced and refused together),
   * so a write allocates nothing of its own for it.
   */
  private tickAckNow(): TickAck {
    let a = this.tickAck;
    if (a === undefined) {
      a = this.tickAck = new TickAck();
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.flushIfDue);
      }
    }
    return a;
  }

  /** The tick's acknowledgement as a promise (the embedded API). */
  private ack(): Promise<true> {
    return this.tickAckNow().promise();
  }

  /**
   * What set, expire and delete resolve: whether they wrote, once the tick's
   * acknowledgement came. A write that wrote nothing waits for it too: what it
   * observed may be a write not yet durable (see delete).
   */
  private ackWrote(wrote: boolean): Promise<boolean> {
    return wrote ? this.ack() : this.ack().then(() => false);
  }

  /** The store's own end-of-tick flush, unless the server's flushed the tick first (flushTick). */
  private readonly flushIfDue = (): void => this.flushTick();

  /**
   * Under `always`, while a sync round runs (or its gathering turn), a tick's
   * end leaves its records buffered: the next round starts by flushing them
   * (startQueuedRound), and they could not be acknowledged before it anyway.
   * One write per round instead of one per tick (3-10 at SET -P 1, the
   * answered clients' requests arriving over several ticks). Reads see
   * buffered records (Segment.read); a round finishing runs the gathering
   * turn when a flush is pending, so they are never left behind. A large
   * buffer (ALWAYS_DEFERRED_FLUSH_BYTES) is written out at once, overlapping
   * the running fsync.
   */
  private flushWaitsForRound(): boolean {
    if (this.options.fsync !== 'always' || this.syncing === undefined || this.closed) return false;
    const seg = this.segmentLog.ordered[this.segmentLog.ordered.length - 1];
    return seg !== undefined && seg.size - seg.written < ALWAYS_DEFERRED_FLUSH_BYTES;
  }

  /** @internal Hands buffered records to the OS now (the compaction swap starts with this). */
  flushPending(): void {
    this.flushNow();
  }

  /**
   * @internal The server's end of tick (server.ts flushAll), before it writes
   * its replies: the writes of this tick reach the OS now and, unless the
   * mode waits for an fsync, their TickAck listeners are called before this
   * returns, so their replies leave in the same socket writes. Nothing to do
   * when no write is pending.
   */
  flushTick(): void {
    if (this.flushScheduled && !this.flushWaitsForRound()) this.flushNow(true);
  }

  /**
   * Hands every buffered record to the OS now, then acks or queues for fsync.
   * `tickEnd`: called at the end of a tick (flushIfDue, flushTick), where
   * nothing is half done, so the ack's listeners may run at once. Elsewhere
   * (a rotation inside a write, a sync, a compaction swap, a feed read: maybe
   * in the middle of a connection's batch of requests, its replies not yet
   * taken from the shared writer) the ack settles in a microtask, once the
   * current call stack has unwound, as a promise's reactions would.
   */
  private flushNow(tickEnd = false): void {
    this.flushScheduled = false;
    const ack = this.tickAck;
    this.tickAck = undefined;
    const seg = this.segmentLog.ordered[this.segmentLog.ordered.length - 1]; // none only while noActive on an empty directory
    let wrote = false;
    try {
      wrote = seg?.flush() ?? false;
    } catch (err) {
      // The buffered records are gone from the segment: its in-progress hint has
      // entries for them, so it is given up and the segment scanned when sealed.
      if (seg !== undefined) seg.hint = undefined;
      const error = ioError('writing to the log', err);
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT')
        error.message += '; free disk space: writes resume by themselves';
      this.writeErrors.failed(err);
      this.segmentLog.rollbackTick((key) => this.cache?.delete(key));
      if (ack === undefined) return;
      if (tickEnd) ack.reject(error);
      else queueMicrotask(() => ack.reject(error));
      return;
    }
    this.segmentLog.commitTick();
    if (wrote) this.writeErrors.succeeded();
    if (ack === undefined) return;
    if (this.options.fsync === 'always') {
      // Settled in a promise reaction: the stack has unwound.
      this.syncLog().then(
        () => {
          ack.resolve();
          this.afterSyncAck?.();
        },
        (err) => {
          ack.reject(err);
          this.afterSyncAck?.();
        },
      );
    } else if (tickEnd) ack.resolve();
    else queueMicrotask(() => ack.resolve());
  }

  /**
   * @internal One sync round: fsyncs every segment written since its last
   * fsync, oldest first, then the directory if files were created. Rounds
   * never overlap: a round asked for while one runs is queued behind it (and
   * shared by everyone who asks meanwhile: group commit), and takes its list
   * of dirty segments when it starts. So a segment's data is durable before
   * a later segment's fsync is counted (Redis everysec loses only a suffix;
   * two overlapping rounds finishing out of order lost a non-suffix), and
   * every fsync of segment data (the `always` ack, the `interval` tick, the
   * sealing of a full segment, sync(), close) goes through here.
   */
  syncLog(): Promise<void> {
    // Queued behind the running round, and shared by everyone who asks meanwhile.
    // The queued round starts in the running one's first promise reaction
    // (roundDone), before anyone resuming from it runs: code resuming from a
    // finished round (a sync() caller, a sealer, whose rotation asks for a
    // round) once started a round of its own in the microtasks between the two,
    // which then ran two rounds at once: one fsynced later segments while the
    // other's fsync of an earlier segment was still pending, and a power cut
    // kept later writes without earlier ones (power-loss.test.ts, "only a
    // suffix", under load).
    const queued = this.nextSync;
    if (queued !== undefined) return queued.promise;
    if (this.syncing === undefined) return this.startSyncRound();
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.nextSync = { promise, resolve, reject };
    return promise;
  }

  private startSyncRound(): Promise<void> {
    const round = this.syncDirty();
    this.syncing = round;
    // Registered first, so it runs before the reactions of those waiting on the round.
    round.then(
      () => this.roundDone(round),
      () => this.roundDone(round),
    );
    return round;
  }

  /**
   * A sync round finished. The queued round starts now, before the finished
   * round's acks are settled and their replies written, so the device is not
   * left idle meanwhile (group commit keeps one fsync in flight); except in
   * `always`, where each client waits for its ack before its next write: a
   * gathering turn comes first there (gatherForRound).
   */
  private roundDone(round: Promise<void>): void {
    if (this.syncing !== round) return;
    if (this.options.fsync === 'always' && (this.nextSync !== undefined || this.flushScheduled)) {
      this.gatherForRound();
      return;
    }
    this.startQueuedRound();
  }

  /**
   * Under `always`, the queued round waits one event-loop turn after the
   * finished round's acks (two setImmediates: the poll phase between them
   * reads the requests that arrived meanwhile), so the writes of the clients
   * just answered join it. Started at once, it covered only the writes that
   * came in while the last fsync ran, and the 50 clients of a
   * `-c 50 -P 1` SET run split into two groups taking turns: 20-24 requests
   * per fsync, against 44-48 with the turn (Redis's inline fdatasync in
   * beforeSleep groups them the same way); 1.12x ops/s, p99 0.88x (6 quiet
   * pairs). The turn counts as a running round: whoever asks for a round
   * meanwhile (a tick's flush, sync(), close) queues behind it, so rounds
   * still never overlap.
   */
  private gatherForRound(): void {
    const gather = new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));
    this.syncing = gather;
    gather.then(() => this.startQueuedRound());
  }

  /**
   * Starts the queued round, if any. Under `always`, the writes buffered this
   * tick (requests read while the round ran) are handed to the OS first, so
   * the new round covers them too, instead of the one after it.
   */
  private startQueuedRound(): void {
    this.syncing = undefined;
    const next = this.nextSync;
    this.nextSync = undefined;
    // flushNow's ack asks syncLog for a round: that starts it (nothing runs or is queued now).
    if (this.flushScheduled && this.options.fsync === 'always' && !this.closed) this.flushNow();
    if (next !== undefined) (this.syncing ?? this.startSyncRound()).then(next.resolve, next.reject);
  }

  /**
   * The work of a sync round. The dirty segments are retained from the moment
   * they are listed: a compaction that retires one meanwhile closes it only
   * after its fsync (a closed descriptor's number may already name another
   * file; EBADF refused every write until restart).
   */
  private async syncDirty(): Promise<void> {
    if (this.failure) throw this.failure; // a later fsync "succeeding" promises nothing (fsyncgate)
    const dirty = this.ordered.filter((s) => s.dirty);
    for (const s of dirty) {
      s.dirty = false;
      s.retain();
    }
    const syncDir = this.segmentLog.dirDirty;
    this.segmentLog.dirDirty = false;
    const inline = !syncDir && this.syncsInline(dirty);
    this.readsAtRound = this.reads;
    const t0 = performance.now();
    try {
      for (const s of dirty) {
        const upTo = s.written;
        await s.sync(inline);
        s.syncedTo = upTo;
      }
      // In the thread pool (dir-ops.ts): a directory fsync on the event loop held it 2-12 ms.
      if (syncDir) await dirOps(this.fs).fsyncDir(this.dir);
    } catch (err) {
      // After a failed fsync the kernel may have dropped the dirty pages: nothing
      // written since the last good fsync can be promised. Refuse writes from now on.
      this.failure = ioError('fsync', err);
      this.failure.message += '; writes are refused until the store is reopened';
      this.log.fatal({ err }, 'fsync failed; refusing writes until restart');
      throw this.failure;
    } finally {
      for (const s of dirty) s.release();
    }
    const ms = performance.now() - t0;
    this.lastRoundMs = ms;
    this.fsyncCount += dirty.length;
    if (inline) this.fsyncInlineCount += dirty.length;
    this.fsyncMs += ms;
  }

  /**
   * Whether a sync round of `dirty` fsyncs on the event loop (fsyncSync)
   * instead of in the thread pool: in a server's store (syncsInlineAllowed)
   * under `always`, when no read was answered since the last round started,
   * the last round was quick and little was written since
   * (ALWAYS_INLINE_FSYNC_MAX_MS, _BYTES), on the real file system only (a
   * caller's Fs, such as a test's holding or delaying fsyncs, keeps the
   * pool). At `kv-bench -c 50 -P 1 -t set` the pool left the loop idle
   * through each fsync, waking for every one or two returning clients
   * (0.2-0.5 epoll_pwait a SET, against 0.05 under `interval`), and its
   * handoff (futex, eventfd, the completion callback) cost its own; blocked
   * in fdatasync as Redis's loop is, the clients' requests pile up and the
   * next poll reads them at once: 1.11x ops/s, 0.91x CPU per request (9
   * locked pairs; BENCHMARKS.md). Reads answered while a round ran would
   * wait behind an inline fsync (inlining every round lost at mixed P1 and
   * P16), so rounds after reads, and large or slow ones, stay in the pool.
   * The ack still settles only after the fsync returned, in the same promise
   * reactions. Directory fsyncs (a new segment) stay in the pool.
   */
  private syncsInline(dirty: readonly Segment[]): boolean {
    if (!this.syncsInlineAllowed || this.options.fsync !== 'always' || this.options.fs !== nodeFs)
      return false;
    if (this.reads !== this.readsAtRound || this.lastRoundMs > ALWAYS_INLINE_FSYNC_MAX_MS) return false;
    let bytes = 0;
    for (const s of dirty) bytes += s.written - s.syncedTo;
    return bytes <= ALWAYS_INLINE_FSYNC_MAX_BYTES;
  }

  private syncInterval(): void {
    if (this.syncing || this.closed) return;
    this.syncLog().catch(() => {}); // logged by syncDirty
  }

  private expiresAtFor(ttlMs: number | undefined): number {
    if (ttlMs === undefined) return 0;
    return this.options.clock.now() + checkTtlMs(ttlMs, 'ttlMs');
  }

  /**
   * Sets `key` to `value`. Resolves true once durable per the fsync mode, or
   * false (writing nothing) when ifAbsent/ifPresent says not to write.
   */
  set(key: Key, value: Value, options?: SetOptions): Promise<boolean> {
    try {
      return this.ackWrote(this.setNow(key, value, options));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * @internal `set` without the promise, for the server (which waits on
   * writeAck()): writes now, answers whether it wrote (false: ifAbsent or
   * ifPresent said not to). Throws what `set` rejects with.
   */
  setNow(key: Key, value: Value, options?: SetOptions): boolean {
    this.checkWritable();
    if (
      typeof key === 'string' &&
      (options === undefined || (options.ttlMs === undefined && !options.ifAbsent && !options.ifPresent))
    ) {
      return this.setStringNow(key, value);
    }
    const k = toInternalKey(key);
    const v = toValueBytes(value);
    const expiresAt = this.expiresAtFor(options?.ttlMs);
    if (options && (options.ifAbsent || options.ifPresent)) {
      const exists = this.liveSlot(k) >= 0;
      if ((options.ifAbsent && exists) || (options.ifPresent && !exists)) return false;
    }
    this.writeValue(k, v, expiresAt);
    return true;
  }

  /**
   * setNow's common case, a key string with no expiry or condition: the key
   * is taken as its own internal form and checked while the record is
   * encoded (SegmentLog.appendAscii), where toInternalKey read every char once
   * before the copy read them again. A key that is not ASCII stops the
   * encoding and is written in its UTF-8 form (toInternalKey), with the
   * value converted once. Throws what the usual path throws, the key's error
   * before the value's: a key of 0 or more than MAX_KEY_BYTES chars is
   * refused before the value is looked at, and a value refused with a key
   * that is not ASCII has the key checked first.
   */
  private setStringNow(key: string, value: Value): true {
    const n = key.length;
    // Throws INVALID_KEY: a string's UTF-8 form has at least as many bytes as it has chars.
    if (n === 0 || n > MAX_KEY_BYTES) toInternalKey(key);
    let v: Uint8Array;
    try {
      v = toValueBytes(value);
    } catch (err) {
      toInternalKey(key); // a key too long as UTF-8: its error comes first
      throw err;
    }
    this.makeRoom(recordSize(n, v.length));
    const position = this.segmentLog.appendAscii(key, v, 0);
    if (position >= 0) this.pointValue(key, position, v.length, 0, v);
    else this.writeValue(toInternalKey(key), v, 0);
    return true;
  }

  /**
   * @internal The server's SET without options: `set` answering the tick's
   * acknowledgement object (tick-ack.ts) instead of a promise, for a caller
   * that listens to it (no promise, no microtask per tick). Throws what
   * `set` rejects with.
   */
  setForAck(key: Key, value: Value): TickAck {
    this.checkWritable();
    this.writeValue(toInternalKey(key), toValueBytes(value), 0);
    return this.tickAckNow();
  }

  /**
   * @internal `setForAck` of the key buf[keyStart, keyStart + keyLength)
   * (the server's SET: a request frame). The key's bytes go from there into
   * the record, and the keydir and the undo log take them from the record:
   * no key string is made unless something keeps one (pointLast, the
   * lru-cache below). `keyHash`: the key's keydir hash (hashBytes) when the
   * caller computed it already (the server's look-ahead). `bufView`: a
   * DataView over buf's bytes at buf's indices, when the caller has one (the
   * server's read buffer): the key is then copied by 32-bit words.
   */
  setForAckAt(
    buf: Buffer,
    keyStart: number,
    keyLength: number,
    value: Value,
    keyHash?: number,
    bufView?: DataView,
  ): TickAck {
    this.checkWritable();
    if (!(keyLength > 0 && keyLength <= MAX_KEY_BYTES)) {
      toInternalKey(buf.subarray(keyStart, keyStart + keyLength)); // throws its INVALID_KEY
    }
    const v = toValueBytes(value);
    this.makeRoom(recordSize(keyLength, v.length));
    const log = this.segmentLog;
    const slot = log.pointLast(log.appendFrom(buf, keyStart, keyLength, v, 0, bufView), v.length, 0, keyHash);
    log.recordUndoOfLastPoint();
    const kd = this.keydir;
    if (kd.prevSegment >= 0 && this.caches(kd.prevValueLength)) this.cache!.delete(log.lastKey());
    this.fill(slot, v);
    return this.tickAckNow();
  }

  /**
   * @internal The acknowledgement covering every write made so far: the
   * server's write commands call a `…Now` method (setNow, deleteNow,
   * expireNow, batchNow), then wait on this (tick-ack.ts), as the embedded
   * API's promises do. Taken after the write, it is the ack of the tick the
   * write landed in (a rotation inside the write flushed the tick before
   * it). A write that wrote nothing waits on it too: what it observed may be
   * a write not yet durable (see delete).
   */
  writeAck(): TickAck {
    return this.tickAckNow();
  }

  /**
   * Sets the expiry of an existing key to `ttlMs` from now, or clears it
   * with `null` (Redis PEXPIRE / PERSIST). Resolves whether the key existed
   * (clearing: existed with an expiry); otherwise writes nothing. The record
   * is rewritten with the same value and the new expiry: the log has no
   * metadata-only record, so this costs a write of the value.
   */
  expire(key: Key, ttlMs: number | null): Promise<boolean> {
    try {
      return this.ackWrote(this.expireNow(key, ttlMs));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** @internal `expire` without the promise (see setNow): whether it wrote. */
  expireNow(key: Key, ttlMs: number | null): boolean {
    this.checkWritable();
    return this.expireAtNow(key, ttlMs === null ? null : this.expiresAtFor(ttlMs));
  }

  /**
   * @internal `expireNow` to an absolute time, ms since the epoch (a
   * positive safe integer, taken as given: RESP's PEXPIREAT), or clearing
   * it with null.
   */
  expireAtNow(key: Key, expiresAt: number | null): boolean {
    this.checkWritable();
    const k = toInternalKey(key);
    const at = expiresAt === null ? 0 : checkExpiresAt(expiresAt);
    const slot = this.liveSlot(k);
    if (slot < 0 || (at === 0 && this.keydir.expiresAtOf(slot, k) === 0)) return false;
    this.writeValue(k, this.valueAt(k, slot), at);
    return true;
  }

  /**
   * @internal `setNow` of a value that expires at `expiresAt`, ms since the
   * epoch (a positive safe integer, taken as given: RESP's SET PXAT, and its
   * relative expiries from one read of `now()`).
   */
  setExpiringNow(key: Key, value: Value, expiresAt: number): void {
    this.checkWritable();
    this.writeValue(toInternalKey(key), toValueBytes(value), checkExpiresAt(expiresAt));
  }

  /**
   * @internal The time by the store's clock, ms since the epoch: a command
   * that turns a relative expiry into an absolute one (or compares one with
   * now) reads it once, so what it stores is what it computed.
   */
  now(): number {
    return this.options.clock.now();
  }

  /** Appends a value record for `k` and points the keydir at it (undoable, cache invalidated): set and expire. */
  private writeValue(k: string, v: Uint8Array, expiresAt: number, hash?: number): void {
    this.makeRoom(recordSize(k.length, v.length));
    this.pointValue(k, this.segmentLog.append(k, v, expiresAt, 0), v.length, expiresAt, v, hash);
  }

  /**
   * Points the keydir at `k`'s value record just appended to the active
   * segment at `position` (undoable, caches updated): set, expire, batch and
   * both replica apply paths. `v` fills the slot cache; without it (a full
   * resync's raw feed) the slot cache is left alone. `hash`: `k`'s keydir
   * hash, when the caller has it (batch).
   */
  private pointValue(
    k: string,
    position: number,
    length: number,
    expiresAt: number,
    v?: Uint8Array,
    hash?: number,
  ): void {
    const slot = this.segmentLog.point(k, this.active, position, length, expiresAt, hash);
    this.segmentLog.recordUndoOfPoint(k);
    // The lru-cache holds a key only while its value has a length it caches:
    // no old value of such a length (the common small value), no lookup.
    const kd = this.keydir;
    if (kd.prevSegment >= 0 && this.caches(kd.prevValueLength)) this.cache!.delete(k);
    if (v !== undefined) this.fill(slot, v);
  }

  /** Takes `k` out of the keydir for its tombstone just appended at `position` (undoable, cache dropped): delete, batch, replication. */
  private pointTombstone(k: string, position: number): void {
    this.segmentLog.recordUndo(k);
    this.segmentLog.unpoint(k, position);
    this.cache?.delete(k);
  }

  /** Deletes `key`; resolves whether it existed. A tombstone is written only if it did. */
  delete(key: Key): Promise<boolean> {
    try {
      // Absent maybe only because of a delete still waiting for its fsync: answering at once
      // would acknowledge a state a power loss can undo, so wait like a write would.
      return this.ackWrote(this.deleteNow(key));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** @internal `delete` without the promise (see setNow): whether the key existed (and a tombstone was written). */
  deleteNow(key: Key): boolean {
    this.checkWritable();
    const k = toInternalKey(key);
    if (this.liveSlot(k) < 0) return false;
    this.makeRoom(recordSize(k.length, 0));
    this.pointTombstone(k, this.segmentLog.append(k, undefined, 0, FLAG_TOMBSTONE));
    return true;
  }

  /**
   * Applies `ops` atomically: after a crash, all of them or none. Deletes of
   * absent keys write nothing. Resolves with the number of records written.
   */
  batch(ops: readonly BatchOp[]): Promise<number> {
    try {
      const n = this.batchNow(ops);
      return this.ack().then(() => n); // a batch writing nothing is as durable as a write (see delete)
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** @internal `batch` without the promise (see setNow): the number of records written. */
  batchNow(ops: readonly BatchOp[]): number {
    this.checkWritable();
    if (!Array.isArray(ops)) throw new KvError('INVALID_ARGUMENT', 'batch takes an array of operations');
    // Validate everything before writing anything, into the reused arrays
    // (no object per op); values are let go of once written.
    const keys = this.batchKeys;
    const values = this.batchValues;
    const expires = this.batchExpires;
    let n = 0;
    let used = 0;
    let dels = false;
    try {
      for (const op of ops) {
        if (op === null || typeof op !== 'object') {
          throw new KvError(
            'INVALID_ARGUMENT',
            `a batch op must be an object {type, key, value?}, got ${String(op)}`,
          );
        }
        const k = toInternalKey(op.key);
        if (op.type === 'set') {
          values[n] = toValueBytes(op.value);
          expires[n] = this.expiresAtFor(op.ttlMs);
        } else if (op.type === 'del') {
          values[n] = undefined;
          expires[n] = 0;
          dels = true;
        } else {
          throw new KvError(
            'INVALID_ARGUMENT',
            `batch op type must be set or del, got ${String((op as BatchOp).type)}`,
          );
        }
        keys[n++] = k;
        used = n;
      }
      // A del of a key absent at that point of the batch writes nothing.
      if (dels) n = this.dropAbsentDels(n);
      if (n === 0) return 0;
      let bytes = 0;
      for (let i = 0; i < n; i++) bytes += recordSize(keys[i]!.length, values[i] ? values[i]!.length : 0);
      this.makeRoom(bytes);
      this.keydir.warmKeys(keys, n);
      const hashes = this.keydir.warmedHashes; // hashed once: the keydir's set takes them
      const log = this.segmentLog;
      for (let i = 0; i < n; i++) {
        const k = keys[i]!;
        const v = values[i];
        const flags =
          (v ? 0 : FLAG_TOMBSTONE) | (n > 1 ? FLAG_BATCH | (i === n - 1 ? FLAG_BATCH_END : 0) : 0);
        const position = log.append(k, v, expires[i]!, flags);
        if (v) this.pointValue(k, position, v.length, expires[i]!, v, hashes[i]!);
        else this.pointTombstone(k, position);
      }
      return n;
    } finally {
      values.fill(undefined, 0, used + 1); // +1: a throw may follow the value of the op it refused
    }
  }

  /** Compacts the batch's first `n` ops, leaving out each del of a key absent at that point of the batch; returns how many remain. */
  private dropAbsentDels(n: number): number {
    const keys = this.batchKeys;
    const values = this.batchValues;
    const expires = this.batchExpires;
    const present = new Map<string, boolean>();
    let m = 0;
    for (let i = 0; i < n; i++) {
      const k = keys[i]!;
      const v = values[i];
      if (v === undefined) {
        if (!(present.get(k) ?? this.liveSlot(k) >= 0)) continue;
        present.set(k, false);
      } else present.set(k, true);
      keys[m] = k;
      values[m] = v;
      expires[m] = expires[i]!;
      m++;
    }
    return m;
  }

  /**
   * @internal Replication (src/replication/replica.ts): appends records read
   * from a primary's log at the primary's offsets, flags and expiry times, so
   * the replica's log holds the same records at the same offsets. `records`
   * are whole batches (a batch's records up to the one flagged batch end),
   * offsets strictly increasing and ≥ nextOffset (gaps are kept: offsets
   * the primary compacted away stay unused). `next`, the primary's position
   * after them, moves nextOffset past offsets it has no record for. Acknowledged like a write.
   */
  applyReplicated(records: readonly ReplicatedRecord[], next = 0): Promise<true> {
    try {
      this.checkWritable();
      // Check everything before writing anything.
      let last = this.nextOffset - 1;
      for (const r of records) {
        if (!Number.isSafeInteger(r.offset) || r.offset <= last) {
          throw new KvError(
            'INVALID_ARGUMENT',
            `replicated offset ${r.offset} does not follow ${last} (the log's next offset is ${this.nextOffset})`,
          );
        }
        last = r.offset;
      }
      const tail = records[records.length - 1];
      if (tail && (tail.flags & FLAG_BATCH) !== 0 && (tail.flags & FLAG_BATCH_END) === 0) {
        throw new KvError('INVALID_ARGUMENT', 'a replicated batch ends without its end record');
      }
      let i = 0;
      while (i < records.length) {
        // One group: a single record, or a batch through its end record (kept in one segment).
        let j = i;
        let bytes = 0;
        for (;;) {
          const r = records[j]!;
          bytes += recordSize(r.key.length, r.value === null ? 0 : r.value.length);
          if ((r.flags & FLAG_BATCH) === 0 || (r.flags & FLAG_BATCH_END) !== 0) break;
          j++;
        }
        this.makeRoom(bytes);
        for (; i <= j; i++) {
          const r = records[i]!;
          const k = toInternalKey(Buffer.from(r.key.buffer, r.key.byteOffset, r.key.byteLength));
          const v = r.value === null ? undefined : toValueBytes(r.value);
          const position = this.segmentLog.append(k, v, r.expiresAt, r.flags, r.offset);
          if (v === undefined || (r.flags & FLAG_TOMBSTONE) !== 0) this.pointTombstone(k, position);
          else this.pointValue(k, position, v.length, r.expiresAt, v);
        }
      }
      // The primary's log may go on past its last record (compaction dropped it): follow its position.
      this.segmentLog.skipTo(next);
      return this.ack();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * @internal Replication from a raw feed (record-run.ts): each run holds
   * whole records as the primary's segment held them, whole batches only,
   * and the runs follow each other. All are checked first (headers, CRCs,
   * offsets above nextOffset and increasing from run to run: a damaged run
   * is refused, CORRUPTION, and nothing of any is applied), then copied into
   * the active segment as they are, as many groups per copy as fit (a batch
   * never spans two segments), and the keydir, hint and index updated from
   * the headers: no decode into objects, no re-encoding, no CRC recomputed.
   * `next` as in applyReplicated. Acknowledged like a write (one ack for all).
   * `fillCache` false leaves the small-value cache alone (a full resync:
   * nothing reads the replica until it ends, and most keys are never read).
   */
  applyReplicatedRaw(runs: Buffer | readonly Buffer[], next = 0, fillCache = true): Promise<true> {
    try {
      this.checkWritable();
      const list = Buffer.isBuffer(runs) ? [runs] : runs;
      let after = this.nextOffset - 1;
      // One decode per header: checkRun keeps each checked header in `rows` for the append to read.
      const rows = this.runRows;
      rows.clear();
      for (const run of list) {
        const check = checkRun(run, after, 'the raw feed', rows);
        if (check.whole !== run.length) {
          throw new KvError('INVALID_ARGUMENT', 'a replicated record run ends inside a batch');
        }
        if (check.records > 0) after = check.lastOffset;
      }
      let row = 0;
      for (const run of list) row = this.appendReplicatedRun(run, rows, row, fillCache);
      this.segmentLog.skipTo(next);
      return this.ack();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * applyReplicatedRaw's append of one checked run, whose headers are
   * `rows` from `row` on; returns the row after its last record.
   */
  private appendReplicatedRun(run: Buffer, rows: RunRows, row: number, fillCache: boolean): number {
    const max = this.options.maxSegmentBytes;
    const h = this.runHeader;
    let at = 0;
    while (at < run.length) {
      // One copy: the first group (after making room for it), then every following group that fits.
      let last = rows.nextGroup(row);
      let end = at + rows.bytes(row, last);
      this.makeRoom(end - at);
      const seg = this.active;
      const room = max - seg.size;
      while (end < run.length) {
        const past = rows.nextGroup(last);
        const after = end + rows.bytes(last, past);
        if (after - at > room) break;
        end = after;
        last = past;
      }
      // appendRun writes into the active segment; each record is its last append, pointed from its bytes.
      const log = this.segmentLog;
      log.appendRun(run, at, end, rows, row, h, (position) => {
        if ((h.flags & FLAG_TOMBSTONE) !== 0) {
          this.pointTombstone(log.lastKey(), position);
          return;
        }
        const length = h.valueLength;
        const slot = log.pointLast(position, length, h.expiresAt);
        log.recordUndoOfLastPoint();
        const kd = this.keydir;
        if (kd.prevSegment >= 0 && this.caches(kd.prevValueLength)) this.cache!.delete(log.lastKey());
        if (fillCache) this.fillFromLast(slot, length);
      });
      at = end;
      row = last;
    }
    return row;
  }

  /** Headers checked by applyReplicatedRaw, read by its append. */
  private readonly runRows = new RunRows();

  /** Scratch header of applyReplicatedRaw. */
  private readonly runHeader: RecordHeader = {
    offset: 0,
    expiresAt: 0,
    flags: 0,
    keyLength: 0,
    valueLength: 0,
  };

  /** Resolves once everything written so far is on disk (fsync), whatever the mode. */
  async sync(): Promise<void> {
    if (this.closed) throw closedError();
    this.flushNow();
    await this.syncLog();
  }

  // ---- read path ----------------------------------------------------------

  /** The key's slot if it exists and has not expired (expiring it lazily), else -1. */
  private liveSlot(k: string): number {
    const kd = this.keydir;
    const slot = kd.slot(k);
    if (slot < 0) return -1;
    const expiresAt = kd.expiresAtOf(slot, k);
    if (expiresAt !== 0 && expiresAt <= this.options.clock.now()) {
      this.dropExpired(k);
      return -1;
    }
    return slot;
  }

  /** @internal Removes an expired key (the compactor found its record expired). */
  expireKey(k: string): void {
    this.dropExpired(k);
  }

  /**
   * An expired key leaves the keydir without a tombstone: its record carries
   * the expiry, so recovery and compaction see it expired too.
   */
  private dropExpired(k: string): void {
    this.segmentLog.unpoint(k);
    this.cache?.delete(k);
  }

  /**
   * The value of `key`, or undefined. One positioned read on the calling
   * thread (or a cache hit). The Buffer may be shared with the cache: copy it
   * before mutating it.
   */
  getSync(key: Key): Buffer | undefined {
    if (this.closed) throw closedError();
    this.reads++;
    const k = toInternalKey(key);
    const slot = this.liveSlot(k);
    if (slot < 0) return undefined;
    return this.valueAt(k, slot);
  }

  /**
   * getSync of the internal key held in buf[start, start + length) (1 to
   * MAX_KEY_BYTES bytes, its latin1 chars): RESP's GET, which finds the slot
   * from the request's bytes. A Buffer the caller may keep (a copy when the
   * value came from the small-value cache).
   */
  getSyncBytes(buf: Buffer, start: number, length: number): Buffer | undefined {
    if (!this.viewSyncBytes(buf, start, length)) return undefined;
    const v = this.valueView;
    if (v.bytes !== this.slotCache?.arena) return v.bytes;
    const out = Buffer.allocUnsafe(v.length);
    v.bytes.copy(out, 0, v.start, v.start + v.length);
    return out;
  }

  /**
   * Where viewSyncBytes put the value it found: bytes[start, start + length),
   * a view of the small-value cache's arena or a Buffer the store may share
   * (lru-cache). Read it before calling the store again; never write it.
   */
  readonly valueView: { bytes: Buffer; start: number; length: number } = {
    bytes: Buffer.alloc(0),
    start: 0,
    length: 0,
  };

  /**
   * The native GET: finds the internal key held in buf[start, start +
   * length) (1 to MAX_KEY_BYTES bytes, its latin1 chars) by its bytes and
   * puts its value in `valueView` (true), or answers false for no value. A
   * small value is not copied out of the small-value cache: the server
   * copies it straight into its reply. A key string is built only for an
   * expiry or the lru-cache. `bufView`: a DataView over buf's bytes at
   * buf's indices, when the caller has one (the server's read buffer): the
   * key is then hashed and compared by 32-bit words (Keydir.slotView).
   */
  viewSyncBytes(buf: Buffer, start: number, length: number, bufView?: DataView): boolean {
    if (this.closed) throw closedError();
    this.reads++;
    const kd = this.keydir;
    const slot =
      bufView !== undefined ? kd.slotView(bufView, start, length) : kd.slotBytes(buf, start, length);
    if (slot < 0) return false;
    let k: string | undefined;
    if (kd.hasExpiry(slot)) {
      k = buf.toString('latin1', start, start + length);
      const expiresAt = kd.expiresAtOf(slot, k);
      if (expiresAt !== 0 && expiresAt <= this.options.clock.now()) {
        this.dropExpired(k);
        return false;
      }
    }
    const n = kd.valueLengthOf(slot);
    const view = this.valueView;
    if (n <= this.slotCacheMax) {
      const sc = this.slotCache!;
      const at = sc.locate(slot);
      if (at >= 0) {
        view.bytes = sc.arena;
        view.start = at;
        view.length = sc.located;
        return true;
      }
      const value = this.readAt(slot, length);
      sc.put(slot, value);
      view.bytes = value;
    } else if (this.caches(n)) {
      view.bytes = this.valueAt(k ?? buf.toString('latin1', start, start + length), slot);
    } else view.bytes = this.readAt(slot, length);
    view.start = 0;
    view.length = view.bytes.length;
    return true;
  }

  /**
   * Whether a value of this length goes through the lru-cache: not the small
   * ones (the slot cache's, or with it off, those cheaper to read than to look up).
   */
  private caches(valueLength: number): boolean {
    return (
      this.cache !== undefined &&
      valueLength > this.slotCacheMax &&
      valueLength >= MIN_CACHED_VALUE_BYTES &&
      valueLength <= MAX_CACHED_VALUE_BYTES
    );
  }

  /**
   * Puts a value just written at `slot` in the small-value cache, if small
   * and either the key's old value was cached (the keydir's update just
   * dropped it: a hot key stays hot) or the cache has never evicted (`warm`:
   * a GET after a bulk load that fits in half of it is a hit, not a pread; a
   * load past that sheds the values only written, SlotCache.putWritten). A cold
   * write into a full cache costs no copy and evicts nothing. Larger values leave the
   * lru-cache, dropped by the caller.
   */
  private fill(slot: number, v: Uint8Array): void {
    const sc = this.slotCache;
    if (sc === undefined || v.length > this.slotCacheMax) return;
    // The keydir's update dropped any value of the slot: putNew needs no probe for it.
    if (sc.takeDropped(slot)) sc.refill(slot, v);
    else if (sc.warm) sc.putWritten(slot, v);
  }

  /**
   * fill() of the value of the log's last append (`n` bytes, after its key
   * in the write chunk), copied from there: no Buffer made for it.
   */
  private fillFromLast(slot: number, n: number): void {
    const sc = this.slotCache;
    if (sc === undefined || n > this.slotCacheMax) return;
    const log = this.segmentLog;
    const at = log.lastValueAt();
    if (sc.takeDropped(slot)) sc.refillFrom(slot, log.lastChunkView(), at, n);
    else if (sc.warm) sc.putWrittenFrom(slot, log.lastChunkView(), at, n);
  }

  /** The value at keydir `slot` (live, small): from the small-value cache, else read and cached. */
  private slotValue(slot: number, keyLength: number): Buffer {
    const sc = this.slotCache!;
    const hit = sc.get(slot);
    if (hit !== undefined) return hit;
    const value = this.readAt(slot, keyLength);
    sc.put(slot, value);
    return value;
  }

  /** The value of internal key `k` at keydir `slot` (live): a cache, else one positioned read. */
  private valueAt(k: string, slot: number): Buffer {
    const cache = this.cache;
    const n = this.keydir.valueLengthOf(slot);
    if (n <= this.slotCacheMax) return this.slotValue(slot, k.length);
    if (cache === undefined || !this.caches(n)) return this.readAt(slot, k.length);
    const hit = cache.get(k);
    if (hit !== undefined) {
      this.cacheHits++;
      return hit;
    }
    this.cacheMisses++;
    const value = this.readAt(slot, k.length);
    cache.set(k, value);
    return value;
  }

  /** One positioned read of the value of the key (`keyLength` bytes) at keydir `slot`, CRC checked. */
  private readAt(slot: number, keyLength: number): Buffer {
    const kd = this.keydir;
    const seg = this.segments[kd.segmentOf(slot)]!;
    try {
      return seg.readValue(kd.positionOf(slot), keyLength, kd.valueLengthOf(slot));
    } catch (err) {
      if (err instanceof CorruptionError) this.noteCorruptRead(err);
      throw err;
    }
  }

  /**
   * @internal A read met a damaged record (a GET, a read by offset, a
   * compaction; `answered`: a reader got CORRUPTION for it): counted (stats().corruption, INFO, metrics) and logged once
   * per record at error with its file and position, never its key or value,
   * so the operator learns of it before a client complains.
   */
  noteCorruptRead(err: CorruptionError, answered = true): void {
    this.segmentLog.noteCorruptRead(err, answered);
  }

  get(key: Key): Promise<Buffer | undefined> {
    try {
      return Promise.resolve(this.getSync(key));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  has(key: Key): boolean {
    if (this.closed) throw closedError();
    this.reads++;
    return this.liveSlot(toInternalKey(key)) >= 0;
  }

  /** Remaining time to live in ms; -1 if the key has no expiry, -2 if it does not exist (Redis PTTL). */
  ttl(key: Key): number {
    if (this.closed) throw closedError();
    this.reads++;
    const k = toInternalKey(key);
    const slot = this.liveSlot(k);
    if (slot < 0) return -2;
    const expiresAt = this.keydir.expiresAtOf(slot, k);
    return expiresAt === 0 ? -1 : expiresAt - this.options.clock.now();
  }

  /** When the key expires, ms since the epoch; -1 if it has no expiry, -2 if it does not exist (Redis PEXPIRETIME). */
  expiresAt(key: Key): number {
    if (this.closed) throw closedError();
    this.reads++;
    const k = toInternalKey(key);
    const slot = this.liveSlot(k);
    if (slot < 0) return -2;
    const expiresAt = this.keydir.expiresAtOf(slot, k);
    return expiresAt === 0 ? -1 : expiresAt;
  }

  /** One page of keys in byte order, filtered by prefix and range; resumable by cursor. */
  scan(options: ScanOptions = {}): ScanPage {
    const page = this.scanInternal(options);
    return { keys: page.keys.map(toUserKey), cursor: page.cursor };
  }

  /**
   * `scan` with each key as its exact bytes: keys that are not valid UTF-8
   * (written as Buffers) come back as written, where `scan` decodes them lossily.
   */
  scanBuffers(options: ScanOptions = {}): ScanPage<Buffer> {
    const page = this.scanInternal(options);
    return { keys: page.keys.map(toKeyBytes), cursor: page.cursor };
  }

  /** One page of internal (latin1) keys: the work of scan and scanBuffers. */
  private scanInternal(options: ScanOptions): ScanPage {
    if (this.closed) throw closedError();
    this.reads++;
    const count = options.count ?? 100;
    if (!Number.isInteger(count) || count < 1 || count > MAX_SCAN_COUNT) {
      throw new KvError(
        'INVALID_ARGUMENT',
        `scan count must be an integer from 1 to ${MAX_SCAN_COUNT}, got ${count}`,
      );
    }
    let keyIndex = this.keyIndex;
    if (!keyIndex) {
      keyIndex = new KeyIndex(
        Array.from(this.keydir.entries(), ([k]) => k),
        (k) => this.liveSlot(k) >= 0,
      );
      this.keyIndex = keyIndex;
      this.segmentLog.keyIndex = keyIndex; // the log tells it of keys the keydir gains and loses from now on
    }
    const after = options.cursor !== undefined ? decodeCursor(options.cursor) : undefined;
    let prefix = options.prefix !== undefined ? internalizeKey(options.prefix) : undefined;
    let filter: ((k: string) => boolean) | undefined;
    if (options.match !== undefined) {
      const glob = compileGlob(internalizeKey(options.match));
      // Seek to the longer of the two prefixes; two that disagree match nothing.
      if (prefix === undefined || glob.prefix.startsWith(prefix)) prefix = glob.prefix;
      else if (!prefix.startsWith(glob.prefix)) return { keys: [], cursor: null };
      if (!glob.prefixOnly) filter = glob.test;
    }
    const page = keyIndex.page({
      ...(after !== undefined && { after }),
      ...(options.start !== undefined && { start: internalizeKey(options.start) }),
      ...(options.end !== undefined && { end: internalizeKey(options.end) }),
      ...(prefix !== undefined && { prefix }),
      ...(filter !== undefined && { filter }),
      count,
    });
    const last = page.last;
    return {
      keys: page.keys,
      cursor: page.more && last !== undefined ? encodeCursor(last) : null,
    };
  }

  /** Every matching key, page by page (see scan). */
  async *keys(options: Omit<ScanOptions, 'cursor'> = {}): AsyncGenerator<string> {
    let cursor: string | null | undefined;
    do {
      const page = this.scan({ ...options, ...(cursor ? { cursor } : {}), count: options.count ?? 1000 });
      yield* page.keys;
      cursor = page.cursor;
    } while (cursor);
  }

  /**
   * Records of the log from `offset` on, in offset order: tombstones and
   * overwritten values included (log-reader.ts).
   */
  async *readFrom(offset: number, options: { limit?: number } = {}): AsyncGenerator<LogRecord> {
    if (this.closed) throw closedError();
    if (!this.options.readOnly) this.flushNow();
    yield* readLog(this.segmentLog, offset, options);
  }

  /** Index in `ordered` of the last segment whose base offset is ≤ offset (0 if none). */
  segmentIndexFor(offset: number): number {
    return this.segmentLog.segmentIndexFor(offset);
  }

  private sweepExpired(): void {
    if (this.closed || this.keydir.expiringKeys === 0) return;
    const now = this.options.clock.now();
    if (!this.expiryCursor) this.expiryCursor = this.keydir.expiring();
    for (let n = 0; n < EXPIRE_SWEEP_KEYS; n++) {
      const next = this.expiryCursor.next();
      if (next.done) {
        this.expiryCursor = undefined;
        return;
      }
      const [k, expiresAt] = next.value;
      if (expiresAt <= now) this.dropExpired(k);
    }
  }

  // ---- compaction -----------------------------------------------------------

  /**
   * Compacts the whole log now (like Redis's BGREWRITEAOF): seals the active
   * segment and merges every sealed segment, keeping the latest value of each
   * key and dropping deleted and expired ones. Reads and writes continue
   * meanwhile. Resolves with what it did (undefined if there was nothing to
   * compact); progress is emitted as 'compaction' events.
   */
  compact(): Promise<CompactionResult | undefined> {
    try {
      this.checkWritable();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.compactor.compactAll();
  }

  // ---- stats and lifecycle -------------------------------------------------

  /**
   * Gives back buffers kept only to make the next writes cheaper (the spare
   * write-buffer chunks, segment.ts; the keydir record page, the small-value
   * cache's next table and the hint's next entry arrays prefaulted ahead,
   * prefault.ts; released hint builders' chunks and arrays, which the
   * active builder moves out of, hint-builder.ts); for a
   * server gone idle (server/memory-reducer.ts). The next writes allocate
   * them again.
   */
  releaseSpareBuffers(): void {
    releaseSpareWriteChunks();
    this.keydir.releaseSparePages();
    this.slotCache?.releasePrefaulted();
    this.active.hint?.releasePrefaulted();
    dropRecycledHintStorage();
    this.active.hint?.releaseRecycled();
  }

  stats(): StoreStats {
    if (this.closed) throw closedError();
    const segments = this.ordered.map((s) => ({
      file: s.name,
      baseOffset: s.baseOffset,
      lastOffset: s.lastOffset,
      bytes: s.size,
      liveBytes: s.liveBytes,
      deadBytes: s.deadBytes,
      sealed: s.sealed,
    }));
    let live = 0;
    let dead = 0;
    let disk = 0;
    for (const s of segments) {
      live += s.liveBytes;
      dead += s.deadBytes;
      disk += s.bytes;
    }
    return {
      keys: this.keydir.size,
      expiringKeys: this.keydir.expiringKeys,
      segments,
      liveBytes: live,
      deadBytes: dead,
      diskBytes: disk,
      firstOffset: this.ordered[0]?.baseOffset ?? 0,
      nextOffset: this.nextOffset,
      cache: {
        entries: (this.cache?.size ?? 0) + (this.slotCache?.size ?? 0),
        bytes: (this.cache?.calculatedSize ?? 0) + (this.slotCache?.bytes ?? 0),
        hits: this.cacheHits + (this.slotCache?.hits ?? 0),
        misses: this.cacheMisses + (this.slotCache?.misses ?? 0),
      },
      fsync: {
        mode: this.options.fsync,
        count: this.fsyncCount,
        inline: this.fsyncInlineCount,
        totalMs: Math.round(this.fsyncMs),
      },
      recovery: this.recoveryStats,
      corruption: { records: this.segmentLog.corruptRecords, reads: this.segmentLog.corruptReads },
      compaction: { ...this.compactor.stats },
    };
  }

  /**
   * @internal Replication: sizes the keydir's table for `keys` keys in all
   * (a full resync knows the primary's count), so loading them rehashes
   * nothing; capped as recovery's estimate is (Keydir.reserve).
   */
  reserveKeys(keys: number): void {
    if (this.closed) throw closedError();
    this.keydir.reserve(keys);
  }

  /** Number of keys (expired keys not yet swept included); cheaper than stats(). */
  get size(): number {
    return this.keydir.size;
  }

  /** Reads answered since the store opened (as `reads` counts them): a replica fills its cache on replicated writes only while this moves (replica.ts). */
  get readCount(): number {
    return this.reads;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * A clean close seals an active segment of SEAL_AT_CLOSE_MIN_BYTES or more
   * (its hint was built as it was written, so this costs a write of the hint),
   * so the next open loads it from its hint instead of scanning it
   * (recovery.ts) and appends to a fresh segment. Smaller ones stay active:
   * scanning them costs little, and sealing each would leave a small segment
   * per restart. A failure only costs that scan.
   */
  private async sealAtClose(): Promise<void> {
    const seg = this.ordered[this.ordered.length - 1];
    if (this.failure || seg === undefined || seg.sealed || seg.hint === undefined) return;
    if (seg.dataBytes < SEAL_AT_CLOSE_MIN_BYTES) return;
    const hint = seg.hint;
    seg.hint = undefined;
    seg.sealed = true;
    seg.retain();
    try {
      await sealSegment(this.segmentLog, () => this.syncLog(), seg, true, this.log, hint);
    } catch (err) {
      this.log.warn(
        { err, file: seg.name },
        'sealing the active segment at close failed; the next open scans it',
      );
    } finally {
      seg.release();
    }
  }

  /** Flushes, fsyncs, closes every file and releases the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const t of this.timers) clearInterval(t);
    await this.compactor.stop();
    if (!this.options.readOnly) {
      // The last segment ends at its data after a clean close (the fsync below makes the cut durable).
      try {
        this.segmentLog.ordered[this.segmentLog.ordered.length - 1]?.trimZeros();
      } catch (err) {
        this.log.warn({ err }, 'cutting the zeros written ahead failed; the next open cuts them');
      }
      this.flushNow();
      try {
        if (!this.failure) await this.syncLog();
      } catch {
        // Logged by syncDirty; close anyway.
      }
      await this.sealAtClose();
    }
    this.closed = true;
    this.segmentLog.closed = true;
    await Promise.allSettled([...this.background]);
    this.segmentLog.closeSegments();
    this.cache?.clear();
    this.keydir.releaseSparePages();
    this.lock?.release();
    this.emit('close');
  }
}

/**
 * Opens (creating if needed) the store in `dir`. Recovers the keydir from
 * hints and segments, truncating a torn tail. Rejects with LOCKED if another
 * process has the directory open.
 */
export async function openStore(dir: string, options?: StoreOptions): Promise<Store> {
  const store = new Store(dir, resolveOptions(options));
  await store.start();
  return store;
}

/** An absolute expiry (ms since the epoch) as the log keeps it exactly: a positive safe integer. */
function checkExpiresAt(expiresAt: number): number {
  if (!Number.isSafeInteger(expiresAt) || expiresAt <= 0)
    throw new KvError(
      'INVALID_ARGUMENT',
      `expiresAt must be a positive integer ms since the epoch, at most 2^53 - 1, got ${String(expiresAt)}`,
    );
  return expiresAt;
}
