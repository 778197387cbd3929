/**
 * One client connection: reads frames, dispatches requests through the
 * command table, writes replies.
 *
 * Reading, the in-order reply queue, backpressure, the per-tick flush and
 * closing are served-connection.ts's (shared with RESP); here: the frame
 * stream, the command table, the native GET fast path, AUTH and FEED.
 *
 * Invariants (besides served-connection.ts's):
 * - Replies are encoded straight into the shared FrameWriter.
 * - A violation that makes the byte stream unreadable (bad length, a body
 *   that is not one MessagePack value, no valid id) is answered with a fatal
 *   frame `[null, null, {code, message}]` and the connection is closed; every
 *   other error is a reply and the connection stays usable.
 *
 * Everything runs on the event loop; a connection touches only its own
 * socket and the shared store.
 */
import type { Socket } from 'node:net';
import type { ClusterGate } from '../cluster/node.js';
import { hashBytes } from '../engine/keydir.js';
import { MAX_KEY_BYTES } from '../engine/limits.js';
import type { Store } from '../engine/store.js';
import type { TickAck } from '../engine/tick-ack.js';
import { type ErrorCode, KvError } from '../errors.js';
import { FrameError, FrameReader, unpackr } from '../protocol/frame.js';
import { FrameWriter } from '../protocol/frame-writer.js';
import { getRequest, peekGet, peekSet } from '../protocol/get-request.js';
import {
  FRAME_HEADER_BYTES,
  LOOKAHEAD_FRAMES,
  MAX_REQUEST_ID,
  PREAUTH_MAX_FRAME_BYTES,
} from '../protocol/limits.js';
import {
  type FeedStart,
  type InfoSection,
  KEY_SPECS,
  READ_COMMANDS,
  requestKeys,
  WRITE_COMMANDS,
} from '../protocol/messages.js';
import { checkRequest, type RequestProblem } from '../protocol/request-check.js';
import type { StreamHandler, StreamSink } from '../replication/feed.js';
import type { Replication } from '../replication/replication.js';
import { ackedPromise, isAckedWrite, repliesOnTickAck, withReplicas } from './acked-write.js';
import { COMMAND_TABLE, type Session } from './commands.js';
import { type ConnectionHost, ServedConnectionBase } from './served-connection.js';
import { isReadBuffer, partOf, readViewOf } from './socket-reads.js';

export class Connection extends ServedConnectionBase<FrameReader> implements Session, StreamSink {
  protected readonly reader: FrameReader;
  /** Set once FEED succeeded: every later frame goes to it instead of the command table. */
  private stream: StreamHandler | undefined;

  /** @param first the bytes already read from the socket (by the server's protocol detection), if any */
  constructor(socket: Socket, host: ConnectionHost, first?: Buffer) {
    super(socket, host, writer);
    this.reader = new FrameReader(this.authenticated ? host.maxFrameBytes : PREAUTH_MAX_FRAME_BYTES);
    // Chunks may be views of the shared read buffer: runGet/runSet and the commands of
    // KEEPS_NOTHING read them in place (the store copies keys and values into its log and
    // caches); any other command gets its bin values copied after the decode (ownViews).
    this.listen(first, true);
  }

  protected override onDrain(): void {
    super.onDrain();
    this.stream?.onDrain();
  }

  protected override ended(): void {
    this.stream?.onClose();
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
  get replication(): Replication {
    return this.host.replication;
  }
  get cluster(): ClusterGate | undefined {
    return this.host.cluster;
  }
  openFeed(id: number, from: number, replicaPort?: number, raw = false): FeedStart {
    const { stream, reply } = this.host.replication.openFeed(this, id, from, replicaPort, raw);
    this.stream = stream;
    return reply;
  }

  // ---- StreamSink (what a feed sees) ------------------------------------------

  send(frame: Buffer): void {
    if (this.isClosed || this.ending) return;
    this.enqueue([frame]);
  }
  get unsentBytes(): number {
    return this.outBytes + this.socketQueued;
  }
  /** A reply is awaited: what is sent now waits behind it, outside `outBytes` (frame-pool.ts). */
  get holdsFrames(): boolean {
    return this.awaiting;
  }

  // ---- reading ------------------------------------------------------------

  protected requestTimedOut(limitMs: number): void {
    this.fatal('TIMEOUT', `a frame was not completed within ${limitMs / 1000} s (a slow or stalled client)`);
  }

  /** The reader, positioned on the next complete frame (FrameReader.nextFrame: no view made yet), or undefined. */
  protected nextRequest(): FrameReader | undefined {
    try {
      return this.reader.nextFrame() ? this.reader : undefined;
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
        return undefined;
      }
      throw err;
    }
  }

