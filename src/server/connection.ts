/**
 * One client connection: reads frames, dispatches requests through the
 * command table, writes replies.
 *
 * Invariants:
 * - Replies go out in request order. A synchronous result (reads) is queued
 *   at once unless an earlier request still awaits its promise (writes
 *   waiting for their ack); then it waits in `slots` behind it.
 * - Replies are encoded straight into the shared FrameWriter: the synchronous
 *   replies of one received chunk (and the acks drained together) are taken
 *   from it as one view before control leaves the connection. Replies of one
 *   tick leave in one socket write (the server's flush runs once per tick,
 *   setImmediate), large values without a copy.
 * - Backpressure: while unsent reply bytes exceed REPLY_HIGH_WATER_BYTES or
 *   more than MAX_INFLIGHT_REQUESTS requests await their reply, the socket
 *   is paused and already-received frames wait undecoded; both resume on
 *   'drain' / as replies complete. Memory per connection is thus bounded by
 *   the limits plus one frame, whatever the client sends.
 * - A violation that makes the byte stream unreadable (bad length, a body
 *   that is not one MessagePack value, no valid id) is answered with a fatal
 *   frame `[null, null, {code, message}]` and the connection is closed; every
 *   other error is a reply and the connection stays usable.
 *
 * Everything runs on the event loop; a connection touches only its own
 * socket and the shared store.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ClusterGate } from '../cluster/node.js';
import { MAX_KEY_BYTES } from '../engine/limits.js';
import type { Store } from '../engine/store.js';
import { type ErrorCode, KvError } from '../errors.js';
import { FrameError, FrameReader, unpackr } from '../protocol/frame.js';
import { FrameWriter } from '../protocol/frame-writer.js';
import { getRequest, peekGet } from '../protocol/get-request.js';
import {
  MAX_AUTH_FAILURES,
  MAX_INFLIGHT_REQUESTS,
  MAX_REQUEST_ID,
  PREAUTH_MAX_FRAME_BYTES,
  REPLY_HIGH_WATER_BYTES,
} from '../protocol/limits.js';
import {
  type FeedStart,
  type InfoSection,
  KEY_SPECS,
  requestKeys,
  WRITE_COMMANDS,
} from '../protocol/messages.js';
import { checkRequest, type RequestProblem } from '../protocol/request-check.js';
import type { StreamHandler, StreamSink } from '../replication/feed.js';
import type { Replication } from '../replication/replication.js';
import { COMMAND_TABLE, type Session } from './commands.js';
import type { ServerMetrics } from './metrics.js';

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
  /** Arrange for `flush()` to run once at the end of this tick. */
  scheduleFlush(conn: ServedConnection): void;
  /** The connection closed. */
  forget(conn: ServedConnection): void;
}

/** What the server needs of a connection of either protocol (native here, RESP in src/resp/connection.ts). */
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

/**
 * A reply not yet sendable: its promise is pending, or an earlier one is.
 * Holds encoded `frames`, or the outcome of its promise (`settled`), which is
 * encoded only when it reaches the head of the queue.
 */
interface Slot {
  frames: Buffer[] | undefined;
  settled: boolean;
  failed: boolean;
  id: number;
  value: unknown;
}

/** Up to this many queued bytes are copied into one buffer for one write; more go out corked as they are. */
const COPY_TO_ONE_WRITE_BYTES = 256 * 1024;

/** After the server ends a connection, the peer has this long to read the last replies and close. */
const FATAL_LINGER_MS = 2000;

let nextConnectionId = 1;

/** A connection id, unique among both protocols' connections (CLIENT ID, CLIENT LIST). */
export function newConnectionId(): number {
  return nextConnectionId++;
}

