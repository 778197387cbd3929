/**
 * Replication on one server (issue 12): its role (primary, or replica of a
 * primary through a ReplicaLink), the change feeds it serves (feed.ts), the
 * tombstone horizon that decides which offsets a feed may start from
 * (horizon.ts), and the log's lineage (epochs.ts). The server (KvServer)
 * owns one and reaches the store through it: a full resync or a truncation
 * replaces the store (closed, files changed, reopened).
 *
 * Entry points other front ends (RESP) call: `role()`, `replicaOf()`,
 * `promote()`, `refuseWrite()`.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  COMPACTING_SUFFIX,
  COMPACTION_MANIFEST,
  EPOCHS_FILE,
  HORIZON_FILE,
  parseName,
  TEMP_SUFFIX,
} from '../engine/filenames.js';
import { Store } from '../engine/store.js';
import { KvError } from '../errors.js';
import type { FeedStart, RoleReply } from '../protocol/messages.js';
import { EpochHistory } from './epochs.js';
import { FeedStream, type StreamSink } from './feed.js';
import { TombstoneHorizon } from './horizon.js';
import { type PrimaryAddress, ReplicaLink } from './replica.js';
import { truncateLogFiles } from './truncate.js';

export interface ReplicationOptions {
  /** Follow this primary from the start (kv-server --replica-of). */
  replicaOf?: PrimaryAddress | undefined;
  /** The password a replica sends to its primary (the server's own --password). */
  password?: string | undefined;
}

export class Replication {
  store: Store;
  horizon: TombstoneHorizon;
  epochs: EpochHistory;
  readonly feeds = new Set<FeedStream>();
  link: ReplicaLink | undefined;
  /** Cluster mode: etcd chooses the primary, so REPLICAOF from a client is refused. */
  clusterManaged = false;
  /** This server's listening port, reported to primaries (INFO on the primary). */
  listeningPort = 0;

  constructor(
    store: Store,
    private readonly log: Logger,
    private readonly options: ReplicationOptions = {},
  ) {
    this.store = store;
    this.horizon = new TombstoneHorizon(store, log);
    this.epochs = new EpochHistory(store, log);
  }

  /** Starts following `options.replicaOf`, if set (once the server listens). */
  start(listeningPort: number): void {
    this.listeningPort = listeningPort;
    if (this.options.replicaOf && !this.link) this.follow(this.options.replicaOf);
  }

  get role(): 'primary' | 'replica' {
    return this.link ? 'replica' : 'primary';
  }

  /** The READONLY error for a write on a replica, or undefined on a primary. */
  refuseWrite(): KvError | undefined {
    if (!this.link) return undefined;
    return new KvError(
      'READONLY',
      `this server is a read-only replica of ${this.link.address}; send writes there (or promote it: REPLICAOF NO ONE)`,
    );
  }

  roleReply(): RoleReply {
    return {
      role: this.role,
      logId: this.epochs.logId,
      epoch: this.epochs.epoch,
      epochs: this.epochs.epochs.map((e) => [e.epoch, e.startOffset]),
      end: this.store.nextOffset,
      horizon: this.horizon.state.tombstoneHorizon,
      primary: this.link?.address ?? null,
      link: this.link?.status ?? null,
    };
  }

  /** REPLICAOF host port: follow that primary (a primary becomes a replica; a replica switches). */
  async replicaOf(primary: PrimaryAddress): Promise<void> {
    if (this.link && this.link.address === `${primary.host}:${primary.port}`) return;
    await this.link?.stop();
    this.link = undefined;
    this.follow(primary);
  }

