/**
 * One RESP client connection (redis-cli, ioredis, redis-py, ...): reads
 * requests (parser.ts), runs them through the command table (table.ts),
 * writes RESP2 or RESP3 replies (writer.ts). The server picks this class
 * over the native Connection when a connection's first byte is `*` or a
 * letter (server.ts).
 *
 * Reading, the in-order reply queue, backpressure, the per-tick flush and
 * closing are the native connection's (src/server/served-connection.ts).
 * Besides those:
 * - Each reply is encoded in the protocol version that was current when its
 *   request ran (HELLO may switch it mid-pipeline).
 * - Before AUTH (on a server with a password) a request may hold at most
 *   RESP_PREAUTH_MAX_ARGS arguments and PREAUTH_MAX_FRAME_BYTES bytes; after
 *   it, each bulk and each request at most --max-frame-bytes. A protocol
 *   violation is answered `-ERR Protocol error: ...` after every reply owed,
 *   and the connection is closed, as Redis does.
 */
import type { Socket } from 'node:net';
import { hashBytes } from '../engine/keydir.js';
import { MAX_KEY_BYTES } from '../engine/limits.js';
import { KvError } from '../errors.js';
import {
  LOOKAHEAD_FRAMES,
  PREAUTH_MAX_FRAME_BYTES,
  RESP_MAX_ARGS,
  RESP_PREAUTH_MAX_ARGS,
  SHUTDOWN_GRACE_MS,
} from '../protocol/limits.js';
import { COMMAND_NAMES } from '../protocol/messages.js';
import { type AckedWrite, isAckedWrite, repliesOnTickAck } from '../server/acked-write.js';
import { type ConnectionHost, ServedConnectionBase } from '../server/served-connection.js';
import type { RespClientInfo, RespServer, RespSession } from './command.js';
import { RespProtocolError, RespReader } from './parser.js';
import { OK, type Reply, RespError, Simple } from './reply.js';
import { execute } from './table.js';
import { type Protocol, RespWriter } from './writer.js';

/** What a RESP connection needs from its server: the native host plus the RESP view of it. */
export type RespHost = ConnectionHost & RespServer;

/** RESP command name → index of the native command of the same name (ServerMetrics.commands). */
const NATIVE_INDEX: ReadonlyMap<string, number> = new Map(COMMAND_NAMES.map((n, i) => [n.toLowerCase(), i]));

/** The last byte of a RESP line (an early reply is one line: replyEnd). */
const LINE_FEED = 0x0a;

/** Replies of every RESP connection are encoded into one shared output buffer. */
const writer = new RespWriter();

/** End of a server tick (server.ts flushAll): as the native endReplyTick, the shared writer's rewind. */
export function endRespReplyTick(): void {
  writer.rewind();
}

/** @internal Buffers the shared RESP writer has made (tests). */
export function respReplyBuffersMade(): number {
  return writer.buffersMade;
}
/** lookAhead's scratch: the keys' [start, length) and their hashes. */
const aheadSpans = new Int32Array(2 * LOOKAHEAD_FRAMES);
const aheadHashes = new Int32Array(LOOKAHEAD_FRAMES);

export class RespConnection extends ServedConnectionBase<Buffer[]> implements RespSession {
  readonly local: string;
  proto: Protocol = 2;
  clientName = '';
  lastCommand = 'NULL';
  private readonly createdAt = Date.now();
  private lastActive = Date.now();
  protected readonly reader: RespReader;
  /** A plain SET's reply once its tick is acknowledged (replyOnAck). */
  protected override readonly ackReply: unknown = OK;

  constructor(
    socket: Socket,
    private readonly respHost: RespHost,
    first: Buffer,
  ) {
    super(socket, respHost, writer);
    this.local = `${socket.localAddress}:${socket.localPort}`;
    this.reader = new RespReader(
      this.authenticated
        ? { maxArgs: RESP_MAX_ARGS, maxRequestBytes: respHost.maxFrameBytes, preAuth: false }
        : { maxArgs: RESP_PREAUTH_MAX_ARGS, maxRequestBytes: PREAUTH_MAX_FRAME_BYTES, preAuth: true },
    );
    this.listen(first);
  }

  /** The peer sent everything: answer it, then close. */
  protected override onEnd(): void {
    super.onEnd();
    // Redis closes at once on EOF; a reply that never comes (WAIT 1 0, DEBUG SLEEP) must
    // not hold the socket for ever.
    setTimeout(() => this.socket.destroy(), SHUTDOWN_GRACE_MS).unref();
  }

  // ---- RespSession ----------------------------------------------------------

  get server(): RespServer {
    return this.respHost;
  }
  get store() {
    return this.host.store;
  }
  onAuthenticated(): void {
    this.reader.limits = { maxArgs: RESP_MAX_ARGS, maxRequestBytes: this.host.maxFrameBytes, preAuth: false };
  }

  /** This connection as CLIENT LIST shows it. */
  info(now: number): RespClientInfo {
    return {
      id: this.id,
      addr: this.remote,
      laddr: this.local,
      name: this.clientName,
      ageSeconds: Math.floor((now - this.createdAt) / 1000),
      idleSeconds: Math.floor((now - this.lastActive) / 1000),
      cmd: this.lastCommand,
      resp: this.proto,
    };
  }

