/**
 * Writes protocol/vectors.json: worked examples of the wire protocol as hex
 * bytes. Each vector runs against a fresh kv-server (started with the
 * vector's `server` flags) and is a list of steps on numbered connections:
 * send `send`, expect exactly `expect` back (or, with `match: "id"`, a reply
 * with the same id and outcome whose content depends on time or state), and
 * with `closed: true` expect the server to close the connection after.
 *
 * The expected replies are written out here by hand from protocol/PROTOCOL.md,
 * not recorded from the server, so test/protocol/vectors.test.ts checks the
 * server against the contract. Run: `npm run build && node dist/tools/protocol-vectors.js`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import { encodeFrame as frame, packr } from '../src/protocol/frame.js';
import { FrameWriter } from '../src/protocol/frame-writer.js';
import { COMMAND_NAMES, INFO_SECTIONS } from '../src/protocol/messages.js';

const ROOT = resolve(import.meta.dirname, import.meta.dirname.includes('/dist/') ? '../..' : '..');
const version = (JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

/** A reply as the server encodes it: minimal ints (PROTOCOL.md §3), unlike msgpackr's float 64 past 32 bits. */
function replyFrame(v: unknown): Buffer {
  const w = new FrameWriter();
  w.frame(v);
  return Buffer.concat(w.take());
}

/** A MessagePack bin value (Buffer) in a vector. */
const bin = (s: string) => Buffer.from(s, 'utf8');

/** JSON view of a value: Buffers as {"bin": "<utf8 text>"} (or {"hex"} when not text). */
function view(v: unknown): unknown {
  if (Buffer.isBuffer(v)) {
    const text = v.toString('utf8');
    return Buffer.from(text, 'utf8').equals(v) ? { bin: text } : { binHex: v.toString('hex') };
  }
  if (Array.isArray(v)) return v.map(view);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, view(x)]));
  return v;
}

interface Step {
  conn?: number;
  /** Request value (for reading) and its bytes. */
  request?: unknown;
  send?: string;
  /** Expected reply value and its bytes. */
  reply?: unknown;
  expect?: string;
  match?: 'exact' | 'id';
  closed?: boolean;
  note?: string;
}

interface Vector {
  name: string;
  commands: string[];
  errors: string[];
  server: string[];
  steps: Step[];
}

const vectors: Vector[] = [];

type S = {
  req?: unknown;
  raw?: Buffer;
  res?: unknown;
  conn?: number;
  match?: 'id';
  closed?: boolean;
  note?: string;
};

function add(name: string, commands: string[], errors: string[], server: string[], steps: S[]): void {
  vectors.push({
    name,
    commands,
    errors,
    server,
    steps: steps.map((s) => {
      const step: Step = {};
      if (s.conn !== undefined) step.conn = s.conn;
      if (s.note) step.note = s.note;
      if (s.req !== undefined) step.request = view(s.req);
      if (s.raw || s.req !== undefined) step.send = (s.raw ?? frame(s.req)).toString('hex');
      if (s.res !== undefined) {
        step.reply = view(s.res);
        step.expect = replyFrame(s.res).toString('hex');
      }
      if (s.match) step.match = s.match;
      if (s.closed) step.closed = true;
      return step;
    }),
  });
}

const err = (id: number | null, code: string, message: string) => [id, null, { code, message }];
const usage = (cmd: string, u: string) => `wrong arguments for ${cmd}; usage: ${cmd} ${u}`.trimEnd();
const ALL = [...COMMAND_NAMES];

// ---- commands -------------------------------------------------------------

