/**
 * kv-server's listener: accepts TCP (or TLS) connections for one open store,
 * enforces the connection cap and idle timeout, runs the once-per-tick reply
 * flush, answers INFO, and shuts down gracefully.
 *
 * Invariants: at most `maxClients` connections are served (more get a fatal
 * MAX_CLIENTS frame); one flush per tick covers every connection that has
 * replies queued; `close()` stops accepting first, lets each connection
 * finish the requests it has dispatched, and resolves once all are closed
 * (cutting stragglers after SHUTDOWN_GRACE_MS). The store is not closed
 * here: its owner (main.ts) does that after `close()`. INFO and the metrics
 * endpoint (metrics-http.ts) read the same counters (`metrics`, `counters()`).
 */
import { type AddressInfo, createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Logger } from 'pino';
import type { ClusterGate } from '../cluster/node.js';
import type { Store } from '../engine/store.js';
import { encodeFrame } from '../protocol/frame.js';
import {
  FRAME_TIMEOUT_MS,
  MAX_REPLY_BYTES,
  PROTOCOL_VERSION,
  REFUSAL_FIRST_BYTE_WAIT_MS,
  SHUTDOWN_GRACE_MS,
} from '../protocol/limits.js';
import { INFO_SECTIONS, type InfoSection } from '../protocol/messages.js';
import type { PrimaryAddress } from '../replication/replica.js';
import { Replication } from '../replication/replication.js';
import type { RespClientInfo, RespServer } from '../resp/command.js';
import { endRespReplyTick, RespConnection } from '../resp/connection.js';
import { infoText } from '../resp/info.js';
import { Connection, endReplyTick } from './connection.js';
import { IdleClock } from './idle-clock.js';
import { ServerMetrics } from './metrics.js';
import { isRespStart, PendingConnection } from './protocol-detect.js';
import type { ConnectionHost, ServedConnection } from './served-connection.js';
import { deliverChunks } from './socket-reads.js';

/**
 * What KvServer needs; main.ts fills it from ServerConfig (config.ts), where
 * each setting's default and trade-off is documented and resolved.
 */
export interface ServerOptions {
  /** Address to bind (config `host`, default 127.0.0.1). */
  host: string;
  /** TCP port; 0 = any free port (config `port`, default 7379). */
  port: number;
  /** Largest request frame body after AUTH, bytes (default 64 MiB). */
  maxFrameBytes: number;
  /** Connections served at once; more get a fatal MAX_CLIENTS frame (default 10,000). */
  maxClients: number;
  /** Close a connection idle this long, ms; 0 = never (default). */
  idleTimeoutMs: number;
  /** Require AUTH with this password; undefined = no AUTH (default). */
  password: string | undefined;
  /** PEM certificate and key: serve TLS instead of plain TCP (default plain). */
  tls: { cert: Buffer; key: Buffer } | undefined;
  /** Reported by HELLO and INFO server.version. */
  version: string;
  /** Log commands taking at least this long, ms. Default undefined: off (requests are not timed). */
  slowlogThresholdMs?: number | undefined;
  /** A started frame must be complete within this, ms (slow clients). Default FRAME_TIMEOUT_MS (30 s); tests shorten it. */
  frameTimeoutMs?: number | undefined;
  /** Largest reply frame body; larger replies get TOO_LARGE. Default MAX_REPLY_BYTES (2^32-1, the uint32 prefix); tests lower it. */
  maxReplyBytes?: number | undefined;
  /** Start as a read-only replica of this primary (config `replicaOf`); it is sent `password` too. Default: a primary. */
  replicaOf?: PrimaryAddress | undefined;
  /** Acknowledge a write only once this many replicas have it (config `minReplicasAck`). Default 0: not waiting. */
  minReplicasAck?: number | undefined;
  /** How long a write waits for them before NOT_ENOUGH_REPLICAS, ms (config `minReplicasTimeoutMs`). Default 10 s. */
  minReplicasTimeoutMs?: number | undefined;
}

