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
 * Invariants: commands issued in the same tick leave in one socket write
 * (flushed on process.nextTick); every command settles exactly once; when a
 * connection drops, the commands written on it reject with CONNECTION_CLOSED
 * (they may or may not have been applied, so they are never resent), while
 * commands not yet written wait in the offline queue (at most
 * `offlineQueueLimit`) and go out after the reconnect (and AUTH).
 */
import { EventEmitter } from 'node:events';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { checkTtlMs, type Key } from '../engine/keys.js';
import { MAX_TTL_MS } from '../engine/limits.js';
import type { ScanOptions, ScanPage, SetOptions } from '../engine/store.js';
import { KvError } from '../errors.js';
import { FrameError, FrameReader, unpackr } from '../protocol/frame.js';
import { FrameWriter } from '../protocol/frame-writer.js';
import { MAX_REQUEST_ID } from '../protocol/limits.js';
import type {
  CommandName,
  HelloReply,
  InfoSection,
  RoleReply,
  WireScanOptions,
  WireSetOptions,
} from '../protocol/messages.js';
import { Command, type QueuedCommand, wireError } from './command.js';
import { type Codec, codecFor } from './encoding.js';
import { FeedConnection, type FeedOptions, type FeedRecord, feedRecord } from './feed.js';
import { type ClientOptions, type ResolvedClientOptions, resolveClientOptions } from './options.js';

/**
 * - `connecting`: opening a socket (first time or after a backoff delay)
 * - `authenticating`: connected, AUTH sent, waiting for its reply
 * - `ready`: commands are written as they are issued
 * - `reconnecting`: waiting out the backoff delay before the next attempt
 * - `closing`: close() called; the last replies are awaited
 * - `closed`: for good; every command rejects with CLOSED
 */
export type ClientStatus = 'connecting' | 'authenticating' | 'ready' | 'reconnecting' | 'closing' | 'closed';

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