add(
  'HELLO reports server, version and limits',
  ['HELLO'],
  [],
  [],
  [
    {
      req: [1, 'HELLO'],
      res: [
        1,
        {
          server: 'segkv',
          version,
          protocol: 1,
          authRequired: false,
          authenticated: true,
          maxFrameBytes: 64 * 1024 * 1024,
          commands: ALL,
        },
      ],
    },
  ],
);
add(
  'PING with and without a message',
  ['PING'],
  [],
  [],
  [
    { req: [1, 'PING'], res: [1, 'PONG'] },
    { req: [2, 'PING', 'hello'], res: [2, 'hello'] },
  ],
);
add(
  'command names are case-insensitive',
  ['PING', 'GET'],
  [],
  [],
  [
    { req: [7, 'ping'], res: [7, 'PONG'] },
    { req: [8, 'get', 'nothing'], res: [8, null] },
  ],
);
add(
  'AUTH with the right password unlocks the connection',
  ['AUTH', 'HELLO'],
  [],
  ['--password', 's3cret'],
  [
    {
      req: [1, 'HELLO'],
      res: [
        1,
        {
          server: 'segkv',
          version,
          protocol: 1,
          authRequired: true,
          authenticated: false,
          maxFrameBytes: 1024,
          commands: ALL,
        },
      ],
    },
    { req: [2, 'AUTH', 's3cret'], res: [2, true] },
    { req: [3, 'GET', 'k'], res: [3, null] },
  ],
);
add(
  'AUTH with a wrong password',
  ['AUTH'],
  ['AUTH_FAILED'],
  ['--password', 's3cret'],
  [
    { req: [1, 'AUTH', 'guess'], res: err(1, 'AUTH_FAILED', 'wrong password') },
    { req: [2, 'GET', 'k'], res: err(2, 'NOAUTH', 'GET needs authentication; send AUTH first') },
  ],
);
add(
  'AUTH to a server without a password',
  ['AUTH'],
  ['AUTH_FAILED'],
  [],
  [
    {
      req: [1, 'AUTH', 'x'],
      res: err(1, 'AUTH_FAILED', 'this server has no password set; do not send AUTH'),
    },
  ],
);
add(
  'commands before AUTH are refused',
  ['GET'],
  ['NOAUTH'],
  ['--password', 's3cret'],
  [
    { req: [1, 'SET', 'k', bin('v')], res: err(1, 'NOAUTH', 'SET needs authentication; send AUTH first') },
    { req: [2, 'PING'], res: [2, 'PONG'] },
  ],
);
add(
  'before AUTH: an unknown command is UNKNOWN_COMMAND; the 1,024-byte limit lifts right after AUTH, within one write',
  ['AUTH', 'SET'],
  ['UNKNOWN_COMMAND', 'AUTH_FAILED'],
  ['--password', 's3cret'],
  [
    {
      req: [1, 'FLUSHALL'],
      res: err(1, 'UNKNOWN_COMMAND', "unknown command 'FLUSHALL'; see protocol/PROTOCOL.md"),
    },
    {
      raw: Buffer.concat([frame([2, 'AUTH', 's3cret']), frame([3, 'SET', 'k', Buffer.alloc(2000, 0x78)])]),
      res: [2, true],
      note: 'AUTH and a 2 KiB SET in one write',
    },
    { res: [3, true] },
    {
      req: [4, 'AUTH', 'wrong'],
      res: err(4, 'AUTH_FAILED', 'wrong password'),
      note: 'a wrong AUTH does not de-authenticate',
    },
    { req: [5, 'DBSIZE'], res: [5, 1] },
  ],
);
add(
  'frames after QUIT in the same write are neither executed nor answered',
  ['QUIT', 'SET'],
  [],
  [],
  [
    {
      raw: Buffer.concat([frame([1, 'QUIT']), frame([2, 'SET', 'after-quit', bin('v')])]),
      res: [1, true],
      closed: true,
    },
    { conn: 1, req: [3, 'EXISTS', 'after-quit'], res: [3, 0] },
  ],
);
add(
  'QUIT replies, then the server closes',
  ['QUIT'],
  [],
  [],
  [{ req: [1, 'QUIT'], res: [1, true], closed: true }],
);
add('GET of a missing key is nil', ['GET'], [], [], [{ req: [1, 'GET', 'missing'], res: [1, null] }]);
add(
  'SET then GET',
  ['SET', 'GET'],
  [],
  [],
  [
    { req: [1, 'SET', 'greeting', bin('hello')], res: [1, true] },
    { req: [2, 'GET', 'greeting'], res: [2, bin('hello')] },
  ],
);
add(
  'keys may be bin; a str value is stored as its UTF-8 bytes',
  ['SET', 'GET'],
  [],
  [],
  [
    { req: [1, 'SET', Buffer.from([0x00, 0xff, 0x10]), 'text'], res: [1, true] },
    { req: [2, 'GET', Buffer.from([0x00, 0xff, 0x10])], res: [2, bin('text')] },
  ],
);
add(
  'SET nx writes only an absent key',
  ['SET', 'GET'],
  [],
  [],
  [
    { req: [1, 'SET', 'k', bin('first'), { nx: true }], res: [1, true] },
    { req: [2, 'SET', 'k', bin('second'), { nx: true }], res: [2, false] },
    { req: [3, 'GET', 'k'], res: [3, bin('first')] },
  ],
);
add(
  'SET xx writes only an existing key',
  ['SET', 'GET'],
  [],
  [],
  [
    { req: [1, 'SET', 'k', bin('v'), { xx: true }], res: [1, false] },
    { req: [2, 'GET', 'k'], res: [2, null] },
  ],
);
add(
  'SET with a ttl in ms; TTL counts down in seconds, PTTL in ms',
  ['SET', 'TTL', 'PTTL'],
  [],
  [],
  [
    { req: [1, 'SET', 'session', bin('data'), { ttl: 60000 }], res: [1, true] },
    { req: [2, 'TTL', 'session'], res: [2, 60], match: 'id', note: 'remaining seconds, rounded: 60' },
    { req: [3, 'PTTL', 'session'], res: [3, 60000], match: 'id', note: 'remaining ms, at most 60000' },
  ],
);
add(
  'TTL of a missing key is -2, of a key without expiry -1',
  ['TTL'],
  [],
  [],
  [
    { req: [1, 'TTL', 'missing'], res: [1, -2] },
    { req: [2, 'SET', 'k', bin('v')], res: [2, true] },
    { req: [3, 'TTL', 'k'], res: [3, -1] },
  ],
);
add(
  'DEL of several keys counts those that existed',
  ['DEL'],
  [],
  [],
  [
    { req: [1, 'MSET', 'a', bin('1'), 'b', bin('2')], res: [1, true] },
    { req: [2, 'DEL', 'a', 'b', 'c'], res: [2, 2] },
    { req: [3, 'DEL', 'a'], res: [3, 0] },
  ],
);
add(
  'MSET then MGET',
  ['MSET', 'MGET'],
  [],
  [],
  [
    { req: [1, 'MSET', 'x', bin('10'), 'y', bin('20')], res: [1, true] },
    { req: [2, 'MGET', 'x', 'nope', 'y'], res: [2, [bin('10'), null, bin('20')]] },
  ],
);
add(
  'EXISTS counts keys, a repeated key each time',
  ['EXISTS'],
  [],
  [],
  [
    { req: [1, 'SET', 'k', bin('v')], res: [1, true] },
    { req: [2, 'EXISTS', 'k', 'k', 'missing'], res: [2, 2] },
  ],
);
add(
  'INCR adds to a decimal integer value',
  ['INCR', 'GET'],
  [],
  [],
  [
    { req: [1, 'INCR', 'counter'], res: [1, 1] },
    { req: [2, 'INCR', 'counter', 41], res: [2, 42] },
    { req: [3, 'INCR', 'counter', -50], res: [3, -8] },
    { req: [4, 'GET', 'counter'], res: [4, bin('-8')] },
  ],
);
add(
  'INCR results are the smallest int: below -2^31 an int 64, never a float',
  ['INCR'],
  [],
  [],
  [
    { req: [36, 'INCR', 'n', -2147483648], res: [36, -2147483648], note: 'int 32 (d2)' },
    { req: [37, 'INCR', 'n', -1], res: [37, -2147483649], note: 'int 64 (d3)' },
    { req: [38, 'INCR', 'n', 2 ** 32 + 2147483649], res: [38, 2 ** 32], note: 'uint 64 (cf)' },
  ],
);
add(
  'INCR outside ±(2^53-1), and a delta that is not an integer',
  ['INCR'],
  ['INVALID_VALUE', 'INVALID_ARGUMENT', 'WRONG_ARGS'],
  [],
  [
    { req: [1, 'INCR', 'n', 2 ** 53 - 1], res: [1, 2 ** 53 - 1] },
    {
      req: [2, 'INCR', 'n'],
      res: err(2, 'INVALID_VALUE', 'INCR: the result would leave the range ±(2^53-1)'),
    },
    {
      req: [3, 'INCR', 'm', 2 ** 53],
      res: err(3, 'INVALID_VALUE', 'INCR: the delta (so the result) would leave the range ±(2^53-1)'),
    },
    {
      req: [4, 'INCR', 'm', 1.5],
      res: err(4, 'INVALID_ARGUMENT', 'INCR: delta must be an integer, got 1.5'),
    },
    { req: [5, 'INCR', 'm', '1'], res: err(5, 'WRONG_ARGS', 'INCR: delta must be an integer') },
    { req: [6, 'INCR', 'm', 3.0], res: [6, 3], note: 'an integral float is that integer' },
  ],
);
add(
  'INCR of a value that is not an integer',
  ['INCR'],
  ['INVALID_VALUE'],
  [],
  [
    { req: [1, 'SET', 'k', bin('abc')], res: [1, true] },
    {
      req: [2, 'INCR', 'k'],
      res: err(2, 'INVALID_VALUE', 'INCR: the value is not a decimal integer within ±(2^53-1)'),
    },
  ],
);
add(
  'EXPIRE and PERSIST an existing key',
  ['EXPIRE', 'PERSIST', 'TTL'],
  ['INVALID_ARGUMENT'],
  [],
  [
    { req: [1, 'SET', 'k', bin('v')], res: [1, true] },
    { req: [2, 'EXPIRE', 'k', 600], res: [2, true], note: 'seconds, as Redis' },
    { req: [3, 'PERSIST', 'k'], res: [3, true] },
    { req: [4, 'TTL', 'k'], res: [4, -1] },
    { req: [5, 'PERSIST', 'k'], res: [5, false] },
    { req: [6, 'EXPIRE', 'missing', 1000], res: [6, false] },
    {
      req: [7, 'EXPIRE', 'k', 1.5],
      res: err(7, 'INVALID_ARGUMENT', 'EXPIRE: seconds must be an integer, got 1.5'),
    },
  ],
);
add(
  'PEXPIRE and PTTL in ms; a time of 0 or less deletes the key, as in Redis',
  ['PEXPIRE', 'PTTL'],
  [],
  [],
  [
    { req: [1, 'SET', 'k', bin('v')], res: [1, true] },
    { req: [2, 'PEXPIRE', 'k', 600000], res: [2, true] },
    { req: [3, 'PTTL', 'k'], res: [3, 600000], match: 'id', note: 'remaining ms, at most 600000' },
    { req: [4, 'PEXPIRE', 'k', 0], res: [4, true], note: 'deleted' },
    { req: [5, 'PTTL', 'k'], res: [5, -2] },
    { req: [6, 'PEXPIRE', 'k', -5], res: [6, false], note: 'no such key any more' },
  ],
);
add(
  'SCAN by prefix, page by page',
  ['SCAN'],
  ['INVALID_ARGUMENT'],
  [],
  [
    {
      req: [1, 'MSET', 'user:1', bin('a'), 'user:2', bin('b'), 'user:3', bin('c'), 'zoo', bin('d')],
      res: [1, true],
    },
    {
      req: [2, 'SCAN', { prefix: 'user:', count: 2 }],
      res: [2, { keys: ['user:1', 'user:2'], cursor: 'AQ…' }],
      match: 'id',
      note: 'keys user:1, user:2 and a cursor (a str, different in every server process): pass it back for user:3',
    },
    {
      req: [3, 'SCAN', { prefix: 'user:', count: 2, cursor: Buffer.from('user:2').toString('base64url') }],
      res: err(
        3,
        'INVALID_ARGUMENT',
        'scan cursor is not one this server process returned; start the scan again without a cursor',
      ),
      note: 'a well-formed base64url string this server never returned',
    },
    {
      req: [4, 'SCAN', { cursor: 'not a cursor!' }],
      res: err(
        4,
        'INVALID_ARGUMENT',
        'scan cursor is not one this server process returned; start the scan again without a cursor',
      ),
    },
    { req: [5, 'SCAN'], res: [5, { keys: ['user:1', 'user:2', 'user:3', 'zoo'], cursor: null }] },
  ],
);
add(
  'SCAN raw: keys as bin, exact bytes (a key that is not UTF-8), prefix as bin',
  ['SCAN'],
  [],
  [],
  [
    { req: [1, 'SET', Buffer.from([0x6b, 0xff]), bin('a')], res: [1, true] },
    { req: [2, 'SET', 'k1', bin('b')], res: [2, true] },
    {
      req: [3, 'SCAN', { prefix: bin('k'), raw: true }],
      res: [3, { keys: [bin('k1'), Buffer.from([0x6b, 0xff])], cursor: null }],
    },
    { req: [4, 'SCAN', { prefix: 'k' }], res: [4, { keys: ['k1', 'k\ufffd'], cursor: null }] },
  ],
);
add(
  'DBSIZE counts keys',
  ['DBSIZE'],
  [],
  [],
  [
    { req: [1, 'DBSIZE'], res: [1, 0] },
    { req: [2, 'SET', 'k', bin('v')], res: [2, true] },
    { req: [3, 'DBSIZE'], res: [3, 1] },
  ],
);
add(
  'INFO of one section',
  ['INFO'],
  [],
  [],
  [{ req: [1, 'INFO', 'keyspace'], res: [1, { keyspace: { keys: 0, expiringKeys: 0 } }] }],
);
add(
  'INFO section names match in any case, as in Redis',
  ['INFO'],
  [],
  [],
  [{ req: [1, 'INFO', 'KeySpace'], res: [1, { keyspace: { keys: 0, expiringKeys: 0 } }] }],
);
add(
  'INFO of every section',
  ['INFO'],
  [],
  [],
  [
    {
      req: [1, 'INFO'],
      res: [1, Object.fromEntries(INFO_SECTIONS.map((name) => [name, {}]))],
      match: 'id',
      note: `a map of the ${INFO_SECTIONS.length} sections (${INFO_SECTIONS.join(', ')}); values depend on the server state`,
    },
  ],
);
add(
  'COMPACT',
  ['COMPACT'],
  ['NOT_SUPPORTED'],
  [],
  [
    {
      req: [1, 'COMPACT'],
      res: [1, true],
      match: 'id',
      note: 'true (or a map of compaction results) when done; NOT_SUPPORTED from a store without a compactor',
    },
  ],
);
add(
  'FEED streams the log from an offset: the start reply, then batches of records',
  ['SET', 'DEL', 'FEED'],
  ['OFFSET_OUT_OF_RANGE'],
  [],
  [
    { req: [1, 'SET', 'a', bin('1')], res: [1, true] },
    { req: [2, 'DEL', 'a'], res: [2, 1] },
    {
      conn: 1,
      req: [3, 'FEED', 5],
      res: err(
        3,
        'OFFSET_OUT_OF_RANGE',
        'offset 5 is past the end of the log (next offset 2); a reader ahead of the log has diverged from it',
      ),
    },
    { conn: 1, req: [4, 'FEED', 0], res: [4, { from: 0, end: 2, horizon: 0 }], note: 'the start reply' },
    {
      conn: 1,
      res: [
        4,
        {
          records: [
            [0, 0, 0, bin('a'), bin('1')],
            [1, 1, 0, bin('a'), null],
          ],
          next: 2,
          end: 2,
        },
      ],
      note: 'records [offset, flags (1 tombstone, 2 batch, 4 batch end), expiresAt, key, value or nil]; the feed then follows new writes',
    },
  ],
);
/**
 * One log record in the record format (ARCHITECTURE.md "Record"), written
 * from its byte table: the bytes a raw feed carries.
 */
