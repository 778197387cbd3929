/**
 * RESP keyspace commands (Redis's "generic" group and DBSIZE/FLUSH*): DEL
 * UNLINK EXISTS TYPE EXPIRE PEXPIRE EXPIREAT PEXPIREAT EXPIRETIME
 * PEXPIRETIME TTL PTTL PERSIST KEYS SCAN DBSIZE FLUSHDB FLUSHALL.
 *
 * segkv holds strings only, so TYPE answers `string` or `none` and WRONGTYPE
 * never arises. Expiry follows Redis 7's expireGenericCommand: a time in the
 * past deletes the key (answering 1); NX/XX/GT/LT compare with the current
 * expiry, a key without one counting as infinite. KEYS and SCAN MATCH use
 * the glob matcher of src/engine/glob.ts; keys come back in byte order (Redis
 * answers in hash-table order, which no client may rely on).
 */
import type { BatchOp, Store } from '../../engine/store.js';
import { KvError } from '../../errors.js';
import { RESP_DEFAULT_SCAN_COUNT } from '../../protocol/limits.js';
import { type AckedWrite, ackedBy } from '../../server/acked-write.js';
import { command, intArg, isInt64, type RespCommand, word } from '../command.js';
import { err, OK, type Reply, RespError, Simple, SYNTAX_ERROR } from '../reply.js';
import { scanCursorsOf } from '../scan-cursors.js';

const GENERIC = { group: 'generic' } as const;

/** Keys deleted per atomic batch by FLUSHDB/FLUSHALL. */
const FLUSH_BATCH_KEYS = 1000;

/** Deletes every key, a batch at a time; resolves with how many were deleted. */
export async function flushAll(store: Store): Promise<number> {
  let deleted = 0;
  let cursor: string | null = null;
  do {
    const page = store.scanBuffers({ count: FLUSH_BATCH_KEYS, ...(cursor !== null && { cursor }) });
    if (page.keys.length > 0) {
      deleted += await store.batch(page.keys.map((key): BatchOp => ({ type: 'del', key })));
    }
    cursor = page.cursor;
  } while (cursor !== null);
  return deleted;
}

/** Every key matching `pattern`, as its exact bytes. */
function keys(store: Store, pattern: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let cursor: string | null = null;
  do {
    const page = store.scanBuffers({ match: pattern, count: 10_000, ...(cursor !== null && { cursor }) });
    for (const k of page.keys) out.push(k);
    cursor = page.cursor;
  } while (cursor !== null);
  return out;
}

type Unit = 'seconds' | 'ms';

/** EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT, as Redis 7's expireGenericCommand. */
function expireCommand(name: string, unit: Unit, absolute: boolean) {
  return (s: { store: Store }, argv: Buffer[]): Reply | AckedWrite => {
    let nx = false;
    let xx = false;
    let gt = false;
    let lt = false;
    for (let j = 3; j < argv.length; j++) {
      const opt = word(argv[j]);
      if (opt === 'NX') nx = true;
      else if (opt === 'XX') xx = true;
      else if (opt === 'GT') gt = true;
      else if (opt === 'LT') lt = true;
      else throw err(`Unsupported option ${argv[j]!.toString('latin1')}`);
    }
    if (nx && (xx || gt || lt)) throw err('NX and XX, GT or LT options at the same time are not compatible');
    if (gt && lt) throw err('GT and LT options at the same time are not compatible');
    let when = intArg(argv[2]!);
    const invalid = () => err(`invalid expire time in '${name}' command`);
    if (unit === 'seconds') {
      when *= 1000n;
      if (!isInt64(when)) throw invalid();
    }
    const store = s.store;
    const now = store.now(); // read once: what is stored is what is compared and computed here
    if (!absolute) when += BigInt(now);
    if (!isInt64(when)) throw invalid();
    const key = argv[1]!;
    const at = store.expiresAt(key);
    // Refused without writing: the reply still waits for the tick's ack (as the native
    // EXPIRE's), so it never tells of a key or an expiry whose write may yet be lost.
    if (at === -2) return ackedBy(store, 0);
    const current = BigInt(at);
    if (nx && current !== -1n) return ackedBy(store, 0);
    if (xx && current === -1n) return ackedBy(store, 0);
    if (gt && (when <= current || current === -1n)) return ackedBy(store, 0);
    if (lt && current !== -1n && when >= current) return ackedBy(store, 0);
    if (when <= BigInt(now)) {
      store.deleteNow(key);
      return ackedBy(store, 1);
    }
    // The log holds expiry times in ms since the epoch as JS numbers: beyond 2^53 they would round.
    if (when > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid();
    let done: boolean;
    try {
      done = store.expireAtNow(key, Number(when));
    } catch (e) {
      throw e instanceof KvError && e.code === 'INVALID_ARGUMENT' ? invalid() : e;
    }
    return ackedBy(store, done ? 1 : 0);
  };
}

function ttlCommand(unit: Unit) {
  return (s: { store: Store }, argv: Buffer[]): Reply => {
    const ttl = s.store.ttl(argv[1]!);
    if (ttl < 0) return ttl;
    return unit === 'ms' ? ttl : Math.floor((ttl + 500) / 1000);
  };
}

function expireTimeCommand(unit: Unit) {
  return (s: { store: Store }, argv: Buffer[]): Reply => {
    const at = s.store.expiresAt(argv[1]!);
    if (at < 0) return at;
    return unit === 'ms' ? at : Math.floor((at + 500) / 1000);
  };
}

/** SCAN's cursor argument: an unsigned decimal (strtoul), else `ERR invalid cursor`. */
function parseCursor(b: Buffer): string {
  const text = b.toString('latin1');
  if (!/^[0-9]+$/.test(text)) throw err('invalid cursor');
  const v = BigInt(text);
  if (v >= 2n ** 64n) throw err('invalid cursor');
  return v.toString();
}

function scan(s: { store: Store }, argv: Buffer[]): Reply {
  const id = parseCursor(argv[1]!);
  let count = RESP_DEFAULT_SCAN_COUNT;
  let match: Buffer | undefined;
  let type: string | undefined;
  for (let j = 2; j < argv.length; j += 2) {
    const opt = word(argv[j]);
    const value = argv[j + 1];
    if (value === undefined) throw new RespError(SYNTAX_ERROR);
    if (opt === 'COUNT') {
      const n = intArg(value);
      if (n < 1n) throw new RespError(SYNTAX_ERROR);
      count = n > 100_000n ? 100_000 : Number(n);
    } else if (opt === 'MATCH') match = value;
    else if (opt === 'TYPE') type = value.toString('latin1').toLowerCase();
    else throw new RespError(SYNTAX_ERROR);
  }
  const cursors = scanCursorsOf(s.store);
  const after = cursors.resolve(id);
  if (after === undefined) throw err('invalid cursor');
  const page = s.store.scanBuffers({
    count,
    ...(after !== '' && { cursor: after }),
    ...(match !== undefined && { match }),
  });
  const found = type === undefined || type === 'string' ? page.keys : [];
  return [page.cursor === null ? '0' : cursors.issue(page.cursor), found];
}

function flush() {
  return (s: { store: Store }, argv: Buffer[]): Promise<Reply> => {
    if (argv.length > 2) throw new RespError(SYNTAX_ERROR);
    if (argv.length === 2) {
      const mode = word(argv[1]);
      if (mode !== 'ASYNC' && mode !== 'SYNC') throw new RespError(SYNTAX_ERROR);
    }
    return flushAll(s.store).then(() => OK);
  };
}

const TIME_FORMAT = 'key seconds [NX|XX|GT|LT]';

export const KEYSPACE_COMMANDS: readonly RespCommand[] = [
  command(
    'del',
    -2,
    'write',
    [1, -1, 1],
    {
      ...GENERIC,
      summary: 'Delete a key',
      since: '1.0.0',
      complexity: 'O(N)',
      synopsis: 'key ...',
      acl: 'keyspace write slow',
    },
    (s, argv) => {
      const store = s.store;
      if (argv.length === 2) return ackedBy(store, store.deleteNow(argv[1]!) ? 1 : 0);
      return ackedBy(store, store.batchNow(argv.slice(1).map((key): BatchOp => ({ type: 'del', key }))));
    },
  ),
  command(
    'unlink',
    -2,
    'write fast',
    [1, -1, 1],
    {
      ...GENERIC,
      summary:
        'Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.',
      since: '4.0.0',
      complexity: 'O(N)',
      synopsis: 'key ...',
      acl: 'keyspace write fast',
    },
    (s, argv) =>
      ackedBy(s.store, s.store.batchNow(argv.slice(1).map((key): BatchOp => ({ type: 'del', key })))),
  ),
  command(
    'exists',
    -2,
    'readonly fast',
    [1, -1, 1],
    {
      ...GENERIC,
      summary: 'Determine if a key exists',
      since: '1.0.0',
      complexity: 'O(N)',
      synopsis: 'key ...',
      acl: 'keyspace read fast',
    },
    (s, argv) => {
      let n = 0;
      for (let i = 1; i < argv.length; i++) if (s.store.has(argv[i]!)) n++;
      return n;
    },
  ),
  command(
    'type',
    2,
    'readonly fast',
    [1, 1, 1],
    {
      ...GENERIC,
      summary: 'Determine the type stored at key',
      since: '1.0.0',
      synopsis: 'key',
      acl: 'keyspace read fast',
    },
    (s, argv) => new Simple(s.store.has(argv[1]!) ? 'string' : 'none'),
  ),
  command(
    'expire',
    -3,
    'write fast',
    [1, 1, 1],
    {
      ...GENERIC,
      summary: "Set a key's time to live in seconds",
      since: '1.0.0',
      synopsis: TIME_FORMAT,
      acl: 'keyspace write fast',
    },
    expireCommand('expire', 'seconds', false),
  ),
  command(
    'pexpire',
    -3,
    'write fast',
    [1, 1, 1],
    {
      ...GENERIC,
      summary: "Set a key's time to live in milliseconds",
      since: '2.6.0',
      synopsis: 'key milliseconds [NX|XX|GT|LT]',
      acl: 'keyspace write fast',
    },
    expireCommand('pexpire', 'ms', false),
  ),
  command(
    'expireat',
    -3,
    'write fast',
    [1, 1, 1],
    {
      ...GENERIC,
      summary: 'Set the expiration for a key as a UNIX timestamp',
      since: '1.2.0',
      synopsis: 'key unix-time-seconds [NX|XX|GT|LT]',
      acl: 'keyspace write fast',
    },
    expireCommand('expireat', 'seconds', true),
  ),
  command(
    'pexpireat',
    -3,
    'write fast',
    [1, 1, 1],
    {
      ...GENERIC,
      summary: 'Set the expiration for a key as a UNIX timestamp specified in milliseconds',
      since: '2.6.0',
      synopsis: 'key unix-time-milliseconds [NX|XX|GT|LT]',
      acl: 'keyspace write fast',
    },
    expireCommand('pexpireat', 'ms', true),
  ),
  command(
    'expiretime',
    2,
    'readonly fast',
    [1, 1, 1],
    {
      ...GENERIC,
      summary: 'Get the expiration Unix timestamp for a key',
      since: '7.0.0',
      synopsis: 'key',
      acl: 'keyspace read fast',
    },
    expireTimeCommand('seconds'),
  ),
  command(
    'pexpiretime',
    2,
    'readonly fast',
    [1, 1, 1],
    {
      ...GENERIC,
      summary: 'Get the expiration Unix timestamp for a key in milliseconds',
      since: '7.0.0',
      synopsis: 'key',
      acl: 'keyspace read fast',
    },
    expireTimeCommand('ms'),
  ),
  command(
    'ttl',
    2,
    'readonly fast',
    [1, 1, 1],
    {
      ...GENERIC,
      summary: 'Get the time to live for a key in seconds',
      since: '1.0.0',
      synopsis: 'key',
      acl: 'keyspace read fast',
    },
    ttlCommand('seconds'),
  ),
  command(
    'pttl',
    2,
    'readonly fast',
    [1, 1, 1],
    {
      ...GENERIC,
      summary: 'Get the time to live for a key in milliseconds',
      since: '2.6.0',
      synopsis: 'key',
      acl: 'keyspace read fast',
    },
    ttlCommand('ms'),
  ),
  command(
    'persist',
    2,
    'write fast',
    [1, 1, 1],
    {
      ...GENERIC,
      summary: 'Remove the expiration from a key',
      since: '2.2.0',
      synopsis: 'key',
      acl: 'keyspace write fast',
    },
    (s, argv) => ackedBy(s.store, s.store.expireNow(argv[1]!, null) ? 1 : 0),
  ),
  command(
    'keys',
    2,
    'readonly',
    [0, 0, 0],
    {
      ...GENERIC,
      summary: 'Find all keys matching the given pattern',
      since: '1.0.0',
      complexity: 'O(N) with N being the number of keys in the database',
      synopsis: 'pattern',
      acl: 'keyspace read slow dangerous',
    },
    (s, argv) => keys(s.store, argv[1]!),
  ),
  command(
    'scan',
    -2,
    'readonly',
    [0, 0, 0],
    {
      ...GENERIC,
      summary: 'Incrementally iterate the keys space',
      since: '2.8.0',
      complexity: 'O(1) for every call. O(N) for a complete iteration',
      synopsis: 'cursor [MATCH pattern] [COUNT count] [TYPE type]',
      acl: 'keyspace read slow',
    },
    scan,
  ),
  command(
    'dbsize',
    1,
    'readonly fast',
    [0, 0, 0],
    {
      group: 'server',
      summary: 'Return the number of keys in the selected database',
      since: '1.0.0',
      acl: 'keyspace read fast',
    },
    (s) => s.store.size,
  ),
  command(
    'flushdb',
    -1,
    'write',
    [0, 0, 0],
    {
      group: 'server',
      summary: 'Remove all keys from the current database',
      since: '1.0.0',
      complexity: 'O(N)',
      synopsis: '[ASYNC|SYNC]',
      acl: 'keyspace write slow dangerous',
    },
    flush(),
  ),
  command(
    'flushall',
    -1,
    'write',
    [0, 0, 0],
    {
      group: 'server',
      summary: 'Remove all keys from all databases',
      since: '1.0.0',
      complexity: 'O(N)',
      synopsis: '[ASYNC|SYNC]',
      acl: 'keyspace write slow dangerous',
    },
    flush(),
  ),
];
