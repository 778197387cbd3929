/**
 * What both protocols' connections share (native: connection.ts; RESP:
 * src/resp/connection.ts): reading chunks into a request reader, the
 * in-order reply queue, backpressure, the once-per-tick flush, and closing.
 * A subclass says how a request is read and run and how a reply is encoded.
 *
 * Invariants:
 * - Replies go out in request order. A synchronous reply is encoded at once
 *   into the protocol's shared writer; if an earlier request still awaits
 *   its promise (a write waiting for its ack), the run of such replies is
 *   taken as one view and waits in `slots` behind it (takeWrittenBehind),
 *   and a settled promise's reply is encoded only when it reaches the head
 *   of the queue. A request awaiting the very promise of
 *   the slot queued last (the writes of one tick share the store's ack)
 *   joins that slot: one promise reaction answers the whole run, in order.
 * - A write with a plain reply and no slot ahead is answered early
 *   (answeredEarly): encoded at once, in order, while nothing of the output
 *   from the start of its batch leaves until its ack (the durability mode's
 *   promise: `always`, its fsync) settled; an ack of a later batch never
 *   holds an earlier batch's replies.
 * - The synchronous replies of one received chunk (and the acks drained
 *   together) are taken from the shared writer as one view before control
 *   leaves the connection (`takeWritten`). Replies of one tick leave in one
 *   socket write (the server's flush runs once per tick, setImmediate),
 *   large values without a copy.
 * - Backpressure: while unsent reply bytes exceed REPLY_HIGH_WATER_BYTES or
 *   MAX_INFLIGHT_REQUESTS requests await their reply, the socket is paused
 *   and requests already received wait unread; both resume on 'drain' / as
 *   replies complete. Memory per connection is thus bounded by the limits
 *   plus one request, whatever the client sends.
 * - Slow clients: a request that has been arriving (incomplete) for longer
 *   than the host's frameTimeoutMs is a fatal timeout (the server's sweep
 *   calls checkFrameDeadline).
 * - Closing: once nothing more is read (`ending`), the socket is ended when
 *   every reply owed has been written, and destroyed LINGER_MS later if the
 *   peer does not close.
 *
 * Everything runs on the event loop; a connection touches only its own
 * socket, the shared writer (between a write and its take, never across a
 * yield) and the shared store.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ClusterGate } from '../cluster/node.js';
import type { Store } from '../engine/store.js';
import { type AckListener, TickAck } from '../engine/tick-ack.js';
import { MAX_AUTH_FAILURES, MAX_INFLIGHT_REQUESTS, REPLY_HIGH_WATER_BYTES } from '../protocol/limits.js';
import type { InfoSection } from '../protocol/messages.js';
import type { Replication } from '../replication/replication.js';
import { AckedReply, type AckedWrite } from './acked-write.js';
import type { ServerMetrics } from './metrics.js';
import { isReadBuffer, memoryOf, setSink } from './socket-reads.js';
import { SocketWrites } from './socket-writes.js';

/** What a connection needs from its server. */
export interface ConnectionHost {
  readonly store: Store;
  readonly version: string;
  readonly password: string | undefined;
  readonly maxFrameBytes: number;
  /** Largest reply frame body; a larger reply is answered TOO_LARGE (MAX_REPLY_BYTES; tests lower it). */
  readonly maxReplyBytes: number;
  /** A started frame must be complete within this, ms. */
  readonly frameTimeoutMs: number;
  readonly log: Logger;
  /** Counts every request dispatched (INFO clients.commands). */
  commandsProcessed: number;
  /** Per-command counters, network bytes and request timing (INFO stats, metrics endpoint, slow log). */
  readonly metrics: ServerMetrics;
  info(sections: readonly InfoSection[]): Record<string, unknown>;
  /** Replication: role, feeds, READONLY. */
  readonly replication: Replication;
  /** Cluster mode's routing and leadership gate (src/cluster/node.ts); undefined outside a cluster. */
  readonly cluster: ClusterGate | undefined;
  /** Arrange for `flush()` to run at the end of this tick (called once until that flush). */
  scheduleFlush(conn: ServedConnection): void;
  /** The connection closed. */
  forget(conn: ServedConnection): void;
}

/** What the server needs of a connection of either protocol. */
export interface ServedConnection {
  readonly id: number;
  readonly remote: string;
  readonly socket: Socket;
  readonly isClosed: boolean;
  /** Writes the replies queued this tick. */
  flush(): void;
  /** Graceful close for shutdown. */
  shutdown(): void;
  /** No traffic for the idle timeout (idle-clock.ts); the connection may decline while it owes a reply. */
  idle(ms: number): void;
  /** Closes a connection whose request has been arriving for too long. */
  checkFrameDeadline(now: number): void;
}

/** A protocol's shared output writer: replies are encoded into it and taken as views (output-buffer.ts). */
export interface ReplyWriter {
  /** Bytes written and not yet taken. */
  readonly length: number;
  take(): Buffer[];
  /**
   * take() when what was written is one piece, with no array and no Buffer:
   * its length, the piece lying at takenMemory[takenStart, takenStart +
   * length); 0 when it is not one piece (take() then).
   */
  takeOneAt(): number;
  readonly takenMemory: ArrayBufferLike | undefined;
  readonly takenStart: number;
  /** `n` bytes of a place takeOneAt lent from `memory` were copied out (output-buffer.ts rewind). */
  giveBack(memory: ArrayBufferLike, n: number): void;
  /** A place takeOneAt lent from `memory` became a Buffer: that memory is not written again. */
  pin(memory: ArrayBufferLike): void;
}

