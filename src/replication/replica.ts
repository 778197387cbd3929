/**
 * A replica's link to its primary: connect, ask ROLE (the primary's lineage:
 * log id, epochs, end, tombstone horizon), choose how to sync, then FEED and
 * apply every record at the primary's offset (Store.applyReplicated),
 * acknowledging (ACK) what is applied. The feed is raw (FEED option raw):
 * record runs as the primary's segments hold them, checked (CRCs, offsets)
 * and appended as is (Store.applyReplicatedRaw). On any failure the link is down, and
 * it reconnects with backoff, resuming from the local log's next offset.
 *
 * How to sync (ARCHITECTURE.md, Replication):
 * - partial: same log id, and the local log's next offset X is ≥ the
 *   primary's tombstone horizon and ≤ its end, after cutting a divergent
 *   tail: X is first lowered to the end, on the primary, of the local last
 *   epoch (KIP-101), the tail past it truncated;
 * - full: anything else (a new replica, another lineage, below the horizon,
 *   a tail that cannot be cut safely): the local directory is emptied and
 *   the feed read from 0 — the primary's compacted log is a snapshot. Until
 *   the log reaches the primary's end as of the feed's start, reads get
 *   LOADING (full-resync-mark.ts): the data is partial, not merely stale.
 *
 * The position survives restarts because it is the log itself: the replica's
 * log holds the primary's records at the primary's offsets, so its next
 * offset is where to resume. Batches are applied whole: a batch cut by a
 * frame boundary waits for its end record.
 */
import type { Logger } from 'pino';
import { FeedConnection } from '../client/feed.js';
import { BatchJoiner, RECORD_RUN_FORMAT } from '../engine/record-run.js';
import type { Store } from '../engine/store.js';
import { KvError } from '../errors.js';
import {
  DEFAULT_CLIENT_MAX_REPLY_BYTES,
  DEFAULT_CONNECT_TIMEOUT_MS,
  FEED_CLIENT_BUFFERED_BYTES,
  REPLICA_CACHE_FILL_MS,
} from '../protocol/limits.js';
import type { RoleReply } from '../protocol/messages.js';
import type { EpochHistory } from './epochs.js';
import type { FullResyncMark } from './full-resync-mark.js';
import type { TombstoneHorizon } from './horizon.js';

/** What a link needs of the server's replication state (Replication implements it). */
export interface ReplicaHost {
  /** The store; a full resync or a truncation replaces it (so read it anew each time). */
  readonly store: Store;
  readonly epochs: EpochHistory;
  readonly horizon: TombstoneHorizon;
  readonly resync: FullResyncMark;
  /** This server's listening port, sent to the primary with FEED. */
  readonly listeningPort: number;
  /** Empties the log for a full resync (the store is closed and reopened). */
  resetLog(): Promise<void>;
  /** Cuts a divergent tail at `offset` (the store is closed and reopened). */
  truncateLog(offset: number): Promise<void>;
}

export type LinkStatus = 'connecting' | 'sync' | 'up' | 'down' | 'stopped';

/** Reconnect backoff, ms: first delay, doubled per failure up to the max. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;

export interface PrimaryAddress {
  host: string;
  port: number;
}

/** Parses `HOST:PORT` (the setting --replica-of); throws INVALID_ARGUMENT. */
export function parsePrimaryAddress(text: string): PrimaryAddress {
  const m = /^(.+):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port < 1 || port > 65535) {
    throw new KvError(
      'INVALID_ARGUMENT',
      `a primary's address is HOST:PORT (e.g. 127.0.0.1:7379), got '${text}'`,
    );
  }
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

export class ReplicaLink {
  status: LinkStatus = 'connecting';
  /** Everything below this offset is applied (what the link last ACKed). */
  applied = 0;
  /** The primary's log end as last reported, and when (Date.now()). */
  primaryEnd = 0;
  lastContactAt = 0;
  /** Full and partial resyncs done by this link. */
  fullResyncs = 0;
  partialResyncs = 0;
  /** The store's readCount when the link last looked, and when it last saw it move (Date.now()). */
  private readsSeen = 0;
  private readSeenAt = Number.NEGATIVE_INFINITY;
  private feed: FeedConnection | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private wakeRetry: (() => void) | undefined;
  private readonly done: Promise<void>;

