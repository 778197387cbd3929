/**
 * RESP string commands over the Store, with Redis 7's argument forms,
 * replies and error wording: GET SET SETNX SETEX PSETEX GETSET GETDEL GETEX
 * MGET MSET MSETNX INCR INCRBY DECR DECRBY APPEND STRLEN.
 *
 * Invariants: a read-modify-write (INCR, APPEND, GETSET, SET ... GET,
 * MSETNX) reads and issues its write in one synchronous step, so no other
 * request interleaves; writes answer once acknowledged per the fsync mode
 * (they return the store's tick ack and their reply: acked-write.ts).
 * A key keeps its expiry through INCR/APPEND and SET KEEPTTL (its remaining
 * ms are written again); any other SET clears it, as in Redis. An expiry
 * already in the past deletes the key, as Redis does.
 */
import { MAX_KEY_BYTES } from '../../engine/limits.js';
import type { Store } from '../../engine/store.js';
import { KvError } from '../../errors.js';
import { type AckedWrite, ackedBy } from '../../server/acked-write.js';
import { command, intArg, isInt64, parseInt64, type RespCommand, toRespError, word } from '../command.js';
import { err, NOT_AN_INTEGER, OK, type Reply, RespError, SYNTAX_ERROR } from '../reply.js';

const STRING = { group: 'string', acl: '' } as const;

/** The remaining ms of `key`'s expiry, or undefined if it has none (or does not exist). */
export function remainingTtl(store: Store, key: Buffer): number | undefined {
  const ttl = store.ttl(key);
  return ttl > 0 ? ttl : undefined;
}

/** Writes `value` keeping the key's current expiry (INCR, APPEND, SET KEEPTTL); the caller waits on store.writeAck(). */
function setKeepingTtl(store: Store, key: Buffer, value: Uint8Array | string): void {
  const ttlMs = remainingTtl(store, key);
  store.setNow(key, value, ttlMs === undefined ? {} : { ttlMs });
}

/** `ERR invalid expire time in '<cmd>' command`. */
export function invalidExpire(cmd: string): RespError {
  return err(`invalid expire time in '${cmd}' command`);
}

export interface ExpiryArg {
  unit: 'EX' | 'PX' | 'EXAT' | 'PXAT';
  arg: Buffer;
}

/**
 * An expiry argument as an absolute time in ms since the epoch, checked as
 * Redis's getExpireMillisecondsOrReply: an integer, > 0, no overflow.
 */