export class Connection implements Session, StreamSink, ServedConnection {
  readonly id = newConnectionId();
  readonly remote: string;
  authenticated: boolean;
  /** Unsent reply frames and their size. */
  private out: Buffer[] = [];
  private outBytes = 0;
  /** Replies waiting for an earlier one; slots[slotHead] is the oldest. */
  private slots: Slot[] = [];
  private slotHead = 0;
  private inflight = 0;
  private readonly reader: FrameReader;
  private paused = false;
  /** No more requests are read: QUIT, shutdown or a fatal error. */
  private ending = false;
  private closed = false;
  private authFailures = 0;
  /** When the frame now partly buffered started arriving (Date.now()), 0 if none is partial. */
  private partialSince = 0;
  /** Frames decoded so far on this connection. */
  private framesRead = 0;
  /** writeReply() encoded replies into the shared writer that takeWritten() has not queued yet. */
  private written = false;
  /** The log's next offset after this connection's last write (WAIT). */
  lastWriteOffset = 0;
  /** Set once FEED succeeded: every later frame goes to it instead of the command table. */
  private stream: StreamHandler | undefined;

  /** @param first the bytes already read from the socket (by the server's protocol detection), if any */
  constructor(
    readonly socket: Socket,
    private readonly host: ConnectionHost,
    first?: Buffer,
  ) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.authenticated = host.password === undefined;
    this.reader = new FrameReader(this.authenticated ? host.maxFrameBytes : PREAUTH_MAX_FRAME_BYTES);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      this.maybeResume();
      this.stream?.onDrain();
    });
    socket.on('end', () => {
      // The peer will send nothing more: answer what it sent, then close our side.
      this.ending = true;
      this.stream?.onClose();
      this.endWhenFlushed();
    });
    socket.on('error', (err) => host.log.debug({ err, remote: this.remote }, 'connection error'));
    socket.on('close', () => this.onClose());
    if (first !== undefined) this.onData(first);
  }

  // ---- Session (what command handlers see) ----------------------------------

  get store(): Store {
    return this.host.store;
  }
  get version(): string {
    return this.host.version;
  }
  get password(): string | undefined {
    return this.host.password;
  }
  get maxFrameBytes(): number {
    return this.host.maxFrameBytes;
  }
  get maxReplyBytes(): number {
    return this.host.maxReplyBytes;
  }
  info(sections: readonly InfoSection[]): Record<string, unknown> {
    return this.host.info(sections);
  }
  authFailed(): void {
    // The reply to this AUTH is queued first; flush() then ends the connection.
    if (++this.authFailures >= MAX_AUTH_FAILURES) this.ending = true;
  }
  quitAfterReply(): void {
    this.ending = true;
  }
  get replication(): Replication {
    return this.host.replication;
  }
  get cluster(): ClusterGate | undefined {
    return this.host.cluster;
  }
  openFeed(id: number, from: number, replicaPort?: number): FeedStart {
    const { stream, reply } = this.host.replication.openFeed(this, id, from, replicaPort);
    this.stream = stream;
    return reply;
  }

  // ---- StreamSink (what a feed sees) ------------------------------------------

  send(frame: Buffer): void {
    if (this.closed || this.ending) return;
    this.enqueue([frame]);
  }
  get unsentBytes(): number {
    return this.outBytes + this.socket.writableLength;
  }

  // ---- reading ------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.ending) return;
    this.host.metrics.bytesIn += chunk.length;
    this.reader.push(chunk);
    const before = this.framesRead;
    this.process();
    // The slow-client clock runs only while a frame is incomplete and nothing
    // completes: one comparison per chunk, the deadline is checked by the
    // server's periodic sweep (checkFrameDeadline).
    if (this.reader.buffered === 0) this.partialSince = 0;
    else if (this.partialSince === 0 || this.framesRead !== before) this.partialSince = Date.now();
  }

  /** Slowloris bound: fatal TIMEOUT if a frame has been arriving for longer than the host's frameTimeoutMs. */
  checkFrameDeadline(now: number): void {
    if (this.partialSince === 0 || this.paused || this.closed || this.ending) return;
    const limit = this.host.frameTimeoutMs;
    if (now - this.partialSince > limit) {
      this.fatal('TIMEOUT', `a frame was not completed within ${limit / 1000} s (a slow or stalled client)`);
    }
  }

  /**
   * Decodes and runs frames until none is complete, or backpressure says
   * stop. Synchronous replies are encoded into the shared writer as they
   * come and taken once at the end, as one view for the whole batch.
   */
  private process(): void {
    try {
      this.processFrames();
    } finally {
      this.takeWritten();
    }
  }

  private processFrames(): void {
    while (!this.ending) {
      if (this.blocked()) {
        if (!this.paused) {
          this.paused = true;
          this.socket.pause();
        }
        return;
      }
      let body: Buffer | undefined;
      try {
        body = this.reader.next();
      } catch (err) {
        if (err instanceof FrameError) {
          if (err.reason === 'empty') this.fatal('PROTOCOL_ERROR', 'a frame must not be empty (length 0)');
          else if (!this.authenticated && err.length <= this.host.maxFrameBytes)
            this.fatal(
              'TOO_LARGE',
              `frame of ${err.length} bytes before AUTH; the limit before AUTH is ${PREAUTH_MAX_FRAME_BYTES} bytes`,
            );
          else
            this.fatal(
              'TOO_LARGE',
              `frame of ${err.length} bytes exceeds the limit of ${this.reader.maxFrameBytes} bytes (server option --max-frame-bytes)`,
            );
          return;
        }
        throw err;
      }
      if (body === undefined) return;
      this.framesRead++;
      try {
        this.handle(body);
      } catch (err) {
        // A bug, not bad input: keep the server up, drop this connection, say why in the log.
        this.host.log.error({ err, remote: this.remote }, 'request handling failed unexpectedly');
        this.fatal('INTERNAL', 'unexpected server error; see the server log');
        return;
      }
    }
  }

  private blocked(): boolean {
    // Replies encoded into the shared writer but not yet taken count too: without them a
    // single received chunk of GETs (~4000 frames) was answered whole before the limit was
    // seen (60 KiB values: ~240 MiB buffered per connection; test/reliability/backpressure-chunk).
    const pending = this.written ? writer.length : 0;
    return (
      this.outBytes + this.socket.writableLength + pending > REPLY_HIGH_WATER_BYTES ||
      this.inflight >= MAX_INFLIGHT_REQUESTS
    );
  }

  private maybeResume(): void {
    if (!this.paused || this.closed || this.blocked()) return;
    this.paused = false;
    this.process();
    if (!this.paused && !this.ending) this.socket.resume();
  }

  private handle(body: Buffer): void {
    if (this.stream !== undefined) {
      this.stream.onFrame(body);
      return;
    }
    // The commonest request, [id, "GET", key], read in place (get-request.ts):
    // no MessagePack decode, no key string unless the cache or an expiry needs it.
    // Untimed and outside cluster mode only (a cluster routes every key); anything
    // unusual takes the general path below.
    if (this.authenticated && !this.host.metrics.timing && this.host.cluster === undefined && peekGet(body)) {
      const { id, keyStart, keyLength } = getRequest;
      if (keyLength <= MAX_KEY_BYTES) {
        this.host.commandsProcessed++;
        this.host.metrics.commands[GET_INDEX]!++;
        let result: Buffer | null;
        try {
          result = this.host.store.getSyncBytes(body, keyStart, keyLength) ?? null;
        } catch (err) {
          this.replyError(id, err);
          return;
        }
        if (this.slotHead < this.slots.length) this.enqueue(this.encodeReply(id, result));
        else this.writeReply(id, result);
        return;
      }
    }
    // Extensions and strs that are not UTF-8 (request-check.ts) are refused before decoding.
    const refused = checkRequest(body);
    if (refused !== undefined && this.refuse(refused)) return;
    let req: unknown;
    try {
      req = unpackr.unpack(body);
    } catch {
      this.fatal('PROTOCOL_ERROR', 'the frame body is not exactly one valid MessagePack value');
      return;
    }
    if (!Array.isArray(req) || req.length < 2) {
      this.fatal('PROTOCOL_ERROR', 'a request must be a MessagePack array [id, command, ...args]');
      return;
    }
    const id = req[0];
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > MAX_REQUEST_ID) {
      this.fatal('PROTOCOL_ERROR', 'a request id must be an integer from 0 to 4294967295');
      return;
    }
    const name = req[1];
    if (typeof name !== 'string') {
      this.replyError(id, new KvError('PROTOCOL_ERROR', 'the command name must be a MessagePack str'));
      return;
    }
    const command = COMMAND_TABLE.get(name) ?? COMMAND_TABLE.get(name.toUpperCase());
    if (command === undefined) {
      const shown = name.length > 64 ? `${name.slice(0, 64)}…` : name;
      this.replyError(
        id,
        new KvError('UNKNOWN_COMMAND', `unknown command '${shown}'; see protocol/PROTOCOL.md`),
      );
      return;
    }
    if (!this.authenticated && !command.preAuth) {
      this.replyError(id, new KvError('NOAUTH', `${command.name} needs authentication; send AUTH first`));
      return;
    }
    const write = WRITE_COMMANDS.has(command.name);
    if (write) {
      const refused = this.host.replication.refuseWrite() ?? this.host.replication.refuseForReplicas();
      if (refused) {
        this.replyError(id, refused);
        return;
      }
    }
    const cluster = this.host.cluster;
    if (cluster !== undefined && (write || KEY_SPECS[command.name] !== undefined)) {
      const refused = cluster.check(requestKeys(command.name, req), write);
      if (refused) {
        this.replyError(id, refused);
        return;
      }
    }
    this.host.commandsProcessed++;
    const metrics = this.host.metrics;
    metrics.commands[command.index]!++;
    // Timed (one performance.now() pair; a write until its ack) only while the
    // slow log or the metrics endpoint is on.
    const started = metrics.timing ? performance.now() : -1;
    let result: unknown;
    try {
      result = command.run(this, req);
    } catch (err) {
      this.replyError(id, err);
      return;
    }
    if (write) {
      // WAIT waits for the replicas to hold everything below this; so does --min-replicas-ack.
      const replication = this.host.replication;
      this.lastWriteOffset = this.host.store.nextOffset;
      if (replication.minReplicasAck > 0 && result instanceof Promise) {
        result = replication.replicatedAck(result, this.lastWriteOffset);
      }
    }
    // Cluster fencing: a write is acknowledged only if this node still leads when its ack is due.
    if (write && cluster !== undefined && result instanceof Promise)
      result = result.then(cluster.acknowledge);
    if (result instanceof Promise) {
      // Replies written so far go before this one.
      this.takeWritten();
      const slot: Slot = { frames: undefined, settled: false, failed: false, id, value: undefined };
      this.slots.push(slot);
      this.inflight++;
      if (started < 0) {
        result.then(
          (value) => this.complete(slot, false, value),
          (err) => this.complete(slot, true, err),
        );
      } else {
        result.then(
          (value) => {
            metrics.observe(command.index, performance.now() - started, req, this.remote);
            this.complete(slot, false, value);
          },
          (err) => {
            metrics.observe(command.index, performance.now() - started, req, this.remote);
            this.complete(slot, true, err);
          },
        );
      }
    } else {
      if (started >= 0) metrics.observe(command.index, performance.now() - started, req, this.remote);
      if (this.slotHead < this.slots.length) this.enqueue(this.encodeReply(id, result));
      else this.writeReply(id, result);
      if (command.name === 'AUTH' && this.authenticated) this.reader.maxFrameBytes = this.host.maxFrameBytes;
    }
  }

  /**
   * Answers a request holding an extension value or a str that is not UTF-8
   * (PROTOCOL.md §3) without decoding it; false when the envelope itself is
   * unreadable (no valid id), which the decoder's checks then answer.
   */
  private refuse(p: RequestProblem): boolean {
    const id = p.id;
    if (p.element === 0) {
      this.fatal('PROTOCOL_ERROR', 'a request id must be an integer from 0 to 4294967295');
      return true;
    }
    if (id === undefined || id < 0 || id > MAX_REQUEST_ID) return false;
    if (p.element === 1 || p.name === undefined) {
      this.replyError(id, new KvError('PROTOCOL_ERROR', 'the command name must be a MessagePack str'));
      return true;
    }
    const command = COMMAND_TABLE.get(p.name) ?? COMMAND_TABLE.get(p.name.toUpperCase());
    const arg = p.element - 1;
    if (command === undefined) {
      this.replyError(id, new KvError('UNKNOWN_COMMAND', 'unknown command; see protocol/PROTOCOL.md'));
    } else if (!this.authenticated && !command.preAuth) {
      this.replyError(id, new KvError('NOAUTH', `${command.name} needs authentication; send AUTH first`));
    } else if (p.problem === 'extension') {
      this.replyError(
        id,
        new KvError(
          'WRONG_ARGS',
          `${command.name}: argument ${arg} holds a MessagePack extension (type ${p.extType}); the protocol has no extension types`,
        ),
      );
    } else {
      this.replyError(
        id,
        new KvError(
          'INVALID_ARGUMENT',
          `${command.name}: argument ${arg} holds a str that is not valid UTF-8; send such bytes as bin`,
        ),
      );
    }
    return true;
  }

  // ---- replying -----------------------------------------------------------

  /**
   * Encodes a success reply into the shared writer; takeWritten() queues it
   * (with the replies around it) before control leaves this connection.
   * Only when no earlier reply is pending, so order holds.
   */
  private writeReply(id: number, result: unknown): void {
    try {
      writer.reply(id, result, this.host.maxReplyBytes);
    } catch (err) {
      // A reply too large to frame was not written at all: its request gets TOO_LARGE instead.
      if (!(err instanceof KvError)) throw err;
      this.replyError(id, err);
      return;
    }
    this.written = true;
  }

  /** Queues what writeReply() encoded. Every path that wrote calls this before returning to the event loop. */
  private takeWritten(): void {
    if (!this.written) return;
    this.written = false;
    const frames = writer.take();
    if (frames.length > 0) this.push(frames);
  }

  /** The frames of a success reply `[id, result]`, or of its TOO_LARGE error when it cannot be framed. */
  private encodeReply(id: number, result: unknown): Buffer[] {
    try {
      writer.reply(id, result, this.host.maxReplyBytes);
    } catch (err) {
      if (!(err instanceof KvError)) throw err;
      return this.errorFrame(id, err);
    }
    return writer.take();
  }

  private enqueue(frames: Buffer[]): void {
    if (this.slotHead < this.slots.length) {
      this.slots.push({ frames, settled: true, failed: false, id: 0, value: undefined });
      return;
    }
    this.takeWritten();
    this.push(frames);
  }

  private push(frames: Buffer[]): void {
    const out = this.out;
    for (const f of frames) {
      const last = out[out.length - 1];
      if (last !== undefined && last.buffer === f.buffer && last.byteOffset + last.length === f.byteOffset) {
        // Consecutive views of the shared output buffer: widen instead of adding a piece.
        out[out.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + f.length);
      } else out.push(f);
      this.outBytes += f.length;
    }
    this.host.scheduleFlush(this);
  }

  private complete(slot: Slot, failed: boolean, value: unknown): void {
    this.inflight--;
    if (this.closed) return;
    slot.settled = true;
    slot.failed = failed;
    slot.value = value;
    const slots = this.slots;
    while (this.slotHead < slots.length) {
      const head = slots[this.slotHead]!;
      if (!head.settled) break;
      this.slotHead++;
      if (head.frames !== undefined) {
        this.takeWritten();
        this.push(head.frames);
      } else if (head.failed) {
        this.takeWritten();
        this.push(this.errorFrame(head.id, head.value));
      } else this.writeReply(head.id, head.value);
    }
    this.takeWritten();
    if (this.slotHead === slots.length) {
      this.slots = [];
      this.slotHead = 0;
    }
    if (this.paused) this.maybeResume();
  }

  private errorFrame(id: number | null, err: unknown): Buffer[] {
    let code: ErrorCode = 'INTERNAL';
    let message = 'unexpected server error; see the server log';
    if (err instanceof KvError) {
      code = err.code;
      message = err.message;
    } else {
      this.host.log.error({ err, remote: this.remote }, 'command failed unexpectedly');
    }
    return frameOf([id, null, { code, message }]);
  }

  private replyError(id: number, err: unknown): void {
    this.enqueue(this.errorFrame(id, err));
  }

  /** Writes everything queued, in one write when small. Called once per tick by the server. */
  flush(): void {
    if (this.closed || this.out.length === 0) return;
    const out = this.out;
    const bytes = this.outBytes;
    this.out = [];
    this.outBytes = 0;
    this.host.metrics.bytesOut += bytes;
    if (out.length === 1) this.socket.write(out[0]!);
    else if (bytes <= COPY_TO_ONE_WRITE_BYTES) this.socket.write(Buffer.concat(out, bytes));
    else {
      this.socket.cork();
      for (const b of out) this.socket.write(b);
      this.socket.uncork();
    }
    if (this.ending) this.endWhenFlushed();
    else if (this.paused) this.maybeResume();
  }

  /** Ends the socket once every reply owed has been written. */
  private endWhenFlushed(): void {
    if (this.closed) return;
    if (this.slotHead < this.slots.length || this.out.length > 0) return; // flush or complete() calls again
    this.socket.end();
    // A peer that never reads would hold the socket open forever.
    setTimeout(() => this.socket.destroy(), FATAL_LINGER_MS).unref();
  }

  /**
   * Reads nothing more, answers every request read before, then sends a
   * fatal error frame and closes the connection.
   */
  fatal(code: ErrorCode, message: string): void {
    if (this.closed) return;
    this.host.log.debug({ remote: this.remote, code, message }, 'closing connection on a protocol violation');
    this.ending = true;
    this.stream?.onClose();
    this.enqueue(frameOf([null, null, { code, message }]));
  }

  /** Graceful close for shutdown: read nothing more, finish what was dispatched, then end. */
  shutdown(): void {
    if (this.closed) return;
    this.ending = true;
    this.stream?.onClose();
    this.socket.pause();
    this.endWhenFlushed();
  }

  /** The server's idle clock passed --idle-timeout-ms (idle-clock.ts): close unless a request is still being served. */
  idle(ms: number): void {
    // A request in progress (awaiting its ack, or its reply queued) is never idle (PROTOCOL.md §5).
    if (this.inflight > 0 || this.out.length > 0 || this.closed || this.ending) return;
    this.fatal(
      'TIMEOUT',
      `connection idle for ${ms} ms: no bytes in either direction and no request in progress (server option --idle-timeout-ms)`,
    );
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private onClose(): void {
    this.closed = true;
    this.stream?.onClose();
    this.out = [];
    this.slots = [];
    this.host.forget(this);
  }
}

/** Counter index of GET (ServerMetrics.commands), for the GET path that skips the command table. */
const GET_INDEX = COMMAND_TABLE.get('GET')!.index;

/** Replies of every connection are encoded into one shared output buffer; each reply is a view of it. */
const writer = new FrameWriter();

/** The frame(s) of `value`: views of the shared writer's buffer (more than one only around a large value). */
function frameOf(value: unknown): Buffer[] {
  writer.frame(value);
  return writer.take();
}
