/**
 * The command table: one handler per command of protocol/PROTOCOL.md §6.
 * A handler gets the decoded request `[id, name, ...args]` and returns the
 * result, or a promise of it; a write returns its store's tick ack and its
 * reply (acked-write.ts: answered once acknowledged per the fsync mode); it
 * throws KvError for an error reply.
 *
 * Invariants: argument types and counts are checked here (WRONG_ARGS) before
 * the store sees anything; key and value limits are the store's (INVALID_KEY,
 * INVALID_VALUE); reads are synchronous (store.getSync), so a pipeline of
 * GETs costs no promise per request. Multi-key writes (DEL of several keys,
 * MSET) go through store.batch and are atomic. INCR reads and writes in the
 * same tick, so no other request can interleave.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ClusterGate } from '../cluster/node.js';
import { keySlot } from '../cluster/slots.js';
import { checkTtlMs, type Key, type Value } from '../engine/keys.js';
import { MAX_TTL_MS } from '../engine/limits.js';
import type { BatchOp, ScanOptions, SetOptions, Store } from '../engine/store.js';
import { ioError, KvError } from '../errors.js';
import { MAX_REPLICAS, PREAUTH_MAX_FRAME_BYTES, PROTOCOL_VERSION } from '../protocol/limits.js';
import {
  COMMAND_NAMES,
  type CommandName,
  type FeedStart,
  type HelloReply,
  INFO_SECTIONS,
  type InfoSection,
  PREAUTH_COMMANDS,
  type WireScanPage,
} from '../protocol/messages.js';
import { parsePrimaryAddress } from '../replication/replica.js';
import type { Replication } from '../replication/replication.js';
import { type AckedReply, ackedBy } from './acked-write.js';

/** What a handler may see and do about its connection and server. */
export interface Session {
  readonly store: Store;
  readonly version: string;
  readonly password: string | undefined;
  readonly maxFrameBytes: number;
  /** Largest reply frame body (MAX_REPLY_BYTES): MGET stops reading values past it. */
  readonly maxReplyBytes: number;
  authenticated: boolean;
  /** Called after a failed AUTH; the connection closes after too many. */
  authFailed(): void;
  /** Reply to this request, then close the connection (QUIT). */
  quitAfterReply(): void;
  /** The INFO sections asked for. */
  info(sections: readonly InfoSection[]): Record<string, unknown>;
  /** Turns the connection into a change feed from `from` (FEED); returns the first reply. */
  openFeed(id: number, from: number, replicaPort?: number, raw?: boolean): FeedStart;
  /** This server's replication (role, REPLICAOF). */
  readonly replication: Replication;
  /** Cluster mode's routing and topology; undefined outside a cluster. */
  readonly cluster: ClusterGate | undefined;
  /** The log's next offset after this connection's last write (WAIT). */
  readonly lastWriteOffset: number;
}

type Handler = (s: Session, req: unknown[]) => unknown;

interface CommandSpec {
  /** Argument synopsis, quoted in WRONG_ARGS messages and PROTOCOL.md. */
  usage: string;
  minArgs: number;
  maxArgs: number;
  run: Handler;
}

function wrongArgs(name: string, usage: string): KvError {
  return new KvError('WRONG_ARGS', `wrong arguments for ${name}; usage: ${name} ${usage}`.trimEnd());
}

function isKey(v: unknown): v is Key {
  return typeof v === 'string' || v instanceof Uint8Array;
}

function isPlainMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function key(req: unknown[], i: number, name: string): Key {
  const k = req[i];
  if (!isKey(k)) throw new KvError('WRONG_ARGS', `${name}: argument ${i - 1} must be a key (str or bin)`);
  return k;
}

function value(req: unknown[], i: number, name: string): Value {
  const v = req[i];
  if (!isKey(v)) throw new KvError('WRONG_ARGS', `${name}: argument ${i - 1} must be a value (bin or str)`);
  return v;
}

