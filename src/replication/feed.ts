/**
 * The server side of one change feed (FEED, protocol/PROTOCOL.md): reads the
 * log from an offset through a LogCursor and writes it to the connection as
 * frames `[id, {records, end}]`, then keeps following new writes.
 *
 * Flow control: a batch is read from the log files only while the frames
 * still unsent on this connection (its queue plus the socket's buffer) are
 * under FEED_HIGH_WATER_BYTES; otherwise the pump waits for 'drain'. So a
 * slow or stopped reader holds at most that plus one batch of memory on the
 * server, however long the log. Between batches the pump yields to the event
 * loop, so other clients are served.
 *
 * The only frames a feed connection may send after FEED are
 * `[id, "ACK", offset]` (every record below `offset` is applied); anything
 * else is a fatal PROTOCOL_ERROR.
 */
import type { Logger } from 'pino';
import { LogCursor } from '../engine/log-cursor.js';
import { FLAG_TOMBSTONE } from '../engine/record.js';
import type { Store } from '../engine/store.js';
import { type ErrorCode, KvError } from '../errors.js';
import { encodeFrame, unpackr } from '../protocol/frame.js';
import { FEED_BATCH_BYTES, FEED_HEARTBEAT_MS, FEED_HIGH_WATER_BYTES } from '../protocol/limits.js';
import type { FeedBatch, FeedStart, WireFeedRecord } from '../protocol/messages.js';

/** What a feed needs from its connection. */
export interface StreamSink {
  /** Queues a frame after every reply owed before it. */
  send(frame: Buffer): void;
  /** Bytes of frames not yet taken by the kernel (queued + socket buffer). */
  readonly unsentBytes: number;
  /** Closes the connection with a fatal frame. */
  fatal(code: ErrorCode, message: string): void;
  readonly remote: string;
}

/** What the connection tells its stream. */
export interface StreamHandler {
  onFrame(body: Buffer): void;
  onDrain(): void;
  onClose(): void;
}

export class FeedStream implements StreamHandler {
  /** The highest offset + 1 the reader acknowledged (ACK), -1 before any. */
  acked = -1;
  /** When `acked` last moved (Date.now()). */
  ackedAt = 0;
  private readonly cursor: LogCursor;
  private closed = false;
  private drained: (() => void) | undefined;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    readonly id: number,
    private readonly store: Store,
    private readonly sink: StreamSink,
    from: number,
    private readonly log: Logger,
    private readonly onEnd: (feed: FeedStream) => void,
    /** Set when the reader is a replica (FEED option replica.port): its listening port. */
    readonly replicaPort?: number,
    /** Called when an ACK moves `acked`. */
    private readonly onAck: () => void = () => {},
  ) {
    this.cursor = new LogCursor(store.segmentLog, from);
  }

  /** The reply to FEED. */
  startReply(horizon: number): FeedStart {
    // The pump starts once this reply is queued (the command returns first).
    setImmediate(() => void this.pump().catch((err) => this.fail(err)));
    return { from: this.cursor.next, end: this.store.nextOffset, horizon };
  }

  /** The offset of the next record this feed will send. */
  get position(): number {
    return this.cursor.next;
  }

  get remote(): string {
    return this.sink.remote;
  }

  /** The reader's IP address (without the port). */
  get remoteHost(): string {
    const r = this.sink.remote;
    return r.slice(0, r.lastIndexOf(':')).replace(/^::ffff:/, '');
  }

  private async pump(): Promise<void> {
    while (!this.closed && !this.store.isClosed) {
      if (this.sink.unsentBytes > FEED_HIGH_WATER_BYTES) {
        await new Promise<void>((resolve) => {
          this.drained = resolve;
        });
        continue;
      }
      const records = this.cursor.read(FEED_BATCH_BYTES);
      if (records.length === 0) {
        const timedOut = await this.waitForRecords();
        if (timedOut && !this.closed) this.send([]);
        continue;
      }
      const wire: WireFeedRecord[] = records.map((r) => [
        r.offset,
        r.flags,
        r.expiresAt,
        r.key,
        r.flags & FLAG_TOMBSTONE ? null : r.value,
      ]);
      this.send(wire);
      // Let the reply flush and other connections run before the next batch.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private send(records: WireFeedRecord[]): void {
    const batch: FeedBatch = { records, next: this.cursor.next, end: this.store.nextOffset };
    this.sink.send(encodeFrame([this.id, batch]));
  }

  /** Resolves true after FEED_HEARTBEAT_MS without new records, false when records (or the end) came. */
  private waitForRecords(): Promise<boolean> {
    return new Promise((resolve) => {
      this.heartbeat = setTimeout(() => resolve(true), FEED_HEARTBEAT_MS);
      void this.cursor.waitForRecords().then(() => {
        clearTimeout(this.heartbeat);
        resolve(false);
      });
    });
  }

  onFrame(body: Buffer): void {
    let req: unknown;
    try {
      req = unpackr.unpack(body);
    } catch {
      this.sink.fatal('PROTOCOL_ERROR', 'the frame body is not exactly one valid MessagePack value');
      return;
    }
    if (
      Array.isArray(req) &&
      req.length === 3 &&
      typeof req[1] === 'string' &&
      req[1].toUpperCase() === 'ACK' &&
      Number.isSafeInteger(req[2]) &&
      (req[2] as number) >= 0
    ) {
      const offset = req[2] as number;
      if (offset > this.acked) {
        this.acked = offset;
        this.ackedAt = Date.now();
        this.onAck();
      }
      return;
    }
    this.sink.fatal('PROTOCOL_ERROR', 'a feed connection may only send [id, "ACK", offset]');
  }

  onDrain(): void {
    const d = this.drained;
    this.drained = undefined;
    d?.();
  }

  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.heartbeat);
    this.cursor.close();
    this.onDrain();
    this.onEnd(this);
  }

  /** Ends the feed from the server side: a fatal frame saying why, then the connection closes. */
  end(reason: string): void {
    if (this.closed) return;
    this.sink.fatal('CLOSED', reason);
    this.onClose();
  }

  private fail(err: unknown): void {
    if (this.closed) return;
    this.log.error({ err, remote: this.sink.remote }, 'the change feed failed; closing its connection');
    if (err instanceof KvError) this.sink.fatal(err.code, `the feed stopped: ${err.message}`);
    else this.sink.fatal('INTERNAL', 'the feed stopped: unexpected server error; see the server log');
  }
}