/** A protocol's request reader over the received chunks (chunk-queue.ts). */
export interface RequestReader {
  push(chunk: Buffer): void;
  /** Copies the unread bytes held in views of `memory`, which is about to be reused (chunk-queue.ts). */
  keep(memory: ArrayBufferLike): void;
  /** Part of a request has arrived and the rest has not. */
  readonly partial: boolean;
  /** Bytes received and not yet returned in requests. */
  readonly buffered: number;
}

/**
 * A reply not yet sendable: its promise is pending, or an earlier one is.
 * Holds encoded `frames`, or the outcome of its promise (`settled`), which is
 * encoded only when it reaches the head of the queue.
 */
interface Slot {
  frames: Buffer[] | undefined;
  /**
   * The promise or store ack awaited (undefined for `frames`): later
   * requests awaiting the very same one join this slot.
   */
  promise: Promise<unknown> | TickAck | undefined;
  settled: boolean;
  failed: boolean;
  /** What encoding the outcome needs besides it: the request id (native) or the RESP version. */
  tag: number;
  /** The tags of the requests right behind this one that await the same promise (the writes of one tick share the store's ack). */
  more: number[] | undefined;
  /** The outcome once settled; for a write awaiting a TickAck, its reply from the start. */
  value: unknown;
  /** A write awaiting a TickAck: where its batch began in the output stream (flush holds the output from there; -1: batchAt). */
  held: number;
}

/**
 * Write replies encoded before their store ack settled (answerEarly): the
 * ack they await and where each reply starts in the connection's output
 * stream (counted from its first byte: `sent`, then `out`, then what it
 * wrote into the shared writer; the protocol's replyEnd finds its end), so
 * that if the ack fails each is replaced by its error before any byte of it
 * is sent. `held`: where the batch of requests that made the run began;
 * flush() sends nothing from there on until the ack settles. A settled run is
 * kept for the connection's next one (spareEarly): its arrays are filled by
 * index up to `count` and never shrunk, so a write answered early at
 * pipeline 1 allocates nothing here once they have grown.
 */
class EarlyReplies {
  /** The ack awaited; undefined while the run is spare. */
  ack: TickAck | undefined = undefined;
  /** Replies in the run: starts[0, count) and tags[0, count). */
  count = 0;
  /** Where in the output stream the output is held from while `ack` is pending. */
  held = 0;
  /** ack.listen was called for this run (flush found the ack pending: settleEarly); its settlement drops the run. */
  listening = false;
  readonly starts: number[] = [];
  readonly tags: number[] = [];

  add(start: number, tag: number): void {
    this.starts[this.count] = start;
    this.tags[this.count] = tag;
    this.count++;
  }
}

/** Up to this many queued bytes are copied into one buffer for one write; more go out corked as they are. */
const COPY_TO_ONE_WRITE_BYTES = 256 * 1024;

/** A drained slot queue (or unsent list) longer than this is dropped rather than kept for reuse. */
const SLOTS_KEPT = 64;
const OUT_KEPT = 64;

/** After the server ends a connection, the peer has this long to read the last replies and close. */
const LINGER_MS = 2000;

let nextConnectionId = 1;

/** A connection id, unique among both protocols' connections (CLIENT ID, CLIENT LIST). */
export function newConnectionId(): number {
  return nextConnectionId++;
}

