/**
 * The one catalog of segkv errors. Every error carries a stable `code` that also
 * travels on the wire (protocol/PROTOCOL.md lists them); messages say what the
 * user can do about it. Few classes: `KvError` for everything a caller can get,
 * `CorruptionError` when bytes on disk fail their checks (always loud, never
 * turned into "not found").
 */

export type ErrorCode =
  /** The key is empty, too long, or not a string/Buffer. */
  | 'INVALID_KEY'
  /** The value is too large or not a string/Buffer. */
  | 'INVALID_VALUE'
  /** An argument other than key or value is wrong (TTL, batch op, scan option). */
  | 'INVALID_ARGUMENT'
  /** The store (or client) was closed; open it again. */
  | 'CLOSED'
  /** Another process (or this one) already holds the data directory. */
  | 'LOCKED'
  /** Bytes on disk failed a CRC, magic or bounds check. */
  | 'CORRUPTION'
  /** The operating system refused a read, write or fsync. */
  | 'IO_ERROR'
  /** A compaction is already running, or was refused. */
  | 'BUSY'
  // ---- wire codes (protocol/PROTOCOL.md §8) ----
  /** A frame or request envelope could not be read (bad length, bad MessagePack, bad id); the connection is closed. */
  | 'PROTOCOL_ERROR'
  /** The command name is not one the server knows. */
  | 'UNKNOWN_COMMAND'
  /** Wrong number or MessagePack types of a command's arguments. */
  | 'WRONG_ARGS'
  /** The server has a password and this connection has not sent a good AUTH yet. */
  | 'NOAUTH'
  /** AUTH with a wrong password (or AUTH to a server without one). */
  | 'AUTH_FAILED'
  /** A frame's length prefix exceeds the limit (maxFrameBytes, or the pre-AUTH limit); the connection is closed. */
  | 'TOO_LARGE'
  /** The server already serves maxClients connections; the connection is closed. */
  | 'MAX_CLIENTS'
  /** A request got no reply within requestTimeoutMs (client), or the connection sat idle past idleTimeoutMs (server). */
  | 'TIMEOUT'
  /** The connection closed before the reply arrived; the command may or may not have been applied. */
  | 'CONNECTION_CLOSED'
  /** The client could not connect: refused, unreachable, a TLS mismatch, or the peer is not a segkv server (the message says which and what to pass; `cause` is the socket error). */
  | 'CONNECTION_FAILED'
  /** The command exists but this server or store cannot run it (e.g. COMPACT without a compactor). */
  | 'NOT_SUPPORTED'
  /** --min-replicas-ack N and fewer than N replicas connected: the write was refused, nothing written. */
  | 'NOREPLICAS'
  /** --min-replicas-ack N: the write is in the primary's log but fewer than N replicas acknowledged it in time. */
  | 'NOT_ENOUGH_REPLICAS'
  /** A write sent to a read-only replica; the message names its primary. */
  | 'READONLY'
  /** A replica in a full resync: its data is partial until it has caught up, so reads are refused (Redis's LOADING). Retry later or read from the primary. */
  | 'LOADING'
  /** FEED from an offset the log cannot serve exactly (below the tombstone horizon, or past its end). */
  | 'OFFSET_OUT_OF_RANGE'
  /** Cluster mode: another shard owns the key's slot; the message is `slot host:port` of its primary (Redis Cluster's MOVED). */
  | 'MOVED'
  /** Cluster mode: a multi-key command's keys hash to different slots. */
  | 'CROSSSLOT'
  /** Cluster mode: the slot's shard has no primary right now (a failover is under way), a planned switchover pauses its writes, or the topology is not loaded. The command was not run. */
  | 'CLUSTERDOWN'
  /** Cluster mode: this node lost its leadership before acknowledging a write; the write may or may not have been applied. */
  | 'FENCED'
  /** An unexpected failure inside the server; its log has the details. */
  | 'INTERNAL';

export class KvError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KvError';
    this.code = code;
  }
}

/** A record, hint, index or header failed its checks. `file` and `position` say where. */
export class CorruptionError extends KvError {
  readonly file: string;
  readonly position: number;

  constructor(file: string, position: number, what: string) {
    super('CORRUPTION', `${what} in ${file} at byte ${position}; run kv-check on the data directory`);
    this.name = 'CorruptionError';
    this.file = file;
    this.position = position;
  }
}

export function closedError(): KvError {
  return new KvError('CLOSED', 'the store is closed; open it again with openStore()');
}

export function ioError(op: string, cause: unknown): KvError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new KvError('IO_ERROR', `${op} failed: ${detail}`, { cause });
}
