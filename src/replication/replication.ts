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
import { type AckListener, TickAck } from '../engine/tick-ack.js';
import { KvError } from '../errors.js';
import { DEFAULT_MIN_REPLICAS_TIMEOUT_MS } from '../protocol/limits.js';
import type { FeedStart, RoleReply } from '../protocol/messages.js';
import { EpochHistory } from './epochs.js';
import { FeedStream, type StreamSink } from './feed.js';
import { FullResyncMark } from './full-resync-mark.js';
import { TombstoneHorizon } from './horizon.js';
import { type PrimaryAddress, type ReplicaHost, ReplicaLink } from './replica.js';
import { truncateLogFiles } from './truncate.js';

/** One replica as INFO `replication` lists it on a primary. */
export interface ReplicaInfo {
  /** Its address: the connection's IP and the port it listens on. */
  address: string;
  /** Every record below this offset is applied there (its last ACK). */
  ackedOffset: number;
  /** Records of this log it does not have yet (log end − ackedOffset). */
  lagRecords: number;
  /** Age of the oldest record it does not have yet, ms (0 when caught up). */
  lagMs: number;
}

/** INFO `replication` (PROTOCOL.md §6 INFO). */
export interface ReplicationInfo {
  role: 'primary' | 'replica';
  logId: string;
  epoch: number;
  /** The log's next offset. */
  offset: number;
  horizon: number;
  /** Replica: its primary and link; nil on a primary. */
  primary: string | null;
  link: string | null;
  /** Replica: the primary's offset as last heard, records behind it, ms since the primary was last heard. */
  primaryOffset: number | null;
  lagRecords: number | null;
  lastContactMs: number | null;
  fullResyncs: number;
  partialResyncs: number;
  /** Primary: replicas connected now, and each one. */
  connectedReplicas: number;
  replicas: ReplicaInfo[];
  /** Change feeds open that are not replicas. */
  feeds: number;
  /** --min-replicas-ack. */
  minReplicasAck: number;
}

/** Samples of (log end, time) for lag in ms: one at most every SAMPLE_MS, the last MAX_SAMPLES kept. */
const SAMPLE_MS = 5;
const MAX_SAMPLES = 4096;

/** One entry of the offset-ordered waiter list: WAIT's promise (waitForAcks) or a tick's ReplicatedAck. */
interface AckWaiter {
  offset: number;
  count: number;
  /** Date.now() past which it is settled with what it has; 0 = never. */
  deadline: number;
  /** How many replicas had its records when it was taken off the list (settleWaiters passes it on). */
  acked: number;
  /** Called once, after the list was updated: WAIT's resolve, or the tick's settlement. */
  replicasAcked(acked: number): void;
}

/**
 * Under --min-replicas-ack N, the acknowledgement of one tick's writes on a
 * primary: a TickAck (tick-ack.ts) that settles once the store's ack of the
 * tick did and N replicas acknowledged every record up to `offset` (the end
 * of the tick's last write), or fails with NOT_ENOUGH_REPLICAS after
 * --min-replicas-timeout-ms (or at close), or with the store's error. The
 * writes of a tick share it, as they share the store's ack: one waiter per
 * tick in the replication's offset-ordered list, no promise per write, and a
 * connection waits on it as on the store's ack (answered early, held until
 * it settles; served-connection.ts).
 */
export class ReplicatedAck extends TickAck implements AckListener, AckWaiter {
  /** Every write of the tick ends at or below this. */
  offset = 0;
  /** Its waiter fields (AckWaiter), set when it joins the list (awaitReplicas). */
  count = 0;
  deadline = 0;
  acked = 0;

  constructor(
    private readonly repl: Replication,
    /** The store's ack of the tick. */
    readonly local: TickAck,
  ) {
    super();
  }

  /** The store's ack of the tick settled: now the replicas'. */
  ackSettled(_tag: unknown, failed: boolean, error: unknown): void {
    if (failed) this.reject(error);
    else this.repl.awaitReplicas(this);
  }