export function expiryAt(e: ExpiryArg, cmd: string, now: number): number {
  const v = parseInt64(e.arg);
  if (v === undefined) throw new RespError(NOT_AN_INTEGER);
  if (v <= 0n) throw invalidExpire(cmd);
  let ms = e.unit === 'EX' || e.unit === 'EXAT' ? v * 1000n : v;
  if (e.unit === 'EX' || e.unit === 'PX') ms += BigInt(now);
  if (!isInt64(ms) || ms > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidExpire(cmd);
  return Number(ms);
}

/**
 * Writes `value` to expire at `at` (ms since epoch); an `at` already past
 * deletes the key instead. The caller waits on store.writeAck().
 */
function setExpiringAt(store: Store, key: Buffer, value: Uint8Array, at: number, now: number): void {
  if (at <= now) {
    store.deleteNow(key);
    return;
  }
  try {
    store.setExpiringNow(key, value, at);
  } catch (e) {
    throw e instanceof KvError && e.code === 'INVALID_ARGUMENT' ? err(e.message) : e;
  }
}

interface SetFlags {
  nx: boolean;
  xx: boolean;
  get: boolean;
  keepTtl: boolean;
  persist: boolean;
  expiry: ExpiryArg | undefined;
}

/**
 * Redis's parseExtendedStringArgumentsOrReply: the options of SET (from
 * argv[3]) or GETEX (from argv[2]); every conflict is `ERR syntax error`.
 */
function parseFlags(argv: Buffer[], from: number, forSet: boolean): SetFlags {
  const f: SetFlags = { nx: false, xx: false, get: false, keepTtl: false, persist: false, expiry: undefined };
  for (let j = from; j < argv.length; j++) {
    const opt = word(argv[j]);
    const next = argv[j + 1];
    if (forSet && opt === 'NX' && !f.xx) f.nx = true;
    else if (forSet && opt === 'XX' && !f.nx) f.xx = true;
    else if (forSet && opt === 'GET') f.get = true;
    else if (forSet && opt === 'KEEPTTL' && !f.persist && f.expiry === undefined) f.keepTtl = true;
    else if (!forSet && opt === 'PERSIST' && f.expiry === undefined && !f.keepTtl) f.persist = true;
    else if (
      (opt === 'EX' || opt === 'PX' || opt === 'EXAT' || opt === 'PXAT') &&
      f.expiry === undefined &&
      !f.keepTtl &&
      !f.persist &&
      next !== undefined
    ) {
      f.expiry = { unit: opt, arg: next };
      j++;
    } else throw new RespError(SYNTAX_ERROR);
  }
  return f;
}

/**
 * SET. Without options it answers the store's tick ack itself (+OK once
 * acknowledged; acked-write.ts): the plain SETs of one tick share it, so a
 * pipeline of them joins one reply slot of the connection.
 */
function set(s: { store: Store }, argv: Buffer[]): Reply | AckedWrite {
  const store = s.store;
  const key = argv[1]!;
  const value = argv[2]!;
  if (argv.length === 3) return store.setForAck(key, value);
  const f = parseFlags(argv, 3, true);
  const now = store.now();
  const at = f.expiry === undefined ? undefined : expiryAt(f.expiry, 'set', now);
  const old = f.get ? (store.getSync(key) ?? null) : null;
  const exists = f.get ? old !== null : f.nx || f.xx ? store.has(key) : false;
  // Refused without writing: the reply still waits for the tick's ack (as the native SET's),
  // so a SET NX never reports a key whose write may yet be lost (a lock taken by nobody).
  if ((f.nx && exists) || (f.xx && !exists)) return ackedBy(store, f.get ? old : null);
  if (at !== undefined) setExpiringAt(store, key, value, at, now);
  else if (f.keepTtl) setKeepingTtl(store, key, value);
  else store.setNow(key, value);
  return ackedBy(store, f.get ? old : OK);
}

function setex(name: string, unit: 'EX' | 'PX') {
  return (s: { store: Store }, argv: Buffer[]): AckedWrite => {
    const now = s.store.now();
    const at = expiryAt({ unit, arg: argv[2]! }, name, now);
    setExpiringAt(s.store, argv[1]!, argv[3]!, at, now);
    return ackedBy(s.store, OK);
  };
}

/** INCRBY's arithmetic on the stored value, with Redis's errors. */
function incrBy(store: Store, key: Buffer, delta: bigint): AckedWrite {
  const current = store.getSync(key);
  let n = 0n;
  if (current !== undefined) {
    const v = parseInt64(current);
    if (v === undefined) throw new RespError(NOT_AN_INTEGER);
    n = v;
  }
  const next = n + delta;
  if (!isInt64(next)) throw err('increment or decrement would overflow');
  setKeepingTtl(store, key, next.toString());
  return ackedBy(store, bigOrNumber(next));
}

function bigOrNumber(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

export const STRING_COMMANDS: readonly RespCommand[] = [
  command(
    'get',
    2,
    'readonly fast',
    [1, 1, 1],
    {
      ...STRING,
      summary: 'Get the value of a key',
      since: '1.0.0',
      synopsis: 'key',
      acl: 'read string fast',
    },
    (s, argv) => {
      const key = argv[1]!;
      // The hot read: the keydir is searched by the key's bytes, no key string built.
      if (key.length > 0 && key.length <= MAX_KEY_BYTES)
        return s.store.getSyncBytes(key, 0, key.length) ?? null;
      return s.store.getSync(key) ?? null;
    },
  ),
  command(
    'set',
    -3,
    'write denyoom',
    [1, 1, 1],
    {
      ...STRING,
      summary: 'Set the string value of a key',
      since: '1.0.0',
      synopsis:
        'key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]',
      acl: 'write string slow',
    },
    set,
  ),
  command(
    'setnx',
    3,
    'write denyoom fast',
    [1, 1, 1],
    {
      ...STRING,
      summary: 'Set the value of a key, only if the key does not exist',
      since: '1.0.0',
      synopsis: 'key value',
      acl: 'write string fast',
    },
    (s, argv) => ackedBy(s.store, s.store.setNow(argv[1]!, argv[2]!, { ifAbsent: true }) ? 1 : 0),
  ),
  command(
    'setex',
    4,
    'write denyoom',
    [1, 1, 1],
    {
      ...STRING,
      summary: 'Set the value and expiration of a key',
      since: '2.0.0',
      synopsis: 'key seconds value',
      acl: 'write string slow',
    },
    setex('setex', 'EX'),
  ),
  command(
    'psetex',
    4,
    'write denyoom',
    [1, 1, 1],
    {
      ...STRING,
      summary: 'Set the value and expiration in milliseconds of a key',
      since: '2.6.0',
      synopsis: 'key milliseconds value',
      acl: 'write string slow',
    },
    setex('psetex', 'PX'),
  ),
  command(
    'getset',
    3,
    'write denyoom fast',
    [1, 1, 1],
    {
      ...STRING,
      summary: 'Set the string value of a key and return its old value',
      since: '1.0.0',
      synopsis: 'key value',
      acl: 'write string fast',
    },
    (s, argv) => {
      const old = s.store.getSync(argv[1]!) ?? null;
      s.store.setNow(argv[1]!, argv[2]!);
      return ackedBy(s.store, old);
    },
  ),
  command(
    'getdel',
    2,
    'write fast',
    [1, 1, 1],
    {
      ...STRING,
      summary: 'Get the value of a key and delete the key',
      since: '6.2.0',
      synopsis: 'key',
      acl: 'write string fast',
    },
    (s, argv) => {
      const old = s.store.getSync(argv[1]!);
      if (old === undefined) return null;
      s.store.deleteNow(argv[1]!);
      return ackedBy(s.store, old);
    },
  ),
  command(
    'getex',
    -2,
    'write fast',
    [1, 1, 1],
    {
      ...STRING,
      summary: 'Get the value of a key and optionally set its expiration',
      since: '6.2.0',
      synopsis: 'key [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|PERSIST]',
      acl: 'write string fast',
    },
    (s, argv) => {
      const f = parseFlags(argv, 2, false);
      const now = s.store.now();
      const at = f.expiry === undefined ? undefined : expiryAt(f.expiry, 'getex', now);
      const value = s.store.getSync(argv[1]!);
      if (value === undefined) return null;
      if (at !== undefined) setExpiringAt(s.store, argv[1]!, value, at, now);
      else if (f.persist) s.store.expireNow(argv[1]!, null);
      else return value;
      return ackedBy(s.store, value);
    },
  ),
  command(
    'mget',
    -2,
    'readonly fast',
    [1, -1, 1],
    {
      ...STRING,
      summary: 'Get the values of all the given keys',
      since: '1.0.0',
      complexity: 'O(N)',
      synopsis: 'key ...',
      acl: 'read string fast',
    },
    (s, argv) => {
      const out = new Array<Reply>(argv.length - 1);
      for (let i = 1; i < argv.length; i++) out[i - 1] = s.store.getSync(argv[i]!) ?? null;
      return out;
    },
  ),
  command(
    'mset',
    -3,
    'write denyoom',
    [1, -1, 2],
    {
      ...STRING,
      summary: 'Set multiple keys to multiple values',
      since: '1.0.1',
      complexity: 'O(N)',
      synopsis: 'key value ...',
      acl: 'write string slow',
    },
    (s, argv) => {
      if (argv.length % 2 === 0) throw err("wrong number of arguments for 'mset' command");
      const ops = [];
      for (let i = 1; i < argv.length; i += 2)
        ops.push({ type: 'set' as const, key: argv[i]!, value: argv[i + 1]! });
      s.store.batchNow(ops);
      return ackedBy(s.store, OK);
    },
  ),
  command(
    'msetnx',
    -3,
    'write denyoom',
    [1, -1, 2],
    {
      ...STRING,
      summary: 'Set multiple keys to multiple values, only if none of the keys exist',
      since: '1.0.1',
      complexity: 'O(N)',
      synopsis: 'key value ...',
      acl: 'write string slow',
    },
    (s, argv) => {
      if (argv.length % 2 === 0) throw err("wrong number of arguments for 'msetnx' command");
      for (let i = 1; i < argv.length; i += 2) if (s.store.has(argv[i]!)) return ackedBy(s.store, 0); // as SET NX
      const ops = [];
      for (let i = 1; i < argv.length; i += 2)
        ops.push({ type: 'set' as const, key: argv[i]!, value: argv[i + 1]! });
      s.store.batchNow(ops);
      return ackedBy(s.store, 1);
    },
  ),
  command(
    'incr',
    2,
    'write denyoom fast',
    [1, 1, 1],
    {
      ...STRING,
      summary: 'Increment the integer value of a key by one',
      since: '1.0.0',
      synopsis: 'key',
      acl: 'write string fast',
    },
    (s, argv) => incrBy(s.store, argv[1]!, 1n),
  ),
  command(
    'decr',
    2,
    'write denyoom fast',
    [1, 1, 1],
    {
      ...STRING,
      summary: 'Decrement the integer value of a key by one',
      since: '1.0.0',
      synopsis: 'key',
      acl: 'write string fast',
    },
    (s, argv) => incrBy(s.store, argv[1]!, -1n),
  ),
  command(
    'incrby',
    3,
    'write denyoom fast',
    [1, 1, 1],
    {
      ...STRING,
      summary: 'Increment the integer value of a key by the given amount',
      since: '1.0.0',
      synopsis: 'key increment',
      acl: 'write string fast',
    },
    (s, argv) => incrBy(s.store, argv[1]!, intArg(argv[2]!)),
  ),
  command(
    'decrby',
    3,
    'write denyoom fast',
    [1, 1, 1],
    {
      ...STRING,
      summary: 'Decrement the integer value of a key by the given number',
      since: '1.0.0',
      synopsis: 'key decrement',
      acl: 'write string fast',
    },
    (s, argv) => {
      const delta = intArg(argv[2]!);
      if (delta === -(2n ** 63n)) throw err('decrement would overflow');
      return incrBy(s.store, argv[1]!, -delta);
    },
  ),
  command(
    'append',
    3,
    'write denyoom fast',
    [1, 1, 1],
    {
      ...STRING,
      summary: 'Append a value to a key',
      since: '2.0.0',
      synopsis: 'key value',
      acl: 'write string fast',
    },
    (s, argv) => {
      const current = s.store.getSync(argv[1]!);
      const next = current === undefined ? argv[2]! : Buffer.concat([current, argv[2]!]);
      try {
        setKeepingTtl(s.store, argv[1]!, next);
      } catch (e) {
        throw e instanceof KvError && e.code === 'INVALID_VALUE'
          ? err('string exceeds maximum allowed size (proto-max-bulk-len)')
          : toRespError(e);
      }
      return ackedBy(s.store, next.length);
    },
  ),
  command(
    'strlen',
    2,
    'readonly fast',
    [1, 1, 1],
    {
      ...STRING,
      summary: 'Get the length of the value stored in a key',
      since: '2.2.0',
      synopsis: 'key',
      acl: 'read string fast',
    },
    (s, argv) => s.store.getSync(argv[1]!)?.length ?? 0,
  ),
];