function keyList(keys: Key | readonly Key[]): readonly Key[] {
  return typeof keys === 'string' || keys instanceof Uint8Array ? [keys] : keys;
}

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

  constructor(options: ClientOptions = {}) {
    super();
    this.options = resolveClientOptions(options);
    this.codec = codecFor(this.options.valueEncoding) as Codec<V>;
    this.reader = new FrameReader(this.options.maxReplyBytes);
    this.open();
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
      return Promise.reject(this.closedError());
    return new Promise((resolve, reject) => {
      const onConnect = () => {
        this.off('close', onClose);
        resolve();
      };
      const onClose = () => {
        if (this.statusValue !== 'closed') return;
        this.off('connect', onConnect);
        this.off('close', onClose);
        reject(this.closedError());
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
    this.reader = new FrameReader(o.maxReplyBytes);
    const socket = o.tls
      ? tlsConnect({
          host: o.host,
          port: o.port,
          ...(isIP(o.host) === 0 && { servername: o.host }),
          ...o.tls,
        })
      : netConnect({ host: o.host, port: o.port });
    this.socket = socket;
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy(
        new KvError('TIMEOUT', `connecting to ${o.host}:${o.port} took over ${o.connectTimeoutMs} ms`),
      );
    }, o.connectTimeoutMs);
    socket.once(o.tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      this.onOpen();
    });
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
    socket.on('error', (err) => {
      this.lastError = err;
      this.emitError(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      this.onSocketClose(socket);
    });
  }

  private onOpen(): void {
    if (this.statusValue === 'closing') {
      this.socket?.destroy();
      return;
    }
    const password = this.options.password;
    if (password === undefined) {
      this.onReady();
      return;
    }
    this.setStatus('authenticating');
    const auth = new Command('AUTH', [password], () => true);
    this.setDeadline(auth);
    auth.promise.then(
      () => this.onReady(),
      (err: unknown) => {
        const error = err instanceof Error ? err : new KvError('AUTH_FAILED', String(err));
        if (error instanceof KvError && (error.code === 'AUTH_FAILED' || error.code === 'NOAUTH')) {
          this.emitError(error);
          this.giveUp(error);
        } else this.socket?.destroy();
      },
    );
    this.write(auth);
  }

  private onReady(): void {
    if (this.statusValue === 'closing' || this.statusValue === 'closed') return;
    this.attempts = 0;
    this.setStatus('ready');
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
        this.violation('a reply frame is not one MessagePack value');
        return;
      }
      if (!this.onReply(reply)) return;
    }
  }

  /** Matches a reply to the oldest written command. Returns false if the connection was dropped. */
  private onReply(reply: unknown): boolean {
    if (!Array.isArray(reply) || reply.length < 2 || reply.length > 3) {
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
    const err =
      this.serverFatal ??
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
    this.lastError = undefined;
    if (this.statusValue === 'closing' || this.statusValue === 'closed') {
      this.finishClose();
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
    const sweep = (list: readonly QueuedCommand[], from: number) => {
      for (let i = from; i < list.length; i++) {
        const cmd = list[i]!;
        if (cmd.settled) continue;
        if (cmd.deadline > now) {
          next = Math.min(next, cmd.deadline);
          return;
        }
        cmd.fail(
          new KvError(
            'TIMEOUT',
            `${cmd.name} got no reply within ${ms} ms; raise the client option requestTimeoutMs or check the server`,
          ),
        );
      }
    };
    sweep(this.sent, this.sentHead);
    sweep(this.offline, 0);
    if (next !== Number.POSITIVE_INFINITY) this.armTimeouts(next);
  }

  private write(cmd: QueuedCommand): void {
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
        for (const r of batch.records) yield feedRecord(r, decode);
      }
    } finally {
      feed.close();
    }
  }

  /** The value of `key`, or undefined. */
  get(key: Key): Promise<V | undefined> {
    return this.issue('GET', [key], this.decodeValue);
  }

  /**
   * Sets `key`; resolves true if written, false if ifAbsent/ifPresent said not to.
   * A large Buffer value is sent without a copy: do not modify it until the promise settles.
   */
  set(key: Key, value: V, options?: SetOptions): Promise<boolean> {
    let bytes: Uint8Array;
    try {
      bytes = this.codec.encode(value);
    } catch (err) {
      return Promise.reject(err);
    }
    const args: unknown[] = [key, bytes];
    if (options && (options.ttlMs !== undefined || options.ifAbsent || options.ifPresent)) {
      const o: WireSetOptions = {};
      if (options.ttlMs !== undefined) {
        const tooLong = ttlLimitError(options.ttlMs);
        if (tooLong) return Promise.reject(tooLong);
        o.ttl = options.ttlMs;
      }
      if (options.ifAbsent) o.nx = true;
      if (options.ifPresent) o.xx = true;
      args.push(o);
    }
    return this.issue('SET', args, (raw) => raw === true);
  }

  /** Deletes keys (atomically); resolves how many existed. */
  del(keys: Key | readonly Key[]): Promise<number> {
    return this.issue('DEL', keyList(keys), expectNumber);
  }

  /** Values of `keys`, in order; undefined for a missing key. */
  mget(keys: readonly Key[]): Promise<(V | undefined)[]> {
    return this.issue('MGET', keys, (raw) => {
      if (!Array.isArray(raw)) throw new KvError('PROTOCOL_ERROR', 'MGET reply is not an array');
      return raw.map(this.decodeValue);
    });
  }

  /** Sets every pair atomically: all or none survive a crash. */
  mset(entries: Readonly<Record<string, V>> | Iterable<readonly [Key, V]>): Promise<void> {
    const args: unknown[] = [];
    try {
      const pairs: Iterable<readonly [Key, V]> =
        Symbol.iterator in entries
          ? (entries as Iterable<readonly [Key, V]>)
          : (Object.entries(entries) as [string, V][]);
      for (const [k, v] of pairs) args.push(k, this.codec.encode(v));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.issue('MSET', args, () => undefined);
  }

  /** How many of `keys` exist (a key named twice counts twice). */
  exists(keys: Key | readonly Key[]): Promise<number> {
    return this.issue('EXISTS', keyList(keys), expectNumber);
  }

  /** Adds `delta` (default 1) to the decimal integer stored at `key` (absent = 0); resolves the new value. */
  incr(key: Key, delta = 1): Promise<number> {
    return this.issue('INCR', delta === 1 ? [key] : [key, delta], expectNumber);
  }

  /** Remaining time to live in ms; -1 without expiry, -2 if the key does not exist. */
  ttl(key: Key): Promise<number> {
    return this.issue('TTL', [key], expectNumber);
  }

  /** Makes an existing key expire `ttlMs` ms from now; resolves false if it does not exist. */
  expire(key: Key, ttlMs: number): Promise<boolean> {
    const tooLong = ttlLimitError(ttlMs);
    if (tooLong) return Promise.reject(tooLong);
    return this.issue('EXPIRE', [key, ttlMs], expectBoolean);
  }

  /** Removes a key's expiry; resolves false if it does not exist or has none. */
  persist(key: Key): Promise<boolean> {
    return this.issue('PERSIST', [key], expectBoolean);
  }

  /**
   * One page of keys in byte order; pass `cursor` back for the next page.
   * Keys are strings (their bytes decoded as UTF-8); with `raw: true`, Buffers
   * holding their exact bytes (for keys written as bytes that are not UTF-8).
   */
  scan(options: ScanOptions & { raw: true }): Promise<ScanPage<Buffer>>;
  scan(options?: ScanOptions & { raw?: false }): Promise<ScanPage>;
  scan(options: ScanOptions & { raw?: boolean } = {}): Promise<ScanPage<string | Buffer>> {
    const o: WireScanOptions = {};
    if (options.prefix !== undefined) o.prefix = options.prefix;
    if (options.start !== undefined) o.start = options.start;
    if (options.end !== undefined) o.end = options.end;
    if (options.cursor !== undefined) o.cursor = options.cursor;
    if (options.count !== undefined) o.count = options.count;
    if (options.raw) o.raw = true;
    const keyType = options.raw ? 'bin' : 'str';
    return this.issue('SCAN', Object.keys(o).length > 0 ? [o] : [], (reply) => {
      const page = reply as { keys?: unknown; cursor?: unknown };
      if (typeof page !== 'object' || page === null || !Array.isArray(page.keys)) {
        throw new KvError('PROTOCOL_ERROR', 'SCAN reply is not {keys, cursor}');
      }
      for (const k of page.keys) {
        if (options.raw ? !(k instanceof Uint8Array) : typeof k !== 'string') {
          throw new KvError('PROTOCOL_ERROR', `SCAN reply has a key that is not ${keyType}`);
        }
      }
      if (page.cursor !== undefined && page.cursor !== null && typeof page.cursor !== 'string') {
        throw new KvError('PROTOCOL_ERROR', 'SCAN reply has a cursor that is not str or nil');
      }
      const keys = options.raw
        ? (page.keys as Uint8Array[]).map((k) => Buffer.from(k.buffer, k.byteOffset, k.byteLength))
        : (page.keys as string[]);
      return { keys, cursor: page.cursor ?? null };
    });
  }

  /** Every matching key, page by page: strings, or Buffers with `raw: true` (see scan). */
  keys(options: Omit<ScanOptions, 'cursor'> & { raw: true }): AsyncGenerator<Buffer>;
  keys(options?: Omit<ScanOptions, 'cursor'> & { raw?: false }): AsyncGenerator<string>;
  async *keys(
    options: Omit<ScanOptions, 'cursor'> & { raw?: boolean } = {},
  ): AsyncGenerator<string | Buffer> {
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
    return this.issue(
      'INFO',
      section === undefined ? [] : [section],
      (raw) => raw as Record<string, unknown>,
    );
  }

  /** Runs a compaction now; resolves when it is done (NOT_SUPPORTED until the store has a compactor). */
  compact(): Promise<unknown> {
    return this.issue('COMPACT', [], (raw) => raw);
  }

  /** The server's replication role and lineage (ROLE). */
  role(): Promise<RoleReply> {
    return this.issue('ROLE', [], (raw) => raw as RoleReply);
  }

  /** REPLICAOF: follow the primary at `host`:`port`, or with `null` stop following and take writes (REPLICAOF NO ONE). */
  replicaOf(primary: { host: string; port: number } | null): Promise<true> {
    const args = primary === null ? ['NO', 'ONE'] : [primary.host, primary.port];
    return this.issue('REPLICAOF', args, () => true as const);
  }

  /** Round trip: resolves 'PONG', or `message` echoed. */
  ping(message?: string): Promise<string> {
    return this.issue('PING', message === undefined ? [] : [message], (raw) =>
      typeof raw === 'string' ? raw : toBuffer(raw).toString('utf8'),
    );
  }

  /** Server name, version, protocol version, limits and commands. */
  hello(): Promise<HelloReply> {
    return this.issue('HELLO', [], (raw) => raw as HelloReply);
  }
}

/**
 * A TTL past MAX_TTL_MS is refused here, before it is sent (the server would
 * refuse it too): INVALID_ARGUMENT naming the limit. Other checks of ttlMs
 * are the server's.
 */
function ttlLimitError(ttlMs: unknown): KvError | undefined {
  if (typeof ttlMs !== 'number' || !(ttlMs > MAX_TTL_MS)) return undefined;
  try {
    checkTtlMs(ttlMs, 'ttlMs');
  } catch (err) {
    return err as KvError;
  }
  return undefined;
}
