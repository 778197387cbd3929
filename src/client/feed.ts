/**
 * The client side of a change feed (FEED, protocol/PROTOCOL.md §6): a
 * dedicated connection (a feed takes its connection over), AUTH if needed,
 * FEED, then batches of records as the server sends them.
 *
 * Flow control: batches wait in a queue until the consumer takes them; while
 * more than FEED_CLIENT_BUFFERED_RECORDS records (or, of a raw feed,
 * FEED_CLIENT_BUFFERED_BYTES of runs) wait, the socket is paused,
 * so TCP pushes back on the server (which then stops reading its log for this
 * feed). Memory is bounded by that plus one frame.
 *
 * The SDK's `client.feed()` iterates records over it; a replica uses it
 * directly (batches and ACKs).
 */
import type { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { FLAG_BATCH, FLAG_BATCH_END, FLAG_TOMBSTONE } from '../engine/record.js';
import { KvError } from '../errors.js';
import { encodeFrame, FrameError, FrameReader, unpackr } from '../protocol/frame.js';
import {
  FEED_CLIENT_BUFFERED_BYTES,
  FEED_CLIENT_BUFFERED_RECORDS,
  READ_BUFFER_BYTES,
} from '../protocol/limits.js';
import type { FeedBatch, FeedStart, RawFeedBatch, WireFeedRecord } from '../protocol/messages.js';
import { wireError } from './command.js';
import { dial } from './dial.js';
import { type Slab, SlabFrameReader } from './slab-frames.js';

export interface FeedConnectOptions {
  host: string;
  port: number;
  password?: string | undefined;
  tls?: ConnectionOptions | undefined;
  connectTimeoutMs: number;
  maxReplyBytes: number;
  /**
   * Assemble frames in reused slabs (slab-frames.ts) and read a plain TCP
   * socket into one reused buffer: a raw batch's bytes (`raw`) then stay
   * valid only until `recycle()` after the batch was taken. For a replica,
   * which copies every run into its log before recycling. Default false:
   * a batch's bytes are the caller's to keep.
   */
  recycleFrames?: boolean | undefined;
}

/** What a plain TCP feed socket reads into when frames are recycled; each read is copied out in its callback. */
let sharedReadBuffer: Buffer | undefined;

const AUTH_ID = 0;
const REQUEST_ID = 1;
const FEED_ID = 2;
const ACK_ID = 3;

/**
 * One connection for a feed: `connect`, optionally a few `request`s (one at a
 * time; a replica asks ROLE first), then `feed(from)`, whose first reply it
 * resolves with; `next()` then yields the batches.
 */
export class FeedConnection {
  private readonly reader: FrameReader | undefined;
  private readonly slabs: SlabFrameReader | undefined;
  private queue: (FeedBatch | RawFeedBatch)[] = [];
  /** With recycleFrames: the slab holding each queued batch, and those of the batches taken since the last recycle(). */
  private queueSlabs: (Slab | undefined)[] = [];
  private taken: (Slab | undefined)[] = [];
  private queuedRecords = 0;
  private queuedBytes = 0;
  private paused = false;
  private failure: Error | undefined;
  private ended = false;
  private wake: (() => void) | undefined;
  /** The reply awaited now (a request, or FEED's start reply), if any. */
  private awaiting: { id: number; resolve: (v: unknown) => void; reject: (e: Error) => void } | undefined;
  private streaming = false;
  private closedByUs = false;

  private constructor(
    private readonly socket: Socket,
    private readonly options: FeedConnectOptions,
  ) {
    if (options.recycleFrames === true)
      this.slabs = new SlabFrameReader(options.maxReplyBytes, (body) => this.onBody(body));
    else this.reader = new FrameReader(options.maxReplyBytes);
  }

  /** Connects (and sends AUTH when a password is set). */
  static connect(options: FeedConnectOptions): Promise<FeedConnection> {
    const o = options;
    return new Promise((resolve, reject) => {
      // A replica's plain TCP feed reads into one reused buffer (recycleFrames).
      const onread =
        o.recycleFrames === true
          ? {
              buffer: () => (sharedReadBuffer ??= Buffer.allocUnsafe(READ_BUFFER_BYTES)),
              callback: (nread: number, buf: Uint8Array) => {
                feed.onData(buf as Buffer, nread);
                return true;
              },
            }
          : undefined;
      const socket = dial(
        o,
        () => {
          if (o.password !== undefined) socket.write(encodeFrame([AUTH_ID, 'AUTH', o.password]));
          resolve(feed);
        },
        onread,
      );
      const feed = new FeedConnection(socket, o);
      socket.on('data', (chunk: Buffer) => feed.onData(chunk));
      socket.on('error', (err) => {
        feed.fail(err);
        reject(err);
      });
      socket.on('close', () => {
        const err = new KvError('CONNECTION_CLOSED', `the feed connection to ${o.host}:${o.port} closed`);
        feed.fail(err);
        reject(err);
      });
    });
  }

  /** Connects and opens a feed from `from`; resolves with the server's first reply. */
  static async open(
    options: FeedConnectOptions,
    from: number,
  ): Promise<{ feed: FeedConnection; start: FeedStart }> {
    const feed = await FeedConnection.connect(options);
    try {
      return { feed, start: await feed.feed(from) };
    } catch (err) {
      feed.close();
      throw err;
    }
  }

  /** One request/reply before the feed (e.g. ROLE). */
  request(command: string, ...args: unknown[]): Promise<unknown> {
    return this.call(REQUEST_ID, [REQUEST_ID, command, ...args]);
  }

  /** Sends FEED from `from` (with FEED's options map, if any); resolves with the start reply. From then on the connection is a feed. */
  async feed(from: number, options?: Record<string, unknown>): Promise<FeedStart> {
    const req = options ? [FEED_ID, 'FEED', from, options] : [FEED_ID, 'FEED', from];
    return (await this.call(FEED_ID, req, true)) as FeedStart;
  }

  /** Sends `req` and awaits its reply; with `thenStream`, the frames after that reply are the feed's batches. */
  private call(id: number, req: unknown[], thenStream = false): Promise<unknown> {
    if (this.ended) return Promise.reject(this.failure ?? new KvError('CLOSED', 'the feed was closed'));
    if (this.awaiting || this.streaming)
      return Promise.reject(new Error('one request at a time, before the feed'));
    return new Promise((resolve, reject) => {
      this.awaiting = { id, resolve, reject };
      // Set now: the first batch may arrive in the same chunk as the reply.
      this.streaming = thenStream;
      this.socket.write(encodeFrame(req));
    });
  }

  /** Bytes from the socket: chunk[0, length), which with recycleFrames is the shared read buffer (copied out here). */
  private onData(chunk: Buffer, length = chunk.length): void {
    if (this.ended) return;
    try {
      if (this.slabs !== undefined) this.slabs.push(chunk, 0, length);
      else {
        this.reader!.push(chunk);
        for (;;) {
          const body = this.reader!.next();
          if (body === undefined || this.ended) return;
          this.onBody(body);
        }
      }
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this.fail(
        new KvError(
          'PROTOCOL_ERROR',
          `the server sent a frame of ${err.length} bytes (client option maxReplyBytes)`,
        ),
      );
      this.socket.destroy();
    }
  }

  /** One frame's body (with recycleFrames, valid during this call unless its batch is queued, which holds it). */
  private onBody(body: Buffer): void {
    if (this.ended) return;
    let frame: unknown;
    try {
      frame = unpackr.unpack(body);
    } catch {
      this.fail(new KvError('PROTOCOL_ERROR', 'the server sent a frame that is not MessagePack'));
      this.socket.destroy();
      return;
    }
    if (!Array.isArray(frame)) return;
    const [id, result] = frame as [number | null, unknown];
    if (frame.length === 3) {
      const err = wireError(frame[2]);
      const a = this.awaiting;
      if (a && id === a.id) {
        // A refused request (ROLE, FEED): the connection stays usable.
        this.awaiting = undefined;
        this.streaming = false;
        a.reject(err);
        return;
      }
      // A refused AUTH, or a fatal frame: the connection is over.
      this.fail(err);
      this.socket.destroy();
      return;
    }
    if (id === AUTH_ID && this.options.password !== undefined) return;
    const a = this.awaiting;
    if (a && id === a.id) {
      this.awaiting = undefined;
      // With recycleFrames the body's bytes are reused after this call: a reply keeps no view of them.
      a.resolve(this.slabs !== undefined ? unpackr.unpack(Buffer.from(body))[1] : result);
      return;
    }
    if (!this.streaming || id !== FEED_ID || typeof result !== 'object' || result === null) return;
    const batch = result as FeedBatch | RawFeedBatch;
    this.queue.push(batch);
    if (this.slabs !== undefined) this.queueSlabs.push(this.slabs.hold());
    if ('raw' in batch) this.queuedBytes += batch.raw.length;
    else this.queuedRecords += batch.records.length;
    if (
      (this.queuedRecords > FEED_CLIENT_BUFFERED_RECORDS || this.queuedBytes > FEED_CLIENT_BUFFERED_BYTES) &&
      !this.paused
    ) {
      this.paused = true;
      this.socket.pause();
    }
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private fail(err: Error): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.closedByUs) this.failure = err;
    const a = this.awaiting;
    this.awaiting = undefined;
    a?.reject(err);
    this.notify();
  }

  /** The next batch; undefined once the feed is closed by `close()`. Rejects when the connection fails. */
  async next(): Promise<FeedBatch | RawFeedBatch | undefined> {
    for (;;) {
      const batch = this.nextQueued();
      if (batch) return batch;
      if (this.ended) {
        if (this.failure) throw this.failure;
        return undefined;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  /** The next batch if one has arrived already, else undefined (never waits; a replica applies all that came at once). */
  nextQueued(): FeedBatch | RawFeedBatch | undefined {
    const batch = this.queue.shift();
    if (batch === undefined) return undefined;
    if (this.slabs !== undefined) this.taken.push(this.queueSlabs.shift());
    if ('raw' in batch) this.queuedBytes -= batch.raw.length;
    else this.queuedRecords -= batch.records.length;
    if (
      this.paused &&
      this.queuedRecords <= FEED_CLIENT_BUFFERED_RECORDS / 2 &&
      this.queuedBytes <= FEED_CLIENT_BUFFERED_BYTES / 2
    ) {
      this.paused = false;
      this.socket.resume();
    }
    return batch;
  }

  /**
   * With recycleFrames: the batches taken so far are done with, their bytes
   * may be reused (call once every view of their `raw` is dropped or copied).
   */
  recycle(): void {
    const slabs = this.slabs;
    if (slabs === undefined) return;
    for (const slab of this.taken) slabs.release(slab);
    this.taken = [];
  }

  /** Tells the server every record below `offset` is applied (replicas). */
  ack(offset: number): void {
    if (!this.ended) this.socket.write(encodeFrame([ACK_ID, 'ACK', offset]));
  }

  /** Closes the connection; `next()` then returns undefined. */
  close(): void {
    this.closedByUs = true;
    this.fail(new KvError('CLOSED', 'the feed was closed'));
    this.socket.destroy();
  }
}

/** A record of the change feed, as `client.feed()` yields it. */
export interface FeedRecord<V> {
  /** The record's offset in the server's log (strictly increasing along a feed). */
  offset: number;
  /** The key, UTF-8 decoded; `keyBytes` holds its exact bytes. */
  key: string;
  keyBytes: Buffer;
  /** The value through the client's valueEncoding; undefined for a deletion. */
  value: V | undefined;
  tombstone: boolean;
  /** Expiry time, ms since the epoch; 0 = none. */
  expiresAt: number;
  /** Part of an atomic batch (MSET, multi-key DEL) of more than one record. */
  batch: boolean;
  /** The last record of its batch: apply a batch's records together, up to this one. */
  batchEnd: boolean;
}

export interface FeedOptions {
  /** Offset to start from. Default 0: the whole (compacted) log, i.e. a snapshot, then every change. */
  from?: number;
}

/** Decodes one wire record (see WireFeedRecord). */
export function feedRecord<V>(r: WireFeedRecord, decode: (b: Buffer) => V): FeedRecord<V> {
  const [offset, flags, expiresAt, key, value] = r;
  const keyBytes = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  return {
    offset,
    key: keyBytes.toString('utf8'),
    keyBytes,
    value: value === null ? undefined : decode(Buffer.from(value.buffer, value.byteOffset, value.byteLength)),
    tombstone: (flags & FLAG_TOMBSTONE) !== 0,
    expiresAt,
    batch: (flags & FLAG_BATCH) !== 0,
    batchEnd: (flags & FLAG_BATCH_END) !== 0,
  };
}