  constructor(
    readonly primary: PrimaryAddress,
    private readonly repl: ReplicaHost,
    private readonly password: string | undefined,
    private readonly log: Logger,
  ) {
    this.done = this.run();
  }

  get address(): string {
    return `${this.primary.host}:${this.primary.port}`;
  }

  private async run(): Promise<void> {
    let delay = RETRY_MIN_MS;
    while (!this.stopped) {
      let wasUp = false;
      try {
        wasUp = await this.session(() => {
          delay = RETRY_MIN_MS;
        });
      } catch (err) {
        if (this.stopped) break;
        const e = err as Error;
        this.log.warn(
          { primary: this.address, err: { message: e.message, code: (e as KvError).code } },
          'replication link down',
        );
      }
      this.feed?.close();
      this.feed = undefined;
      if (this.stopped) break;
      if (wasUp) delay = RETRY_MIN_MS;
      this.status = 'down';
      await new Promise<void>((resolve) => {
        this.wakeRetry = resolve;
        this.retryTimer = setTimeout(resolve, delay);
      });
      delay = Math.min(RETRY_MAX_MS, delay * 2);
    }
    this.status = 'stopped';
  }

  /** One connection's life: handshake, sync, stream. Resolves when stopped, rejects on failure. */
  private async session(onUp: () => void): Promise<boolean> {
    this.status = 'connecting';
    const feed = await FeedConnection.connect({
      host: this.primary.host,
      port: this.primary.port,
      password: this.password,
      connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
      maxReplyBytes: DEFAULT_CLIENT_MAX_REPLY_BYTES,
      // Frames in reused slabs: each run is copied into the log before feed.recycle() below.
      recycleFrames: true,
    });
    this.feed = feed;
    if (this.stopped) return false;
    const role = (await feed.request('ROLE')) as RoleReply;
    this.lastContactAt = Date.now();
    const { from, full } = await this.chooseStart(role);
    if (this.stopped) return false;
    const start = await feed.feed(from, { replica: { port: this.repl.listeningPort }, raw: true });
    if (start.format !== RECORD_RUN_FORMAT) {
      throw new KvError(
        'PROTOCOL_ERROR',
        `the primary's raw feed carries record format ${start.format}; this server reads format ${RECORD_RUN_FORMAT}`,
      );
    }
    if (start.keys !== undefined && !(Number.isSafeInteger(start.keys) && start.keys >= 0))
      throw new KvError('PROTOCOL_ERROR', `the primary's FEED reply has keys ${String(start.keys)}`);
    // A full resync loads about the primary's keys: size the keydir once instead of doubling it on the way.
    if (from === 0 && start.keys !== undefined) this.repl.store.reserveKeys(start.keys);
    this.status = 'up';
    onUp();
    this.applied = from;
    this.primaryEnd = start.end;
    this.repl.resync.started(start.end, from);
    this.log.info(
      { primary: this.address, from, primaryEnd: start.end, epoch: role.epoch },
      from === 0 ? 'replication link up: full resync from offset 0' : 'replication link up: partial resync',
    );
    if (full) this.fullResyncs++;
    else this.partialResyncs++;
    /** Frames cut batches anywhere: a cut batch waits here for its end record. */
    const joiner = new BatchJoiner();
    const store = this.repl.store;
    for (;;) {
      let batch = await feed.next();
      if (batch === undefined || this.stopped) return true;
      // Every frame that has arrived, applied together: one tick, one ack, one ACK.
      const runs: Buffer[] = [];
      let next = 0;
      let bytes = 0;
      while (batch !== undefined) {
        if (!('raw' in batch))
          throw new KvError('PROTOCOL_ERROR', 'the primary sent decoded records on a raw feed');
        this.primaryEnd = batch.end;
        const raw = Buffer.from(batch.raw.buffer, batch.raw.byteOffset, batch.raw.byteLength);
        for (const run of joiner.push(raw)) {
          runs.push(run);
          bytes += run.length;
        }
        // Everything the primary has sent below `next` is applied, unless a batch still waits for its end.
        next = joiner.waiting ? 0 : batch.next;
        batch = bytes < FEED_CLIENT_BUFFERED_BYTES ? feed.nextQueued() : undefined;
      }
      const now = Date.now();
      this.lastContactAt = now;
      // applyReplicatedRaw copies every run into the log (and the cache) before it returns its ack
      // promise, so the frames' slabs may be reused from here (the joiner copied what it keeps).
      const applied =
        runs.length > 0 || next > store.nextOffset
          ? store.applyReplicatedRaw(runs, next, this.fillsCache(store, now))
          : undefined;
      runs.length = 0;
      feed.recycle();
      await applied;
      this.applied = Math.max(this.applied, store.nextOffset);
      this.repl.resync.applied(this.applied);
      feed.ack(this.applied);
    }
  }

