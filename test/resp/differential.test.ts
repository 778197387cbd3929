/**
 * The same scenarios against kv-server and a real redis-server (started here
 * on a free 127.0.0.1 port, no persistence, one database), replies compared
 * byte for byte, errors included. A few replies depend on time or on the
 * server's identity; those are compared by the rule named in NORMALIZE.
 *
 * Each scenario starts from an empty keyspace (FLUSHALL on both) on fresh
 * connections. A failure names the scenario, the command and both replies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerProcess, spawnServer } from '../server/spawn.js';
import { haveTools, type RedisPeer, startRedis } from './peers.js';
import { type Parsed, RawResp, type Reply } from './raw.js';

type Cmd = string[];

/** Splits a command line on blanks; `"a b"` keeps a blank inside an argument. */
function cmd(line: string): Cmd {
  const out: string[] = [];
  for (const m of line.matchAll(/"([^"]*)"|(\S+)/g)) out.push(m[1] ?? m[2]!);
  return out;
}

const lines = (...ls: string[]) => ls.map(cmd);

/** Scenarios: name → commands, run in order on one connection to each server. */
const SCENARIOS: Record<string, Cmd[]> = {
  connection: lines(
    'PING',
    'PING hello',
    'PING a b',
    'ECHO "hi there"',
    'ECHO',
    'SELECT 0',
    'SELECT 1',
    'SELECT abc',
    'AUTH x',
    'AUTH default x',
    'AUTH bob x',
    'AUTH a b c',
    'HELLO 4',
    'HELLO abc',
    'HELLO 2 foo',
    'HELLO 3 SETNAME',
    'CLIENT SETNAME "a b"',
    'CLIENT SETNAME myname',
    'CLIENT GETNAME',
    'CLIENT SETNAME ""',
    'CLIENT GETNAME',
    'CLIENT FOO',
    'CLIENT',
    'CLIENT SETNAME',
    'CLIENT LIST TYPE bogus',
    'nosuchcommand a b',
    'nosuchcommand',
    'GET',
    'SET onlykey',
  ),
  set: lines(
    'SET k v',
    'GET k',
    'GET missing',
    'SET k v NX',
    'SET k v2 XX',
    'GET k',
    'SET k2 v XX',
    'SET k v NX XX',
    'SET k v EX 0',
    'SET k v EX -1',
    'SET k v EX abc',
    'SET k v EX',
    'SET k v EX 100 PX 100',
    'SET k v KEEPTTL EX 10',
    'SET k v FOO',
    'SET k v3 GET',
    'SET newkey v GET',
    'SET k v4 NX GET',
    'SET k v5 XX GET',
    'SET absent v XX GET',
    'SET k v EX 1000',
    'TTL k',
    'SET k v KEEPTTL',
    'TTL k',
    'SET k v',
    'TTL k',
    'SET k v PXAT 1',
    'GET k',
    'EXISTS k',
    'SET k v EXAT 99999999999',
    'TTL k',
    'SET k v PX -5',
    'SET k v PX 9223372036854775807',
    'SETNX a 1',
    'SETNX a 2',
    'GET a',
    'SETEX s 100 v',
    'TTL s',
    'SETEX s 0 v',
    'SETEX s abc v',
    'PSETEX p 100000 v',
    'PTTL p',
    'PSETEX p -1 v',
    'GETSET g 1',
    'GETSET g 2',
    'GET g',
    'GETDEL g',
    'GETDEL g',
  ),
  getex: lines(
    'SET e v',
    'GETEX e',
    'GETEX e EX 100',
    'TTL e',
    'GETEX e PERSIST',
    'TTL e',
    'GETEX e PX 5000',
    'PTTL e',
    'GETEX e EX 0',
    'GETEX e FOO',
    'GETEX e PX 100 EX 100',
    'GETEX e PERSIST EX 10',
    'GETEX missing EX 10',
    'GETEX e EXAT 1',
    'EXISTS e',
  ),
  multi: lines(
    'MGET a b c',
    'MSET a 1 b 2',
    'MGET a b c',
    'MSET a',
    'MSET a 1 b',
    'MSETNX a 1 z 2',
    'MSETNX y 1 z 2',
    'MGET y z',
    'MSETNX q',
    'MGET',
  ),
  counters: lines(
    'INCR n',
    'INCRBY n 10',
    'DECR n',
    'DECRBY n 5',
    'INCRBY n abc',
    'INCRBY n 1.5',
    'SET text abc',
    'INCR text',
    'SET big 9223372036854775807',
    'INCR big',
    'DECRBY n -9223372036854775808',
    'SET small -9223372036854775808',
    'DECR small',
    'SET sp " 1"',
    'INCR sp',
    'SET lz 01',
    'INCR lz',
    'SET neg -5',
    'INCR neg',
    'SET plus +5',
    'INCR plus',
    'INCRBY n 99999999999999999999',
    'SET t v EX 1000',
    'SET t 5 KEEPTTL',
    'INCR t',
    'TTL t',
    'APPEND ap hello',
    'APPEND ap " world"',
    'GET ap',
    'STRLEN ap',
    'STRLEN missing',
    'INCR',
  ),
  keyspace: lines(
    'MSET a 1 b 2 c 3',
    'DEL a b missing',
    'DEL a',
    'DEL',
    'UNLINK c x',
    'SET a 1',
    'EXISTS a a b',
    'TYPE a',
    'TYPE missing',
    'DBSIZE',
    'FLUSHDB',
    'DBSIZE',
    'SET a 1',
    'FLUSHALL ASYNC',
    'DBSIZE',
    'FLUSHALL FOO',
    'FLUSHDB SYNC extra',
  ),
  expire: lines(
    'SET x v',
    'EXPIRE x 100',
    'TTL x',
    'EXPIRE x 100 NX',
    'EXPIRE x 200 XX',
    'EXPIRE x 50 GT',
    'EXPIRE x 300 GT',
    'TTL x',
    'EXPIRE x 1000 LT',
    'EXPIRE x 10 LT',
    'TTL x',
    'EXPIRE x 10 NX XX',
    'EXPIRE x 10 GT LT',
    'EXPIRE x 10 FOO',
    'EXPIRE missing 10',
    'EXPIRE x abc',
    'EXPIRE x 9999999999999999',
    'PEXPIRE x 9223372036854775807',
    'EXPIRE x 0',
    'EXISTS x',
    'SET y v',
    'EXPIRE y -5',
    'EXISTS y',
    'SET p v',
    'EXPIRE p 100 GT',
    'EXPIRE p 100 XX',
    'EXPIRE p 100 LT',
    'TTL p',
    'SET z v',
    'PEXPIRE z 100000',
    'PTTL z',
    'PERSIST z',
    'PERSIST z',
    'PERSIST missing',
    'TTL z',
    'PTTL missing',
    'TTL missing',
    'EXPIREAT z 1',
    'EXISTS z',
    'SET w v',
    'PEXPIREAT w 99999999999999',
    'PEXPIRETIME w',
    'EXPIRETIME w',
    'EXPIREAT w 99999999999',
    'EXPIRETIME w',
    'EXPIRETIME missing',
    'SET nottl v',
    'EXPIRETIME nottl',
    'PEXPIRETIME nottl',
    'EXPIRE',
  ),
  keys: lines(
    'MSET user:1 a user:2 b user:10 c order:1 d hello e hallo f hxllo g "star*key" h',
    'KEYS *',
    'KEYS user:*',
    'KEYS *:1',
    'KEYS h?llo',
    'KEYS h[ae]llo',
    'KEYS h[^e]llo',
    'KEYS [a-o]*',
    'KEYS star\\*key',
    'KEYS nomatch*',
    'KEYS',
    'SCAN abc',
    'SCAN 0 COUNT 0',
    'SCAN 0 COUNT abc',
    'SCAN 0 FOO bar',
    'SCAN 0 MATCH',
    'SCAN 0 TYPE hash',
    'SCAN 0 COUNT 1000 MATCH *:1',
    'SCAN 0 COUNT 1000 TYPE string MATCH user:1*',
  ),
  server: lines(
    'DEBUG SLEEP 0',
    'CONFIG GET maxclients',
    'CONFIG GET databases',
    'CONFIG GET nosuchparam',
    'CONFIG SET foo bar',
    'CONFIG FOO',
    'CONFIG GET',
    'CONFIG',
    'WAIT 0 0',
    'WAIT 0 -1',
    'WAIT abc 0',
    'CLUSTER SLOTS',
    'CLUSTER KEYSLOT foo',
    'CLUSTER SHARDS',
    'READONLY',
    'READWRITE',
    'BGREWRITEAOF',
    'COMMAND FOO',
    'COMMAND INFO nosuchcommand',
    'COMMAND DOCS nosuchcommand',
    'COMMAND DOCS get',
    'COMMAND DOCS strlen',
  ),
};