/** The connection counters of INFO `clients` and the metrics endpoint. */
export interface ConnectionCounters {
  connected: number;
  maxClients: number;
  totalConnections: number;
  rejectedConnections: number;
}

/** Period of the sweep for overdue frames and idle connections (shorter when the idle timeout is short). */
const SWEEP_INTERVAL_MS = 250;

/** A drained list of connections to flush longer than this is dropped rather than kept for the next tick. */
const DIRTY_KEPT = 1024;

export class KvServer implements ConnectionHost, RespServer {
  readonly log: Logger;
  readonly version: string;
  readonly password: string | undefined;
  readonly maxFrameBytes: number;
  readonly frameTimeoutMs: number;
  readonly maxReplyBytes: number;
  commandsProcessed = 0;
  readonly metrics: ServerMetrics;
  /** Change feeds served and the tombstone horizon (src/replication/). */
  readonly replication: Replication;
  /** Cluster mode (src/cluster/node.ts), attached by attachCluster() once the server listens; undefined outside a cluster. */
  cluster: ClusterGate | undefined;
  /** RESP's cluster hooks: set only in cluster mode, so a plain server pays nothing per command. */
  redirect: ((keys: readonly Buffer[], write: boolean) => string | undefined) | undefined;
  ackRefusal: (() => string | undefined) | undefined;
  private readonly server: Server;
  /** Connections of both protocols, and those whose first byte has not arrived yet (protocol-detect.ts). */
  private readonly connections = new Set<ServedConnection>();
  /**
   * Connections with replies queued this tick, each once (a connection asks
   * only when it has not asked yet): the first `dirtyCount` entries. The
   * array is kept from tick to tick, not made per tick: at pipeline 1 a new
   * one, grown by push, was about a tenth of the bytes allocated per request.
   */
  private dirty: (ServedConnection | undefined)[] = [];
  private dirtyCount = 0;
  private flushScheduled = false;
  private totalConnections = 0;
  private rejectedConnections = 0;
  private readonly startedAt = Date.now();
  private closing: Promise<void> | undefined;
  private port = 0;
  /** Four times a second (faster for a short idle timeout): overdue partial frames (slow clients) and idle connections are closed. */
  private readonly frameSweep: NodeJS.Timeout;
  /** The idle clock of each socket (idle-clock.ts). */
  private readonly idleClocks = new WeakMap<Socket, IdleClock>();

  constructor(
    store: Store,
    private readonly options: ServerOptions,
    log: Logger,
  ) {
    this.log = log;
    this.version = options.version;
    this.password = options.password;
    this.maxFrameBytes = options.maxFrameBytes;
    this.frameTimeoutMs = options.frameTimeoutMs ?? FRAME_TIMEOUT_MS;
    this.maxReplyBytes = options.maxReplyBytes ?? MAX_REPLY_BYTES;
    this.metrics = new ServerMetrics({ slowlogThresholdMs: options.slowlogThresholdMs, log });
    this.cluster = undefined;
    this.redirect = undefined;
    this.ackRefusal = undefined;
    this.replication = new Replication(store, log, {
      replicaOf: options.replicaOf,
      password: options.password,
      minReplicasAck: options.minReplicasAck,
      minReplicasTimeoutMs: options.minReplicasTimeoutMs,
    });
    // `always`: the replies of writes acknowledged by an fsync leave as soon as it completes.
    store.afterSyncAck = this.flushAfterSync;
    // `always`: a round of writes only fsyncs on the loop, as Redis's does (Store.syncsInline).
    store.syncsInlineAllowed = true;
    const idleMs = options.idleTimeoutMs;
    this.frameSweep = setInterval(
      () => {
        const now = Date.now();
        for (const conn of this.connections) {
          conn.checkFrameDeadline(now);
          if (idleMs > 0 && (this.idleClocks.get(conn.socket)?.idleFor(now) ?? 0) >= idleMs)
            conn.idle(idleMs);
        }
      },
      idleMs > 0 ? Math.min(SWEEP_INTERVAL_MS, Math.max(10, Math.floor(idleMs / 4))) : SWEEP_INTERVAL_MS,
    ).unref();
    const onSocket = (socket: Socket) => this.accept(socket);
    if (options.tls) {
      this.server = createTlsServer(
        { cert: options.tls.cert, key: options.tls.key, allowHalfOpen: true },
        onSocket,
      );
      this.server.on('tlsClientError', (err) => log.debug({ err }, 'TLS handshake failed'));
    } else {
      this.server = createNetServer({ allowHalfOpen: true, noDelay: true }, onSocket);
    }
    this.server.on('error', (err) => log.error({ err }, 'listener error'));
  }