  /** How many replicas have the tick's writes, once enough do or its time is up. */
  replicasAcked(got: number): void {
    const n = this.repl.minReplicasAck;
    if (got >= n) this.resolve();
    else this.reject(this.repl.notEnoughReplicas(got));
  }
}

/**
 * Settles the waiters of `due`, taken off the list, with how many replicas
 * had their records then; last, as a tick's listeners (connections) may run
 * requests that add waiters.
 */
function settleWaiters(due: AckWaiter[]): void {
  for (const w of due) w.replicasAcked(w.acked);
}

/** Waiters time out at most this late (one timer for all of them, not one per write). */
const ACK_TIMER_SLACK_MS = 10;

export interface ReplicationOptions {
  /** Follow this primary from the start (kv-server --replica-of). */
  replicaOf?: PrimaryAddress | undefined;
  /** The password a replica sends to its primary (the server's own --password). */
  password?: string | undefined;
  /** --min-replicas-ack: replicas that must have a write before it is acknowledged (default 0). */
  minReplicasAck?: number | undefined;
  /** --min-replicas-timeout-ms: how long a write waits for them (default 10 s). */
  minReplicasTimeoutMs?: number | undefined;
}

export class Replication implements ReplicaHost {
  store: Store;
  horizon: TombstoneHorizon;
  epochs: EpochHistory;
  /** A full resync not finished yet: reads get LOADING while following (full-resync-mark.ts). */
  readonly resync: FullResyncMark;
  readonly feeds = new Set<FeedStream>();
  link: ReplicaLink | undefined;
  /** Cluster mode: etcd chooses the primary, so REPLICAOF from a client is refused. */
  clusterManaged = false;
  /** This server's listening port, reported to primaries (INFO on the primary). */
  listeningPort = 0;
  private samples: { offset: number; at: number }[] = [];
  /** WAIT and --min-replicas-ack waiters in offset order (writes add at the end); those before `waitHead` are done. */
  private waiters: AckWaiter[] = [];
  private waitHead = 0;
  /** The one timer that times waiters out, and when it fires (Date.now(); Infinity: not armed). */
  private waitTimer: NodeJS.Timeout | undefined;
  private waitTimerAt = Number.POSITIVE_INFINITY;
  /** --min-replicas-ack: the ack of the tick being written (its store ack not settled yet). */
  private tickAck: ReplicatedAck | undefined;
  /** close() ran: a tick's ack settled after it fails at once. */
  private closed = false;
  /** An ACK arrived and the waiters it satisfies are woken in a microtask (not inside the feed connection's read). */
  private ackQueued = false;
  private readonly wakeOnAck = (): void => {
    this.ackQueued = false;
    this.onAck();
  };
  private readonly watcher = {
    flushed: () => this.sample(),
    replacing: () => {},
  };

  constructor(
    store: Store,
    private readonly log: Logger,
    private readonly options: ReplicationOptions = {},
  ) {
    this.store = store;
    this.horizon = new TombstoneHorizon(store, log);
    this.epochs = new EpochHistory(store, log);
    this.resync = new FullResyncMark(store.options.fs, store.dir, log);
    store.watchers.add(this.watcher);
  }

  /** --min-replicas-ack: a write is acknowledged once this many replicas have it. */
  get minReplicasAck(): number {
    return this.options.minReplicasAck ?? 0;
  }

  /** --min-replicas-timeout-ms. */
  get minReplicasTimeoutMs(): number {
    return this.options.minReplicasTimeoutMs ?? DEFAULT_MIN_REPLICAS_TIMEOUT_MS;
  }

  private sample(): void {
    const now = Date.now();
    const last = this.samples[this.samples.length - 1];
    const offset = this.store.nextOffset;
    if (last && (last.offset === offset || now - last.at < SAMPLE_MS)) return;
    this.samples.push({ offset, at: now });
    if (this.samples.length > MAX_SAMPLES) this.samples.splice(0, MAX_SAMPLES / 2);
  }

  /** How long ago the record at `offset` was written, about (ms); 0 if it is not written yet. */
  private ageOf(offset: number, now: number): number {
    if (offset >= this.store.nextOffset) return 0;
    for (const s of this.samples) if (s.offset > offset) return now - s.at;
    return this.samples.length > 0 ? now - this.samples[0]!.at : 0;
  }

