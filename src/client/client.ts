/**
 * The client SDK: one connection to a kv-server, automatic pipelining,
 * request timeouts, reconnect with backoff and a bounded offline queue.
 *
 * Model (after ioredis): a Command owns its promise; written commands wait
 * in one FIFO (`sent`) that replies are matched against by id — the server
 * answers in request order, so a reply for anything but the head is a
 * protocol violation and drops the connection; connection status is one
 * union type changed only by `setStatus`.
 *
 * Connecting: once the socket is open the client sends HELLO and waits
 * (helloTimeoutMs) for a reply shaped like segkv's, which proves the peer is
 * a segkv server and tells its frame limit; then AUTH (and HELLO again for
 * the limit after AUTH). Only then is it `ready`. A peer that answers
 * something else (HTTP, RESP, a TLS record) or nothing fails the attempt
 * with CONNECTION_FAILED saying what it is and what to pass.
 *
 * Arguments are checked at run time (engine/arguments.ts): a plain
 * JavaScript caller's unknown option or wrong shape rejects with
 * INVALID_ARGUMENT; a request over the server's frame limit rejects with
 * TOO_LARGE before it is sent, leaving the connection and the other
 * commands of its tick alone.
 *
 * Invariants: commands issued in the same tick leave in one socket write
 * (flushed on process.nextTick); every command settles exactly once; when a
 * connection drops, the commands written on it reject with CONNECTION_CLOSED
 * (they may or may not have been applied, so they are never resent), while
 * commands not yet written wait in the offline queue (at most
 * `offlineQueueLimit`) and go out after the reconnect (and AUTH).
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import {
  checkKey,
  checkOptions,
  integer,
  invalid,
  keyList,
  keyOption,
  limitArity,
  msetKeysAndValues,
  noFlags,
  rejecting,
  type SetOptions,
  secondsToMs,
  setOptionsFrom,
  ttlWithinLimit,
} from '../engine/arguments.js';
import type { Key } from '../engine/keys.js';
import type { ScanOptions, ScanPage } from '../engine/store.js';
import { KvError } from '../errors.js';
import { FrameError, FrameReader, unpackr } from '../protocol/frame.js';
import { FrameWriter } from '../protocol/frame-writer.js';
import { HANDSHAKE_MAX_REPLY_BYTES, MAX_REQUEST_ID } from '../protocol/limits.js';
import type {
  CommandName,
  HelloReply,
  InfoSection,
  RoleReply,
  WireScanOptions,
  WireSetOptions,
} from '../protocol/messages.js';
import { Command, type QueuedCommand, wireError } from './command.js';
import { dial } from './dial.js';
import { type Codec, codecFor } from './encoding.js';
import { FeedConnection, type FeedOptions, type FeedRecord, feedRecord } from './feed.js';
import { encodedSize, sizeBound } from './frame-size.js';
import { connectFailure, notSegkv, silentPeer } from './handshake.js';
import { type ClientOptions, type ResolvedClientOptions, resolveClientOptions } from './options.js';

/** Options of the client's `scan` and `keys`: the engine's, plus `raw` (keys as Buffers). */
export interface ClientScanOptions extends ScanOptions {
  /** Keys as Buffers holding their exact bytes (default false: strings, UTF-8 decoded). */
  raw?: boolean;
}

const SCAN_FIELDS = ['prefix', 'match', 'start', 'end', 'cursor', 'count', 'raw'];

/**
 * - `wait`: `lazyConnect`, and no command issued yet
 * - `connecting`: opening a socket (first time or after a backoff delay), then the HELLO handshake
 * - `authenticating`: connected, AUTH sent, waiting for its reply
 * - `ready`: commands are written as they are issued
 * - `reconnecting`: waiting out the backoff delay before the next attempt
 * - `closing`: close() called; the last replies are awaited
 * - `closed`: for good; every command rejects with CLOSED
 */
/** One row of CLUSTER SLOTS (protocol/PROTOCOL.md §6). */
export interface ClusterSlotRange {
  start: number;
  end: number;
  shard: string;
  primary: { node: string; host: string; port: number } | null;
  replicas: { node: string; host: string; port: number }[];
}

export type ClientStatus =
  | 'wait'
  | 'connecting'
  | 'authenticating'
  | 'ready'
  | 'reconnecting'
  | 'closing'
  | 'closed';

export interface ClientEventMap {
  /** The connection is open (and authenticated): commands flow. */
  connect: [];
  /** A connection closed and a reconnect follows, or the client closed for good (status `closed`): once per connection. */
  close: [];
  /** A connection-level error (socket error, AUTH refused, protocol violation). */
  error: [Error];
  /** A reconnect attempt is scheduled. */
  reconnecting: [{ attempt: number; delayMs: number }];
}

/** A bin from a reply as a Buffer: a view of the received frame (codecs that keep it copy it). */
function toBuffer(raw: unknown): Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  if (raw instanceof Uint8Array) return Buffer.from(raw);
  if (typeof raw === 'string') return Buffer.from(raw, 'utf8');
  throw new KvError('PROTOCOL_ERROR', `expected a bin value from the server, got ${typeof raw}`);
}