function logRecord(offset: number, flags: number, key: string, value: string | null): Buffer {
  const k = Buffer.from(key, 'utf8');
  const v = value === null ? Buffer.alloc(0) : Buffer.from(value, 'utf8');
  const r = Buffer.alloc(27 + k.length + v.length);
  r.writeUInt32LE(offset, 4); // offset u64 (high half 0)
  r.writeUInt32LE(0, 12); // expiresAt u64: none
  r.writeUInt8(flags, 20);
  r.writeUInt16LE(k.length, 21);
  r.writeUInt32LE(v.length, 23);
  k.copy(r, 27);
  v.copy(r, 27 + k.length);
  r.writeUInt32LE(crc32(r.subarray(4)), 0);
  return r;
}

add(
  'FEED raw: record runs, the log records as the segments hold them (replicas)',
  ['SET', 'DEL', 'FEED'],
  ['WRONG_ARGS'],
  [],
  [
    { req: [1, 'SET', 'a', bin('1')], res: [1, true] },
    { req: [2, 'DEL', 'a'], res: [2, 1] },
    {
      conn: 1,
      req: [3, 'FEED', 0, { raw: 1 }],
      res: err(3, 'WRONG_ARGS', 'FEED: option raw must be a boolean'),
    },
    {
      conn: 1,
      req: [4, 'FEED', 0, { raw: true }],
      res: [4, { from: 0, end: 2, horizon: 0, format: 1 }],
      note: 'format: the record format of the runs',
    },
    {
      conn: 1,
      res: [
        4,
        {
          next: 2,
          end: 2,
          raw: Buffer.concat([logRecord(0, 0, 'a', '1'), logRecord(1, 1, 'a', null)]),
        },
      ],
      note: 'raw: whole records back to back (27-byte header: crc32, offset, expiresAt, flags, key length, value length; key; value); the reader checks every CRC',
    },
  ],
);
add(
  'ROLE on a primary; REPLICAOF NO ONE on a primary changes nothing',
  ['ROLE', 'REPLICAOF'],
  [],
  [],
  [
    {
      req: [1, 'ROLE'],
      res: [
        1,
        {
          role: 'primary',
          logId: '',
          epoch: 0,
          epochs: [[0, 0]],
          end: 0,
          horizon: 0,
          primary: null,
          link: null,
        },
      ],
      match: 'id',
      note: 'logId is random (16 bytes, hex), chosen when the log was created',
    },
    { req: [2, 'REPLICAOF', 'NO', 'ONE'], res: [2, true] },
  ],
);
add(
  'WAIT on a primary without replicas',
  ['SET', 'WAIT'],
  [],
  [],
  [
    { req: [1, 'SET', 'k', bin('v')], res: [1, true] },
    { req: [2, 'WAIT', 0, 0], res: [2, 0], note: 'no replica asked for: at once' },
    { req: [3, 'WAIT', 1, 50], res: [3, 0], note: 'after 50 ms: no replica holds the write' },
  ],
);
add(
  '--min-replicas-ack: a write without enough replicas connected is refused, nothing written',
  ['SET', 'GET'],
  ['NOREPLICAS'],
  ['--min-replicas-ack', '1'],
  [
    {
      req: [1, 'SET', 'k', bin('v')],
      res: err(
        1,
        'NOREPLICAS',
        '0 replicas are connected and this server acknowledges a write only once 1 have it (server option --min-replicas-ack); nothing was written',
      ),
    },
    { req: [2, 'GET', 'k'], res: [2, null] },
  ],
);
add(
  'a replica refuses writes with READONLY, naming its primary; reads with LOADING before its first sync',
  ['SET', 'GET'],
  ['READONLY', 'LOADING'],
  ['--replica-of', '127.0.0.1:1'],
  [
    {
      req: [1, 'SET', 'k', bin('v')],
      res: err(
        1,
        'READONLY',
        'this server is a read-only replica of 127.0.0.1:1; send writes there (or promote it: REPLICAOF NO ONE)',
      ),
    },
    {
      req: [2, 'GET', 'k'],
      res: err(
        2,
        'LOADING',
        'this replica is loading the dataset from its primary 127.0.0.1:1 (full resync); read from the primary or retry later',
      ),
      note: 'reads get LOADING until the first sync has caught up (here: an empty replica whose primary is down); a caught-up replica serves them',
    },
  ],
);
add(
  'CLUSTER KEYSLOT on any server; CLUSTER SLOTS outside cluster mode',
  ['CLUSTER'],
  ['NOT_SUPPORTED'],
  [],
  [
    {
      req: [1, 'CLUSTER', 'KEYSLOT', 'foo'],
      res: [1, 12182],
      note: "CRC16 of the key's bytes mod 16384, as Redis Cluster",
    },
    {
      req: [2, 'CLUSTER', 'KEYSLOT', '{user1}:name'],
      res: [2, 8106],
      note: 'a hash tag: only "user1" is hashed',
    },
    {
      req: [3, 'CLUSTER', 'SLOTS'],
      res: err(
        3,
        'NOT_SUPPORTED',
        'this server is not in cluster mode (kv-server --cluster NAME --etcd URL --shard ID)',
      ),
    },
  ],
);
add(
  'pipelining: requests sent together are answered in order',
  ['SET', 'GET', 'PING'],
  [],
  [],
  [
    {
      raw: Buffer.concat([frame([10, 'SET', 'p', bin('1')]), frame([11, 'GET', 'p']), frame([12, 'PING'])]),
      res: [10, true],
      note: 'three frames in one write',
    },
    { res: [11, bin('1')] },
    { res: [12, 'PONG'] },
  ],
);

