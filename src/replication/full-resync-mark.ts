/**
 * A replica's unfinished full resync, kept in the RESYNC file
 * (resync-file.ts) so it survives restarts. From the moment a full resync is
 * chosen until the local log reaches the primary's end as of the resync's
 * start, the data is partial: a mix of new records and nothing, never a
 * consistent older state. A replica then answers reads with LOADING, as a
 * Redis replica does while it loads the primary's RDB.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { RESYNC_FILE } from '../engine/filenames.js';
import type { Fs } from '../engine/fs.js';
import { KvError } from '../errors.js';
import { writeFileDurably } from './durable-file.js';
import { decodeResync, encodeResync, RESYNC_TARGET_UNKNOWN } from './resync-file.js';

export class FullResyncMark {
  /** The offset the log must reach (RESYNC_TARGET_UNKNOWN: the next feed's start end), or undefined: no resync pending. */
  target: number | undefined;

  constructor(
    private readonly fs: Fs,
    private readonly dir: string,
    private readonly log: Logger,
  ) {
    const path = join(dir, RESYNC_FILE);
    if (!fs.exists(path)) return;
    const decoded = decodeResync(fs.readFile(path));
    if (typeof decoded === 'string') {
      log.error(
        { file: RESYNC_FILE, problem: decoded },
        'the RESYNC file is damaged; reads stay refused until this replica catches up with its primary',
      );
      this.target = RESYNC_TARGET_UNKNOWN;
    } else this.target = decoded;
  }

  get pending(): boolean {
    return this.target !== undefined;
  }

  /** A full resync begins (before the local log is emptied); the target comes with the feed. */
  begin(): void {
    this.save(RESYNC_TARGET_UNKNOWN);
  }

  /** The feed started: `end` is the primary's log end, the offset this replica must reach. */
  started(end: number, applied: number): void {
    if (this.target === RESYNC_TARGET_UNKNOWN) this.save(end);
    this.applied(applied);
  }

  /** Everything below `offset` is applied: ends the resync once the target is reached. */
  applied(offset: number): void {
    const target = this.target;
    if (target === undefined || target === RESYNC_TARGET_UNKNOWN || offset < target) return;
    this.clear();
    this.log.info({ offset, target }, 'full resync complete: serving reads');
  }

  /** Forgets the resync (a promotion: this node's data is what it is now). */
  clear(): void {
    if (this.target === undefined) return;
    const path = join(this.dir, RESYNC_FILE);
    if (this.fs.exists(path)) {
      this.fs.unlink(path);
      this.fs.fsyncDir(this.dir);
    }
    this.target = undefined;
  }

  /** The error a read gets while the resync is pending. */
  error(primary: string): KvError {
    const target = this.target;
    const upTo = target === undefined || target === RESYNC_TARGET_UNKNOWN ? '' : ` up to offset ${target}`;
    return new KvError(
      'LOADING',
      `this replica is loading the dataset from its primary ${primary} (full resync${upTo}); read from the primary or retry later`,
    );
  }

  private save(target: number): void {
    writeFileDurably(this.fs, this.dir, RESYNC_FILE, encodeResync(target));
    this.target = target;
  }
}