  /** Starts listening; resolves with the bound address. */
  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen({ host: this.options.host, port: this.options.port }, () => {
        this.server.off('error', onError);
        const address = this.server.address() as AddressInfo;
        this.port = address.port;
        this.replication.start(address.port);
        resolve(address);
      });
    });
  }

  /** The open store: a replica's full resync or truncation replaces it (replication.ts). */
  get store(): Store {
    return this.replication.store;
  }

  private accept(socket: Socket): void {
    this.totalConnections++;
    if (this.closing || this.connections.size >= this.options.maxClients) {
      this.rejectedConnections++;
      const frame = encodeFrame([
        null,
        null,
        {
          code: 'MAX_CLIENTS',
          message: this.closing
            ? 'the server is shutting down'
            : `the server already serves ${this.options.maxClients} clients (server option --max-clients)`,
        },
      ]);
      socket.on('error', () => {});
      // Refused in the client's protocol: a Redis client speaks first, so wait briefly for
      // its first byte (protocol-detect.ts); a silent one gets the native frame.
      let refused = false;
      const refuse = (resp: boolean) => {
        if (refused) return;
        refused = true;
        clearTimeout(wait);
        socket.end(resp ? `-ERR max number of clients reached\r\n` : frame);
        setTimeout(() => socket.destroy(), 2000).unref();
      };
      const wait = setTimeout(() => refuse(false), REFUSAL_FIRST_BYTE_WAIT_MS);
      socket.once('data', (chunk: Buffer) => refuse(isRespStart(chunk[0]!)));
      return;
    }
    // Reads go through the shared read buffer (socket-reads.ts); TLS sockets keep Node's 'data'.
    if (!this.options.tls) deliverChunks(socket, () => {});
    // The protocol (native or RESP) is chosen by the first byte the client sends.
    let conn: ServedConnection = new PendingConnection(socket, this, (real) => {
      conn = real;
      this.connections.add(real);
      this.log.debug(
        { id: real.id, remote: real.remote, resp: real instanceof RespConnection },
        'connection opened',
      );
    });
    this.connections.add(conn);
    if (this.options.idleTimeoutMs > 0) this.idleClocks.set(socket, new IdleClock(socket));
  }

  forget(conn: ServedConnection): void {
    this.connections.delete(conn);
    this.log.debug({ id: conn.id, remote: conn.remote }, 'connection closed');
  }

  scheduleFlush(conn: ServedConnection): void {
    this.dirty[this.dirtyCount++] = conn;
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate, not a microtask: replies of every connection read in this poll
    // phase leave together, so their clients' next requests arrive together and the
    // store's per-tick write (and fsync) covers more of them. A microtask flush was
    // measured: +38% ops/s for set at -P 1 but -16% for mixed at -P 1 and -18% at -P 16.
    setImmediate(this.flushTick);
  }

  /** flushAll, made once (an arrow made in scheduleFlush would cost it a closure and a context per call). */
  private readonly flushTick = (): void => this.flushAll();

  /** The store's `always` acks settled (Store.afterSyncAck): write their replies now, not at the end of this turn. */
  private readonly flushAfterSync = (): void => {
    if (this.dirtyCount > 0) this.flushAll();
  };

  private flushAll(): void {
    // The store's writes of this tick first: their acks (TickAck listeners, `interval`
    // and `never`) queue their replies now, so they leave in this flush, not one
    // event-loop turn later.
    this.store.flushTick();
    // A flush may queue more (a paused connection resumes and answers what it had
    // received): those are flushed in this same pass. A closed one's flush does nothing.
    const dirty = this.dirty;
    for (let i = 0; i < this.dirtyCount; i++) {
      const conn = dirty[i]!;
      dirty[i] = undefined;
      conn.flush();
    }
    this.dirtyCount = 0;
    // A list that grew long (many clients at once) is not kept at that length.
    if (dirty.length > DIRTY_KEPT) this.dirty = [];
    this.flushScheduled = false;
    // This tick's GET replies are encoded (each asked for this flush, or waits behind
    // an earlier reply and a later tick's flush lets go); what every connection took
    // was written.
    endReplyTick();
    endRespReplyTick();
  }

  info(sections: readonly InfoSection[]): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const stats = this.store.stats();
    for (const section of sections) {
      switch (section) {
        case 'server':
          out.server = {
            name: 'segkv',
            version: this.version,
            protocol: PROTOCOL_VERSION,
            node: process.version,
            pid: process.pid,
            uptimeMs: Date.now() - this.startedAt,
            port: this.port,
            tls: this.options.tls !== undefined,
            authRequired: this.password !== undefined,
            maxFrameBytes: this.maxFrameBytes,
            dir: this.store.dir,
            fsync: stats.fsync.mode,
          };
          break;
        case 'keyspace':
          out.keyspace = { keys: stats.keys, expiringKeys: stats.expiringKeys };
          break;
        case 'storage':
          out.storage = {
            segments: stats.segments.length,
            diskBytes: stats.diskBytes,
            liveBytes: stats.liveBytes,
            deadBytes: stats.deadBytes,
            firstOffset: stats.firstOffset,
            nextOffset: stats.nextOffset,
            cache: stats.cache,
            fsync: {
              ...stats.fsync,
              avgMs:
                stats.fsync.count > 0
                  ? Math.round((stats.fsync.totalMs / stats.fsync.count) * 1000) / 1000
                  : 0,
            },
            recovery: stats.recovery,
            corruption: stats.corruption,
          };
          break;
        case 'compaction': {
          const c = (stats as { compaction?: unknown }).compaction;
          out.compaction =
            typeof c === 'object' && c !== null ? { available: true, ...c } : { available: false };
          break;
        }
        case 'clients':
          out.clients = { ...this.counters(), commandsProcessed: this.commandsProcessed };
          break;
        case 'stats':
          out.stats = {
            commandsProcessed: this.commandsProcessed,
            commands: this.metrics.commandCounts(),
            bytesIn: this.metrics.bytesIn,
            bytesOut: this.metrics.bytesOut,
            slowCommands: this.metrics.slowCommands,
            slowlogThresholdMs: this.metrics.slowlogThresholdMs ?? null,
          };
          break;
        case 'replication':
          out.replication = this.replication.info();
          break;
      }
    }
    return out;
  }

  // ---- RespServer: what RESP commands see (src/resp/) ---------------------

  infoText(sections: readonly string[]): string {
    return infoText(sections, this.info(INFO_SECTIONS) as Parameters<typeof infoText>[1]);
  }

  clients(): RespClientInfo[] {
    const now = Date.now();
    const out: RespClientInfo[] = [];
    for (const conn of this.connections) {
      if (conn instanceof RespConnection) out.push(conn.info(now));
      else if (conn instanceof Connection) {
        const s = conn.socket;
        out.push({
          id: conn.id,
          addr: conn.remote,
          laddr: `${s.localAddress}:${s.localPort}`,
          name: '',
          ageSeconds: 0,
          idleSeconds: 0,
          cmd: 'NULL',
          resp: 0,
        });
      }
    }
    return out;
  }

  /**
   * RESP's cluster hook: Redis Cluster's error for a command on `keys` here
   * (`MOVED slot host:port`, `CROSSSLOT ...`, `CLUSTERDOWN ...`, `READONLY ...`), or undefined.
   */
  attachCluster(cluster: ClusterGate): void {
    this.cluster = cluster;
    this.redirect = (keys, write) => this.clusterRefusal(keys, write);
    this.ackRefusal = () => this.clusterAckRefusal();
  }

  private clusterRefusal(keys: readonly Buffer[], write: boolean): string | undefined {
    const refused = this.cluster?.check(keys, write);
    if (refused === undefined) return undefined;
    switch (refused.code) {
      case 'MOVED':
        return `MOVED ${refused.message}`;
      case 'CROSSSLOT':
        return "CROSSSLOT Keys in request don't hash to the same slot";
      case 'READONLY':
        return "READONLY You can't write against a read only replica.";
      default:
        return `CLUSTERDOWN ${refused.message}`;
    }
  }

  /** RESP's ack hook: the error for a write whose ack is due after this node lost its leadership, or undefined. */
  private clusterAckRefusal(): string | undefined {
    if (this.cluster === undefined) return undefined;
    try {
      this.cluster.acknowledge(undefined);
      return undefined;
    } catch (err) {
      // Not CLUSTERDOWN: Redis clients resend on that, and this write may have been applied.
      return `FENCED ${(err as Error).message}`;
    }
  }

  /** RESP's READONLY hook: a replica refuses writes (Redis wording). */
  writeRefusal(): string | undefined {
    if (this.replication.role === 'replica') return "READONLY You can't write against a read only replica.";
    // Redis's words for min-replicas-to-write; segkv also waits for the replicas' acks (--min-replicas-ack).
    if (this.replication.refuseForReplicas() !== undefined)
      return 'NOREPLICAS Not enough good replicas to write.';
    return undefined;
  }

  configValues(): [string, string][] {
    const fsync = this.store.stats().fsync.mode;
    return [
      ['bind', this.options.host],
      ['port', String(this.port)],
      ['maxclients', String(this.options.maxClients)],
      ['timeout', String(Math.floor(this.options.idleTimeoutMs / 1000))],
      ['requirepass', this.password ?? ''],
      ['dir', this.store.dir],
      ['databases', '1'],
      ['appendonly', 'yes'],
      ['appendfsync', fsync === 'always' ? 'always' : fsync === 'interval' ? 'everysec' : 'no'],
      ['save', ''],
      ['proto-max-bulk-len', String(this.maxFrameBytes)],
      ['tls-port', this.options.tls ? String(this.port) : '0'],
    ];
  }

  counters(): ConnectionCounters {
    return {
      connected: this.connections.size,
      maxClients: this.options.maxClients,
      totalConnections: this.totalConnections,
      rejectedConnections: this.rejectedConnections,
    };
  }

  get clientCount(): number {
    return this.connections.size;
  }

  /** Stops accepting, finishes in-flight requests, closes every connection, stops replication. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    clearInterval(this.frameSweep);
    if (this.store.afterSyncAck === this.flushAfterSync) this.store.afterSyncAck = undefined;
    const replication = this.replication.close();
    this.closing = new Promise<void>((resolve) => {
      this.server.close();
      for (const conn of this.connections) conn.shutdown();
      const started = Date.now();
      const poll = setInterval(() => {
        if (this.connections.size === 0) {
          clearInterval(poll);
          void replication.then(resolve, (err: unknown) => {
            this.log.error({ err }, 'stopping replication failed');
            resolve();
          });
        } else if (Date.now() - started > SHUTDOWN_GRACE_MS) {
          this.log.warn(
            { clients: this.connections.size },
            'shutdown grace period over; cutting connections',
          );
          for (const conn of this.connections) conn.socket.destroy();
        }
      }, 10);
    });
    return this.closing;
  }
}