  protected unexpected(err: unknown): void {
    // A bug, not bad input: keep the server up, drop this connection, say why in the log.
    this.host.log.error({ err, remote: this.remote }, 'request handling failed unexpectedly');
    this.fatal('INTERNAL', 'unexpected server error; see the server log');
  }

  /**
   * Before a received batch runs: the keys of its GETs and SETs (the
   * requests `handle` reads in place, up to LOOKAHEAD_FRAMES) are hashed and
   * their keydir buckets and slot records read in two rounds
   * (Keydir.warmRecords), so the lookups that follow find them in the CPU
   * cache. A hint only: nothing is run or consumed here.
   */
  protected lookAhead(): void {
    ahead.owner = undefined;
    if (this.stream !== undefined || !this.authenticated || this.host.metrics.timing) return;
    const n = this.reader.bodiesAhead(aheadSpans, LOOKAHEAD_FRAMES);
    if (n < 2) return;
    const bytes = this.reader.aheadBytes;
    const view = readViewOf(bytes);
    let k = 0;
    for (let j = 0; j < n; j++) {
      const start = aheadSpans[2 * j]!;
      const end = aheadSpans[2 * j + 1]!;
      let kind = peekGet(bytes, start, end, view)
        ? AHEAD_GET
        : peekSet(bytes, start, end, view)
          ? AHEAD_SET
          : AHEAD_OTHER;
      if (kind !== AHEAD_OTHER && getRequest.keyLength > MAX_KEY_BYTES) kind = AHEAD_OTHER;
      aheadKinds[j] = kind;
      if (kind === AHEAD_OTHER) continue;
      const h = hashBytes(bytes, getRequest.keyStart, getRequest.keyLength);
      aheadHashes[k++] = h;
      aheadKeyHashes[j] = h;
      aheadIds[j] = getRequest.id;
      aheadFields[4 * j] = getRequest.keyStart;
      aheadFields[4 * j + 1] = getRequest.keyLength;
      aheadFields[4 * j + 2] = getRequest.valueStart;
      aheadFields[4 * j + 3] = getRequest.valueLength;
    }
    ahead.owner = this;
    ahead.bytes = bytes;
    ahead.count = n;
    ahead.next = 0;
    if (k > 1) this.host.store.keydir.warmRecords(aheadHashes, k);
  }

  /**
   * What lookAhead found of the frame bytes[start, end), if it is the next
   * one it parsed for this connection: AHEAD_GET or AHEAD_SET (getRequest
   * filled in as peekGet/peekSet would, `aheadHash` its key's hash) or
   * AHEAD_OTHER; undefined when lookAhead did not parse it (the caller
   * peeks itself). Frames are read in the order lookAhead saw them; any
   * other frame (a merge moved the bytes) ends the reuse.
   */
  private aheadKind(bytes: Buffer, start: number, end: number): number | undefined {
    const j = ahead.next;
    if (ahead.owner !== this || j >= ahead.count) return undefined;
    if (ahead.bytes !== bytes || aheadSpans[2 * j] !== start || aheadSpans[2 * j + 1] !== end) {
      ahead.owner = undefined;
      return undefined;
    }
    ahead.next = j + 1;
    const kind = aheadKinds[j]!;
    if (kind !== AHEAD_OTHER) {
      getRequest.id = aheadIds[j]!;
      getRequest.keyStart = aheadFields[4 * j]!;
      getRequest.keyLength = aheadFields[4 * j + 1]!;
      getRequest.valueStart = aheadFields[4 * j + 2]!;
      getRequest.valueLength = aheadFields[4 * j + 3]!;
      ahead.hash = aheadKeyHashes[j]!;
    }
    return kind;
  }