  // ---- reading --------------------------------------------------------------

  protected requestTimedOut(limitMs: number): void {
    this.fatal(
      `ERR timeout: a request was not completed within ${limitMs / 1000} s (a slow or stalled client)`,
    );
  }

  protected nextRequest(): Buffer[] | undefined {
    try {
      return this.reader.next();
    } catch (e) {
      if (e instanceof RespProtocolError) {
        this.fatal(`ERR ${e.message}`);
        return undefined;
      }
      throw e;
    }
  }

  /**
   * Before a received batch runs: the keys of its GETs (up to
   * LOOKAHEAD_FRAMES requests, RespReader.keysAhead) are hashed and their
   * keydir buckets and slot records read in two rounds (Keydir.warmRecords),
   * as the native connection does, so the lookups that follow find them in
   * the CPU cache. A hint only: nothing is run or consumed here.
   */
  protected override lookAhead(): void {
    if (!this.authenticated || this.host.metrics.timing) return;
    const n = this.reader.keysAhead(aheadSpans, LOOKAHEAD_FRAMES);
    if (n < 2) return;
    const bytes = this.reader.aheadBytes;
    let k = 0;
    for (let j = 0; j < n; j++) {
      const length = aheadSpans[2 * j + 1]!;
      if (length <= MAX_KEY_BYTES) aheadHashes[k++] = hashBytes(bytes, aheadSpans[2 * j]!, length);
    }
    if (k > 1) this.host.store.keydir.warmRecords(aheadHashes, k);
  }

  protected unexpected(e: unknown): void {
    this.host.log.error({ err: e, remote: this.remote }, 'RESP request handling failed unexpectedly');
    this.fatal('ERR unexpected server error; see the server log');
  }

  protected handle(argv: Buffer[]): void {
    this.lastActive = Date.now();
    this.host.commandsProcessed++;
    const metrics = this.host.metrics;
    const started = metrics.timing ? performance.now() : -1;
    let result: Reply | Promise<Reply> | AckedWrite;
    try {
      result = execute(this, argv, repliesOnTickAck(this.host));
    } catch (e) {
      this.replyError(e);
      return;
    }
    // Counted (and timed, with the slow log or metrics endpoint on) under the native
    // command of the same name, so INFO and Prometheus see both protocols' traffic.
    const index = NATIVE_INDEX.get(this.lastCommand);
    if (index !== undefined) metrics.commands[index]!++;
    const observe =
      started >= 0 && index !== undefined
        ? () => {
            const req = [0, COMMAND_NAMES[index], ...argv.slice(1)];
            metrics.observe(index, performance.now() - started, req, this.remote);
          }
        : undefined;
    if (result instanceof Promise) {
      this.awaitReply(result, this.proto, observe);
      return;
    }
    if (isAckedWrite(result)) {
      this.replyOnAck(result, this.proto); // at once, or once the tick is acknowledged
      return;
    }
    observe?.();
    if (this.awaiting) {
      writer.reply(result, this.proto);
      this.enqueue(writer.take());
    } else {
      writer.reply(result, this.proto);
      this.written = true;
    }
  }

  // ---- replying -------------------------------------------------------------

  private errorLine(e: unknown): string {
    if (e instanceof RespError) return e.message;
    if (e instanceof KvError) {
      if (e.code === 'INTERNAL') this.host.log.error({ err: e, remote: this.remote }, 'command failed');
      // NOT_ENOUGH_REPLICAS: a write under --min-replicas-ack whose tick's ack failed (table.ts withReplicas).
      return e.code === 'BUSY' || e.code === 'NOT_ENOUGH_REPLICAS'
        ? `${e.code} ${e.message}`
        : `ERR ${e.message}`;
    }
    this.host.log.error({ err: e, remote: this.remote }, 'RESP command failed unexpectedly');
    return 'ERR unexpected server error; see the server log';
  }

  private replyError(e: unknown): void {
    writer.error(this.errorLine(e));
    if (this.awaiting) this.enqueue(writer.take());
    else this.written = true;
  }

  protected settledReply(proto: number, failed: boolean, value: unknown): void {
    if (failed) writer.error(this.errorLine(value));
    else writer.reply(value as Reply, proto as Protocol);
    this.written = true;
  }

  protected failedReply(_proto: number, error: unknown): Buffer[] {
    writer.error(this.errorLine(error));
    return writer.take();
  }

  /** Answered early: one line (+OK, an integer, nil), whose end replyEnd finds by its line feed. */
  protected answersEarly(value: unknown): boolean {
    return value === null || typeof value === 'number' || value instanceof Simple;
  }

  protected replyEnd(output: Buffer, start: number): number {
    return output.indexOf(LINE_FEED, start) + 1;
  }

  /** Reads nothing more, answers every request read before, then sends `line` as an error and closes. */
  fatal(line: string): void {
    if (this.isClosed) return;
    this.host.log.debug({ remote: this.remote, error: line }, 'closing RESP connection');
    this.ending = true;
    this.takeWritten();
    writer.error(line);
    this.enqueue(writer.take());
  }

  /** Idle timeout: closed without a word, as Redis closes an idle client. */
  override idle(_ms: number): void {
    if (this.inflight > 0 || this.isClosed) return;
    this.ending = true;
    this.endWhenFlushed();
  }
}
