/**
 * One RESP client connection (redis-cli, ioredis, redis-py, ...): reads
 * requests (parser.ts), runs them through the command table (table.ts),
 * writes RESP2 or RESP3 replies (writer.ts). The server picks this class
 * over the native Connection when a connection's first byte is `*` or a
 * letter (server.ts).
 *
 * Invariants, the native connection's (server/connection.ts):
 * - Replies go out in request order; a synchronous reply is encoded at once
 *   unless an earlier one awaits its promise (a write awaiting its ack), then
 *   it waits in `slots`. Each reply is encoded in the protocol version that
 *   was current when its request ran (HELLO may switch it mid-pipeline).
 * - Replies are encoded into the shared RespWriter and leave in one socket
 *   write per tick (the server's flush), large values without a copy.
 * - Backpressure: past REPLY_HIGH_WATER_BYTES of unsent replies or
 *   MAX_INFLIGHT_REQUESTS awaited writes the socket is paused and requests
 *   already received wait unparsed.
 * - Before AUTH (on a server with a password) a request may hold at most
 *   RESP_PREAUTH_MAX_ARGS arguments and PREAUTH_MAX_FRAME_BYTES bytes; after
 *   it, each bulk and each request at most --max-frame-bytes. A protocol
 *   violation is answered `-ERR Protocol error: ...` after every reply owed,
 *   and the connection is closed, as Redis does.
 */
import type { Socket } from 'node:net';
import { KvError } from '../errors.js';
import {
  MAX_AUTH_FAILURES,
  MAX_INFLIGHT_REQUESTS,
  PREAUTH_MAX_FRAME_BYTES,
  REPLY_HIGH_WATER_BYTES,
  RESP_MAX_ARGS,
  RESP_PREAUTH_MAX_ARGS,
  SHUTDOWN_GRACE_MS,
} from '../protocol/limits.js';
import { COMMAND_NAMES } from '../protocol/messages.js';
import { type ConnectionHost, newConnectionId } from '../server/connection.js';
import type { RespClientInfo, RespServer, RespSession } from './command.js';
import { RespProtocolError, RespReader } from './parser.js';
import { type Reply, RespError } from './reply.js';
import { execute } from './table.js';
import { type Protocol, RespWriter } from './writer.js';

/** What a RESP connection needs from its server: the native host plus the RESP view of it. */
export type RespHost = ConnectionHost & RespServer;

interface Slot {
  frames: Buffer[] | undefined;
  settled: boolean;
  failed: boolean;
  value: unknown;
  proto: Protocol;
}

/** Up to this many queued bytes are copied into one buffer for one write. */
const COPY_TO_ONE_WRITE_BYTES = 256 * 1024;

/** After the server ends a connection, the peer has this long to read the last replies and close. */
const LINGER_MS = 2000;

/** RESP command name → index of the native command of the same name (ServerMetrics.commands). */
const NATIVE_INDEX: ReadonlyMap<string, number> = new Map(COMMAND_NAMES.map((n, i) => [n.toLowerCase(), i]));

/** Replies of every RESP connection are encoded into one shared output buffer. */
const writer = new RespWriter();

export class RespConnection implements RespSession {
  readonly id = newConnectionId();
  readonly remote: string;
  readonly local: string;
  authenticated: boolean;
  proto: Protocol = 2;
  clientName = '';
  lastCommand = 'NULL';
  lastWriteOffset = 0;
  private readonly createdAt = Date.now();
  private lastActive = Date.now();
  private out: Buffer[] = [];
  private outBytes = 0;
  private slots: Slot[] = [];
  private slotHead = 0;
  private inflight = 0;
  private readonly reader: RespReader;
  private paused = false;
  private ending = false;
  private closed = false;
  private authFailures = 0;
  private partialSince = 0;
  private requestsRead = 0;
  private written = false;