// ---- errors replied (the connection stays open) -----------------------------

add(
  'unknown command',
  [],
  ['UNKNOWN_COMMAND'],
  [],
  [
    {
      req: [1, 'FLUSHALL'],
      res: err(1, 'UNKNOWN_COMMAND', "unknown command 'FLUSHALL'; see protocol/PROTOCOL.md"),
    },
    { req: [2, 'PING'], res: [2, 'PONG'] },
  ],
);
add(
  'wrong number or types of arguments',
  ['GET', 'SET', 'MSET'],
  ['WRONG_ARGS'],
  [],
  [
    { req: [1, 'GET'], res: err(1, 'WRONG_ARGS', usage('GET', 'key')) },
    { req: [2, 'GET', 42], res: err(2, 'WRONG_ARGS', 'GET: argument 1 must be a key (str or bin)') },
    {
      req: [3, 'MSET', 'a', bin('1'), 'b'],
      res: err(3, 'WRONG_ARGS', usage('MSET', 'key value [key value ...]')),
    },
    {
      req: [4, 'SET', 'k', bin('v'), { px: 5 }],
      res: err(4, 'WRONG_ARGS', "SET: unknown option 'px'; allowed: ttl, nx, xx"),
    },
    {
      req: [5, 'SET', 'k', bin('v'), { nx: true, xx: true }],
      res: err(5, 'WRONG_ARGS', 'SET: options nx and xx exclude each other'),
    },
  ],
);
add(
  'a command name that is not a str',
  [],
  ['PROTOCOL_ERROR'],
  [],
  [
    { req: [1, 7], res: err(1, 'PROTOCOL_ERROR', 'the command name must be a MessagePack str') },
    { req: [2, 'PING'], res: [2, 'PONG'], note: 'the connection stays usable' },
  ],
);
add(
  'an empty key',
  ['GET'],
  ['INVALID_KEY'],
  [],
  [{ req: [1, 'GET', ''], res: err(1, 'INVALID_KEY', 'a key must not be empty') }],
);
add(
  'a bad ttl (0, or past the largest TTL 2^52 ms) or scan count',
  ['SET', 'SCAN'],
  ['INVALID_ARGUMENT'],
  [],
  [
    {
      req: [1, 'SET', 'k', bin('v'), { ttl: 0 }],
      res: err(1, 'INVALID_ARGUMENT', 'SET: option ttl must be a positive integer number of ms, got 0'),
    },
    {
      req: [3, 'SET', 'k', bin('v'), { ttl: 2 ** 52 + 1 }],
      res: err(
        3,
        'INVALID_ARGUMENT',
        'SET: option ttl must be at most 4503599627370496 ms (2^52, about 142,000 years: the largest expiry the log keeps exactly), got 4503599627370497',
      ),
    },
    {
      req: [2, 'SCAN', { count: 0 }],
      res: err(2, 'INVALID_ARGUMENT', 'scan count must be an integer from 1 to 100000, got 0'),
    },
  ],
);