export abstract class ServedConnectionBase<Request> implements ServedConnection, AckListener {
  readonly id = newConnectionId();
  readonly remote: string;
  authenticated: boolean;
  /** The log's next offset after this connection's last write (WAIT). */
  lastWriteOffset = 0;
  /**
   * Unsent reply buffers, out[0, outCount), and their size. The array is
   * kept across flushes (entries cleared as they are written): a fresh one
   * per flush was an allocation per reply at pipeline 1.
   */
  private out: (Buffer | undefined)[] = [];
  private outCount = 0;
  /** Bytes of unsent output: out's and the tail's. */
  protected outBytes = 0;
  /**
   * The last piece of the unsent output, after out[0, outCount), when it is
   * a place in the shared writer's memory (takeWritten's usual one piece):
   * kept as numbers, no Buffer made, and written by copy (SocketWrites
   * writeFrom) when it is all there is to send, as at pipeline 1. A view
   * made per reply was the largest allocation per request there. Anything
   * else done with the output first makes it a Buffer at out's end
   * (tailToOut). tailLength 0: no tail.
   */
  private tailMemory: ArrayBufferLike | undefined;
  private tailStart = 0;
  private tailLength = 0;
  /**
   * Replies waiting for an earlier one, slots[slotHead, slotTail), the
   * oldest first; the array is reused once drained, as `out` is.
   */
  private slots: (Slot | undefined)[] = [];
  private slotHead = 0;
  private slotTail = 0;
  /** A drained slot kept for the next write awaited (one object fewer per write at pipeline 1). */
  private spareSlot: Slot | undefined;
  /** Acks with replies already encoded (answerEarly) that have not settled, oldest first: flush() sends nothing from the oldest one's `held` on. */
  private early: (EarlyReplies | undefined)[] = [];
  /** Runs pending in early[0, earlyCount) (a count, not the length: an emptied array would drop its storage). */
  private earlyCount = 0;
  /** A settled run kept for the next one (no object and no arrays per ack at pipeline 1). */
  private spareEarly: EarlyReplies | undefined;
  /** Bytes of output this connection has handed to its socket: positions in the output stream (EarlyReplies) count from its start. */
  private sent = 0;
  /**
   * Where in the output stream the batch of requests being read began
   * (process): a write awaiting its ack made now holds the output from
   * there. -1 when the batch began behind a reply still awaited (a slot):
   * such a write then holds only from its own reply.
   */
  private batchAt = 0;
  /** requestsRead when the batch being read began (process): a write after the batch's first request is not a lone write. */
  private batchFirst = 0;
  /** Requests awaiting their promise or ack: in the slot queue, or answered early (answeredEarly) until their ack settles. */
  protected inflight = 0;
  private paused = false;
  /** No more requests are read: QUIT, end of input, shutdown or a fatal error. */
  protected ending = false;
  private closed = false;
  private authFailures = 0;
  /** When the request now partly buffered started arriving (Date.now()), 0 if none is partial. */
  private partialSince = 0;
  /** Requests read so far on this connection. */
  private requestsRead = 0;
  /** The server will call flush() this tick (scheduleFlush was called since the last flush). */
  private flushQueued = false;
  /** Replies were encoded into the shared writer that takeWritten() has not queued yet. */
  protected written = false;
  protected abstract readonly reader: RequestReader;
  /** The socket's writes: straight through its handle when it can (socket-writes.ts). */
  private readonly writes: SocketWrites;