function expectNumber(raw: unknown): number {
  if (typeof raw !== 'number')
    throw new KvError('PROTOCOL_ERROR', `expected a number from the server, got ${typeof raw}`);
  return raw;
}

function expectBoolean(raw: unknown): boolean {
  if (typeof raw !== 'boolean')
    throw new KvError('PROTOCOL_ERROR', `expected a bool from the server, got ${typeof raw}`);
  return raw;
}

/**
 * The client's TTL and EXPIRE commands carry milliseconds, which is what
 * segkv's native TTL/EXPIRE took before the server grew Redis's PTTL and
 * PEXPIRE: where HELLO lists those, they are sent instead.
 */
const MS_COMMANDS: Partial<Record<CommandName, string>> = { TTL: 'PTTL', EXPIRE: 'PEXPIRE' };

export class KvClient<V = string> extends EventEmitter<ClientEventMap> {
  private statusValue: ClientStatus = 'connecting';
  readonly options: ResolvedClientOptions;
  private readonly codec: Codec<V>;
  private socket: Socket | undefined;
  private reader: FrameReader;
  /** Written commands awaiting their reply, oldest at sentHead. */
  private sent: QueuedCommand[] = [];
  private sentHead = 0;
  /** Issued while not ready, in issue order. */
  private offline: QueuedCommand[] = [];
  /** Frames written this tick and not yet handed to the socket (this client's own buffer). */
  private readonly writer = new FrameWriter();
  private flushQueued = false;
  private nextId = 0;
  private attempts = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private timeoutTimer: NodeJS.Timeout | undefined;
  /** The fatal error frame the server sent before closing, if any. */
  private serverFatal: KvError | undefined;
  private lastError: Error | undefined;
  /** What HELLO answered on the current connection (after AUTH, if any). */
  private helloReply: HelloReply | undefined;
  /** Set while the HELLO/AUTH handshake runs: why the attempt failed, if it did. */
  private handshakeError: KvError | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  /** Why the client closed for good (giveUp), for ready() and connect(). */
  private closeReason: KvError | undefined;
  /** The first connection attempt's outcome, awaited by connect(). */
  private firstAttempt: { resolve: () => void; reject: (err: KvError) => void } | undefined;
  private everReady = false;

  constructor(options: ClientOptions = {}) {
    super();
    this.options = resolveClientOptions(options);
    this.codec = codecFor(this.options.valueEncoding) as Codec<V>;
    this.reader = new FrameReader(this.options.maxReplyBytes);
    if (this.options.lazyConnect) this.statusValue = 'wait';
    else this.open();
  }

  /**
   * Resolves once the first connection attempt is ready; rejects with why it
   * failed (CONNECTION_FAILED: refused, TLS mismatch, not segkv; AUTH_FAILED).
   * connect() awaits this.
   */
  firstConnection(): Promise<void> {
    if (this.everReady) return Promise.resolve();
    if (this.statusValue === 'closed' || this.statusValue === 'closing') {
      return Promise.reject(this.closeReason ?? this.closedError());
    }
    if (this.statusValue === 'wait') this.open();
    return new Promise((resolve, reject) => {
      this.firstAttempt = { resolve, reject };
    });
  }

  /** What the server answered to HELLO on this connection: name, version, limits, commands. */
  get server(): HelloReply | undefined {
    return this.helloReply;
  }

  get status(): ClientStatus {
    return this.statusValue;
  }

  /** The one place the status changes. */
  private setStatus(next: ClientStatus): void {
    if (this.statusValue === next) return;
    this.statusValue = next;
    if (next === 'ready') this.emit('connect');
  }

  private emitError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** Resolves once the client is ready; rejects if it closes first. */
  ready(): Promise<void> {
    if (this.statusValue === 'ready') return Promise.resolve();
    if (this.statusValue === 'closing' || this.statusValue === 'closed')
      return Promise.reject(this.closeReason ?? this.closedError());
    if (this.statusValue === 'wait') this.open();
    return new Promise((resolve, reject) => {
      const onConnect = () => {
        this.off('close', onClose);
        resolve();
      };
      const onClose = () => {
        if (this.statusValue !== 'closed') return;
        this.off('connect', onConnect);
        this.off('close', onClose);
        reject(this.closeReason ?? this.closedError());
      };
      this.once('connect', onConnect);
      this.on('close', onClose);
    });
  }

  // ---- connection ---------------------------------------------------------

  private open(): void {
    const o = this.options;
    this.setStatus('connecting');
    this.serverFatal = undefined;
    this.handshakeError = undefined;
    this.helloReply = undefined;
    this.reader = new FrameReader(HANDSHAKE_MAX_REPLY_BYTES);
    const socket = dial(o, () => this.onOpen());
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
    socket.on('error', (err) => {
      this.lastError = err;
      // A failed attempt is reported once, explained, when its socket closes.
      if (this.statusValue === 'ready') this.emitError(err);
    });
    socket.on('close', () => {
      clearTimeout(this.handshakeTimer);
      this.onSocketClose(socket);
    });
  }