  protected handle(frame: FrameReader): void {
    const bytes = frame.frameBytes;
    const start = frame.frameStart;
    const end = frame.frameEnd;
    if (this.stream !== undefined) {
      this.stream.onFrame(ownBytes(bytes, start, end));
      return;
    }
    // The commonest requests, [id, "GET", key] and [id, "SET", key, bin], read in
    // place (get-request.ts): no MessagePack decode, no key string unless the
    // cache or an expiry needs it. Untimed only (the slow log and metrics time the
    // general path), a GET outside a full resync (reads get LOADING) only; in a
    // cluster the key's slot is checked as the general path does. Anything
    // unusual takes the general path below.
    if (this.authenticated && !this.host.metrics.timing) {
      // The frame's bytes read by words where they are the read buffer's (socket-reads.ts readViewOf).
      const view = readViewOf(bytes);
      // A batch's frames were parsed by lookAhead already: its findings are used, not parsed again.
      const kind = this.aheadKind(bytes, start, end);
      if (kind !== undefined) {
        if (kind === AHEAD_GET && !this.host.replication.resync.pending) {
          this.runGet(bytes, view);
          return;
        }
        if (kind === AHEAD_SET) {
          this.runSet(bytes, view, ahead.hash);
          return;
        }
      } else if (!this.host.replication.resync.pending && peekGet(bytes, start, end, view)) {
        if (getRequest.keyLength <= MAX_KEY_BYTES) {
          this.runGet(bytes, view);
          return;
        }
      } else if (peekSet(bytes, start, end, view) && getRequest.keyLength <= MAX_KEY_BYTES) {
        this.runSet(bytes, view);
        return;
      }
    }
    this.runCommand(bytes, start, end);
  }

