/**
 * The request and response envelopes of protocol/PROTOCOL.md, shared by the
 * server and the client SDK.
 *
 *   request:  [id, command, ...args]         id: uint32 chosen by the client
 *   success:  [id, result]                   2 elements
 *   error:    [id, null, {code, message}]    3 elements
 *   fatal:    [null, null, {code, message}]  then the server closes the connection
 */
import type { ErrorCode } from '../errors.js';

/** Every command of protocol version 1, in the order PROTOCOL.md lists them. */
export const COMMAND_NAMES = [
  'HELLO',
  'PING',
  'AUTH',
  'QUIT',
  'GET',
  'SET',
  'DEL',
  'MGET',
  'MSET',
  'EXISTS',
  'INCR',
  'TTL',
  'PTTL',
  'EXPIRE',
  'PEXPIRE',
  'PERSIST',
  'SCAN',
  'DBSIZE',
  'INFO',
  'COMPACT',
  'FEED',
  'ROLE',
  'REPLICAOF',
  'CLUSTER',
  'WAIT',
] as const;

/** Commands that write: refused with READONLY on a replica. */
export const WRITE_COMMANDS: ReadonlySet<string> = new Set<CommandName>([
  'SET',
  'DEL',
  'MSET',
  'INCR',
  'EXPIRE',
  'PEXPIRE',
  'PERSIST',
]);

/** Commands that read keys: refused with LOADING on a replica in a full resync. */
export const READ_COMMANDS: ReadonlySet<string> = new Set<CommandName>([
  'GET',
  'MGET',
  'EXISTS',
  'TTL',
  'PTTL',
  'SCAN',
  'DBSIZE',
]);

export type CommandName = (typeof COMMAND_NAMES)[number];

/**
 * Where each command's keys are in a request `[id, name, ...args]`: first
 * index, last index (-1 = the last element), step; undefined when the
 * command has no keys. Cluster mode routes a request by these (MOVED,
 * CROSSSLOT); a command added to COMMAND_NAMES must say here where its keys are.
 */
export const KEY_SPECS: Readonly<
  Record<CommandName, readonly [first: number, last: number, step: number] | undefined>
> = {
  HELLO: undefined,
  PING: undefined,
  AUTH: undefined,
  QUIT: undefined,
  GET: [2, 2, 1],
  SET: [2, 2, 1],
  DEL: [2, -1, 1],
  MGET: [2, -1, 1],
  MSET: [2, -1, 2],
  EXISTS: [2, -1, 1],
  INCR: [2, 2, 1],
  TTL: [2, 2, 1],
  PTTL: [2, 2, 1],
  EXPIRE: [2, 2, 1],
  PEXPIRE: [2, 2, 1],
  PERSIST: [2, 2, 1],
  SCAN: undefined,
  DBSIZE: undefined,
  INFO: undefined,
  COMPACT: undefined,
  FEED: undefined,
  ROLE: undefined,
  REPLICAOF: undefined,
  WAIT: undefined,
  CLUSTER: undefined,
};

/** The keys of a request, by KEY_SPECS (elements that are not keys are left to the command's own checks). */
export function requestKeys(name: CommandName, req: readonly unknown[]): (string | Uint8Array)[] {
  const spec = KEY_SPECS[name];
  if (spec === undefined) return [];
  const [first, lastSpec, step] = spec;
  const last = lastSpec < 0 ? req.length + lastSpec : lastSpec;
  const keys: (string | Uint8Array)[] = [];
  for (let i = first; i <= last && i < req.length; i += step) {
    const k = req[i];
    if (typeof k === 'string' || k instanceof Uint8Array) keys.push(k);
  }
  return keys;
}

/** Commands a connection may send before AUTH succeeds on a server with a password. */
export const PREAUTH_COMMANDS: ReadonlySet<string> = new Set<CommandName>(['HELLO', 'PING', 'AUTH', 'QUIT']);