  private onOpen(): void {
    if (this.statusValue === 'closing') {
      this.socket?.destroy();
      return;
    }
    const socket = this.socket;
    this.handshakeTimer = setTimeout(() => {
      this.failHandshake(silentPeer(this.options, this.options.helloTimeoutMs));
    }, this.options.helloTimeoutMs);
    this.handshakeHello().then(
      (reply) => {
        clearTimeout(this.handshakeTimer);
        if (socket !== this.socket) return;
        this.helloReply = reply;
        if (this.options.password === undefined) this.onReady();
        else this.authenticate(socket);
      },
      (err: unknown) => {
        if (socket !== this.socket) return;
        // A segkv server answers HELLO with its map, never an error.
        this.failHandshake(
          notSegkv(
            this.options,
            err instanceof KvError && err.code === 'CONNECTION_FAILED'
              ? "its reply to HELLO is not segkv's"
              : `it answered HELLO with an error (${String((err as Error).message)})`,
          ),
        );
      },
    );
  }

  /** AUTH, then HELLO again to learn the frame limit that applies once authenticated. */
  private authenticate(socket: Socket | undefined): void {
    this.setStatus('authenticating');
    const auth = new Command('AUTH', [this.options.password], () => true);
    this.setDeadline(auth);
    auth.promise
      .then(() => this.handshakeHello())
      .then(
        (reply) => {
          if (socket !== this.socket) return;
          this.helloReply = reply;
          this.onReady();
        },
        (err: unknown) => {
          if (socket !== this.socket) return;
          const error = err instanceof Error ? err : new KvError('AUTH_FAILED', String(err));
          if (error instanceof KvError && (error.code === 'AUTH_FAILED' || error.code === 'NOAUTH')) {
            this.emitError(error);
            this.giveUp(error);
          } else this.socket?.destroy();
        },
      );
    this.write(auth);
  }

  /** The handshake's own HELLO: written at once on the open socket, whatever the status. */
  private handshakeHello(): Promise<HelloReply> {
    const cmd = new Command('HELLO', [], checkHello);
    this.write(cmd);
    return cmd.promise;
  }

  /** Ends the connection attempt: the peer is not (or not reachable as) a segkv server. */
  private failHandshake(err: KvError): void {
    if (this.handshakeError) return;
    this.handshakeError = err;
    this.emitError(err);
    this.socket?.destroy();
  }

  private onReady(): void {
    if (this.statusValue === 'closing' || this.statusValue === 'closed') return;
    this.attempts = 0;
    this.reader.maxFrameBytes = this.options.maxReplyBytes;
    this.everReady = true;
    this.setStatus('ready');
    const first = this.firstAttempt;
    this.firstAttempt = undefined;
    first?.resolve();
    const queued = this.offline;
    this.offline = [];
    for (const cmd of queued) if (!cmd.settled) this.write(cmd);
  }

  private onData(socket: Socket, chunk: Buffer): void {
    if (socket !== this.socket) return;
    this.reader.push(chunk);
    for (;;) {
      let body: Buffer | undefined;
      try {
        body = this.reader.next();
      } catch (err) {
        const length = err instanceof FrameError ? err.length : 0;
        if (this.helloReply === undefined) {
          this.failHandshake(notSegkv(this.options, chunk));
          return;
        }
        this.violation(
          `a reply frame of ${length} bytes exceeds maxReplyBytes (${this.options.maxReplyBytes}) or is empty`,
        );
        return;
      }
      if (body === undefined) return;
      let reply: unknown;
      try {
        reply = unpackr.unpack(body);
      } catch {
        if (this.helloReply === undefined) {
          this.failHandshake(notSegkv(this.options, chunk));
          return;
        }
        this.violation('a reply frame is not one MessagePack value');
        return;
      }
      if (!this.onReply(reply)) return;
    }
  }

  /** Matches a reply to the oldest written command. Returns false if the connection was dropped. */
  private onReply(reply: unknown): boolean {
    if (!Array.isArray(reply) || reply.length < 2 || reply.length > 3) {
      if (this.helloReply === undefined) {
        this.failHandshake(notSegkv(this.options, 'its reply to HELLO is not [id, result]'));
        return false;
      }
      this.violation('a reply is not [id, result] or [id, null, error]');
      return false;
    }
    const id = reply[0];
    if (id === null) {
      // Fatal: the server closes the connection after this frame.
      this.serverFatal = wireError(reply[2]);
      this.emitError(this.serverFatal);
      return true;
    }
    const cmd = this.sent[this.sentHead];
    if (cmd === undefined || cmd.id !== id) {
      this.violation(`reply id ${String(id)} does not match the oldest request (${cmd?.id ?? 'none'})`);
      return false;
    }
    this.sent[this.sentHead++] = undefined as unknown as QueuedCommand;
    if (this.sentHead === this.sent.length) {
      this.sent = [];
      this.sentHead = 0;
    } else if (this.sentHead > 1024 && this.sentHead * 2 > this.sent.length) {
      this.sent = this.sent.slice(this.sentHead);
      this.sentHead = 0;
    }
    if (reply.length === 3) cmd.failWith(reply[2]);
    else cmd.succeed(reply[1]);
    return true;
  }

