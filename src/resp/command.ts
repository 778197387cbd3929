/**
 * The shape of a RESP command (one row of the command table, table.ts) and
 * the argument helpers every handler uses, with Redis's wording for each
 * mistake. A handler gets the whole argv (argv[0] is the command name as
 * sent) and returns a Reply, a promise of one, or for a write the store's
 * tick ack and its reply (acked-write.ts: answered once acknowledged per the
 * fsync mode); it throws RespError for an error reply.
 * Arity is checked before the handler runs, Redis style: a positive arity is
 * the exact argc, a negative one the minimum.
 */
import type { ClusterGate } from '../cluster/node.js';
import type { Store } from '../engine/store.js';
import { KvError } from '../errors.js';
import type { Replication } from '../replication/replication.js';
import type { AckedWrite } from '../server/acked-write.js';
import { err, NOT_AN_INTEGER, type Reply, RespError } from './reply.js';
import type { Protocol } from './writer.js';

/** What a RESP connection tells COMMAND LIST / CLIENT LIST about itself. */
export interface RespClientInfo {
  id: number;
  addr: string;
  laddr: string;
  name: string;
  ageSeconds: number;
  idleSeconds: number;
  /** The last command's full name (`client|list`). */
  cmd: string;
  /** 2 or 3; 0 for a native (MessagePack) connection. */
  resp: number;
}

/** What the server offers RESP handlers (KvServer implements it). */
export interface RespServer {
  readonly store: Store;
  readonly version: string;
  readonly password: string | undefined;
  readonly maxFrameBytes: number;
  /** Redis-style INFO text for these section names (lower case; 'default', 'all', 'everything' expand). */
  infoText(sections: readonly string[]): string;
  /** Every client connection, RESP and native. */
  clients(): RespClientInfo[];
  /** CONFIG GET: every parameter segkv has, Redis-named, with its value. */
  configValues(): [string, string][];
  /**
   * Hook for replication: a reason to refuse writes (a replica answers
   * `READONLY You can't write against a read only replica.`), or undefined.
   */
  writeRefusal?(): string | undefined;
  /**
   * Hook for cluster mode: the error for a command on `keys` (all its keys;
   * none for a keyless write) on this node — `MOVED slot host:port`,
   * `CROSSSLOT ...`, `CLUSTERDOWN ...`, `READONLY ...` — or undefined.
   */
  /** Replication (src/replication/): ROLE, WAIT, REPLICAOF, and --min-replicas-ack for RESP writes. */
  readonly replication: Replication;
  /** Cluster mode (src/cluster/node.ts): the slot map for CLUSTER SLOTS/SHARDS/INFO; undefined outside a cluster. */
  readonly cluster?: ClusterGate | undefined;
  readonly redirect?: ((keys: readonly Buffer[], write: boolean) => string | undefined) | undefined;
  /** Hook for cluster mode: the error for a write whose ack is due after this node lost its leadership, or undefined. */
  readonly ackRefusal?: (() => string | undefined) | undefined;
}

/** What a handler sees of its connection. */
export interface RespSession {
  readonly server: RespServer;
  readonly store: Store;
  readonly id: number;
  proto: Protocol;
  authenticated: boolean;
  clientName: string;
  /** The full name of the command being run (CLIENT LIST `cmd=`). */
  lastCommand: string;
  /** The log's end after this connection's last write: what WAIT waits for the replicas to hold. */
  lastWriteOffset: number;
  /** Called after a failed AUTH; the connection closes after too many. */
  authFailed(): void;
  /** Reply to this request, then close the connection (QUIT). */
  quitAfterReply(): void;
  /** The connection now speaks only after AUTH: raise its request limits (AUTH succeeded). */
  onAuthenticated(): void;
}

export type Handler = (s: RespSession, argv: Buffer[]) => Reply | Promise<Reply> | AckedWrite;