/** Sections of INFO, in reply order. */
export const INFO_SECTIONS = [
  'server',
  'keyspace',
  'storage',
  'compaction',
  'clients',
  'stats',
  'replication',
] as const;
export type InfoSection = (typeof INFO_SECTIONS)[number];

/** The error object of an error or fatal response. */
export interface WireError {
  code: ErrorCode;
  message: string;
}

export type Request = [id: number, command: string, ...args: unknown[]];
export type SuccessResponse = [id: number, result: unknown];
export type ErrorResponse = [id: number | null, result: null, error: WireError];
export type Response = SuccessResponse | ErrorResponse;

/** Options map of SET (all optional). */
export interface WireSetOptions {
  /** Time to live in ms, a positive integer. */
  ttl?: number;
  /** Only set if the key does not exist. */
  nx?: boolean;
  /** Only set if the key exists. */
  xx?: boolean;
}

/** Options map of SCAN (all optional). */
export interface WireScanOptions {
  prefix?: string | Uint8Array;
  /** Glob pattern, Redis's syntax (`*`, `?`, `[a-z]`, backslash escapes); count = keys examined. */
  match?: string | Uint8Array;
  start?: string | Uint8Array;
  end?: string | Uint8Array;
  cursor?: string;
  count?: number;
  /** Keys as bin (exact bytes) instead of str. */
  raw?: boolean;
}

/** Reply of SCAN: keys are str, or bin with `raw`. */
export interface WireScanPage {
  keys: string[] | Uint8Array[];
  cursor: string | null;
}

/** Reply of HELLO. */
export interface HelloReply {
  server: 'segkv';
  version: string;
  protocol: number;
  authRequired: boolean;
  authenticated: boolean;
  maxFrameBytes: number;
  commands: string[];
}

/** A log record on the change feed: [offset, flags, expiresAt, key, value (nil for a tombstone)]. */
export type WireFeedRecord = [
  offset: number,
  flags: number,
  expiresAt: number,
  key: Uint8Array,
  value: Uint8Array | null,
];

/** The first reply to FEED. */
export interface FeedStart {
  /** The offset the feed starts at (as asked). */
  from: number;
  /** The log's next offset when the feed opened. */
  end: number;
  /** The tombstone horizon: a FEED from an offset ≥ it (or from 0) replays the log exactly. */
  horizon: number;
  /** A raw feed (option raw): the record format of its runs (record-run.ts RECORD_RUN_FORMAT). */
  format?: number;
  /**
   * A raw feed: the log's number of keys when the feed opened (a replica
   * reading from 0 sizes its keydir with it). Absent from older servers.
   */
  keys?: number;
}

/** Every later frame of a feed (`[id, FeedBatch]`); `records` is empty in a heartbeat. */
export interface FeedBatch {
  records: WireFeedRecord[];
  /** Every record below this offset has now been sent (the feed's position). */
  next: number;
  /** The log's next offset when the frame was sent: how far behind the reader is. */
  end: number;
}

/** Every later frame of a raw feed (FEED option raw): `raw` holds a record run (empty in a heartbeat). */
export interface RawFeedBatch {
  /** Whole records back to back, as the log's segments hold them (record.ts). */
  raw: Uint8Array;
  next: number;
  end: number;
}

/** Reply of ROLE: what a replica needs to decide how to sync, and what an operator asks first. */
export interface RoleReply {
  role: 'primary' | 'replica';
  /** The log's lineage: its id (hex) and epoch history [[epoch, startOffset], ...]. */
  logId: string;
  epoch: number;
  epochs: [number, number][];
  /** The log's next offset. */
  end: number;
  /** The tombstone horizon: a feed from an offset ≥ it (or 0) is exact. */
  horizon: number;
  /** On a replica: its primary (HOST:PORT) and the link's status; nil on a primary. */
  primary: string | null;
  link: string | null;
}
