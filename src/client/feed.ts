/**
 * The client side of a change feed (FEED, protocol/PROTOCOL.md §6): a
 * dedicated connection (a feed takes its connection over), AUTH if needed,
 * FEED, then batches of records as the server sends them.
 *
 * Flow control: batches wait in a queue until the consumer takes them; while
 * more than FEED_CLIENT_BUFFERED_RECORDS records wait, the socket is paused,
 * so TCP pushes back on the server (which then stops reading its log for this
 * feed). Memory is bounded by that plus one frame.
 *
 * The SDK's `client.feed()` iterates records over it; a replica uses it
 * directly (batches and ACKs).
 */
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { FLAG_BATCH, FLAG_BATCH_END, FLAG_TOMBSTONE } from '../engine/record.js';
import { KvError } from '../errors.js';
import { encodeFrame, FrameError, FrameReader, unpackr } from '../protocol/frame.js';
import { FEED_CLIENT_BUFFERED_RECORDS } from '../protocol/limits.js';
import type { FeedBatch, FeedStart, WireFeedRecord } from '../protocol/messages.js';
import { wireError } from './command.js';

export interface FeedConnectOptions {
  host: string;
  port: number;
  password?: string | undefined;
  tls?: ConnectionOptions | undefined;
  connectTimeoutMs: number;
  maxReplyBytes: number;
}

const AUTH_ID = 0;
const FEED_ID = 1;
const ACK_ID = 2;

/** One open feed: `start` is the server's first reply; `batches()` yields the rest. */
export class FeedConnection {
  private readonly reader: FrameReader;
  private queue: FeedBatch[] = [];
  private queuedRecords = 0;
  private paused = false;
  private failure: Error | undefined;
  private ended = false;
  private wake: (() => void) | undefined;
  private opened: { resolve: (s: FeedStart) => void; reject: (e: Error) => void } | undefined;
  private closedByUs = false;

  private constructor(
    private readonly socket: Socket,
    private readonly options: FeedConnectOptions,
  ) {
    this.reader = new FrameReader(options.maxReplyBytes);
  }

  /** Connects and sends FEED from `from`; resolves with the server's first reply. */
  static open(
    options: FeedConnectOptions,
    from: number,
  ): Promise<{ feed: FeedConnection; start: FeedStart }> {
    const o = options;
    const socket = o.tls
      ? tlsConnect({
          host: o.host,
          port: o.port,
          ...(isIP(o.host) === 0 && { servername: o.host }),
          ...o.tls,
        })
      : netConnect({ host: o.host, port: o.port });
    socket.setNoDelay(true);
    const feed = new FeedConnection(socket, o);
    return new Promise((resolve, reject) => {
      feed.opened = { resolve: (start) => resolve({ feed, start }), reject };
      const timer = setTimeout(() => {
        socket.destroy(
          new KvError('TIMEOUT', `connecting to ${o.host}:${o.port} took over ${o.connectTimeoutMs} ms`),
        );
      }, o.connectTimeoutMs);
      socket.once(o.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        if (o.password !== undefined) socket.write(encodeFrame([AUTH_ID, 'AUTH', o.password]));
        socket.write(encodeFrame([FEED_ID, 'FEED', from]));
      });
      socket.on('data', (chunk: Buffer) => feed.onData(chunk));
      socket.on('error', (err) => feed.fail(err));
      socket.on('close', () => {
        clearTimeout(timer);
        feed.fail(new KvError('CONNECTION_CLOSED', `the feed connection to ${o.host}:${o.port} closed`));
      });
    });
  }

  private onData(chunk: Buffer): void {
    this.reader.push(chunk);
    for (;;) {
      let body: Buffer | undefined;
      try {
        body = this.reader.next();
      } catch (err) {
        const why = err instanceof FrameError ? `a frame of ${err.length} bytes` : String(err);
        this.fail(new KvError('PROTOCOL_ERROR', `the server sent ${why} (client option maxReplyBytes)`));
        this.socket.destroy();
        return;
      }
      if (body === undefined) return;
      let frame: unknown;
      try {
        frame = unpackr.unpack(body);
      } catch {
        this.fail(new KvError('PROTOCOL_ERROR', 'the server sent a frame that is not MessagePack'));
        this.socket.destroy();
        return;
      }
      if (!Array.isArray(frame)) continue;
      if (frame.length === 3) {
        // An error reply (AUTH or FEED refused) or a fatal frame: the feed is over.
        this.fail(wireError(frame[2]));
        this.socket.destroy();
        return;
      }
      const [id, result] = frame as [number, unknown];
      if (id === AUTH_ID && this.options.password !== undefined) continue;
      if (id !== FEED_ID || typeof result !== 'object' || result === null) continue;
      if (this.opened) {
        const o = this.opened;
        this.opened = undefined;
        o.resolve(result as FeedStart);
        continue;
      }
      const batch = result as FeedBatch;
      this.queue.push(batch);
      this.queuedRecords += batch.records.length;
      if (this.queuedRecords > FEED_CLIENT_BUFFERED_RECORDS && !this.paused) {
        this.paused = true;
        this.socket.pause();
      }
      this.notify();
    }
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
    if (this.opened) {
      this.opened.reject(err);
      this.opened = undefined;
    }
    this.notify();
  }

  /** The next batch; undefined once the feed is closed by `close()`. Rejects when the connection fails. */
  async next(): Promise<FeedBatch | undefined> {
    for (;;) {
      const batch = this.queue.shift();
      if (batch) {
        this.queuedRecords -= batch.records.length;
        if (this.paused && this.queuedRecords <= FEED_CLIENT_BUFFERED_RECORDS / 2) {
          this.paused = false;
          this.socket.resume();
        }
        return batch;
      }
      if (this.ended) {
        if (this.failure) throw this.failure;
        return undefined;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
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