  /** Replica feeds on this server (a primary's replicas). */
  private replicaFeeds(): FeedStream[] {
    return [...this.feeds].filter((f) => f.replicaPort !== undefined);
  }

  /** How many replicas have acknowledged every record below `offset`. */
  ackedBy(offset: number): number {
    let n = 0;
    for (const f of this.feeds) if (f.replicaPort !== undefined && f.acked >= offset) n++;
    return n;
  }

  /**
   * Resolves with how many replicas hold every record below `offset` as soon
   * as `count` do, or when `timeoutMs` passes (0: never times out) — WAIT, and
   * the acknowledgement of writes under --min-replicas-ack.
   */
  waitForAcks(count: number, timeoutMs: number, offset: number): Promise<number> {
    const now = this.ackedBy(offset);
    if (now >= count || count <= 0) return Promise.resolve(now);
    return new Promise((resolve) => {
      const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : 0;
      this.addWaiter({ offset, count, deadline, acked: 0, replicasAcked: resolve });
    });
  }

  /** Puts `w` in the offset-ordered list, and arms the timer for its deadline. */
  private addWaiter(w: AckWaiter): void {
    const ws = this.waiters;
    let i = ws.length;
    while (i > this.waitHead && ws[i - 1]!.offset > w.offset) i--; // a WAIT for older writes: rare
    if (i === ws.length) ws.push(w);
    else ws.splice(i, 0, w);
    const deadline = w.deadline;
    if (deadline > 0 && deadline + ACK_TIMER_SLACK_MS < this.waitTimerAt) this.armWaitTimer(deadline);
  }

  /**
   * Under --min-replicas-ack: the ack of a write whose records end below
   * `offset`, `local` being the store's ack of its tick (taken after the
   * write): that, then the replicas' (ReplicatedAck). One per tick, shared
   * by the tick's writes as the store's ack is (acked-write.ts withReplicas).
   */
  replicatedTickAck(local: TickAck, offset: number): ReplicatedAck {
    let a = this.tickAck;
    if (a !== undefined && a.local === local) {
      if (offset > a.offset) a.offset = offset;
      return a;
    }
    a = this.tickAck = new ReplicatedAck(this, local);
    a.offset = offset;
    local.listen(a, undefined); // the offset first: a settled ack calls it at once
    return a;
  }

  /** @internal A tick's store ack settled (ReplicatedAck): wait for the replicas, or settle now. */
  awaitReplicas(a: ReplicatedAck): void {
    if (this.tickAck === a) this.tickAck = undefined;
    const n = this.minReplicasAck;
    const got = this.ackedBy(a.offset);
    if (got >= n || this.closed) {
      a.replicasAcked(got);
      return;
    }
    const timeoutMs = this.minReplicasTimeoutMs;
    a.count = n;
    a.deadline = timeoutMs > 0 ? Date.now() + timeoutMs : 0;
    this.addWaiter(a);
  }

  /** NOT_ENOUGH_REPLICAS: a write in the log that only `got` replicas acknowledged in time. */
  notEnoughReplicas(got: number): KvError {
    const n = this.minReplicasAck;
    return new KvError(
      'NOT_ENOUGH_REPLICAS',
      `the write is in this server's log but only ${got} of ${n} replicas acknowledged it within ${this.minReplicasTimeoutMs} ms (server options --min-replicas-ack, --min-replicas-timeout-ms); it may be lost if this server fails now`,
    );
  }