  private violation(message: string): void {
    const err = new KvError('PROTOCOL_ERROR', `${message}; dropping the connection`);
    this.serverFatal = err;
    this.emitError(err);
    this.socket?.destroy();
  }

  private onSocketClose(socket: Socket): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    this.writer.take(); // frames for a dead socket: their commands are failed below
    const o = this.options;
    const failed = this.statusValue === 'connecting' || this.statusValue === 'authenticating';
    const err =
      this.handshakeError ??
      this.serverFatal ??
      (failed ? connectFailure(o, this.lastError) : undefined) ??
      new KvError(
        'CONNECTION_CLOSED',
        `the connection to ${o.host}:${o.port} closed before the reply` +
          (this.lastError ? ` (${this.lastError.message})` : '') +
          '; the command may or may not have been applied',
        { cause: this.lastError },
      );
    const sent = this.sent;
    const head = this.sentHead;
    this.sent = [];
    this.sentHead = 0;
    for (let i = head; i < sent.length; i++) sent[i]!.fail(err);
    const fatal = this.serverFatal;
    if (failed && !this.handshakeError) this.emitError(err);
    this.lastError = failed ? err : undefined;
    this.handshakeError = undefined;
    if (this.statusValue === 'closing' || this.statusValue === 'closed') {
      this.finishClose();
      return;
    }
    // connect() gives up after its first attempt fails, with the reason.
    const first = this.firstAttempt;
    if (first && failed) {
      this.firstAttempt = undefined;
      this.giveUp(err);
      first.reject(err);
      return;
    }
    // Giving up emits the one final 'close'; otherwise this connection's 'close', then a retry.
    if (fatal && (fatal.code === 'AUTH_FAILED' || fatal.code === 'NOAUTH')) this.giveUp(fatal);
    else if (!o.reconnect || this.attempts >= o.maxRetries) this.giveUp(err);
    else {
      this.emit('close');
      this.scheduleReconnect();
    }
  }

  private scheduleReconnect(): void {
    this.attempts++;
    const o = this.options;
    const delayMs = Math.min(o.retryMaxDelayMs, o.retryMinDelayMs * 2 ** Math.min(this.attempts - 1, 30));
    this.setStatus('reconnecting');
    this.emit('reconnecting', { attempt: this.attempts, delayMs });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.statusValue === 'reconnecting') this.open();
    }, delayMs);
  }

  /** Closes for good after an unrecoverable error: queued commands reject with it. */
  private giveUp(err: KvError): void {
    clearTimeout(this.retryTimer);
    this.closeReason = err;
    const first = this.firstAttempt;
    this.firstAttempt = undefined;
    first?.reject(err);
    this.setStatus('closing');
    for (const cmd of this.offline) cmd.fail(err);
    this.offline = [];
    if (this.socket) this.socket.destroy();
    else this.finishClose();
  }

  private finishClose(): void {
    for (const cmd of this.offline) cmd.fail(this.closedError());
    this.offline = [];
    this.setStatus('closed');
    this.emit('close');
  }

  private closedError(): KvError {
    return new KvError('CLOSED', 'the client is closed; create a new one with connect()');
  }

  /**
   * Closes the client: commands not yet sent reject with CLOSED; those
   * already sent get their replies (QUIT goes last), then the socket closes.
   */
  close(): Promise<void> {
    if (this.statusValue === 'closed') return Promise.resolve();
    const done = new Promise<void>((resolve) => {
      const onClose = () => {
        if (this.statusValue !== 'closed') return;
        this.off('close', onClose);
        resolve();
      };
      this.on('close', onClose);
    });
    if (this.statusValue === 'closing') return done;
    clearTimeout(this.retryTimer);
    clearTimeout(this.handshakeTimer);
    const wasReady = this.statusValue === 'ready';
    this.setStatus('closing');
    for (const cmd of this.offline) cmd.fail(this.closedError());
    this.offline = [];
    const socket = this.socket;
    if (!socket) this.finishClose();
    else if (wasReady) {
      const quit = new Command('QUIT', [], () => true);
      // The reply to QUIT comes after every earlier reply: then nothing more is owed.
      quit.promise.then(
        () => socket.end(),
        () => socket.destroy(),
      );
      this.write(quit);
      const timer = setTimeout(() => socket.destroy(), Math.max(1000, this.options.requestTimeoutMs));
      timer.unref();
    } else socket.destroy();
    return done;
  }

  // ---- sending ------------------------------------------------------------

  private issue<T>(name: CommandName, args: readonly unknown[], transform: (raw: unknown) => T): Promise<T> {
    const cmd = new Command<T>(name, args, transform);
    const status = this.statusValue;
    if (status === 'closing' || status === 'closed') {
      cmd.fail(this.closedError());
      return cmd.promise;
    }
    this.setDeadline(cmd);
    if (status === 'wait') this.open();
    if (status === 'ready') this.write(cmd);
    else if (this.offline.length >= this.options.offlineQueueLimit) {
      cmd.fail(
        new KvError(
          'CONNECTION_CLOSED',
          `not connected and ${this.offline.length} commands already wait (client option offlineQueueLimit)`,
          { cause: this.lastError },
        ),
      );
    } else this.offline.push(cmd);
    return cmd.promise;
  }

  /**
   * Request timeouts without a timer per command: commands are issued (and
   * mostly written) in deadline order, so one timer at the oldest deadline
   * suffices; each sweep fails what is due and re-arms for the next.
   */
  private setDeadline(cmd: { deadline: number }): void {
    const ms = this.options.requestTimeoutMs;
    if (ms <= 0) return;
    cmd.deadline = Date.now() + ms;
    if (this.timeoutTimer === undefined) this.armTimeouts(cmd.deadline);
  }

  private armTimeouts(deadline: number): void {
    this.timeoutTimer = setTimeout(() => this.sweepTimeouts(), Math.max(0, deadline - Date.now()));
    this.timeoutTimer.unref();
  }

  private sweepTimeouts(): void {
    this.timeoutTimer = undefined;
    const now = Date.now();
    const ms = this.options.requestTimeoutMs;
    let next = Number.POSITIVE_INFINITY;
    const last = this.lastError;
    const sweep = (list: readonly QueuedCommand[], from: number, sent: boolean) => {
      for (let i = from; i < list.length; i++) {
        const cmd = list[i]!;
        if (cmd.settled) continue;
        if (cmd.deadline > now) {
          next = Math.min(next, cmd.deadline);
          return;
        }
        cmd.fail(
          sent
            ? new KvError(
                'TIMEOUT',
                `${cmd.name} got no reply within ${ms} ms; raise the client option requestTimeoutMs or check the server`,
              )
            : new KvError(
                'TIMEOUT',
                `${cmd.name} was not sent within ${ms} ms: not connected to ${this.options.host}:${this.options.port}` +
                  (last ? ` (${last.message})` : ''),
                { cause: last },
              ),
        );
      }
    };
    sweep(this.sent, this.sentHead, true);
    sweep(this.offline, 0, false);
    if (next !== Number.POSITIVE_INFINITY) this.armTimeouts(next);
  }

  private write(cmd: QueuedCommand): void {
    const ms = MS_COMMANDS[cmd.name];
    if (ms !== undefined && this.helloReply?.commands.includes(ms)) cmd.name = ms as CommandName;
    const limit = this.helloReply?.maxFrameBytes;
    if (limit !== undefined && sizeBound(cmd.name, cmd.args) > limit) {
      const bytes = encodedSize([MAX_REQUEST_ID, cmd.name, ...cmd.args]);
      if (bytes > limit) {
        cmd.fail(
          new KvError(
            'TOO_LARGE',
            `${cmd.name}: the request is ${bytes} bytes, over this server's frame limit of ${limit} bytes ` +
              '(kv-server --max-frame-bytes); nothing was sent',
          ),
        );
        return;
      }
    }
    try {
      cmd.encode(this.writer, this.nextId);
    } catch (err) {
      cmd.fail(new KvError('INVALID_ARGUMENT', `${cmd.name}: cannot encode the arguments`, { cause: err }));
      return;
    }
    this.nextId = this.nextId === MAX_REQUEST_ID ? 0 : this.nextId + 1;
    this.sent.push(cmd);
    if (!this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(() => this.flushOutbox());
    }
  }

  /** Writes every frame encoded this tick: one buffer, unless a large value rides by reference. */
  private flushOutbox(): void {
    this.flushQueued = false;
    const out = this.writer.take();
    const socket = this.socket;
    if (!socket || out.length === 0) return;
    if (out.length === 1) socket.write(out[0]!);
    else {
      socket.cork();
      for (const b of out) socket.write(b);
      socket.uncork();
    }
  }

  // ---- commands -----------------------------------------------------------

  private decodeValue = (raw: unknown): V | undefined =>
    raw === null || raw === undefined ? undefined : this.codec.decode(toBuffer(raw));

  /**
   * The server's change feed from `options.from` (default 0: the compacted
   * log, a snapshot, then every change as it is written), record by record,
   * on a connection of its own; it never ends by itself. Leave the loop
   * (break/return) to close it. Rejects with OFFSET_OUT_OF_RANGE when the log
   * cannot replay exactly from that offset, CONNECTION_CLOSED if the
   * connection drops (resume from the last offset seen + 1).
   */
  async *feed(options: FeedOptions = {}): AsyncGenerator<FeedRecord<V>> {
    const from = options.from ?? 0;
    if (!Number.isSafeInteger(from) || from < 0) {
      throw new KvError('INVALID_ARGUMENT', `feed option from must be an integer offset ≥ 0, got ${from}`);
    }
    const o = this.options;
    const { feed } = await FeedConnection.open(
      {
        host: o.host,
        port: o.port,
        password: o.password,
        tls: o.tls,
        connectTimeoutMs: o.connectTimeoutMs,
        maxReplyBytes: o.maxReplyBytes,
      },
      from,
    );
    const decode = (b: Buffer) => this.codec.decode(b);
    try {
      for (;;) {
        const batch = await feed.next();
        if (batch === undefined) return;
        if ('raw' in batch) throw new KvError('PROTOCOL_ERROR', 'the server sent a raw feed frame unasked');
        for (const r of batch.records) yield feedRecord(r, decode);
      }
    } finally {
      feed.close();
    }
  }

  /** The value of `key`, or undefined. */
  get(key: Key): Promise<V | undefined> {
    return rejecting(() => {
      return this.issue('GET', [checkKey('get', key)], this.decodeValue);
    });
  }

  /**
   * Sets `key`; resolves true if written, false if ifAbsent/ifPresent said
   * not to. Options (SetOptions): `ttlMs` / `px` (ms) or `ex` (seconds),
   * `ifAbsent` / `nx`, `ifPresent` / `xx`; or Redis's tokens as ioredis takes
   * them: `set(k, v, 'EX', 10, 'NX')`. Without a TTL the key's earlier
   * expiry is removed (as Redis SET). A large Buffer value is sent without a
   * copy: do not modify it until the promise settles.
   */
  set(key: Key, value: V, options?: SetOptions): Promise<boolean>;
  set(key: Key, value: V, ...redisTokens: (string | number)[]): Promise<boolean>;
  set(key: Key, value: V, ...rest: unknown[]): Promise<boolean> {
    return rejecting(() => {
      const k = checkKey('set', key);
      const o = setOptionsFrom('set', rest);
      const bytes = this.codec.encode(value);
      const args: unknown[] = [k, bytes];
      if (o.ttlMs !== undefined || o.ifAbsent || o.ifPresent) {
        const w: WireSetOptions = {};
        if (o.ttlMs !== undefined) w.ttl = o.ttlMs;
        if (o.ifAbsent) w.nx = true;
        if (o.ifPresent) w.xx = true;
        args.push(w);
      }
      return this.issue('SET', args, (raw) => raw === true);
    });
  }

  /**
   * Deletes keys (atomically); resolves how many existed (a key named twice
   * counts once). As ioredis: `del('a', 'b')`, `del(['a', 'b'])`.
   */
  del(...keys: (Key | readonly Key[])[]): Promise<number> {
    return rejecting(() => this.issue('DEL', keyList('del', keys), expectNumber));
  }

  /** Values of the keys, in order; undefined for a missing key. As ioredis: `mget('a', 'b')`, `mget(['a', 'b'])`. */
  mget(...keys: (Key | readonly Key[])[]): Promise<(V | undefined)[]> {
    return rejecting(() =>
      this.issue('MGET', keyList('mget', keys), (raw) => {
        if (!Array.isArray(raw)) throw new KvError('PROTOCOL_ERROR', 'MGET reply is not an array');
        return raw.map(this.decodeValue);
      }),
    );
  }

  /**
   * Sets every pair atomically: all or none survive a crash. Takes an
   * object, a Map or an iterable of [key, value] pairs, or (as ioredis)
   * `mset('k1', 'v1', 'k2', 'v2')`.
   */
  mset(entries: Readonly<Record<string, V>> | Iterable<readonly [Key, V]>): Promise<void>;
  mset(...keysAndValues: (Key | V)[]): Promise<void>;
  mset(...input: unknown[]): Promise<void> {
    return rejecting(() => {
      const args = msetKeysAndValues(input);
      for (let i = 0; i < args.length; i += 2) {
        args[i] = checkKey('mset', args[i]);
        args[i + 1] = this.codec.encode(args[i + 1] as V);
      }
      return this.issue('MSET', args, () => undefined);
    });
  }

  /** How many of the keys exist (a key named twice counts twice). As ioredis: `exists('a', 'b')`, `exists(['a'])`. */
  exists(...keys: (Key | readonly Key[])[]): Promise<number> {
    return rejecting(() => this.issue('EXISTS', keyList('exists', keys), expectNumber));
  }

  /** Adds `delta` (default 1) to the decimal integer stored at `key` (absent = 0); resolves the new value. */
  incr(key: Key, delta = 1): Promise<number> {
    return rejecting(() => {
      const k = checkKey('incr', key);
      const d = integer('incr', 'delta', delta, 'units');
      return this.issue('INCR', d === 1 ? [k] : [k, d], expectNumber);
    });
  }

  /** Redis INCRBY: `incr(key, delta)`. */
  incrby(key: Key, delta: number): Promise<number> {
    return this.incr(key, integer('incrby', 'delta', delta, 'units'));
  }

  /** Redis DECR: `incr(key, -1)`. */
  decr(key: Key): Promise<number> {
    return this.incr(key, -1);
  }

  /** Redis DECRBY: `incr(key, -delta)`. */
  decrby(key: Key, delta: number): Promise<number> {
    return this.incr(key, -integer('decrby', 'delta', delta, 'units'));
  }

  /** Remaining time to live in seconds, rounded (Redis TTL); -1 without expiry, -2 if the key does not exist. */
  ttl(key: Key): Promise<number> {
    return this.pttl(key).then((ms) => (ms < 0 ? ms : Math.floor((ms + 500) / 1000)));
  }

  /** Remaining time to live in milliseconds (Redis PTTL); -1 without expiry, -2 if the key does not exist. */
  pttl(key: Key): Promise<number> {
    return rejecting(() => {
      // Sent as PTTL where the server has it (see write()).
      return this.issue('TTL', [checkKey('pttl', key)], expectNumber);
    });
  }

  /**
   * Makes an existing key expire `seconds` from now (Redis EXPIRE); resolves
   * false if it does not exist. As in Redis, a time ≤ 0 deletes the key
   * (resolving whether it existed).
   */
  expire(key: Key, seconds: number, ...flags: never[]): Promise<boolean> {
    return rejecting(() => {
      noFlags('expire', flags);
      const s = integer('expire', 'seconds', seconds, 'seconds');
      return this.expireMs('expire', key, s <= 0 ? 0 : secondsToMs('expire', s));
    });
  }

  /** `expire` in milliseconds (Redis PEXPIRE); a time ≤ 0 deletes the key. */
  pexpire(key: Key, ms: number, ...flags: never[]): Promise<boolean> {
    return rejecting(() => {
      noFlags('pexpire', flags);
      return this.expireMs('pexpire', key, integer('pexpire', 'ms', ms, 'milliseconds'));
    });
  }

  private expireMs(where: string, key: unknown, ms: number): Promise<boolean> {
    const k = checkKey(where, key);
    // Redis: a time ≤ 0 deletes the key and answers whether it existed, which is DEL's answer.
    if (ms <= 0) return this.issue('DEL', [k], (raw) => expectNumber(raw) > 0);
    // Sent as PEXPIRE where the server has it (see write()).
    return this.issue('EXPIRE', [k, ttlWithinLimit(where, 'the time', ms)], expectBoolean);
  }

  /** Removes a key's expiry; resolves false if it does not exist or has none. */
  persist(key: Key): Promise<boolean> {
    return rejecting(() => {
      return this.issue('PERSIST', [checkKey('persist', key)], expectBoolean);
    });
  }

  /**
   * One page of keys in byte order; pass `cursor` back for the next page.
   * Options: `prefix`, `match` (a glob pattern, Redis's rules: `*`, `?`,
   * `[a-z]`, backslash escapes; `count` then counts keys examined, so a page
   * may hold fewer keys, even none, with a cursor), `start`, `end`, `count`
   * (default 100), `cursor`, `raw`. Keys are strings (their bytes decoded as
   * UTF-8); with `raw: true`, Buffers holding their exact bytes (for keys
   * written as bytes that are not UTF-8).
   */
  scan(options: ClientScanOptions & { raw: true }): Promise<ScanPage<Buffer>>;
  scan(options?: ClientScanOptions & { raw?: false }): Promise<ScanPage>;
  scan(options: ClientScanOptions = {}): Promise<ScanPage<string | Buffer>> {
    return rejecting(() => {
      const given = checkOptions<ClientScanOptions>('scan', options, SCAN_FIELDS) ?? {};
      const o: WireScanOptions = {};
      if (given.prefix !== undefined) o.prefix = keyOption('scan', 'prefix', given.prefix);
      if (given.match !== undefined) o.match = keyOption('scan', 'match', given.match);
      if (given.start !== undefined) o.start = keyOption('scan', 'start', given.start);
      if (given.end !== undefined) o.end = keyOption('scan', 'end', given.end);
      if (given.cursor !== undefined) {
        if (typeof given.cursor !== 'string') throw invalid('scan: cursor must be a string a page returned');
        o.cursor = given.cursor;
      }
      if (given.count !== undefined) o.count = integer('scan', 'count', given.count, 'keys');
      const raw = given.raw === true;
      if (given.raw !== undefined && typeof given.raw !== 'boolean')
        throw invalid('scan: raw must be a boolean');
      if (raw) o.raw = true;
      const keyType = raw ? 'bin' : 'str';
      return this.issue('SCAN', Object.keys(o).length > 0 ? [o] : [], (reply) => {
        const page = reply as { keys?: unknown; cursor?: unknown };
        if (typeof page !== 'object' || page === null || !Array.isArray(page.keys)) {
          throw new KvError('PROTOCOL_ERROR', 'SCAN reply is not {keys, cursor}');
        }
        for (const k of page.keys) {
          if (raw ? !(k instanceof Uint8Array) : typeof k !== 'string') {
            throw new KvError('PROTOCOL_ERROR', `SCAN reply has a key that is not ${keyType}`);
          }
        }
        if (page.cursor !== undefined && page.cursor !== null && typeof page.cursor !== 'string') {
          throw new KvError('PROTOCOL_ERROR', 'SCAN reply has a cursor that is not str or nil');
        }
        const keys = raw
          ? (page.keys as Uint8Array[]).map((k) => Buffer.from(k.buffer, k.byteOffset, k.byteLength))
          : (page.keys as string[]);
        return { keys, cursor: page.cursor ?? null };
      });
    });
  }

  /**
   * Every matching key, page by page: strings, or Buffers with `raw: true`
   * (see scan). As Redis's KEYS, `keys('user:*')` takes a glob pattern; or
   * scan options (`{ prefix }`, `{ match }`, ...).
   */
  keys(pattern: string): AsyncGenerator<string>;
  keys(options: Omit<ClientScanOptions, 'cursor'> & { raw: true }): AsyncGenerator<Buffer>;
  keys(options?: Omit<ClientScanOptions, 'cursor'> & { raw?: false }): AsyncGenerator<string>;
  keys(patternOrOptions: string | Omit<ClientScanOptions, 'cursor'> = {}): AsyncGenerator<string | Buffer> {
    const options: Omit<ClientScanOptions, 'cursor'> =
      typeof patternOrOptions === 'string' ? { match: patternOrOptions } : patternOrOptions;
    if (options === null || typeof options !== 'object') {
      throw invalid('keys: takes a glob pattern string or scan options');
    }
    checkOptions(
      'keys',
      options,
      SCAN_FIELDS.filter((f) => f !== 'cursor'),
    );
    return this.keyPages(options);
  }

  private async *keyPages(options: Omit<ClientScanOptions, 'cursor'>): AsyncGenerator<string | Buffer> {
    let cursor: string | null = null;
    do {
      const next = { ...options, ...(cursor !== null && { cursor }) };
      const page: ScanPage<string | Buffer> = options.raw
        ? await this.scan({ ...next, raw: true })
        : await this.scan({ ...next, raw: false });
      yield* page.keys;
      cursor = page.cursor;
    } while (cursor !== null);
  }

  /** Number of keys in the store. */
  dbsize(): Promise<number> {
    return this.issue('DBSIZE', [], expectNumber);
  }

  /** Server statistics: every section, or the one named. */
  info(section?: InfoSection): Promise<Record<string, unknown>> {
    return rejecting(() => {
      if (section !== undefined && typeof section !== 'string')
        throw invalid('info: section must be a string');
      return this.issue(
        'INFO',
        section === undefined ? [] : [section],
        (raw) => raw as Record<string, unknown>,
      );
    });
  }

  /** Runs a compaction now; resolves when it is done (NOT_SUPPORTED until the store has a compactor). */
  compact(): Promise<unknown> {
    return this.issue('COMPACT', [], (raw) => raw);
  }

  /**
   * WAIT: resolves how many replicas hold every write this client's connection
   * made so far, as soon as `numReplicas` do or after `timeoutMs` (0 = no timeout).
   * After a reconnect it only covers writes made on the new connection.
   */
  wait(numReplicas: number, timeoutMs: number): Promise<number> {
    return this.issue('WAIT', [numReplicas, timeoutMs], expectNumber);
  }

  /** The server's replication role and lineage (ROLE). */
  role(): Promise<RoleReply> {
    return this.issue('ROLE', [], (raw) => raw as RoleReply);
  }

  /** CLUSTER SLOTS: the slot ranges of a cluster with their primary and replicas (cluster mode only). */
  clusterSlots(): Promise<ClusterSlotRange[]> {
    return this.issue('CLUSTER', ['SLOTS'], (raw) => raw as ClusterSlotRange[]);
  }

  /** REPLICAOF: follow the primary at `host`:`port`, or with `null` stop following and take writes (REPLICAOF NO ONE). */
  replicaOf(primary: { host: string; port: number } | null): Promise<true> {
    const args = primary === null ? ['NO', 'ONE'] : [primary.host, primary.port];
    return this.issue('REPLICAOF', args, () => true as const);
  }

  /** Round trip: resolves 'PONG', or `message` echoed. */
  ping(message?: string): Promise<string> {
    return rejecting(() => {
      if (message !== undefined && typeof message !== 'string')
        throw invalid('ping: message must be a string');
      return this.issue('PING', message === undefined ? [] : [message], (raw) =>
        typeof raw === 'string' ? raw : toBuffer(raw).toString('utf8'),
      );
    });
  }

  /** Server name, version, protocol version, limits and commands. */
  hello(): Promise<HelloReply> {
    return this.issue('HELLO', [], checkHello);
  }

  /** @deprecated Redis and ioredis spell it `del`. */
  delete(...keys: (Key | readonly Key[])[]): Promise<number> {
    return this.del(...keys);
  }
}