  constructor(
    readonly socket: Socket,
    private readonly host: RespHost,
    first: Buffer,
  ) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.local = `${socket.localAddress}:${socket.localPort}`;
    this.authenticated = host.password === undefined;
    this.reader = new RespReader(
      this.authenticated
        ? { maxArgs: RESP_MAX_ARGS, maxRequestBytes: host.maxFrameBytes, preAuth: false }
        : { maxArgs: RESP_PREAUTH_MAX_ARGS, maxRequestBytes: PREAUTH_MAX_FRAME_BYTES, preAuth: true },
    );
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.maybeResume());
    socket.on('end', () => {
      // The peer sent everything: answer it, then close. Redis closes at once on EOF; a
      // reply that never comes (WAIT 1 0, DEBUG SLEEP) must not hold the socket for ever.
      this.ending = true;
      this.endWhenFlushed();
      setTimeout(() => this.socket.destroy(), SHUTDOWN_GRACE_MS).unref();
    });
    socket.on('error', (err) => host.log.debug({ err, remote: this.remote }, 'connection error'));
    socket.on('close', () => this.onClose());
    this.onData(first);
  }

  // ---- RespSession ----------------------------------------------------------

  get server(): RespServer {
    return this.host;
  }
  get store() {
    return this.host.store;
  }
  authFailed(): void {
    if (++this.authFailures >= MAX_AUTH_FAILURES) this.ending = true;
  }
  quitAfterReply(): void {
    this.ending = true;
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

  private onData(chunk: Buffer): void {
    if (this.ending) return;
    this.host.metrics.bytesIn += chunk.length;
    this.reader.push(chunk);
    const before = this.requestsRead;
    this.process();
    if (!this.reader.partial) this.partialSince = 0;
    else if (this.partialSince === 0 || this.requestsRead !== before) this.partialSince = Date.now();
  }

  /** Slow-client bound, as the native connection's: a request arriving for longer than frameTimeoutMs closes the connection. */
  checkFrameDeadline(now: number): void {
    if (this.partialSince === 0 || this.paused || this.closed || this.ending) return;
    const limit = this.host.frameTimeoutMs;
    if (now - this.partialSince > limit) {
      this.fatal(
        `ERR timeout: a request was not completed within ${limit / 1000} s (a slow or stalled client)`,
      );
    }
  }

  private process(): void {
    try {
      this.processRequests();
    } finally {
      this.takeWritten();
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
      let argv: Buffer[] | undefined;
      try {
        argv = this.reader.next();
      } catch (e) {
        if (e instanceof RespProtocolError) {
          this.fatal(`ERR ${e.message}`);
          return;
        }
        throw e;
      }
      if (argv === undefined) return;
      this.requestsRead++;
      try {
        this.handle(argv);
      } catch (e) {
        this.host.log.error({ err: e, remote: this.remote }, 'RESP request handling failed unexpectedly');
        this.fatal('ERR unexpected server error; see the server log');
        return;
      }
    }
  }

  private blocked(): boolean {
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

  private handle(argv: Buffer[]): void {
    this.lastActive = Date.now();
    this.host.commandsProcessed++;
    const metrics = this.host.metrics;
    const started = metrics.timing ? performance.now() : -1;
    let result: Reply | Promise<Reply>;
    try {
      result = execute(this, argv);
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
      this.takeWritten();
      const slot: Slot = {
        frames: undefined,
        settled: false,
        failed: false,
        value: undefined,
        proto: this.proto,
      };
      this.slots.push(slot);
      this.inflight++;
      result.then(
        (value) => {
          observe?.();
          this.complete(slot, false, value);
        },
        (e) => {
          observe?.();
          this.complete(slot, true, e);
        },
      );
      return;
    }
    observe?.();
    if (this.slotHead < this.slots.length) {
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
      return e.code === 'BUSY' ? `BUSY ${e.message}` : `ERR ${e.message}`;
    }
    this.host.log.error({ err: e, remote: this.remote }, 'RESP command failed unexpectedly');
    return 'ERR unexpected server error; see the server log';
  }

  private replyError(e: unknown): void {
    writer.error(this.errorLine(e));
    if (this.slotHead < this.slots.length) this.enqueue(writer.take());
    else this.written = true;
  }

  private takeWritten(): void {
    if (!this.written) return;
    this.written = false;
    const frames = writer.take();
    if (frames.length > 0) this.push(frames);
  }

  private enqueue(frames: Buffer[]): void {
    if (this.slotHead < this.slots.length) {
      this.slots.push({ frames, settled: true, failed: false, value: undefined, proto: this.proto });
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
      } else {
        if (head.failed) writer.error(this.errorLine(head.value));
        else writer.reply(head.value as Reply, head.proto);
        this.written = true;
      }
    }
    this.takeWritten();
    if (this.slotHead === slots.length) {
      this.slots = [];
      this.slotHead = 0;
    }
    if (this.ending) this.endWhenFlushed();
    if (this.paused) this.maybeResume();
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

  private endWhenFlushed(): void {
    if (this.closed) return;
    if (this.slotHead < this.slots.length || this.out.length > 0) return;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), LINGER_MS).unref();
  }

  /** Reads nothing more, answers every request read before, then sends `line` as an error and closes. */
  fatal(line: string): void {
    if (this.closed) return;
    this.host.log.debug({ remote: this.remote, error: line }, 'closing RESP connection');
    this.ending = true;
    this.takeWritten();
    writer.error(line);
    this.enqueue(writer.take());
  }

  shutdown(): void {
    if (this.closed) return;
    this.ending = true;
    this.socket.pause();
    this.endWhenFlushed();
  }

  /** Idle timeout: closed without a word, as Redis closes an idle client. */
  idle(_ms: number): void {
    if (this.inflight > 0 || this.closed) return;
    this.ending = true;
    this.endWhenFlushed();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private onClose(): void {
    this.closed = true;
    this.out = [];
    this.slots = [];
    this.host.forget(this);
  }
}