/** Replies compared by another rule than byte equality, by command name. */
const NORMALIZE: Record<string, (ours: Parsed, theirs: Parsed) => void> = {
  // Time left: equal up to a few seconds of test time (a busy machine may stall between
  // the two servers' calls); a wrong unit would be off by a factor of 1000.
  TTL: (a, b) => near(a, b, 3),
  PTTL: (a, b) => near(a, b, 3000),
  // Redis lists keys in hash order, segkv in byte order.
  KEYS: (a, b) => expect(sorted(a.value)).toEqual(sorted(b.value)),
  // A single-page SCAN: the same keys, in either order (multi-page scans: scanAll below).
  SCAN: (a, b) => {
    if (!Array.isArray(a.value) || !Array.isArray(b.value)) return expect(a.raw).toBe(b.raw);
    expect([a.value[0], sorted(a.value[1]!)]).toEqual([b.value[0], sorted(b.value[1]!)]);
  },
};

function near(a: Parsed, b: Parsed, tolerance: number): void {
  if (typeof a.value !== 'number' || typeof b.value !== 'number') {
    expect(a.raw).toBe(b.raw);
    return;
  }
  expect(Math.abs(a.value - b.value)).toBeLessThanOrEqual(tolerance);
  expect(Math.sign(a.value)).toBe(Math.sign(b.value));
}

