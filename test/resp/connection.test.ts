/**
 * The RESP side of a kv-server connection under the native protocol's
 * rules: pre-AUTH limits and failed-AUTH cutoff, the bulk limit checked on
 * the length line, backpressure against a client that never reads (server
 * RSS bounded, others served), random bytes never crash the server or
 * disturb a bystander, each reply in the protocol its request ran under,
 * CLIENT LIST and INFO across both protocols.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { RESP_COMMANDS } from '../../src/resp/table.js';
import { type ServerProcess, spawnServer } from '../server/spawn.js';
import { encodeCommand, parseReply, RawResp } from './raw.js';

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

describe('RESP before AUTH', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await spawnServer({ env: { SEGKV_PASSWORD: 'pw' } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('commands other than AUTH/HELLO/QUIT get NOAUTH and write nothing', async () => {
    const c = await RawResp.connect(server.port);
    expect((await c.call('SET', 'k', 'v')).raw).toBe('-NOAUTH Authentication required.\r\n');
    expect((await c.call('PING')).raw).toBe('-NOAUTH Authentication required.\r\n');
    expect((await c.call('AUTH', 'default', 'pw')).raw).toBe('+OK\r\n');
    expect((await c.call('EXISTS', 'k')).raw).toBe(':0\r\n');
    c.close();
  });

  it('more than 10 arguments, or more than 1,024 bytes, close the connection with Redis words', async () => {
    const many = await RawResp.connect(server.port);
    many.send('*11\r\n');
    expect((await many.read()).raw).toBe('-ERR Protocol error: unauthenticated multibulk length\r\n');
    await many.waitClosed();
    const big = await RawResp.connect(server.port);
    big.send('*2\r\n$4\r\nAUTH\r\n$2000\r\n');
    expect((await big.read()).raw).toBe('-ERR Protocol error: unauthenticated bulk length\r\n');
    await big.waitClosed();
  });

  it('after AUTH the limits are the authenticated ones', async () => {
    const c = await RawResp.connect(server.port);
    await c.call('AUTH', 'pw');
    const value = Buffer.alloc(100_000, 7);
    expect((await c.call('SET', 'big', value)).raw).toBe('+OK\r\n');
    expect((await c.call('STRLEN', 'big')).raw).toBe(':100000\r\n');
    c.close();
  });

  it('the 5th failed AUTH closes the connection after its reply', async () => {
    const c = await RawResp.connect(server.port);
    for (let i = 0; i < 5; i++) {
      expect((await c.call('AUTH', 'nope')).raw).toMatch(/^-WRONGPASS /);
    }
    await c.waitClosed();
  });
});

describe('RESP limits and flow control', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await spawnServer({ args: ['--max-frame-bytes', String(1 << 20)] });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('a bulk over --max-frame-bytes is refused on its length line, before its bytes arrive', async () => {
    const c = await RawResp.connect(server.port);
    c.send('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n');
    expect((await c.read()).raw).toBe('-ERR Protocol error: invalid bulk length\r\n');
    await c.waitClosed();
  });

  it('replies owed are sent before a protocol error, then the connection closes', async () => {
    const c = await RawResp.connect(server.port);
    c.send('*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*1\r\nPING\r\n');
    expect((await c.read()).raw).toBe('+OK\r\n');
    expect((await c.read()).raw).toBe("-ERR Protocol error: expected '$', got 'P'\r\n");
    await c.waitClosed();
  });

  it('each reply is encoded in the protocol its request ran under (HELLO 3 mid-pipeline)', async () => {
    const c = await RawResp.connect(server.port);
    c.send(
      Buffer.concat([
        encodeCommand(['SET', 'p', 'v']), // a write: its reply waits for the ack
        encodeCommand(['GET', 'nothing']), // RESP2 null
        encodeCommand(['HELLO', '3']),
        encodeCommand(['GET', 'nothing']), // RESP3 null
        encodeCommand(['SET', 'p', 'w', 'GET']),
      ]),
    );
    expect((await c.read()).raw).toBe('+OK\r\n');
    expect((await c.read()).raw).toBe('$-1\r\n');
    expect((await c.read()).raw).toMatch(/^%7\r\n/);
    expect((await c.read()).raw).toBe('_\r\n');
    expect((await c.read()).raw).toBe('$1\r\nv\r\n');
    c.close();
  });

  it('a client that never reads 200k GET replies of 1 KiB leaves server RSS bounded; others are served', async () => {
    const setup = await RawResp.connect(server.port);
    await setup.call('SET', 'big', Buffer.alloc(1024, 1));
    setup.close();
    const before = rssBytes(server.proc.pid!);
    const flood = await RawResp.connect(server.port);
    flood.socket.pause();
    const one = encodeCommand(['GET', 'big']);
    const chunk = Buffer.concat(Array.from({ length: 10_000 }, () => one));
    for (let i = 0; i < 20; i++) flood.socket.write(chunk);
    await new Promise((r) => setTimeout(r, 1500));
    const during = rssBytes(server.proc.pid!);
    const other = await RawResp.connect(server.port);
    const t0 = Date.now();
    expect((await other.call('STRLEN', 'big')).raw).toBe(':1024\r\n');
    expect(Date.now() - t0).toBeLessThan(1000);
    // 200 MiB of replies were asked for; the server holds a few MiB of them.
    expect(during - before).toBeLessThan(64 * 1024 * 1024);
    other.close();
    flood.close();
  });

  it('CLIENT LIST shows RESP and native connections, CLIENT ID is unique', async () => {
    const native = new KvClient({ port: server.port });
    await native.ping();
    const a = await RawResp.connect(server.port);
    const b = await RawResp.connect(server.port);
    await a.call('CLIENT', 'SETNAME', 'alpha');
    const idA = (await a.call('CLIENT', 'ID')).value as number;
    const idB = (await b.call('CLIENT', 'ID')).value as number;
    expect(idA).not.toBe(idB);
    const list = (await b.call('CLIENT', 'LIST')).value as string;
    const lines = list.trim().split('\n');
    expect(lines.find((l) => l.startsWith(`id=${idA} `))).toMatch(/ name=alpha .* resp=2$/);
    expect(lines.find((l) => l.startsWith(`id=${idB} `))).toMatch(/ cmd=client\|list /);
    expect(lines.some((l) => l.endsWith(' resp=0'))).toBe(true); // the native client
    expect((await b.call('CLIENT', 'LIST', 'ID', String(idA))).value).toMatch(new RegExp(`^id=${idA} `));
    // RESP commands count under the native command of the same name (INFO stats, metrics).
    const counted = async () =>
      ((await native.info('stats')) as { stats: { commands: Record<string, number> } }).stats.commands.GET ??
      0;
    const before = await counted();
    await a.call('GET', 'x');
    await a.call('get', 'x');
    expect(await counted()).toBe(before + 2);
    a.close();
    b.close();
    await native.close();
  });

  it('INFO is Redis text: sections, fields, db0 keyspace line; RESP3 sends it verbatim', async () => {
    const c = await RawResp.connect(server.port);
    await c.call('SET', 'x', '1', 'EX', '100');
    const info = (await c.call('INFO')).value as string;
    for (const h of ['# Server', '# Clients', '# Persistence', '# Stats', '# Replication', '# Keyspace']) {
      expect(info).toContain(`${h}\r\n`);
    }
    expect(info).toMatch(/\r\nredis_version:7\.\d+\.\d+\r\n/);
    expect(info).toMatch(/\r\nloading:0\r\n/);
    expect(info).toMatch(/\r\ndb0:keys=\d+,expires=\d+,avg_ttl=0\r\n/);
    expect((await c.call('INFO', 'keyspace')).value).toMatch(/^# Keyspace\r\ndb0:keys=/);
    expect((await c.call('INFO', 'nosuchsection')).raw).toBe('$0\r\n\r\n');
    await c.call('HELLO', '3');
    expect((await c.call('INFO', 'server')).raw).toMatch(/^=\d+\r\ntxt:# Server\r\n/);
    c.close();
  });
});

describe('RESP over --max-clients', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await spawnServer({ args: ['--max-clients', '1'] });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("a Redis client is refused in RESP with Redis's words, a native one with the MAX_CLIENTS frame", async () => {
    const holder = await RawResp.connect(server.port);
    expect((await holder.call('PING')).raw).toBe('+PONG\r\n');
    const refused = await RawResp.connect(server.port);
    expect((await refused.call('PING')).raw).toBe('-ERR max number of clients reached\r\n');
    await refused.waitClosed();
    const native = new KvClient({ port: server.port, reconnect: false });
    await expect(native.ping()).rejects.toMatchObject({
      code: expect.stringMatching(/MAX_CLIENTS|CONNECTION_FAILED/),
    });
    await native.close().catch(() => {});
    holder.close();
  });
});

describe('RESP bad input', () => {
  let server: ServerProcess;
  let bystander: KvClient<string>;
  beforeAll(async () => {
    server = await spawnServer({ args: ['--max-frame-bytes', String(64 * 1024)] });
    bystander = new KvClient({ port: server.port, reconnect: false });
    await bystander.set('stable', 'value');
  });
  afterAll(async () => {
    await bystander?.close();
    await server?.stop();
  });

  const UNSAFE_FOR_BYSTANDER = new Set(['wait', 'debug', 'flushall', 'flushdb', 'replicaof']);
  const command = fc.array(
    fc.oneof(
      // All but those whose reply may legitimately never come (WAIT n 0, DEBUG SLEEP) and
      // those that may rightly take the bystander's key away (FLUSHALL, FLUSHDB, and
      // REPLICAOF host port, which would make the server a replica of nothing).
      fc
        .constantFrom(...[...RESP_COMMANDS.keys()].filter((n) => !UNSAFE_FOR_BYSTANDER.has(n)))
        .map((n) => Buffer.from(n)),
      fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a)),
      fc
        .constantFrom('EX', 'PX', 'NX', 'GET', 'MATCH', 'COUNT', '0', '-1', '9223372036854775808')
        .map((s) => Buffer.from(s)),
    ),
    { minLength: 1, maxLength: 6 },
  );
  const input = fc.oneof(
    command.map((argv) => encodeCommand(argv)),
    fc
      .array(
        command.map((argv) => encodeCommand(argv)),
        { maxLength: 5 },
      )
      .map((a) => Buffer.concat([Buffer.from('*'), ...a])),
    fc
      .uint8Array({ minLength: 1, maxLength: 200 })
      .map((a) => Buffer.concat([Buffer.from('*'), Buffer.from(a)])),
    fc.string({ maxLength: 200 }).map((s) => Buffer.from(`${s}\r\n`)),
    command.chain((argv) => {
      const b = encodeCommand(argv);
      return fc.integer({ min: 1, max: b.length - 1 }).map((n) => b.subarray(0, n));
    }),
  );

  it('random requests and bytes get well-formed replies or a close; the server and a bystander carry on', async () => {
    await fc.assert(
      fc.asyncProperty(input, async (bytes) => {
        const c = await RawResp.connect(server.port);
        c.socket.end(bytes);
        await c.waitClosed(5000);
        // Everything the server sent parses as RESP replies.
        expect(c.parseError).toBeUndefined();
        let at = 0;
        const all = Buffer.from(c.received, 'latin1');
        while (at < all.length) {
          const r = parseReply(all, at);
          expect(r, JSON.stringify(c.received)).toBeDefined();
          at = r!.end;
        }
        expect(await bystander.get('stable')).toBe('value');
      }),
      { numRuns: 150 },
    );
    expect(server.proc.exitCode).toBeNull();
  });
});
