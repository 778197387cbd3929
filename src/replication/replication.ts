/**
 * Replication on one server: the change feeds it serves (feed.ts) and the
 * tombstone horizon that decides which offsets a feed may start from
 * (horizon.ts). The server (KvServer) owns one; the command table reaches it
 * through the connection. Functions other front ends (RESP) can call are
 * methods here.
 */
import type { Logger } from 'pino';
import type { Store } from '../engine/store.js';
import { KvError } from '../errors.js';
import type { FeedStart } from '../protocol/messages.js';
import { FeedStream, type StreamSink } from './feed.js';
import { TombstoneHorizon } from './horizon.js';

export class Replication {
  readonly horizon: TombstoneHorizon;
  readonly feeds = new Set<FeedStream>();

  constructor(
    readonly store: Store,
    private readonly log: Logger,
  ) {
    this.horizon = new TombstoneHorizon(store, log);
  }

  /**
   * Opens a change feed from `from` on a connection (FEED). Throws
   * OFFSET_OUT_OF_RANGE when the log cannot replay exactly from there.
   */
  openFeed(sink: StreamSink, id: number, from: number): { stream: FeedStream; reply: FeedStart } {
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
    const stream = new FeedStream(id, this.store, sink, from, this.log, (f) => this.feeds.delete(f));
    this.feeds.add(stream);
    this.log.info({ remote: sink.remote, from, end }, 'change feed opened');
    return { stream, reply: stream.startReply(horizon) };
  }

  close(): void {
    this.horizon.close();
  }
}
