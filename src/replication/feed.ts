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
 * Raw (FEED option raw, what replicas ask for): each frame carries a record
 * run (record-run.ts), the segment's own bytes read with one positioned
 * read per segment (LogCursor.readRaw) and framed with one copy: no record
 * decoded, no CRC computed, nothing re-encoded. The reader checks the CRCs.
 *
 * The only frames a feed connection may send after FEED are
 * `[id, "ACK", offset]` (every record below `offset` is applied); anything
 * else is a fatal PROTOCOL_ERROR.
 */
import type { Logger } from 'pino';
import { LogCursor } from '../engine/log-cursor.js';
import { FLAG_TOMBSTONE } from '../engine/record.js';
import { RECORD_RUN_FORMAT } from '../engine/record-run.js';
import type { Store } from '../engine/store.js';
import { type ErrorCode, KvError } from '../errors.js';
import { encodeFrame, unpackr } from '../protocol/frame.js';
import {
  FEED_BATCH_BYTES,
  FEED_HEARTBEAT_MS,
  FEED_HIGH_WATER_BYTES,
  FRAME_HEADER_BYTES,
} from '../protocol/limits.js';
import type { FeedBatch, FeedStart, WireFeedRecord } from '../protocol/messages.js';
import { FramePool } from './frame-pool.js';

/** What a feed needs from its connection. */
export interface StreamSink {
  /** Queues a frame after every reply owed before it. */
  send(frame: Buffer): void;
  /** Bytes of frames not yet taken by the kernel (queued + socket buffer). */
  readonly unsentBytes: number;
  /** Frames may wait behind an awaited reply, where `unsentBytes` does not count them. */
  readonly holdsFrames: boolean;
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
  /** A raw feed's frame buffers, reused once the kernel has taken every frame written in them. */
  private readonly frames = new FramePool();
  private closed = false;
  private drained: (() => void) | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  /** The pending waitForRecords' resolve. */
  private beat: ((timedOut: boolean) => void) | undefined;

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
    /** FEED option raw: frames carry record runs instead of decoded records. */
    readonly raw = false,
  ) {
    this.cursor = new LogCursor(store.segmentLog, from);
  }

  /** The reply to FEED. */
  startReply(horizon: number): FeedStart {
    // The pump starts once this reply is queued (the command returns first).
    setImmediate(() => void this.pump().catch((err) => this.fail(err)));
    const reply: FeedStart = { from: this.cursor.next, end: this.store.nextOffset, horizon };
    if (this.raw) {
      reply.format = RECORD_RUN_FORMAT;
      reply.keys = this.store.size;
    }
    return reply;
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
      if (this.raw) {
        const run = this.cursor.readRaw(FEED_BATCH_BYTES);
        if (run.length === 0) {
          const timedOut = await this.waitForRecords();
          if (timedOut && !this.closed) this.sendRaw(run);
          continue;
        }
        this.sendRaw(run);
        await new Promise((resolve) => setImmediate(resolve));
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

  private sendRaw(run: Buffer): void {
    // Of the bytes sent, all but the unsent ones are the kernel's (a lower bound: the unsent may include others').
    if (!this.sink.holdsFrames) this.frames.reclaim(this.frames.sent - this.sink.unsentBytes);
    this.sink.send(encodeRawBatch(this.id, run, this.cursor.next, this.store.nextOffset, this.frames));
  }

  /**
   * Resolves true after FEED_HEARTBEAT_MS without new records, false when
   * records (or the end) came. One timer for the feed's life, re-armed per
   * wait (a caught-up feed waits once per tick of writes).
   */
  private waitForRecords(): Promise<boolean> {
    return new Promise((resolve) => {
      this.beat = resolve;
      if (this.heartbeat === undefined) {
        this.heartbeat = setTimeout(() => {
          const b = this.beat;
          this.beat = undefined;
          b?.(true);
        }, FEED_HEARTBEAT_MS);
      } else this.heartbeat.refresh();
      void this.cursor.waitForRecords().then(() => {
        if (this.beat !== resolve) return; // the heartbeat came first
        this.beat = undefined;
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

/**
 * The frame `[id, {"next": next, "end": end, "raw": bin}]` of a raw feed,
 * encoded by hand so the run is copied once, straight into the frame (as
 * msgpackr would encode it: minimal integer and bin headers); into a buffer
 * of `pool` when given (in flight until the pool's reclaim).
 */
export function encodeRawBatch(id: number, run: Buffer, next: number, end: number, pool?: FramePool): Buffer {
  const n = run.length;
  const binHeader = n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
  const head = 1 + uintBytes(id) + 1 + 5 + uintBytes(next) + 4 + uintBytes(end) + 4 + binHeader;
  const size = FRAME_HEADER_BYTES + head + n;
  const frame = pool === undefined ? Buffer.allocUnsafe(size) : pool.take(size);
  frame.writeUInt32BE(head + n, 0);
  let at = FRAME_HEADER_BYTES;
  frame[at++] = 0x92; // array of 2
  at = putUint(frame, at, id);
  frame[at++] = 0x83; // map of 3
  at += frame.write('\xa4next', at, 'latin1');
  at = putUint(frame, at, next);
  at += frame.write('\xa3end', at, 'latin1');
  at = putUint(frame, at, end);
  at += frame.write('\xa3raw', at, 'latin1');
  if (binHeader === 2) {
    frame[at++] = 0xc4;
    frame[at++] = n;
  } else if (binHeader === 3) {
    frame[at++] = 0xc5;
    frame.writeUInt16BE(n, at);
    at += 2;
  } else {
    frame[at++] = 0xc6;
    frame.writeUInt32BE(n, at);
    at += 4;
  }
  run.copy(frame, at);
  return frame;
}

/** Bytes of a MessagePack unsigned integer (n: a safe integer ≥ 0). */
function uintBytes(n: number): number {
  return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9;
}

function putUint(buf: Buffer, at: number, n: number): number {
  if (n < 0x80) buf[at++] = n;
  else if (n < 0x100) {
    buf[at++] = 0xcc;
    buf[at++] = n;
  } else if (n < 0x10000) {
    buf[at++] = 0xcd;
    buf.writeUInt16BE(n, at);
    at += 2;
  } else if (n < 0x100000000) {
    buf[at++] = 0xce;
    buf.writeUInt32BE(n, at);
    at += 4;
  } else {
    buf[at++] = 0xcf;
    buf.writeUInt32BE(Math.floor(n / 0x100000000), at);
    buf.writeUInt32BE(n >>> 0, at + 4);
    at += 8;
  }
  return at;
}