  /**
   * A replica acknowledged more (feed.ts): wake the waiters it satisfies.
   * Only waiters at or below the highest acked offset can be, and they are
   * the front of the offset-ordered list: the cost is what is woken.
   */
  private onAck(): void {
    const ws = this.waiters;
    if (this.waitHead === ws.length) return;
    let max = -1;
    for (const f of this.feeds) if (f.replicaPort !== undefined && f.acked > max) max = f.acked;
    let i = this.waitHead;
    let kept = i;
    let due: AckWaiter[] | undefined;
    for (; i < ws.length && ws[i]!.offset <= max; i++) {
      const w = ws[i]!;
      const n = this.ackedBy(w.offset);
      if (n < w.count)
        ws[kept++] = w; // needs more replicas than have it yet: stays, in order
      else {
        w.acked = n;
        (due ??= []).push(w);
      }
    }
    // The kept ones move up against the unexamined rest.
    let to = i;
    while (kept > this.waitHead) ws[--to] = ws[--kept]!;
    this.waitHead = to;
    this.compactWaiters();
    if (due !== undefined) settleWaiters(due);
  }

  /** An ACK moved a replica's acked offset (feed.ts): wake its waiters after the feed connection's read. */
  private ackArrived(): void {
    if (this.ackQueued || this.waitHead === this.waiters.length) return;
    this.ackQueued = true;
    queueMicrotask(this.wakeOnAck);
  }

  /** Drops the done front of the waiter list once it is most of it. */
  private compactWaiters(): void {
    if (this.waitHead === this.waiters.length) {
      this.waiters = [];
      this.waitHead = 0;
    } else if (this.waitHead > 1024 && this.waitHead * 2 > this.waiters.length) {
      this.waiters = this.waiters.slice(this.waitHead);
      this.waitHead = 0;
    }
  }

  private armWaitTimer(deadline: number): void {
    clearTimeout(this.waitTimer);
    // Never sooner than ACK_TIMER_SLACK_MS from now: a stream of deadlines is served in few passes.
    const at = Math.max(deadline, Date.now() + ACK_TIMER_SLACK_MS);
    this.waitTimerAt = at;
    this.waitTimer = setTimeout(() => this.timeOutWaiters(), at - Date.now());
  }

  /** The timer fired: waiters past their deadline resolve with how many replicas have their writes. */
  private timeOutWaiters(): void {
    this.waitTimer = undefined;
    this.waitTimerAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    const ws = this.waiters;
    let kept = this.waitHead;
    let next = Number.POSITIVE_INFINITY;
    let due: AckWaiter[] | undefined;
    for (let i = this.waitHead; i < ws.length; i++) {
      const w = ws[i]!;
      if (w.deadline > 0 && w.deadline <= now) {
        w.acked = this.ackedBy(w.offset);
        (due ??= []).push(w);
      } else {
        ws[kept++] = w;
        if (w.deadline > 0 && w.deadline < next) next = w.deadline;
      }
    }
    ws.length = kept;
    this.compactWaiters();
    if (next !== Number.POSITIVE_INFINITY) this.armWaitTimer(next);
    if (due !== undefined) settleWaiters(due);
  }

  /**
   * Under --min-replicas-ack N: NOREPLICAS before a write when fewer than N
   * replicas are connected (nothing is written); else undefined.
   */
  refuseForReplicas(): KvError | undefined {
    const n = this.minReplicasAck;
    if (n <= 0 || this.link) return undefined;
    let connected = 0;
    for (const f of this.feeds) if (f.replicaPort !== undefined) connected++;
    if (connected >= n) return undefined;
    return new KvError(
      'NOREPLICAS',
      `${connected} replicas are connected and this server acknowledges a write only once ${n} have it (server option --min-replicas-ack); nothing was written`,
    );
  }

  /**
   * Under --min-replicas-ack N: the acknowledgement of a write whose records
   * end below `offset` — `ack` (the local one), then N replica ACKs, or
   * NOT_ENOUGH_REPLICAS after --min-replicas-timeout-ms.
   */
  replicatedAck<T>(ack: Promise<T>, offset: number): Promise<T> {
    return ack.then((value) => {
      const n = this.minReplicasAck;
      if (this.ackedBy(offset) >= n) return value;
      const timeoutMs = this.minReplicasTimeoutMs;
      return this.waitForAcks(n, timeoutMs, offset).then((got) => {
        if (got < n) throw this.notEnoughReplicas(got);
        return value;
      });
    });
  }