  /**
   * Whether this tick's records fill the small-value cache: not while a full
   * resync loads (nothing reads the replica), and otherwise only while the
   * replica serves reads (one answered within REPLICA_CACHE_FILL_MS). A
   * replica nobody reads from keeps no values cached: every key's update
   * then finds the cache empty (no probe, no copy; the keydir still drops
   * what reads cached). Its first read after a quiet spell misses (a
   * pread, then cached); writes fill the cache again from then on.
   */
  private fillsCache(store: Store, now: number): boolean {
    if (this.repl.resync.pending) return false;
    const reads = store.readCount;
    if (reads !== this.readsSeen) {
      this.readsSeen = reads;
      this.readSeenAt = now;
    }
    return now - this.readSeenAt < REPLICA_CACHE_FILL_MS;
  }

  /** Decides partial or full resync from the primary's ROLE; empties or truncates the local log as needed. */
  private async chooseStart(role: RoleReply): Promise<{ from: number; full: boolean }> {
    const repl = this.repl;
    const local = repl.store.nextOffset;
    const lineage = repl.epochs.lineage;
    let reason: string | undefined;
    let from = local;
    if (local === 0) reason = 'the local log is empty';
    else if (role.logId !== lineage.logId) reason = 'the primary holds another log (log id differs)';
    else {
      // KIP-101: where did our last epoch end on the primary? Past that, our tail diverged.
      const end = endOffsetFor(role.epochs, repl.epochs.epoch, role.end);
      if (end < local) {
        if (end >= repl.horizon.state.compactedThrough) {
          this.log.warn(
            { primary: this.address, epoch: repl.epochs.epoch, from: end, to: local, records: local - end },
            'truncating a divergent tail before following',
          );
          await repl.truncateLog(end);
          from = end;
        } else reason = `the divergent tail from ${end} cannot be cut: a compaction ran after it was written`;
      }
      if (reason === undefined && from > 0 && from < role.horizon) {
        reason = `offset ${from} is below the primary's tombstone horizon ${role.horizon}`;
      }
      if (reason === undefined && from > role.end)
        reason = `offset ${from} is past the primary's end ${role.end}`;
    }
    if (reason !== undefined) {
      // From here until the log reaches the primary's end, reads get LOADING (even across restarts).
      repl.resync.begin();
      if (local > 0) {
        this.log.warn(
          { primary: this.address, localOffset: local, reason },
          'full resync: emptying the local log',
        );
        this.status = 'sync';
        await repl.resetLog();
      }
      await repl.horizon.raiseTo(role.horizon); // durable before any record of the feed is applied
      from = 0;
    }
    repl.epochs.adopt({
      logId: role.logId,
      epochs: role.epochs.map(([epoch, startOffset]) => ({ epoch, startOffset })),
    });
    return { from, full: from === 0 };
  }

  /** Stops the link and resolves when its loop has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.wakeRetry?.();
    this.feed?.close();
    await this.done;
  }
}

/** KIP-101 on the primary's history: the start of the first epoch after `epoch`, or `end`. */
function endOffsetFor(epochs: readonly [number, number][], epoch: number, end: number): number {
  for (const [e, start] of epochs) if (e > epoch) return start;
  return end;
}