// ---- fatal errors (the server closes the connection) ----------------------------

add(
  'a body that is not MessagePack (an array header without its elements)',
  [],
  ['PROTOCOL_ERROR'],
  [],
  [
    {
      raw: Buffer.from('0000000192', 'hex'),
      res: err(null, 'PROTOCOL_ERROR', 'the frame body is not exactly one valid MessagePack value'),
      closed: true,
    },
  ],
);
add(
  'a body with bytes after its value',
  [],
  ['PROTOCOL_ERROR'],
  [],
  [
    {
      raw: Buffer.concat([Buffer.from('00000008', 'hex'), packr.pack([1, 'PING']), Buffer.from('c0')]),
      res: err(null, 'PROTOCOL_ERROR', 'the frame body is not exactly one valid MessagePack value'),
      closed: true,
    },
  ],
);
add(
  'a request that is not an array',
  [],
  ['PROTOCOL_ERROR'],
  [],
  [
    {
      req: 'PING',
      res: err(null, 'PROTOCOL_ERROR', 'a request must be a MessagePack array [id, command, ...args]'),
      closed: true,
    },
  ],
);
add(
  'a request id that is not a uint32',
  [],
  ['PROTOCOL_ERROR'],
  [],
  [
    {
      req: [-1, 'PING'],
      res: err(null, 'PROTOCOL_ERROR', 'a request id must be an integer from 0 to 4294967295'),
      closed: true,
    },
  ],
);
add(
  'an empty frame',
  [],
  ['PROTOCOL_ERROR'],
  [],
  [
    {
      raw: Buffer.from('00000000', 'hex'),
      res: err(null, 'PROTOCOL_ERROR', 'a frame must not be empty (length 0)'),
      closed: true,
    },
  ],
);
add(
  'a length prefix over the limit, refused before the body is sent',
  [],
  ['TOO_LARGE'],
  [],
  [
    {
      raw: Buffer.from('04000001', 'hex'),
      res: err(
        null,
        'TOO_LARGE',
        'frame of 67108865 bytes exceeds the limit of 67108864 bytes (server option --max-frame-bytes)',
      ),
      closed: true,
    },
  ],
);
add(
  'a large frame before AUTH',
  [],
  ['TOO_LARGE'],
  ['--password', 's3cret'],
  [
    {
      raw: Buffer.from('00000401', 'hex'),
      res: err(null, 'TOO_LARGE', 'frame of 1025 bytes before AUTH; the limit before AUTH is 1024 bytes'),
      closed: true,
    },
  ],
);
add(
  'too many failed AUTH attempts close the connection',
  ['AUTH'],
  ['AUTH_FAILED'],
  ['--password', 's3cret'],
  [
    ...[1, 2, 3, 4].map((id) => ({
      req: [id, 'AUTH', 'guess'],
      res: err(id, 'AUTH_FAILED', 'wrong password'),
    })),
    { req: [5, 'AUTH', 'guess'], res: err(5, 'AUTH_FAILED', 'wrong password'), closed: true },
  ],
);
add(
  'a connection over --max-clients',
  [],
  ['MAX_CLIENTS'],
  ['--max-clients', '1'],
  [
    { conn: 0, req: [1, 'PING'], res: [1, 'PONG'] },
    {
      conn: 1,
      res: err(null, 'MAX_CLIENTS', 'the server already serves 1 clients (server option --max-clients)'),
      closed: true,
    },
  ],
);
add(
  'an idle connection past --idle-timeout-ms',
  [],
  ['TIMEOUT'],
  ['--idle-timeout-ms', '300'],
  [
    {
      res: err(
        null,
        'TIMEOUT',
        'connection idle for 300 ms: no bytes in either direction and no request in progress (server option --idle-timeout-ms)',
      ),
      closed: true,
    },
  ],
);

