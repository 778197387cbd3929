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
 * The horizon is raised, and written to the `HORIZON` file with an fsync,
 * synchronously when such a run starts (the compactor's 'start' event),
 * before it has read a byte, so a crash at any later point finds the raised
 * horizon on disk. A run that then fails leaves it raised: a needless full
 * resync at worst. The same moment records `compactedThrough`, the log's
 * next offset when the run started: a record at or after it cannot have let
 * that run drop an older one, which is what makes truncating a divergent
 * tail at or after it safe.
 *
 * A missing or damaged file counts as "everything compacted" (both values =
 * the log's next offset; an empty log: 0): at worst a full resync.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { HORIZON_FILE } from '../engine/filenames.js';
import type { Store } from '../engine/store.js';
import { writeFileDurably } from './durable-file.js';
import { decodeHorizon, encodeHorizon, type HorizonState } from './horizon-file.js';

interface CompactionStart {
  phase: string;
  prefix?: boolean;
  lastOffset?: number;
}

export class TombstoneHorizon {
  state: HorizonState;
  private readonly onCompaction = (ev: CompactionStart) => {
    if (ev.phase !== 'start') return;
    const next: HorizonState = {
      tombstoneHorizon:
        ev.prefix === true
          ? Math.max(this.state.tombstoneHorizon, (ev.lastOffset ?? this.store.nextOffset - 1) + 1)
          : this.state.tombstoneHorizon,
      compactedThrough: this.store.nextOffset,
    };
    this.save(next);
  };

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
    if (!state && !store.options.readOnly) this.save(this.state);
    store.on('compaction', this.onCompaction);
  }

  /**
   * A replica after a full resync: its log from 0 is its primary's compacted
   * log, which lacks the tombstones below the primary's horizon.
   */
  raiseTo(horizon: number): void {
    if (horizon > this.state.tombstoneHorizon) this.save({ ...this.state, tombstoneHorizon: horizon });
  }

  /** Whether a feed from `offset` replays the log's state exactly. */
  servesFrom(offset: number): boolean {
    return offset === 0 || offset >= this.state.tombstoneHorizon;
  }

  /** Writes the file synchronously (tmp, fsync, rename, fsync dir): a few ms, once per compaction. */
  private save(next: HorizonState): void {
    this.state = next;
    const fs = this.store.options.fs;
    const dir = this.store.dir;
    try {
      writeFileDurably(fs, dir, HORIZON_FILE, encodeHorizon(next));
    } catch (err) {
      // A stale file could let a replica resume below the real horizon: remove it,
      // so the next open assumes the worst (full resync) instead.
      this.log.error({ err }, 'writing the HORIZON file failed; removing it (replicas will resync in full)');
      try {
        const path = join(dir, HORIZON_FILE);
        if (fs.exists(path)) fs.unlink(path);
        fs.fsyncDir(dir);
      } catch (e) {
        this.log.fatal(
          { err: e },
          'could not remove a stale HORIZON file; delete it by hand before restarting',
        );
      }
    }
  }

  /** Stops listening to the store. */
  close(): void {
    this.store.off('compaction', this.onCompaction);
  }
}