// The methods with a fixed number of parameters; the variadic ones (and expire's flags) check their rest themselves.
limitArity(
  KvClient.prototype,
  {
    close: [],
    ready: [],
    get: ['key'],
    incr: ['key', 'delta'],
    incrby: ['key', 'delta'],
    decr: ['key'],
    decrby: ['key', 'delta'],
    ttl: ['key'],
    pttl: ['key'],
    persist: ['key'],
    scan: ['options'],
    dbsize: [],
    info: ['section'],
    compact: [],
    wait: ['numReplicas', 'timeoutMs'],
    role: [],
    clusterSlots: [],
    replicaOf: ['primary'],
    ping: ['message'],
    hello: [],
  },
  { feed: ['options'], keys: ['patternOrOptions'] },
);

/** A HELLO reply, checked to be segkv's: anything else means the peer is not a segkv server. */
function checkHello(raw: unknown): HelloReply {
  const h = raw as Partial<HelloReply> | null;
  if (
    typeof h !== 'object' ||
    h === null ||
    h.server !== 'segkv' ||
    typeof h.protocol !== 'number' ||
    typeof h.maxFrameBytes !== 'number' ||
    !Array.isArray(h.commands)
  ) {
    throw new KvError(
      'CONNECTION_FAILED',
      'the reply to HELLO is not segkv\'s {server: "segkv", protocol, ...}',
    );
  }
  return h as HelloReply;
}