  info(): ReplicationInfo {
    const now = Date.now();
    const end = this.store.nextOffset;
    const link = this.link;
    const replicas = this.replicaFeeds().map((f) => {
      const acked = Math.max(0, f.acked);
      return {
        address: `${f.remoteHost}:${f.replicaPort}`,
        ackedOffset: acked,
        lagRecords: Math.max(0, end - acked),
        lagMs: this.ageOf(acked, now),
      };
    });
    return {
      role: this.role,
      logId: this.epochs.logId,
      epoch: this.epochs.epoch,
      offset: end,
      horizon: this.horizon.state.tombstoneHorizon,
      primary: link?.address ?? null,
      link: link?.status ?? null,
      primaryOffset: link ? link.primaryEnd : null,
      lagRecords: link ? Math.max(0, link.primaryEnd - link.applied) : null,
      lastContactMs: link && link.lastContactAt > 0 ? now - link.lastContactAt : null,
      fullResyncs: link?.fullResyncs ?? 0,
      partialResyncs: link?.partialResyncs ?? 0,
      connectedReplicas: replicas.length,
      replicas,
      feeds: this.feeds.size - replicas.length,
      minReplicasAck: this.minReplicasAck,
    };
  }

  /** Starts following `options.replicaOf`, if set (once the server listens). */
  start(listeningPort: number): void {
    this.listeningPort = listeningPort;
    if (this.options.replicaOf && !this.link) this.follow(this.options.replicaOf);
    else if (this.resync.pending) {
      this.log.warn(
        'this server stopped in the middle of a full resync: its data is partial; it serves it as a primary, or refuses reads (LOADING) until caught up once it follows a primary again',
      );
    }
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

  /** LOADING for a read on a replica whose full resync has not caught up yet, or undefined. */
  refuseRead(): KvError | undefined {
    const link = this.link;
    if (!link || !this.resync.pending) return undefined;
    return this.resync.error(link.address);
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
    if (this.resync.pending) {
      this.log.warn(
        { offset: this.store.nextOffset, target: this.resync.target },
        'promoted in the middle of a full resync: the data is partial (what the primary had sent so far)',
      );
      this.resync.clear();
    }
    const started = this.epochs.startEpoch(this.store.nextOffset, epoch);
    this.log.warn(
      { formerPrimary: link?.address ?? null, epoch: started, startOffset: this.store.nextOffset },
      'promoted to primary: a new epoch starts',
    );
  }

  private follow(primary: PrimaryAddress): void {
    this.log.info({ primary: `${primary.host}:${primary.port}` }, 'following a primary (replica, read-only)');
    this.closeFeeds();
    // An empty log has everything still to load: no reads until the first sync has caught up.
    if (this.store.nextOffset === 0 && !this.resync.pending) this.resync.begin();
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
    raw = false,
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
      (f) => {
        this.feeds.delete(f);
        if (f.replicaPort !== undefined) this.log.info({ replica: f.remote }, 'replica disconnected');
      },
      replicaPort,
      () => this.ackArrived(),
      raw,
    );
    this.feeds.add(stream);
    this.log.info(
      { remote: sink.remote, from, end, replica: replicaPort !== undefined, raw },
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
    await this.horizon.close(); // its file writes finish before the files change
    old.watchers.delete(this.watcher);
    await old.close();
    change(old.dir, old.options.fs);
    const fresh = new Store(old.dir, old.options);
    await fresh.start();
    this.store = fresh;
    this.samples = [];
    fresh.watchers.add(this.watcher);
    this.horizon = new TombstoneHorizon(fresh, this.log);
    this.epochs = new EpochHistory(fresh, this.log);
  }

  async close(): Promise<void> {
    await this.link?.stop();
    this.closeFeeds();
    await this.horizon.close();
    this.store.watchers.delete(this.watcher);
    clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
    this.waitTimerAt = Number.POSITIVE_INFINITY;
    const ws = this.waiters;
    const head = this.waitHead;
    this.waiters = [];
    this.waitHead = 0;
    this.closed = true;
    const due = ws.slice(head);
    for (const w of due) w.acked = this.ackedBy(w.offset);
    settleWaiters(due);
  }
}