  /**
   * REPLICAOF NO ONE: stop following and take writes, in a new epoch starting
   * at the log's end. Cluster mode passes the epoch etcd gave the leadership,
   * and promotes a node that was not following anyone too (every leadership
   * is a new epoch).
   */
  async promote(epoch?: number): Promise<void> {
    const link = this.link;
    if (!link && epoch === undefined) return;
    if (link) await link.stop();
    this.link = undefined;
    await this.store.sync();
    const started = this.epochs.startEpoch(this.store.nextOffset, epoch);
    this.log.warn(
      { formerPrimary: link?.address ?? null, epoch: started, startOffset: this.store.nextOffset },
      'promoted to primary: a new epoch starts',
    );
  }

  private follow(primary: PrimaryAddress): void {
    this.log.info({ primary: `${primary.host}:${primary.port}` }, 'following a primary (replica, read-only)');
    this.closeFeeds();
    this.link = new ReplicaLink(primary, this, this.options.password, this.log);
  }

  /**
   * Opens a change feed from `from` on a connection (FEED). Throws
   * OFFSET_OUT_OF_RANGE when the log cannot replay exactly from there.
   */
  openFeed(
    sink: StreamSink,
    id: number,
    from: number,
    replicaPort?: number,
  ): { stream: FeedStream; reply: FeedStart } {
    const end = this.store.nextOffset;
    const horizon = this.horizon.state.tombstoneHorizon;
    if (from > end) {
      throw new KvError(
        'OFFSET_OUT_OF_RANGE',
        `offset ${from} is past the end of the log (next offset ${end}); a reader ahead of the log has diverged from it`,
      );
    }
    if (!this.horizon.servesFrom(from)) {
      throw new KvError(
        'OFFSET_OUT_OF_RANGE',
        `offset ${from} is below the tombstone horizon ${horizon}: compaction dropped deletions after it, so a feed from there would miss them; read from 0 (a full snapshot) instead`,
      );
    }
    const stream = new FeedStream(
      id,
      this.store,
      sink,
      from,
      this.log,
      (f) => this.feeds.delete(f),
      replicaPort,
    );
    this.feeds.add(stream);
    this.log.info(
      { remote: sink.remote, from, end, replica: replicaPort !== undefined },
      'change feed opened',
    );
    return { stream, reply: stream.startReply(horizon) };
  }

  /** Ends every feed this server serves (its log is about to change under them). */
  private closeFeeds(): void {
    for (const f of [...this.feeds]) f.end('the server became a replica or resynced; reconnect');
  }

  /** Full resync: the log emptied (files removed, store reopened empty). */
  async resetLog(): Promise<void> {
    await this.reopen((dir, fs) => {
      // Lineage first: a crash part-way leaves a log of unknown lineage (full resync again), never a wrong one.
      for (const name of [EPOCHS_FILE, HORIZON_FILE])
        if (fs.exists(join(dir, name))) fs.unlink(join(dir, name));
      fs.fsyncDir(dir);
      for (const name of fs.readdir(dir)) {
        if (
          parseName(name) !== undefined ||
          name === COMPACTION_MANIFEST ||
          name.endsWith(TEMP_SUFFIX) ||
          name.endsWith(COMPACTING_SUFFIX)
        ) {
          fs.unlink(join(dir, name));
        }
      }
      fs.fsyncDir(dir);
    });
  }

  /** Divergence: the log cut back so that `offset` is its next offset. */
  async truncateLog(offset: number): Promise<void> {
    await this.reopen((dir, fs) => truncateLogFiles(fs, dir, offset));
  }

  /** Closes the store, changes its files, opens it again (the same options); feeds end. */
  private async reopen(change: (dir: string, fs: Store['options']['fs']) => void): Promise<void> {
    const old = this.store;
    this.closeFeeds();
    this.horizon.close();
    await old.close();
    change(old.dir, old.options.fs);
    const fresh = new Store(old.dir, old.options);
    await fresh.start();
    this.store = fresh;
    this.horizon = new TombstoneHorizon(fresh, this.log);
    this.epochs = new EpochHistory(fresh, this.log);
  }

  async close(): Promise<void> {
    await this.link?.stop();
    this.closeFeeds();
    this.horizon.close();
  }
}