function options(
  req: unknown[],
  i: number,
  name: string,
  allowed: readonly string[],
): Record<string, unknown> {
  const o = req[i];
  if (o === undefined || o === null) return {};
  if (!isPlainMap(o)) throw new KvError('WRONG_ARGS', `${name}: argument ${i - 1} must be an options map`);
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) {
      throw new KvError('WRONG_ARGS', `${name}: unknown option '${k}'; allowed: ${allowed.join(', ')}`);
    }
  }
  return o;
}

function optNumber(o: Record<string, unknown>, k: string, name: string): number | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number') throw new KvError('WRONG_ARGS', `${name}: option ${k} must be a number`);
  return v;
}

function optString(o: Record<string, unknown>, k: string, name: string): string | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new KvError('WRONG_ARGS', `${name}: option ${k} must be a str`);
  return v;
}

/** A key-like option (prefix, bound): str (its UTF-8 bytes) or bin. */
function optKey(o: Record<string, unknown>, k: string, name: string): string | Uint8Array | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' && !(v instanceof Uint8Array)) {
    throw new KvError('WRONG_ARGS', `${name}: option ${k} must be a str or bin`);
  }
  return v;
}

function optBool(o: Record<string, unknown>, k: string, name: string): boolean {
  const v = o[k];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new KvError('WRONG_ARGS', `${name}: option ${k} must be a bool`);
  return v;
}

function digest(v: string | Uint8Array): Buffer {
  return createHash('sha256').update(v).digest();
}

const INTEGER = /^-?(0|[1-9][0-9]*)$/;

/**
 * EXPIRE `key seconds` / PEXPIRE `key ms` (unit: ms per unit of the
 * argument), as Redis's: a time ≤ 0 deletes the key (true if it existed);
 * otherwise true if the key exists and now expires that long from now.
 */
function expireMs(s: Session, req: unknown[], name: string, unit: 1 | 1000): AckedReply {
  const k = key(req, 2, name);
  const t = req[3];
  const what = unit === 1 ? 'ms' : 'seconds';
  if (typeof t !== 'number') throw new KvError('WRONG_ARGS', `${name}: ${what} must be an integer`);
  const store = s.store;
  if (Number.isInteger(t) && t <= 0) return ackedBy(store, store.deleteNow(k));
  if (!Number.isInteger(t)) {
    throw new KvError('INVALID_ARGUMENT', `${name}: ${what} must be an integer, got ${t}`);
  }
  return ackedBy(store, store.expireNow(k, checkTtlMs(t * unit, `${name}: the time`)));
}

/** Stores with a COMPACT in progress (from any connection of any server on them). */
const compacting = new WeakSet<Store>();