function sorted(v: Reply): Reply {
  return Array.isArray(v) ? [...v].sort() : v;
}

/** Every key of a full SCAN with these options. */
async function scanAll(conn: RawResp, options: string[]): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const reply = (await conn.call('SCAN', cursor, ...options)).value as [string, string[]];
    cursor = reply[0];
    keys.push(...reply[1]);
  } while (cursor !== '0');
  return keys.sort();
}

describe.runIf(haveTools('redis-server'))('kv-server answers as redis-server does', () => {
  let segkv: ServerProcess;
  let redis: RedisPeer;

  beforeAll(async () => {
    [segkv, redis] = await Promise.all([
      spawnServer(),
      startRedis(['--databases', '1', '--enable-debug-command', 'yes']),
    ]);
  });
  afterAll(async () => {
    redis?.stop();
    await segkv?.stop();
  });

  async function connections(): Promise<[RawResp, RawResp]> {
    const ours = await RawResp.connect(segkv.port);
    const theirs = await RawResp.connect(redis.port);
    await ours.call('FLUSHALL');
    await theirs.call('FLUSHALL');
    return [ours, theirs];
  }

  for (const [name, commands] of Object.entries(SCENARIOS)) {
    it(`scenario ${name}`, async () => {
      const [ours, theirs] = await connections();
      for (const c of commands) {
        const [a, b] = [await ours.call(...c), await theirs.call(...c)];
        const rule = NORMALIZE[c[0]!.toUpperCase()];
        const where = `${name}: ${c.join(' ')}\n  segkv: ${JSON.stringify(a.raw)}\n  redis: ${JSON.stringify(b.raw)}`;
        try {
          if (rule) rule(a, b);
          else expect(a.raw).toBe(b.raw);
        } catch (e) {
          throw new Error(where, { cause: e });
        }
      }
      ours.close();
      theirs.close();
    });
  }

  it('pipelined: the same commands in one write get the same replies, in order', async () => {
    const [ours, theirs] = await connections();
    const commands = [...SCENARIOS.set!, ...SCENARIOS.multi!, ...SCENARIOS.counters!].filter(
      (c) => !['TTL', 'PTTL'].includes(c[0]!),
    );
    const { encodeCommand } = await import('./raw.js');
    const batch = Buffer.concat(commands.map((c) => encodeCommand(c)));
    ours.send(batch);
    theirs.send(batch);
    for (const c of commands) {
      const [a, b] = [await ours.read(), await theirs.read()];
      expect(a.raw, c.join(' ')).toBe(b.raw);
    }
    ours.close();
    theirs.close();
  });

  it('SCAN with MATCH and COUNT visits the same keys as Redis, whatever the cursors', async () => {
    const [ours, theirs] = await connections();
    const args = ['MSET'];
    for (let i = 0; i < 300; i++) args.push(`key:${i}`, 'v');
    await ours.call(...args);
    await theirs.call(...args);
    for (const options of [[], ['COUNT', '7'], ['MATCH', '*:1*'], ['MATCH', 'key:[0-4]?', 'COUNT', '3']]) {
      expect(await scanAll(ours, options), options.join(' ')).toEqual(await scanAll(theirs, options));
    }
    ours.close();
    theirs.close();
  });

  it('RESP3 after HELLO 3: the same bytes (nulls, maps, sets)', async () => {
    const [ours, theirs] = await connections();
    const a = (await ours.call('HELLO', '3')).value as { map: [Reply, Reply][] };
    const b = (await theirs.call('HELLO', '3')).value as { map: [Reply, Reply][] };
    expect(a.map.map(([k]) => k)).toEqual(b.map.map(([k]) => k));
    for (const c of lines(
      'GET missing',
      'SET a 1',
      'GET a',
      'MGET a b',
      'SET a 2 GET',
      'SET b 1 NX GET',
      'CLIENT GETNAME',
      'CONFIG GET maxclients',
      'EXISTS a b',
      'TTL a',
      'PING',
      'ECHO x',
      'SCAN 0 TYPE hash',
      'GETDEL missing',
      'DEL a',
      'INCR c',
      'nosuch',
    )) {
      const [x, y] = [await ours.call(...c), await theirs.call(...c)];
      expect(x.raw, c.join(' ')).toBe(y.raw);
    }
    ours.close();
    theirs.close();
  });

  it('inline commands and protocol errors: same replies, same close', async () => {
    for (const input of [
      'PING\r\nSET a "x y"\r\nGET a\r\nECHO \'it\\\'s\'\r\nGET "\\x41\\n"\r\n\r\n  \r\nPING\n',
      '"unbalanced\r\n',
      'SET a "x"y\r\n',
      '*1\r\nx\r\n',
      '*abc\r\n',
      '*1\r\n$abc\r\n',
      '*1\r\n$-1\r\n',
      '*0\r\n*-5\r\nPING\r\n',
      '*2\r\n$4\r\nECHO\r\n$3\r\nabcXY*1\r\n$4\r\nPING\r\n',
    ]) {
      const results: { raw: string; closed: boolean }[] = [];
      for (const port of [segkv.port, redis.port]) {
        const conn = await RawResp.connect(port);
        conn.send(input);
        await new Promise((r) => setTimeout(r, 300));
        const raws: string[] = [];
        for (;;) {
          const r = await conn.read(200).catch(() => undefined);
          if (r === undefined) break;
          raws.push(r.raw);
        }
        results.push({ raw: raws.join(''), closed: conn.closed });
        conn.close();
      }
      expect(results[0], JSON.stringify(input)).toEqual(results[1]);
    }
  });
});