export interface RespCommand {
  /** Lower case, as COMMAND and error messages name it; `parent|sub` for a subcommand. */
  readonly name: string;
  /** Redis arity: > 0 exact argc (name included), < 0 at least -arity. */
  readonly arity: number;
  /** Redis command flags (COMMAND INFO): write, readonly, fast, admin, noauth, loading, stale, ... */
  readonly flags: readonly string[];
  /** Flag `noauth`: allowed before AUTH. */
  readonly noAuth: boolean;
  /** Flag `write`: refused on a replica (READONLY). */
  readonly write: boolean;
  /** Key positions: first, last (-1 = the last argument), step; 0 0 0 if none. */
  readonly keys: readonly [number, number, number];
  /** ACL categories without the @, for COMMAND INFO. */
  readonly acl: readonly string[];
  /** COMMAND DOCS: group, summary, since, complexity, and the argument synopsis (docs.ts parses it). */
  readonly group: string;
  readonly summary: string;
  readonly since: string;
  readonly complexity: string;
  readonly synopsis: string;
  readonly subcommands?: readonly RespCommand[];
  readonly run: Handler;
}

/** Builds a command row; `flags`/`acl` are space-separated. */
export function command(
  name: string,
  arity: number,
  flags: string,
  keys: readonly [number, number, number],
  doc: {
    group: string;
    summary: string;
    since: string;
    complexity?: string;
    synopsis?: string;
    acl?: string;
  },
  run: Handler,
  subcommands?: readonly RespCommand[],
): RespCommand {
  const flagList = flags.split(' ').filter(Boolean);
  return {
    name,
    arity,
    flags: flagList,
    noAuth: flagList.includes('noauth'),
    write: flagList.includes('write'),
    keys,
    acl: (doc.acl ?? '').split(' ').filter(Boolean),
    group: doc.group,
    summary: doc.summary,
    since: doc.since,
    complexity: doc.complexity ?? 'O(1)',
    synopsis: doc.synopsis ?? '',
    run,
    ...(subcommands && { subcommands }),
  };
}

export function wrongArity(name: string): RespError {
  return err(`wrong number of arguments for '${name}' command`);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Redis's string2ll: an optional `-`, 1 to 20 digits, no leading zeros, no
 * `+` or blanks, within int64. Undefined if not such a number.
 */
export function parseInt64(b: Uint8Array): bigint | undefined {
  const n = b.length;
  if (n === 0 || n > 20) return undefined;
  let i = 0;
  if (b[0] === 0x2d) {
    i = 1;
    if (n === 1) return undefined;
  }
  if (b[i] === 0x30) return n === 1 ? 0n : undefined; // "0" only; "-0" and "01" are not numbers
  for (let j = i; j < n; j++) {
    const c = b[j]!;
    if (c < 0x30 || c > 0x39) return undefined;
  }
  const v = BigInt(Buffer.from(b.buffer, b.byteOffset, n).toString('latin1'));
  return v < INT64_MIN || v > INT64_MAX ? undefined : v;
}

export function isInt64(v: bigint): boolean {
  return v >= INT64_MIN && v <= INT64_MAX;
}

/** An integer argument, or `ERR value is not an integer or out of range`. */
export function intArg(b: Buffer): bigint {
  const v = parseInt64(b);
  if (v === undefined) throw new RespError(NOT_AN_INTEGER);
  return v;
}

/** An integer argument as a JS number (safe range), or Redis's error. */
export function smallIntArg(b: Buffer): number {
  const v = intArg(b);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new RespError(NOT_AN_INTEGER);
  }
  return Number(v);
}

/** The argument upper-cased, as ASCII (for option words). */
export function word(b: Buffer | undefined): string {
  return b === undefined ? '' : b.toString('latin1').toUpperCase();
}

/** A store failure as a RESP error line; RespErrors pass through. */
export function toRespError(e: unknown): RespError {
  if (e instanceof RespError) return e;
  if (e instanceof KvError) {
    const prefix = e.code === 'BUSY' ? 'BUSY' : e.code === 'NOAUTH' ? 'NOAUTH' : 'ERR';
    return new RespError(`${prefix} ${e.message}`);
  }
  return new RespError('ERR unexpected server error; see the server log');
}