  /**
   * Runs the request in bytes[start, end) through the general path: decoded,
   * then looked up in the command table. Kept apart from `handle`: its timing
   * closures capture locals, so V8 gives the function holding them a context
   * object on every call, which the GET and SET fast paths would pay too.
   */
  private runCommand(bytes: Buffer, start: number, end: number): void {
    // Decoded from the frame in place; a command that may keep part of it past its run
    // (KEEPS_NOTHING says which do not) gets its bin values copied, below (ownViews).
    const body = bytes.subarray(start, end);
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
    } else if (this.host.replication.resync.pending && READ_COMMANDS.has(command.name)) {
      // A replica in a full resync (rare): the set lookup is skipped on every other request.
      const refused = this.host.replication.refuseRead();
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
    const args = KEEPS_NOTHING.has(command.name) || !isReadBuffer(bytes) ? req : ownViews(req);
    this.host.commandsProcessed++;
    const metrics = this.host.metrics;
    metrics.commands[command.index]!++;
    // Timed (one performance.now() pair; a write until its ack) only while the
    // slow log or the metrics endpoint is on.
    const started = metrics.timing ? performance.now() : -1;
    let result: unknown;
    try {
      result = command.run(this, args);
    } catch (err) {
      this.replyError(id, err);
      return;
    }
    if (write) {
      this.replyToWrite(
        id,
        result,
        started < 0
          ? undefined
          : () => metrics.observe(command.index, performance.now() - started, args, this.remote),
      );
      return;
    }
    if (result instanceof Promise) {
      this.awaitReply(
        result,
        id,
        started < 0
          ? undefined
          : () => metrics.observe(command.index, performance.now() - started, args, this.remote),
      );
    } else {
      if (started >= 0) metrics.observe(command.index, performance.now() - started, args, this.remote);
      if (this.awaiting) this.enqueue(this.encodeReply(id, result));
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

  /**
   * Runs `[id, "SET", key, value]` as peekSet found it: what the general
   * path does for a SET without options (replica and min-replicas refusals,
   * the cluster's slot check, counters, replyToWrite), with the key handed
   * to the store as its place in the frame and the value as a Uint8Array
   * view of it (the store copies both into its log). `view`: a DataView
   * over body's bytes at body's indices, when it is the read buffer (the
   * key is then copied by words).
   */
  private runSet(body: Buffer, view: DataView | undefined, keyHash?: number): void {
    const { id, keyStart, keyLength, valueStart, valueLength } = getRequest;
    const replication = this.host.replication;
    const refused = replication.refuseWrite() ?? replication.refuseForReplicas();
    if (refused) {
      this.replyError(id, refused);
      return;
    }
    const cluster = this.host.cluster;
    if (cluster !== undefined) {
      const moved = cluster.check([body.subarray(keyStart, keyStart + keyLength)], true);
      if (moved) {
        this.replyError(id, moved);
        return;
      }
    }
    this.host.commandsProcessed++;
    this.host.metrics.commands[SET_INDEX]!++;
    const store = this.host.store;
    let ack: TickAck;
    try {
      // The value as a plain Uint8Array view (kept per place when body is the read being delivered):
      // lighter than a Buffer (subarray), and the store only copies it.
      const value = partOf(body, valueStart, valueLength);
      ack = store.setForAckAt(body, keyStart, keyLength, value, keyHash, view);
    } catch (err) {
      this.replyError(id, err);
      return;
    }
    this.replyToWrite(id, ack, undefined);
  }

  /**
   * Replies to a write command once it is acknowledged: `result` is what its
   * handler returned (a TickAck or AckedReply, acked-write.ts; a promise, or
   * a value). Notes the log's end for WAIT. Where repliesOnTickAck allows,
   * the reply waits on the store's tick ack itself; otherwise on a promise,
   * through --min-replicas-ack (the replicas' acks) and cluster fencing (a
   * write is acknowledged only if this node still leads when its ack is due).
   */
  private replyToWrite(id: number, result: unknown, observe: (() => void) | undefined): void {
    // WAIT waits for the replicas to hold everything below this; so does --min-replicas-ack.
    this.lastWriteOffset = this.host.store.nextOffset;
    if (isAckedWrite(result)) {
      if (repliesOnTickAck(this.host)) {
        this.replyOnAck(withReplicas(this.host.replication, result, this.lastWriteOffset), id);
        return;
      }
      result = ackedPromise(result, true);
    }
    if (result instanceof Promise) {
      const replication = this.host.replication;
      if (replication.minReplicasAck > 0) result = replication.replicatedAck(result, this.lastWriteOffset);
      const cluster = this.host.cluster;
      if (cluster !== undefined) result = (result as Promise<unknown>).then(cluster.acknowledge);
      this.awaitReply(result as Promise<unknown>, id, observe);
      return;
    }
    observe?.();
    if (this.awaiting) this.enqueue(this.encodeReply(id, result));
    else this.writeReply(id, result);
  }

  /** Answered early: nil, a bool or a number (a SET's `true`), one frame that always fits; not a Buffer or string (TOO_LARGE). */
  protected answersEarly(value: unknown): boolean {
    return value === null || typeof value === 'boolean' || typeof value === 'number';
  }

  protected failedReply(id: number, error: unknown): Buffer[] {
    return this.errorFrame(id, error);
  }

  protected replyEnd(output: Buffer, start: number): number {
    return start + FRAME_HEADER_BYTES + output.readUInt32BE(start);
  }

  /** Runs `[id, "GET", key]` as peekGet found it: the cluster's slot check, the counters, the reply. */
  private runGet(body: Buffer, view: DataView | undefined): void {
    const { id, keyStart, keyLength } = getRequest;
    const cluster = this.host.cluster;
    if (cluster !== undefined) {
      const moved = cluster.check([body.subarray(keyStart, keyStart + keyLength)], false);
      if (moved) {
        this.replyError(id, moved);
        return;
      }
    }
    this.host.commandsProcessed++;
    this.host.metrics.commands[GET_INDEX]!++;
    this.replyGet(id, body, keyStart, keyLength, view);
  }

  /**
   * Answers `[id, "GET", key]` (key in body[keyStart, keyStart + keyLength)):
   * the value is copied from where the store holds it (the small-value
   * cache's arena, a read) straight into the reply, with no Buffer between.
   * `view`: as for runSet (the key is then looked up by words).
   */
  private replyGet(
    id: number,
    body: Buffer,
    keyStart: number,
    keyLength: number,
    view: DataView | undefined,
  ): void {
    const store = this.host.store;
    let found: boolean;
    try {
      found = store.viewSyncBytes(body, keyStart, keyLength, view);
    } catch (err) {
      this.replyError(id, err);
      return;
    }
    if (!found) {
      this.writeReply(id, null);
      return;
    }
    const v = store.valueView;
    try {
      writer.replyBin(id, v.bytes, v.start, v.length, this.host.maxReplyBytes);
    } catch (err) {
      if (!(err instanceof KvError)) throw err;
      this.replyError(id, err);
      return;
    }
    this.written = true; // behind any reply still awaited (takeWrittenBehind)
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

  protected settledReply(id: number, failed: boolean, value: unknown): void {
    if (failed) {
      this.takeWritten();
      this.push(this.errorFrame(id, value));
    } else this.writeReply(id, value);
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

  /**
   * Reads nothing more, answers every request read before, then sends a
   * fatal error frame and closes the connection.
   */
  fatal(code: ErrorCode, message: string): void {
    if (this.isClosed) return;
    this.host.log.debug({ remote: this.remote, code, message }, 'closing connection on a protocol violation');
    this.ending = true;
    this.ended();
    this.enqueue(frameOf([null, null, { code, message }]));
  }

  /** The server's idle clock passed --idle-timeout-ms (idle-clock.ts): close unless a request is still being served. */
  override idle(ms: number): void {
    // A request in progress (awaiting its ack, or its reply queued) is never idle (PROTOCOL.md §5).
    if (this.inflight > 0 || this.hasUnsent || this.isClosed || this.ending) return;
    this.fatal(
      'TIMEOUT',
      `connection idle for ${ms} ms: no bytes in either direction and no request in progress (server option --idle-timeout-ms)`,
    );
  }
}

/**
 * Commands that keep nothing of their request past their run (the store copies
 * keys and values into its log and caches before it returns): decoded in
 * place even when the frame is a view of the shared read buffer, so a bulk
 * load (MSET) copies nothing per request. Every other command gets its bin
 * values copied after the decode (ownViews): a promise, a feed or a later step
 * may keep them.
 */
const KEEPS_NOTHING: ReadonlySet<string> = new Set(['GET', 'SET', 'MGET', 'MSET', 'DEL', 'EXISTS']);

/** Counter index of GET (ServerMetrics.commands), for the GET path that skips the command table. */
const GET_INDEX = COMMAND_TABLE.get('GET')!.index;
/** Counter index of SET, for the SET path that skips the command table. */
const SET_INDEX = COMMAND_TABLE.get('SET')!.index;

/** Replies of every connection are encoded into one shared output buffer; each reply is a view of it. */
const writer = new FrameWriter();

/**
 * End of a server tick (server.ts flushAll), after every connection wrote
 * what it took: the shared writer lets go of the value source it kept for
 * GET replies (FrameWriter.sourceView), so a small-value cache arena dropped
 * meanwhile is not kept alive by it, and writes the next tick's replies from
 * the start of its buffer again if they were all copied out (rewind).
 */
export function endReplyTick(): void {
  writer.forgetSource();
  writer.rewind();
}

/** @internal Buffers the shared native writer has made (tests). */
export function nativeReplyBuffersMade(): number {
  return writer.buffersMade;
}
/** lookAhead's scratch: the bodies' [start, end) and their keys' hashes. */
const aheadSpans = new Int32Array(2 * LOOKAHEAD_FRAMES);
const aheadHashes = new Int32Array(LOOKAHEAD_FRAMES);

/** What lookAhead found of body j (aheadKinds[j]): a GET or a SET handle runs in place, or anything else. */
const AHEAD_OTHER = 0;
const AHEAD_GET = 1;
const AHEAD_SET = 2;
/**
 * lookAhead's parse of body j, kept for handle (aheadKind) so a batch is
 * parsed once: its kind, and for a GET or SET the request id, key hash and
 * getRequest's key and value places (aheadFields[4j..4j+3]).
 */
const aheadKinds = new Uint8Array(LOOKAHEAD_FRAMES);
const aheadIds = new Uint32Array(LOOKAHEAD_FRAMES);
const aheadKeyHashes = new Int32Array(LOOKAHEAD_FRAMES);
const aheadFields = new Int32Array(4 * LOOKAHEAD_FRAMES);
/**
 * Whose batch the arrays above describe (the scratch is shared by all
 * connections), in which buffer, how many bodies, the next one handle
 * reads, and the key hash of the last one aheadKind gave.
 */
const ahead: {
  owner: Connection | undefined;
  bytes: Buffer | undefined;
  count: number;
  next: number;
  hash: number;
} = { owner: undefined, bytes: undefined, count: 0, next: 0, hash: 0 };

/**
 * `value` with every bin in it (at any depth of arrays and maps) that is a view
 * of the shared read buffer replaced by a copy, so that it outlives the read
 * callback. Arrays and maps are changed in place: they are the decoder's own.
 */
function ownViews<T>(value: T): T {
  if (value instanceof Uint8Array) return (isReadBuffer(value) ? Buffer.from(value) : value) as T;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = ownViews(value[i]);
  } else if (value !== null && typeof value === 'object') {
    const map = value as Record<string, unknown>;
    for (const key of Object.keys(map)) map[key] = ownViews(map[key]);
  }
  return value;
}

/** bytes[start, end) as a Buffer that outlives the read callback: a copy if it is a view of the shared read buffer. */
function ownBytes(bytes: Buffer, start: number, end: number): Buffer {
  const view = bytes.subarray(start, end);
  return isReadBuffer(bytes) ? Buffer.from(view) : view;
}

/** The frame(s) of `value`: views of the shared writer's buffer (more than one only around a large value). */
function frameOf(value: unknown): Buffer[] {
  writer.frame(value);
  return writer.take();
}