  constructor(
    readonly socket: Socket,
    protected readonly host: ConnectionHost,
    /** The protocol's writer, shared by all its connections. */
    private readonly writer: ReplyWriter,
  ) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.authenticated = host.password === undefined;
    this.writes = new SocketWrites(socket, () => this.onDrain());
  }

  /** Reply bytes written to the socket and not yet handed to the kernel. */
  protected get socketQueued(): number {
    return this.writes.queued;
  }

  // ---- what a protocol provides ----------------------------------------------

  /** The next complete request, or undefined (none complete yet, or the stream was unreadable and fatal() ran). */
  protected abstract nextRequest(): Request | undefined;
  /** Before a batch of received requests is run: a protocol may warm what they will read (a hint only). */
  protected lookAhead(): void {}
  /** Runs one request; its reply is written, enqueued or awaited (awaitReply). */
  protected abstract handle(request: Request): void;
  /** Encodes the reply of a settled slot at the head of the queue (into the writer, setting `written`, or push()). */
  protected abstract settledReply(tag: number, failed: boolean, value: unknown): void;
  /** handle() threw: a bug, not bad input; log it and close the connection. */
  protected abstract unexpected(err: unknown): void;
  /** A request has been arriving for longer than `limitMs`: close with the protocol's timeout error. */
  protected abstract requestTimedOut(limitMs: number): void;
  /** Nothing more is read from this connection (the native protocol closes its change feed). */
  protected ended(): void {}

  /**
   * Installs the socket handlers and reads `first` (bytes protocol detection
   * already read). Subclass constructors end with it. `views`: chunks may be
   * views of the server's shared read buffer (socket-reads.ts), valid during
   * onData only: the unread bytes are copied before it returns, and the
   * protocol copies what else it keeps of a request (a body it decodes).
   */
  protected listen(first: Buffer | undefined, views = false): void {
    const socket = this.socket;
    socket.setNoDelay(true);
    setSink(socket, (chunk) => this.onData(chunk), views);
    socket.on('drain', () => this.onDrain());
    socket.on('end', () => this.onEnd());
    socket.on('error', (err) => this.host.log.debug({ err, remote: this.remote }, 'connection error'));
    socket.on('close', () => this.onClose());
    if (first !== undefined) this.onData(first);
  }

  protected onDrain(): void {
    this.maybeResume();
  }

  /** The peer will send nothing more: answer what it sent, then close our side. */
  protected onEnd(): void {
    this.ending = true;
    this.ended();
    this.endWhenFlushed();
  }

  // ---- session state both protocols share ------------------------------------

  authFailed(): void {
    // The reply to this AUTH is queued first; flush() then ends the connection.
    if (++this.authFailures >= MAX_AUTH_FAILURES) this.ending = true;
  }
  quitAfterReply(): void {
    this.ending = true;
  }

  // ---- reading -----------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.ending) return;
    this.host.metrics.bytesIn += chunk.length;
    this.reader.push(chunk);
    const before = this.requestsRead;
    try {
      this.process();
    } finally {
      // A view of the shared read buffer: the next read overwrites it. What is left unread
      // (a frame still arriving, requests held back by backpressure) is copied now.
      if (isReadBuffer(chunk)) this.reader.keep(memoryOf(chunk));
    }
    // The slow-client clock runs only while a request is incomplete and nothing
    // completes: one comparison per chunk, the deadline is checked by the
    // server's periodic sweep (checkFrameDeadline).
    if (!this.reader.partial) this.partialSince = 0;
    else if (this.partialSince === 0 || this.requestsRead !== before) this.partialSince = Date.now();
  }

  /** Slowloris bound: a request arriving for longer than the host's frameTimeoutMs closes the connection. */
  checkFrameDeadline(now: number): void {
    if (this.partialSince === 0 || this.paused || this.closed || this.ending) return;
    const limit = this.host.frameTimeoutMs;
    if (now - this.partialSince > limit) this.requestTimedOut(limit);
  }

  /**
   * Reads and runs requests until none is complete, or backpressure says
   * stop. Synchronous replies are encoded into the shared writer as they
   * come and taken once at the end, as one view for the whole batch.
   */
  private process(): void {
    // Unknown (-1) behind a reply still awaited: its bytes have no place in the output yet.
    this.batchAt = this.slotHead === this.slotTail ? this.sent + this.outputAt : -1;
    this.batchFirst = this.requestsRead;
    try {
      this.lookAhead();
      this.processRequests();
    } finally {
      this.takeWrittenBehind();
    }
  }

  private processRequests(): void {
    while (!this.ending) {
      if (this.blocked()) {
        if (!this.paused) {
          this.paused = true;
          this.socket.pause();
        }
        return;
      }
      const request = this.nextRequest();
      if (request === undefined) return;
      this.requestsRead++;
      try {
        this.handle(request);
      } catch (err) {
        this.unexpected(err);
        return;
      }
    }
  }

  private blocked(): boolean {
    // Replies encoded into the shared writer but not yet taken count too: without them a
    // single received chunk of GETs (~4000 frames) was answered whole before the limit was
    // seen (60 KiB values: ~240 MiB buffered per connection; test/reliability/backpressure-chunk).
    const pending = this.written ? this.writer.length : 0;
    return (
      this.outBytes + this.writes.queued + pending > REPLY_HIGH_WATER_BYTES ||
      this.inflight >= MAX_INFLIGHT_REQUESTS
    );
  }

  private maybeResume(): void {
    if (!this.paused || this.closed || this.blocked()) return;
    this.paused = false;
    this.process();
    if (!this.paused && !this.ending) this.socket.resume();
  }

  // ---- the reply queue ---------------------------------------------------------

  /** An earlier reply still awaits its promise or ack: a reply sent now waits behind it (takeWrittenBehind, enqueue). */
  protected get awaiting(): boolean {
    return this.slotHead < this.slotTail;
  }

  /**
   * Queues the reply to a request whose result is a promise, behind every
   * reply before it; `observe` (request timing) runs when it settles.
   */
  protected awaitReply(result: Promise<unknown>, tag: number, observe: (() => void) | undefined): void {
    if (observe === undefined && this.joinLast(result, tag, undefined)) return;
    const slot = this.awaitSlot(result, tag);
    result.then(
      (value) => {
        observe?.();
        this.complete(slot, false, value);
      },
      (err) => {
        observe?.();
        this.complete(slot, true, err);
      },
    );
  }

  /**
   * Queues the reply to a write (acked-write.ts) behind every reply before
   * it, waiting on the store's tick acknowledgement (tick-ack.ts) itself:
   * the store calls ackSettled when the tick's writes are acknowledged, with
   * no promise; the reply is then the write's value (a bare TickAck:
   * `ackReply`). The server's flush is asked for now, so that it runs after
   * the store's flush in this tick and sends the reply at once (server.ts
   * flushAll). Only where repliesOnTickAck allows it.
   */
  private awaitWrite(write: AckedWrite, tag: number): void {
    if (write instanceof AckedReply) this.awaitAck(write.ack, tag, write.value);
    else this.awaitAck(write, tag, this.ackReply);
  }

  private awaitAck(ack: TickAck, tag: number, value: unknown): void {
    this.askFlush();
    if (this.joinLast(ack, tag, value)) return;
    const slot = this.awaitSlot(ack, tag);
    slot.value = value;
    slot.held = this.batchAt;
    ack.listen(this, slot);
  }

  /**
   * Replies to a write that waits on its TickAck (repliesOnTickAck held):
   * encoded at once when it may be (answerEarly), else queued on the ack
   * (awaitWrite). `tag` as for awaitWrite.
   */
  protected replyOnAck(write: AckedWrite, tag: number): void {
    if (this.canAnswerEarly && this.answerEarly(write, tag)) return;
    this.awaitWrite(write, tag);
  }

  /**
   * Encodes a write's reply now, before its ack settles (canAnswerEarly
   * held; answeredEarly), as settledReply encodes a settled one: false,
   * leaving it to the slot queue, when the ack has settled already or the
   * protocol does not answer that reply early (answersEarly).
   */
  private answerEarly(write: AckedWrite, tag: number): boolean {
    let ack: TickAck;
    let value: unknown;
    if (write instanceof AckedReply) {
      ack = write.ack;
      value = write.value;
      if (!this.answersEarly(value)) return false;
    } else {
      ack = write;
      value = this.ackReply;
    }
    if (ack.settled) return false;
    const start = this.outputAt;
    this.settledReply(tag, false, value);
    this.answeredEarly(ack, tag, start);
    return true;
  }

  /**
   * Whether a write's reply `value` may be encoded before its ack settles:
   * a reply that always encodes (no TOO_LARGE) as one unit whose end
   * replyEnd finds, so that a failed ack can replace it by its error.
   */
  protected abstract answersEarly(value: unknown): boolean;

  /**
   * Whether a write's reply may be encoded at once, in request order, before
   * its ack settles (answerEarly): no earlier reply is awaited in the slot
   * queue. Nothing leaves before the ack settles all the same (flush holds
   * the output from the batch's start), so the reply is sent only once the
   * durability mode covers the write: `interval`/`never` in the server's
   * flush, after the store's end-of-tick write; `always` after its fsync.
   *
   * Under `always`, only when the write is not alone in its batch: more
   * of the batch was received behind it, or requests came before it. A
   * lone write (pipeline 1) waits in the slot queue, where its reply is
   * encoded when its fsync returned: the early path measured 1.24x the
   * server CPU per SET there (closed-loop harness, 10 pairs). A batch's
   * last write took the slot queue too until the pipeline's earlier
   * replies were answered early; its reply then came as a second piece of
   * output, which pinned the shared writer's buffer (tailToOut), so under
   * `mixed -P 16` nearly every 64 KiB reply buffer was dropped for a fresh
   * one (first-touch page faults) instead of being reused.
   */
  private get canAnswerEarly(): boolean {
    return (
      this.slotHead === this.slotTail &&
      (this.reader.buffered > 0 ||
        this.requestsRead - this.batchFirst > 1 ||
        this.host.store.options.fsync !== 'always')
    );
  }

  /** Where the next byte this connection writes lands in its unsent output (for answerEarly). */
  private get outputAt(): number {
    return this.outBytes + (this.written ? this.writer.length : 0);
  }

  /**
   * The reply to a write awaiting `ack` was just encoded into the shared
   * writer as one reply at unsent-output position `start` (canAnswerEarly
   * held), as if the write had been acknowledged: a mixed pipeline then
   * needs no slot, no listener and no second pass per write. It stays
   * correct because nothing of this connection's output from the start of
   * the batch that made it is sent while such an ack is pending (flush), and
   * a failed ack replaces each of its replies by the error (replaceEarly)
   * before that. At most one listener per ack and connection, added only if
   * a flush finds the ack pending (settleEarly).
   *
   * The hold starts at the batch, not at the first write, so a pipeline's
   * replies leave in one socket write once its ack came (as the slot queue
   * and Redis's `always` do), and ends there: a batch read later, with an
   * ack of its own, never holds the replies of an earlier one, however long
   * the client keeps streaming writes.
   */
  private answeredEarly(ack: TickAck, tag: number, start: number): void {
    let run = this.earlyCount > 0 ? this.early[this.earlyCount - 1] : undefined;
    if (run === undefined || run.ack !== ack) {
      run = this.spareEarly ?? new EarlyReplies();
      this.spareEarly = undefined;
      run.ack = ack;
      run.held = this.batchAt >= 0 ? this.batchAt : this.sent + start;
      run.listening = false;
      this.early[this.earlyCount++] = run;
    }
    run.add(this.sent + start, tag);
    // Counted until its ack settles (earlySettled): under --min-replicas-ack that waits for a
    // replica, and the writes a connection may have awaiting acks stay bounded (blocked).
    this.inflight++;
  }

  /**
   * Drops the early runs whose acks settled, as their settlement would
   * (earlySettled: a failed one's replies become errors), and listens to the
   * acks still pending. flush() calls it before it looks at what is held: a
   * run is listened to only once a flush finds its ack pending, not when it
   * is made. Under `interval` and `never` the server's flush comes after the
   * store's end-of-tick write (server.ts flushAll), so the ack has settled
   * by then and no listener is added or called: one listen(), one
   * ackSettled call and their bookkeeping less per connection and tick, at
   * pipeline 1 per SET. Under `always` the ack awaits its fsync: the
   * listener is added at the tick's flush, and its settlement asks for the
   * flush that sends the replies, as before. A listened run is left to its
   * listener (its settlement drops it), so nothing is settled twice.
   */
  private settleEarly(): void {
    let i = 0;
    while (i < this.earlyCount) {
      const run = this.early[i]!;
      const ack = run.ack!;
      if (!run.listening) {
        if (ack.settled) {
          this.earlySettled(run, ack.failed, ack.error); // takes run out of early[]
          if (this.closed) return;
          continue;
        }
        run.listening = true;
        ack.listen(this, run);
      }
      i++;
    }
  }

  /** The encoded error reply to request `tag` whose write failed with `error` (for replaceEarly). */
  protected abstract failedReply(tag: number, error: unknown): Buffer[];

  /** Where the reply encoded at `output[start]` ends (an early reply: one frame, or one RESP line). */
  protected abstract replyEnd(output: Buffer, start: number): number;

  /** An ack of early replies settled: on failure their replies become errors; what it held may leave now. */
  private earlySettled(run: EarlyReplies, failed: boolean, error: unknown): void {
    this.dropEarly(run);
    this.inflight -= run.count;
    if (this.closed) return;
    if (failed) this.replaceEarly(run, error);
    run.ack = undefined;
    run.count = 0;
    this.spareEarly = run;
    if (this.hasUnsent) this.askFlush();
  }

  /** Takes `run` out of the pending runs (the oldest, as acks settle in order), keeping the rest in order. */
  private dropEarly(run: EarlyReplies): void {
    const early = this.early;
    const n = this.earlyCount;
    let i = 0;
    while (i < n && early[i] !== run) i++;
    if (i === n) return;
    for (; i < n - 1; i++) early[i] = early[i + 1];
    early[n - 1] = undefined;
    this.earlyCount = n - 1;
  }

  /**
   * Replaces each reply of `run` in the unsent output by its error reply
   * (rare: a refused log write), shifting the positions of the early replies
   * of other pending acks. The settlement comes from the store's flush, when
   * every connection has taken what it wrote (as in complete), and nothing
   * from the run's `held` on was sent, so all of `run` lies in `out`.
   */
  private replaceEarly(run: EarlyReplies, error: unknown): void {
    this.tailToOut();
    const all = Buffer.concat(this.out.slice(0, this.outCount) as Buffer[], this.outBytes);
    const sent = this.sent;
    const pieces: Buffer[] = [];
    let at = 0;
    const deltas: number[] = [];
    for (let k = 0; k < run.count; k++) {
      const start = run.starts[k]! - sent;
      pieces.push(all.subarray(at, start));
      let n = 0;
      for (const f of this.failedReply(run.tags[k]!, error)) {
        pieces.push(f);
        n += f.length;
      }
      at = this.replyEnd(all, start);
      deltas.push(n - (at - start));
    }
    pieces.push(all.subarray(at));
    const shifted = (p: number): number => {
      let q = p;
      for (let k = 0; k < run.count; k++) if (run.starts[k]! < p) q += deltas[k]!;
      return q;
    };
    for (let i = 0; i < this.earlyCount; i++) {
      const other = this.early[i]!;
      for (let j = 0; j < other.count; j++) other.starts[j] = shifted(other.starts[j]!);
      other.held = shifted(other.held);
    }
    for (let j = this.slotHead; j < this.slotTail; j++) {
      const slot = this.slots[j]!;
      if (slot.promise instanceof TickAck && slot.held >= 0) slot.held = shifted(slot.held);
    }
    this.out = [];
    this.outCount = 0;
    this.outBytes = 0;
    for (const b of pieces) if (b.length > 0) this.pushOne(b);
  }

  /** A TickAck this connection listens to settled: `slot` is the one awaitAck queued, holding the reply (or an EarlyReplies run). */
  ackSettled(slot: unknown, failed: boolean, error: unknown): void {
    if (slot instanceof EarlyReplies) {
      this.earlySettled(slot, failed, error);
      return;
    }
    const s = slot as Slot;
    this.complete(s, failed, failed ? error : s.value);
  }

  /** The reply to a write acknowledged as a bare TickAck (native: true; RESP: +OK). */
  protected readonly ackReply: unknown = true;

  /**
   * Adds `tag` to the last slot if it awaits the very same promise or ack
   * (the writes of one tick share the store's ack) with the same reply
   * (`value`: an ack's, known in advance; undefined for a promise): one
   * settlement answers the whole run. Counts it in flight.
   */
  private joinLast(awaited: Promise<unknown> | TickAck, tag: number, value: unknown): boolean {
    // Replies written since go between: they end the run (the last slot then holds them).
    this.takeWrittenBehind();
    const last = this.slotTail > this.slotHead ? this.slots[this.slotTail - 1] : undefined;
    if (last === undefined || last.promise !== awaited || last.settled || last.value !== value) return false;
    this.inflight++;
    if (last.more === undefined) last.more = [tag];
    else last.more.push(tag);
    return true;
  }

  /** Queues a new slot awaiting `awaited`, after the replies written so far; counts it in flight. */
  private awaitSlot(awaited: Promise<unknown> | TickAck, tag: number): Slot {
    this.inflight++;
    // Replies written so far go before this one.
    this.takeWrittenBehind();
    let slot = this.spareSlot;
    if (slot === undefined) {
      slot = {
        frames: undefined,
        promise: awaited,
        settled: false,
        failed: false,
        tag,
        more: undefined,
        value: undefined,
        held: 0,
      };
    } else {
      // Drained (complete() reset it): no promise, ack or closure refers to it any more.
      this.spareSlot = undefined;
      slot.promise = awaited;
      slot.tag = tag;
    }
    this.slots[this.slotTail++] = slot;
    return slot;
  }

  /**
   * Sends what was encoded into the shared writer (the settled replies at the
   * head of the queue: complete() calls it). Reading calls takeWrittenBehind.
   */
  protected takeWritten(): void {
    if (!this.written) return;
    this.written = false;
    // One piece, the usual case: taken without an array, kept as a place in the writer's memory.
    const writer = this.writer;
    const n = writer.takeOneAt();
    if (n > 0) {
      this.pushAt(writer.takenMemory!, writer.takenStart, n);
      this.askFlush();
      return;
    }
    const frames = this.writer.take();
    if (frames.length > 0) this.push(frames);
  }

  /**
   * Queues what was encoded into the shared writer behind any reply still
   * awaited. A synchronous reply (a GET after a SET awaiting its ack) is
   * encoded into the writer as if nothing were awaited: the run of them is
   * taken here as one view, once, not one slot per reply. Every path that
   * wrote calls this (or takeWritten) before returning to the event loop.
   */
  protected takeWrittenBehind(): void {
    if (!this.written) return;
    if (this.slotHead === this.slotTail) {
      this.takeWritten();
      return;
    }
    this.written = false;
    const frames = this.writer.take();
    if (frames.length > 0) this.queueBehind(frames);
  }

  /** Queues encoded reply buffers, behind any reply still awaited. */
  protected enqueue(frames: Buffer[]): void {
    this.takeWrittenBehind();
    if (this.slotHead < this.slotTail) this.queueBehind(frames);
    else this.push(frames);
  }

  /** Adds sendable frames after the last awaited reply: to the last slot if it holds frames, else a new one. */
  private queueBehind(frames: Buffer[]): void {
    const last = this.slots[this.slotTail - 1]!;
    if (last.frames !== undefined) {
      for (const f of frames) last.frames.push(f);
      return;
    }
    this.slots[this.slotTail++] = {
      frames,
      promise: undefined,
      settled: true,
      failed: false,
      tag: 0,
      more: undefined,
      value: undefined,
      held: 0,
    };
  }

  /** Adds encoded buffers to the unsent output and asks for a flush this tick. */
  protected push(frames: Buffer[]): void {
    for (const f of frames) this.pushOne(f);
    this.askFlush();
  }

  /** Adds memory[start, start + length) to the unsent output as its tail (the caller asks for the flush). */
  private pushAt(memory: ArrayBufferLike, start: number, length: number): void {
    this.outBytes += length;
    if (this.tailLength > 0) {
      if (this.tailMemory === memory && this.tailStart + this.tailLength === start) {
        // Right after the tail in the shared writer: widened.
        this.tailLength += length;
        return;
      }
      this.tailToOut();
    }
    this.tailMemory = memory;
    this.tailStart = start;
    this.tailLength = length;
  }

  /** Makes the tail a Buffer at the end of out (before anything but the plain write of a tail alone). */
  private tailToOut(): void {
    if (this.tailLength === 0) return;
    this.writer.pin(this.tailMemory!);
    this.out[this.outCount++] = Buffer.from(this.tailMemory!, this.tailStart, this.tailLength);
    this.tailMemory = undefined;
    this.tailLength = 0;
  }

  /** Adds one encoded buffer to the unsent output (the caller asks for the flush). */
  private pushOne(f: Buffer): void {
    this.tailToOut();
    const out = this.out;
    const n = this.outCount;
    const last = n > 0 ? out[n - 1]! : undefined;
    if (last !== undefined && last.buffer === f.buffer && last.byteOffset + last.length === f.byteOffset) {
      // Consecutive views of the shared output buffer: widen instead of adding a piece.
      out[n - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + f.length);
    } else {
      out[n] = f;
      this.outCount = n + 1;
    }
    this.outBytes += f.length;
  }

  /** Replies queued and not yet written to the socket. */
  protected get hasUnsent(): boolean {
    return this.outCount > 0 || this.tailLength > 0;
  }

  /** Asks the server for a flush() of this connection this tick (once until it comes). */
  private askFlush(): void {
    if (!this.flushQueued) {
      this.flushQueued = true;
      this.host.scheduleFlush(this);
    }
  }

  private complete(slot: Slot, failed: boolean, value: unknown): void {
    this.inflight -= slot.more === undefined ? 1 : 1 + slot.more.length;
    if (this.closed) return;
    // Nothing is in the shared writer here: a settlement comes from a promise reaction,
    // or the store's end-of-tick flush, after every connection took what it wrote.
    slot.promise = undefined;
    slot.settled = true;
    slot.failed = failed;
    slot.value = value;
    const slots = this.slots;
    while (this.slotHead < this.slotTail) {
      const head = slots[this.slotHead]!;
      if (!head.settled) break;
      slots[this.slotHead++] = undefined;
      if (head.frames !== undefined) {
        this.takeWritten();
        this.push(head.frames);
      } else {
        this.settledReply(head.tag, head.failed, head.value);
        const more = head.more;
        if (more !== undefined) for (const tag of more) this.settledReply(tag, head.failed, head.value);
      }
      this.spare(head);
    }
    this.takeWritten();
    if (this.slotHead === this.slotTail) {
      this.slotHead = 0;
      this.slotTail = 0;
      // A queue that grew long (a deep pipeline awaiting acks) is not kept at that length.
      if (slots.length > SLOTS_KEPT) this.slots = [];
    }
    if (this.ending) this.endWhenFlushed();
    if (this.paused) this.maybeResume();
  }

  /** Keeps a drained slot, emptied, for the next awaitSlot. */
  private spare(slot: Slot): void {
    slot.frames = undefined;
    slot.promise = undefined;
    slot.settled = false;
    slot.failed = false;
    slot.more = undefined;
    slot.value = undefined;
    this.spareSlot = slot;
  }

  /**
   * Writes everything queued, in one write when small. Called once per tick
   * by the server. While the oldest reply owed awaits the store's tick ack
   * (`always`: its fsync), what is queued before it is held and leaves with
   * it, in one write: the ack's settlement pushes its replies and asks for a
   * flush (the store's afterSyncAck runs the server's at once), and the
   * client, which waits for the rest of its pipeline anyway, gets one write
   * instead of two (Redis also writes its `always` replies after the fsync).
   * Early replies hold the output the same way (answeredEarly). Either
   * holds only from the start of the batch that made it: what earlier
   * batches were answered leaves, however long the client keeps streaming
   * writes.
   */
  flush(): void {
    // Before flushQueued is cleared: a run settled there asks for no second flush of this pass.
    if (this.earlyCount > 0 && !this.closed) this.settleEarly();
    this.flushQueued = false;
    if (this.closed || !this.hasUnsent) return;
    const held = this.heldFrom();
    if (held >= 0) {
      const free = held - this.sent;
      if (free < this.outBytes) {
        if (free > 0) this.flushPart(free);
        return;
      }
    }
    const bytes = this.outBytes;
    if (this.outCount === 0) {
      // Only the tail (a place in the shared writer): written by copy, no Buffer made.
      const memory = this.tailMemory!;
      this.tailMemory = undefined;
      this.tailLength = 0;
      this.outBytes = 0;
      this.sent += bytes;
      this.host.metrics.bytesOut += bytes;
      // Copied out (the usual case): the shared writer may write that place again (its rewind).
      if (this.writes.writeFrom(memory, this.tailStart, bytes)) this.writer.giveBack(memory, bytes);
      this.afterFlush();
      return;
    }
    this.tailToOut();
    const out = this.out;
    const n = this.outCount;
    this.outCount = 0;
    this.outBytes = 0;
    this.sent += bytes;
    this.host.metrics.bytesOut += bytes;
    if (n === 1) {
      const b = out[0]!;
      out[0] = undefined;
      this.writes.write(b);
    } else {
      // The pieces leave `out` before any write: a write may end in a close that empties it.
      const pieces = out.slice(0, n) as Buffer[];
      out.fill(undefined, 0, n);
      if (out.length > OUT_KEPT) this.out = [];
      if (bytes <= COPY_TO_ONE_WRITE_BYTES) this.writes.write(Buffer.concat(pieces, bytes));
      else {
        this.socket.cork();
        for (const b of pieces) this.socket.write(b);
        this.socket.uncork();
      }
    }
    this.afterFlush();
  }

  /** All unsent output was handed to the socket: an ending connection may end, a paused one resume. */
  private afterFlush(): void {
    if (this.ending) this.endWhenFlushed();
    else if (this.paused) this.maybeResume();
  }

  /**
   * Writes the first `bytes` of the unsent output (less than all of it: the
   * rest is held for an ack), in one write; the pieces after it move to the
   * front of `out`, a piece cut in two keeps its tail there.
   */
  private flushPart(bytes: number): void {
    this.tailToOut();
    const out = this.out;
    const n = this.outCount;
    const pieces: Buffer[] = [];
    let taken = 0;
    let i = 0;
    while (taken < bytes) {
      const b = out[i]!;
      const want = bytes - taken;
      if (b.length <= want) {
        pieces.push(b);
        taken += b.length;
        i++;
      } else {
        pieces.push(b.subarray(0, want));
        out[i] = b.subarray(want);
        taken = bytes;
      }
    }
    out.copyWithin(0, i, n);
    out.fill(undefined, n - i, n);
    this.outCount = n - i;
    this.outBytes -= bytes;
    this.sent += bytes;
    this.host.metrics.bytesOut += bytes;
    if (pieces.length === 1) this.writes.write(pieces[0]!);
    else if (bytes <= COPY_TO_ONE_WRITE_BYTES) this.writes.write(Buffer.concat(pieces, bytes));
    else {
      this.socket.cork();
      for (const b of pieces) this.socket.write(b);
      this.socket.uncork();
    }
    if (this.paused) this.maybeResume();
  }

  /**
   * Where in the output stream the output is held from (-1: nowhere): the
   * batch start of the oldest write awaiting a TickAck, at the head of the
   * slot queue or answered early. It settles within a sync round, and a push
   * (or earlySettled) then asks for a flush.
   */
  private heldFrom(): number {
    let at = -1;
    if (this.slotHead < this.slotTail) {
      const head = this.slots[this.slotHead]!;
      // held < 0: its batch began behind an earlier write; what `out` holds comes before it.
      if (head.promise instanceof TickAck && head.held >= 0) at = head.held;
    }
    if (this.earlyCount > 0) {
      const e = this.early[0]!.held;
      if (at < 0 || e < at) at = e;
    }
    return at;
  }

  // ---- closing -----------------------------------------------------------------

  /** Ends the socket once every reply owed has been written. */
  protected endWhenFlushed(): void {
    if (this.closed) return;
    if (this.slotHead < this.slotTail || this.hasUnsent) return; // flush or complete() calls again
    this.socket.end();
    // A peer that never reads would hold the socket open forever.
    setTimeout(() => this.socket.destroy(), LINGER_MS).unref();
  }

  /** Graceful close for shutdown: read nothing more, finish what was dispatched, then end. */
  shutdown(): void {
    if (this.closed) return;
    this.ending = true;
    this.ended();
    this.socket.pause();
    this.endWhenFlushed();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private onClose(): void {
    this.closed = true;
    this.ended();
    this.out = [];
    this.outCount = 0;
    this.tailMemory = undefined;
    this.tailLength = 0;
    this.slots = [];
    this.slotHead = 0;
    this.slotTail = 0;
    this.early = [];
    this.earlyCount = 0;
    this.host.forget(this);
  }

  abstract idle(ms: number): void;
}
