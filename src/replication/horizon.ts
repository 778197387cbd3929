/**
 * The tombstone horizon: the lowest offset from which the compacted log
 * still holds every tombstone written at or after it. A feed (and so a
 * replica's partial resync) from offset X replays the primary's state
 * exactly iff X = 0 (the compacted log read whole is a snapshot) or
 * X ≥ the horizon; below it a compaction may have dropped a tombstone the
 * reader needs, and a deleted key would come back (ARCHITECTURE.md,
 * "Replication").
 *
 * Only a compaction whose run starts at the oldest segment drops tombstones
 * (rewrite.ts); it may drop every one up to its last input's last offset.
 * The same moment records `compactedThrough`, the log's next offset when
 * the run started: a record at or after it cannot have let that run drop an
 * older one, which is what makes truncating a divergent tail at or after it
 * safe. So every run, prefix or not, raises the state.
 *
 * Invariants, and how they are kept without holding the event loop:
 * - In memory the state is raised synchronously on the compactor's 'start'
 *   event, before the rewrite reads a byte: `servesFrom` refuses the offsets
 *   below the new horizon from that moment (a feed opened during the run
 *   must not be promised tombstones the run is about to drop).
 * - On disk (the `HORIZON` file: tmp, fsync, rename, fsync the directory,
 *   in the thread pool: durable-file.ts) the raised state is durable before
 *   any of the run's output can be: the write starts at 'start' and the
 *   event's `holdSwap` makes the swap wait for it (compactor.ts), so the
 *   swap's commit point (its manifest) comes after the file's directory
 *   fsync. A crash before the commit finds the old segments (recovery
 *   deletes the outputs): the old or the raised file is right for them.
 * - If the write fails, the file is removed (and the directory fsynced): a
 *   missing file counts as "everything compacted", which is safe for any
 *   output. The swap goes on then (a full disk must not also stop the
 *   compaction that frees it). If the removal fails too, the file on disk
 *   may be below the raised state: the hold rejects, and the run fails
 *   before its commit point with its outputs deleted; the next run tries
 *   again.
 * - Writes are chained, one at a time in call order: a later state is never
 *   overwritten by an earlier one's rename, and they never share the
 *   temporary file. The state only rises (the max of the horizons, the log's
 *   next offset), so the last write is the highest.
 * A run that then fails leaves the horizon raised: a needless full resync
 * at worst.
 *
 * A missing or damaged file counts as "everything compacted" (both values =
 * the log's next offset; an empty log: 0): at worst a full resync. So the
 * file written at open when there is none may land late: until it does, the
 * missing file means the same.
 *
 * Concurrency: the listener runs on the event loop; each write's steps run
 * in the thread pool (nodeFs) while the loop serves. `close()` waits for the
 * writes under way; the listener stays until the store closes, so a
 * compaction after the server stopped replication still raises the state.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { dirOps } from '../engine/compaction/dir-ops.js';
import { HORIZON_FILE } from '../engine/filenames.js';
import type { Store } from '../engine/store.js';
import { writeFileDurablyOffLoop } from './durable-file.js';
import { decodeHorizon, encodeHorizon, type HorizonState } from './horizon-file.js';

interface CompactionStart {
  phase: string;
  prefix?: boolean;
  lastOffset?: number;
  holdSwap?: (until: Promise<unknown>) => void;
}

export class TombstoneHorizon {
  state: HorizonState;
  /** The last write queued: the next one starts after it settles. */
  private writes: Promise<void> = Promise.resolve();
  private readonly onCompaction = (ev: CompactionStart) => {
    if (ev.phase !== 'start') return;
    const next: HorizonState = {
      tombstoneHorizon:
        ev.prefix === true
          ? Math.max(this.state.tombstoneHorizon, (ev.lastOffset ?? this.store.nextOffset - 1) + 1)
          : this.state.tombstoneHorizon,
      compactedThrough: Math.max(this.state.compactedThrough, this.store.nextOffset),
    };
    const durable = this.save(next);
    if (ev.holdSwap) ev.holdSwap(durable);
    else void durable.catch(() => {});
  };
  private readonly onClose = () => this.detach();

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {
    const fs = store.options.fs;
    const path = join(store.dir, HORIZON_FILE);
    const pessimistic = { tombstoneHorizon: store.nextOffset, compactedThrough: store.nextOffset };
    let state: HorizonState | undefined;
    if (fs.exists(path)) {
      const decoded = decodeHorizon(fs.readFile(path));
      if (typeof decoded === 'string') {
        log.error(
          { file: HORIZON_FILE, problem: decoded },
          'the HORIZON file is damaged; replicas will resync in full',
        );
      } else state = decoded;
    } else if (store.nextOffset > 0) {
      log.info({ nextOffset: store.nextOffset }, 'no HORIZON file: replicas of this log will resync in full');
    }
    this.state = state ?? pessimistic;
    if (!state && !store.options.readOnly) void this.save(this.state).catch(() => {});
    store.on('compaction', this.onCompaction);
    store.once('close', this.onClose);
  }

  /**
   * A replica after a full resync: its log from 0 is its primary's compacted
   * log, which lacks the tombstones below the primary's horizon. Resolves
   * once the file says so (or is removed); the caller applies no record
   * before, so no log here is ever read from below the horizon.
   */
  async raiseTo(horizon: number): Promise<void> {
    if (horizon > this.state.tombstoneHorizon) await this.save({ ...this.state, tombstoneHorizon: horizon });
  }

  /** Whether a feed from `offset` replays the log's state exactly. */
  servesFrom(offset: number): boolean {
    return offset === 0 || offset >= this.state.tombstoneHorizon;
  }

  /**
   * Raises the state now and queues its file write after the ones before it.
   * Resolves when the file holds `next` or was removed; rejects when the file
   * on disk may hold less (see the header).
   */
  private save(next: HorizonState): Promise<void> {
    this.state = next;
    const done = this.writes.then(() => this.write(next));
    this.writes = done.catch(() => {});
    return done;
  }

  private async write(next: HorizonState): Promise<void> {
    const fs = this.store.options.fs;
    const dir = this.store.dir;
    try {
      await writeFileDurablyOffLoop(fs, dir, HORIZON_FILE, encodeHorizon(next));
    } catch (err) {
      // A stale file could let a replica resume below the real horizon: remove it,
      // so the next open assumes the worst (full resync) instead.
      this.log.error({ err }, 'writing the HORIZON file failed; removing it (replicas will resync in full)');
      try {
        const ops = dirOps(fs);
        const path = join(dir, HORIZON_FILE);
        if (await ops.exists(path)) await ops.unlink(path);
        await ops.fsyncDir(dir);
      } catch (e) {
        this.log.fatal(
          { err: e },
          'could not remove a stale HORIZON file; compactions fail until it is written or removed (delete it by hand if this persists)',
        );
        throw e;
      }
    }
  }

  private detach(): void {
    this.store.off('compaction', this.onCompaction);
    this.store.off('close', this.onClose);
  }

  /** Resolves when the file writes under way have finished (before the store's files change or close). */
  close(): Promise<void> {
    return this.writes;
  }
}