const SPECS: Record<CommandName, CommandSpec> = {
  HELLO: {
    usage: '',
    minArgs: 0,
    maxArgs: 0,
    run: (s): HelloReply => ({
      server: 'segkv',
      version: s.version,
      protocol: PROTOCOL_VERSION,
      authRequired: s.password !== undefined,
      authenticated: s.authenticated,
      maxFrameBytes: s.authenticated ? s.maxFrameBytes : PREAUTH_MAX_FRAME_BYTES,
      commands: [...COMMAND_NAMES],
    }),
  },
  PING: {
    usage: '[message]',
    minArgs: 0,
    maxArgs: 1,
    run: (_s, req) => {
      if (req.length === 2) return 'PONG';
      const m = req[2];
      if (!isKey(m)) throw new KvError('WRONG_ARGS', 'PING: the message must be a str or bin');
      return m;
    },
  },
  AUTH: {
    usage: 'password',
    minArgs: 1,
    maxArgs: 1,
    run: (s, req) => {
      const given = req[2];
      if (!isKey(given)) throw new KvError('WRONG_ARGS', 'AUTH: the password must be a str or bin');
      if (s.password === undefined) {
        throw new KvError('AUTH_FAILED', 'this server has no password set; do not send AUTH');
      }
      // Compare digests: constant time whatever the lengths.
      if (!timingSafeEqual(digest(given), digest(s.password))) {
        s.authFailed();
        throw new KvError('AUTH_FAILED', 'wrong password');
      }
      s.authenticated = true;
      return true;
    },
  },
  QUIT: {
    usage: '',
    minArgs: 0,
    maxArgs: 0,
    run: (s) => {
      s.quitAfterReply();
      return true;
    },
  },
  GET: {
    usage: 'key',
    minArgs: 1,
    maxArgs: 1,
    run: (s, req) => s.store.getSync(key(req, 2, 'GET')) ?? null,
  },
  SET: {
    usage: 'key value [{ttl, nx, xx}]',
    minArgs: 2,
    maxArgs: 3,
    run: (s, req) => {
      const k = key(req, 2, 'SET');
      const v = value(req, 3, 'SET');
      if (req.length === 4) return s.store.setForAck(k, v); // no options: the reply is the plain `true`
      const o = options(req, 4, 'SET', ['ttl', 'nx', 'xx']);
      const ttl = optNumber(o, 'ttl', 'SET');
      const nx = optBool(o, 'nx', 'SET');
      const xx = optBool(o, 'xx', 'SET');
      if (nx && xx) throw new KvError('WRONG_ARGS', 'SET: options nx and xx exclude each other');
      const so: SetOptions = {};
      if (ttl !== undefined) so.ttlMs = checkTtlMs(ttl, 'SET: option ttl');
      if (nx) so.ifAbsent = true;
      if (xx) so.ifPresent = true;
      return ackedBy(s.store, s.store.setNow(k, v, so));
    },
  },
  DEL: {
    usage: 'key [key ...]',
    minArgs: 1,
    maxArgs: Number.POSITIVE_INFINITY,
    run: (s, req) => {
      const store = s.store;
      if (req.length === 3) return ackedBy(store, store.deleteNow(key(req, 2, 'DEL')) ? 1 : 0);
      const ops: BatchOp[] = [];
      for (let i = 2; i < req.length; i++) ops.push({ type: 'del', key: key(req, i, 'DEL') });
      return ackedBy(store, store.batchNow(ops));
    },
  },
  MGET: {
    usage: 'key [key ...]',
    minArgs: 1,
    maxArgs: Number.POSITIVE_INFINITY,
    run: (s, req) => {
      const out = new Array<Buffer | null>(req.length - 2);
      // Values only: the frame's envelope adds a few bytes per key, which the writer checks exactly.
      let bytes = 0;
      for (let i = 2; i < req.length; i++) {
        const v = s.store.getSync(key(req, i, 'MGET')) ?? null;
        if (v !== null && (bytes += v.length) > s.maxReplyBytes) {
          // Stop reading values the reply could never carry (PROTOCOL.md §2: TOO_LARGE, nothing else).
          throw new KvError(
            'TOO_LARGE',
            `the MGET reply would hold over ${s.maxReplyBytes} bytes of values, more than one frame can carry; ask for fewer keys at once`,
          );
        }
        out[i - 2] = v;
      }
      return out;
    },
  },
  MSET: {
    usage: 'key value [key value ...]',
    minArgs: 2,
    maxArgs: Number.POSITIVE_INFINITY,
    run: (s, req) => {
      if (req.length % 2 !== 0) throw wrongArgs('MSET', SPECS.MSET.usage);
      const ops: BatchOp[] = [];
      for (let i = 2; i < req.length; i += 2) {
        ops.push({ type: 'set', key: key(req, i, 'MSET'), value: value(req, i + 1, 'MSET') });
      }
      s.store.batchNow(ops);
      return ackedBy(s.store, true);
    },
  },
  EXISTS: {
    usage: 'key [key ...]',
    minArgs: 1,
    maxArgs: Number.POSITIVE_INFINITY,
    run: (s, req) => {
      let n = 0;
      for (let i = 2; i < req.length; i++) if (s.store.has(key(req, i, 'EXISTS'))) n++;
      return n;
    },
  },
  INCR: {
    usage: 'key [delta]',
    minArgs: 1,
    maxArgs: 2,
    run: (s, req) => {
      const k = key(req, 2, 'INCR');
      const delta = req.length === 4 ? req[3] : 1;
      // Wrong type: WRONG_ARGS; a number but not an integer: INVALID_ARGUMENT (as for every
      // integer argument, §6); an integer outside ±(2^53-1) cannot even be read exactly
      // (a MessagePack int64 past 2^53 rounds), so no result from it is in range: INVALID_VALUE.
      if (typeof delta !== 'number') throw new KvError('WRONG_ARGS', 'INCR: delta must be an integer');
      if (!Number.isInteger(delta)) {
        throw new KvError('INVALID_ARGUMENT', `INCR: delta must be an integer, got ${delta}`);
      }
      if (!Number.isSafeInteger(delta)) {
        throw new KvError('INVALID_VALUE', 'INCR: the delta (so the result) would leave the range ±(2^53-1)');
      }
      const current = s.store.getSync(k);
      let n = 0;
      if (current !== undefined) {
        const text = current.length <= 20 ? current.toString('latin1') : '';
        n = INTEGER.test(text) ? Number(text) : Number.NaN;
        if (!Number.isSafeInteger(n)) {
          throw new KvError('INVALID_VALUE', 'INCR: the value is not a decimal integer within ±(2^53-1)');
        }
      }
      const next = n + delta;
      if (!Number.isSafeInteger(next)) {
        throw new KvError('INVALID_VALUE', 'INCR: the result would leave the range ±(2^53-1)');
      }
      const ttl = s.store.ttl(k);
      const so: SetOptions = ttl > 0 ? { ttlMs: ttl } : {};
      s.store.setNow(k, String(next), so);
      return ackedBy(s.store, next);
    },
  },
  TTL: {
    usage: 'key',
    minArgs: 1,
    maxArgs: 1,
    run: (s, req) => {
      // Redis TTL: seconds, rounded to the nearest (Redis's (ms + 500) / 1000).
      const ms = s.store.ttl(key(req, 2, 'TTL'));
      return ms < 0 ? ms : Math.floor((ms + 500) / 1000);
    },
  },
  PTTL: {
    usage: 'key',
    minArgs: 1,
    maxArgs: 1,
    run: (s, req) => s.store.ttl(key(req, 2, 'PTTL')),
  },
  EXPIRE: {
    usage: 'key seconds',
    minArgs: 2,
    maxArgs: 2,
    run: (s, req) => expireMs(s, req, 'EXPIRE', 1000),
  },
  PEXPIRE: {
    usage: 'key ms',
    minArgs: 2,
    maxArgs: 2,
    run: (s, req) => expireMs(s, req, 'PEXPIRE', 1),
  },
  PERSIST: {
    usage: 'key',
    minArgs: 1,
    maxArgs: 1,
    run: (s, req) => ackedBy(s.store, s.store.expireNow(key(req, 2, 'PERSIST'), null)),
  },
  SCAN: {
    usage: '[{prefix, match, start, end, cursor, count, raw}]',
    minArgs: 0,
    maxArgs: 1,
    run: (s, req): WireScanPage => {
      const o = options(req, 2, 'SCAN', ['prefix', 'match', 'start', 'end', 'cursor', 'count', 'raw']);
      const so: ScanOptions = {};
      const prefix = optKey(o, 'prefix', 'SCAN');
      const match = optKey(o, 'match', 'SCAN');
      if (match !== undefined) so.match = match;
      const start = optKey(o, 'start', 'SCAN');
      const end = optKey(o, 'end', 'SCAN');
      const cursor = optString(o, 'cursor', 'SCAN');
      const count = optNumber(o, 'count', 'SCAN');
      if (prefix !== undefined) so.prefix = prefix;
      if (start !== undefined) so.start = start;
      if (end !== undefined) so.end = end;
      if (cursor !== undefined) so.cursor = cursor;
      if (count !== undefined) so.count = count;
      // raw: each key as bin, its exact bytes; else as str (UTF-8 decoded).
      return optBool(o, 'raw', 'SCAN') ? s.store.scanBuffers(so) : s.store.scan(so);
    },
  },
  DBSIZE: {
    usage: '',
    minArgs: 0,
    maxArgs: 0,
    run: (s) => s.store.size,
  },
  INFO: {
    usage: '[section]',
    minArgs: 0,
    maxArgs: 1,
    run: (s, req) => {
      if (req.length === 2) return s.info(INFO_SECTIONS);
      // Section names match in any case, as Redis's INFO does (replies use the lower-case name).
      const section = typeof req[2] === 'string' ? req[2].toLowerCase() : undefined;
      if (section === undefined || !(INFO_SECTIONS as readonly string[]).includes(section)) {
        throw new KvError('WRONG_ARGS', `INFO: the section must be one of ${INFO_SECTIONS.join(', ')}`);
      }
      return s.info([section as InfoSection]);
    },
  },
  COMPACT: {
    usage: '',
    minArgs: 0,
    maxArgs: 0,
    run: async (s) => {
      const store = s.store as Store & { compact?: () => Promise<unknown> };
      if (typeof store.compact !== 'function') {
        throw new KvError('NOT_SUPPORTED', 'this store has no compactor yet; COMPACT is unavailable');
      }
      // One compaction at a time, from any connection, automatic ones included: a second
      // COMPACT gets BUSY at once (Redis BGREWRITEAOF: "already in progress") instead of
      // queueing a whole-log rewrite behind the first. Marked before the first await, so
      // two COMPACTs of one tick see each other.
      if (compacting.has(store) || store.stats().compaction?.running === true) {
        throw new KvError(
          'BUSY',
          'a compaction is already running; send COMPACT again once INFO compaction.running is false',
        );
      }
      compacting.add(store);
      try {
        // A compaction refused by the disk (ENOSPC, EIO, a failed swap) is the
        // store's I/O error, not an unexpected server one: IO_ERROR, with the cause.
        const result = await store.compact().catch((err: unknown) => {
          throw err instanceof KvError ? err : ioError('COMPACT', err);
        });
        return isPlainMap(result) ? result : true;
      } finally {
        compacting.delete(store);
      }
    },
  },
  FEED: {
    usage: 'from [{replica, raw}]',
    minArgs: 1,
    maxArgs: 2,
    run: (s, req) => {
      const from = req[2];
      if (typeof from !== 'number' || !Number.isSafeInteger(from) || from < 0) {
        throw new KvError('WRONG_ARGS', 'FEED: from must be an integer offset ≥ 0');
      }
      const o = options(req, 3, 'FEED', ['replica', 'raw']);
      let replicaPort: number | undefined;
      if (o.replica !== undefined && o.replica !== null) {
        const r = o.replica;
        if (
          !isPlainMap(r) ||
          typeof r.port !== 'number' ||
          !Number.isInteger(r.port) ||
          r.port < 0 ||
          r.port > 65535
        ) {
          throw new KvError('WRONG_ARGS', 'FEED: option replica must be {port: int 0..65535}');
        }
        replicaPort = r.port;
      }
      const raw = o.raw ?? false;
      if (typeof raw !== 'boolean') throw new KvError('WRONG_ARGS', 'FEED: option raw must be a boolean');
      return s.openFeed(req[0] as number, from, replicaPort, raw);
    },
  },
  CLUSTER: {
    usage: 'SLOTS | KEYSLOT key',
    minArgs: 1,
    maxArgs: 2,
    run: (s, req) => {
      const sub = typeof req[2] === 'string' ? req[2].toUpperCase() : undefined;
      if (sub === 'KEYSLOT' && req.length === 4) return keySlot(key(req, 3, 'CLUSTER KEYSLOT'));
      if (sub === 'SLOTS' && req.length === 3) {
        if (s.cluster === undefined)
          throw new KvError(
            'NOT_SUPPORTED',
            'this server is not in cluster mode (kv-server --cluster NAME --etcd URL --shard ID)',
          );
        return s.cluster.slotOwners().map((o) => ({
          start: o.range[0],
          end: o.range[1],
          shard: o.shard,
          primary: o.primary ?? null,
          replicas: o.replicas,
        }));
      }
      throw wrongArgs('CLUSTER', SPECS.CLUSTER.usage);
    },
  },
  ROLE: {
    usage: '',
    minArgs: 0,
    maxArgs: 0,
    run: (s) => s.replication.roleReply(),
  },
  WAIT: {
    usage: 'numreplicas timeoutMs',
    minArgs: 2,
    maxArgs: 2,
    run: (s, req) => {
      const [n, ms] = [req[2], req[3]];
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_REPLICAS) {
        throw new KvError('WRONG_ARGS', `WAIT: numreplicas must be an integer from 0 to ${MAX_REPLICAS}`);
      }
      if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0 || ms > MAX_TTL_MS) {
        throw new KvError('WRONG_ARGS', 'WAIT: timeoutMs must be an integer ≥ 0 (0 waits forever)');
      }
      return s.replication.waitForAcks(n, ms, s.lastWriteOffset);
    },
  },
  REPLICAOF: {
    usage: 'host port | NO ONE',
    minArgs: 2,
    maxArgs: 2,
    run: async (s, req) => {
      if (s.replication.clusterManaged)
        throw new KvError(
          'NOT_SUPPORTED',
          "REPLICAOF is not allowed in cluster mode: etcd chooses each shard's primary (kv-cluster status shows it)",
        );
      const [host, port] = [req[2], req[3]];
      if (typeof host !== 'string' || (typeof port !== 'string' && typeof port !== 'number')) {
        throw wrongArgs('REPLICAOF', SPECS.REPLICAOF.usage);
      }
      if (host.toUpperCase() === 'NO' && String(port).toUpperCase() === 'ONE') {
        await s.replication.promote();
        return true;
      }
      let primary: ReturnType<typeof parsePrimaryAddress>;
      try {
        primary = parsePrimaryAddress(`${host}:${port}`);
      } catch (err) {
        throw new KvError('WRONG_ARGS', `REPLICAOF: ${(err as Error).message}`);
      }
      await s.replication.replicaOf(primary);
      return true;
    },
  },
};

/** A command ready to dispatch: checks the argument count, then runs. */
export interface Command {
  readonly name: CommandName;
  /** Position in COMMAND_NAMES: the index of its counters (ServerMetrics). */
  readonly index: number;
  readonly preAuth: boolean;
  readonly run: Handler;
}

function withArity(name: CommandName, spec: CommandSpec): Handler {
  return (s, req) => {
    const argc = req.length - 2;
    if (argc < spec.minArgs || argc > spec.maxArgs) throw wrongArgs(name, spec.usage);
    return spec.run(s, req);
  };
}

/** Command name → command. Names are matched exactly first, then upper-cased. */
export const COMMAND_TABLE: ReadonlyMap<string, Command> = new Map(
  COMMAND_NAMES.map((name, index) => [
    name,
    { name, index, preAuth: PREAUTH_COMMANDS.has(name), run: withArity(name, SPECS[name]) },
  ]),
);

/** Usage line of each command (for PROTOCOL.md and tests). */
export const COMMAND_USAGE: Readonly<Record<CommandName, string>> = Object.fromEntries(
  COMMAND_NAMES.map((n) => [n, SPECS[n].usage]),
) as Record<CommandName, string>;