const out = {
  protocol: 1,
  about:
    'Worked examples of protocol/PROTOCOL.md, generated by tools/protocol-vectors.ts and checked by ' +
    'test/protocol/vectors.test.ts. Each vector runs on a fresh kv-server started with `server` flags. ' +
    'Steps run in order on connection `conn` (default 0, opened on first use): write `send` (hex), then ' +
    'read `expect` (hex) — byte for byte, or with match "id" a reply with the same id and outcome — and ' +
    'with `closed` the server then closes the connection. `request`/`reply` are readable views ' +
    '({"bin": text} is a MessagePack bin).',
  errorsWithoutExactVectors: {
    NOT_SUPPORTED: 'COMPACT on a store without a compactor; the COMPACT vector accepts it (match "id")',
    BUSY: 'COMPACT while a compaction runs: timing-dependent (test/server/compact-busy.test.ts checks it from two connections)',
    NOT_ENOUGH_REPLICAS:
      'a replica that stops acknowledging while connected: timing-dependent (test/replication/sync-ack.test.ts)',
    IO_ERROR: 'needs the disk to refuse a write or fsync',
    CORRUPTION: 'needs a corrupted data directory',
    CLOSED: 'a request racing the store closing at shutdown',
    INTERNAL: 'a server bug',
    CONNECTION_CLOSED: 'client-side only, never on the wire',
    CONNECTION_FAILED: 'client-side only, never on the wire',
    LOCKED: 'opening a store only, never on the wire',
  },
  vectors,
};
const path = resolve(ROOT, 'protocol/vectors.json');
writeFileSync(path, `${JSON.stringify(out, null, 2)}\n`);
process.stdout.write(`wrote ${vectors.length} vectors to ${path}\n`);
