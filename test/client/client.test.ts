/**
 * The client SDK against real kv-server processes: every method, pipelining,
 * encodings, timeouts, reconnects, auth, TLS, and values near the frame limit.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { type ClientStatus, connect, KvClient, type KvError, type SetOptions } from '../../src/index.js';
import { type ServerProcess, spawnServer, tempDir } from '../server/spawn.js';

const clients: KvClient<unknown>[] = [];
function track<T extends KvClient<unknown>>(c: T): T {
  clients.push(c);
  return c;
}
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
});

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as KvError).code;
  }
  return 'resolved';
}

describe('client SDK against kv-server', () => {
  let server: ServerProcess;
  let client: KvClient<string>;

  beforeAll(async () => {
    server = await spawnServer();
    client = track(await connect({ port: server.port }));
  });
  afterAll(async () => {
    await server.stop();
  });

  it('get/set/del/exists/ttl/incr', async () => {
    expect(await client.get('a')).toBeUndefined();
    expect(await client.set('a', 'alpha')).toBe(true);
    expect(await client.get('a')).toBe('alpha');
    expect(await client.set('a', 'other', { ifAbsent: true })).toBe(false);
    expect(await client.set('nope', 'x', { ifPresent: true })).toBe(false);
    expect(await client.get('a')).toBe('alpha');
    expect(await client.set('t', 'x', { ttlMs: 60_000 })).toBe(true);
    const pttl = await client.pttl('t');
    expect(pttl).toBeGreaterThan(50_000);
    expect(pttl).toBeLessThanOrEqual(60_000);
    // ttl() is Redis's TTL: seconds, rounded.
    expect(await client.ttl('t')).toBe(60);
    expect(await client.ttl('a')).toBe(-1);
    expect(await client.ttl('missing')).toBe(-2);
    expect(await client.pttl('a')).toBe(-1);
    expect(await client.pttl('missing')).toBe(-2);
    expect(await client.exists(['a', 'a', 't', 'missing'])).toBe(3);
    expect(await client.exists('a')).toBe(1);
    expect(await client.incr('n')).toBe(1);
    expect(await client.incr('n', 9)).toBe(10);
    expect(await client.get('n')).toBe('10');
    expect(await client.del(['a', 't', 'missing'])).toBe(2);
    expect(await client.del('a')).toBe(0);
    expect(await client.get('a')).toBeUndefined();
  });

  it('mset/mget, binary keys, unicode values', async () => {
    await client.mset({ m1: 'one', m2: 'twø' });
    await client.mset(
      new Map([
        ['m3', 'three'],
        ['m4', '四'],
      ]),
    );
    expect(await client.mget(['m1', 'm2', 'zz', 'm3', 'm4'])).toEqual([
      'one',
      'twø',
      undefined,
      'three',
      '四',
    ]);
    const bkey = Buffer.from([0, 1, 2, 255]);
    await client.set(bkey, 'binary key');
    expect(await client.get(bkey)).toBe('binary key');
  });

  it('expire and persist an existing key; absent keys say false', async () => {
    await client.set('exp', 'kept');
    expect(await client.expire('exp', 60)).toBe(true);
    expect(await client.ttl('exp')).toBe(60);
    expect(await client.pttl('exp')).toBeGreaterThan(50_000);
    expect(await client.get('exp')).toBe('kept');
    expect(await client.persist('exp')).toBe(true);
    expect(await client.ttl('exp')).toBe(-1);
    expect(await client.persist('exp')).toBe(false);
    expect(await client.expire('exp-missing', 1)).toBe(false);
    expect(await client.pexpire('exp-missing', 1000)).toBe(false);
    expect(await client.persist('exp-missing')).toBe(false);
    expect(await code(client.expire('exp', 'soon' as unknown as number))).toBe('INVALID_ARGUMENT');
    expect(await code(client.expire('exp', 1.5))).toBe('INVALID_ARGUMENT');
    expect(await code(client.pexpire('exp', Number.NaN))).toBe('INVALID_ARGUMENT');
    expect(await client.pexpire('exp', 30)).toBe(true);
    await new Promise((r) => setTimeout(r, 60));
    expect(await client.get('exp')).toBeUndefined();
    // As Redis: a time of 0 or less deletes the key.
    await client.set('exp', 'kept');
    expect(await client.expire('exp', 0)).toBe(true);
    expect(await client.get('exp')).toBeUndefined();
    expect(await client.expire('exp', 0)).toBe(false);
  });

  it('scan pages and the keys() iterator', async () => {
    const keys = Array.from({ length: 25 }, (_, i) => `scan:${String(i).padStart(2, '0')}`);
    await client.mset(Object.fromEntries(keys.map((k) => [k, 'v'])));
    const page = await client.scan({ prefix: 'scan:', count: 10 });
    expect(page.keys).toEqual(keys.slice(0, 10));
    expect(page.cursor).not.toBeNull();
    const next = await client.scan({ prefix: 'scan:', count: 10, cursor: page.cursor! });
    expect(next.keys).toEqual(keys.slice(10, 20));
    const all: string[] = [];
    for await (const k of client.keys({ prefix: 'scan:', count: 7 })) all.push(k);
    expect(all).toEqual(keys);
  });

  it('scan raw: keys that are not UTF-8 come back byte for byte, and bytes select by prefix and range', async () => {
    const bin = [Buffer.from([0xfe, 0x00]), Buffer.from([0xfe, 0xff, 0x80]), Buffer.from([0xfe, 0xff, 0x81])];
    for (const k of bin) await client.set(k, 'b');
    const page = await client.scan({ prefix: Buffer.from([0xfe]), raw: true });
    expectTypeOf(page.keys).toEqualTypeOf<Buffer[]>();
    expect(page.keys.map((k) => k.toString('hex'))).toEqual(bin.map((k) => k.toString('hex')));
    for (const k of page.keys) expect(await client.get(k)).toBe('b');
    // Without raw the same keys are str, UTF-8 decoded: lossy for these bytes.
    const text = await client.scan({ prefix: Buffer.from([0xfe]) });
    expectTypeOf(text.keys).toEqualTypeOf<string[]>();
    expect(text.keys).toEqual(['\ufffd\u0000', '\ufffd\ufffd\ufffd', '\ufffd\ufffd\ufffd']);
    const ranged: string[] = [];
    for await (const k of client.keys({
      start: Buffer.from([0xfe, 0xff]),
      end: Buffer.from([0xfe, 0xff, 0x81]),
      count: 1,
      raw: true,
    }))
      ranged.push(k.toString('hex'));
    expect(ranged).toEqual(['feff80']);
    expect(await code(client.scan({ prefix: 7 as unknown as string }))).toBe('INVALID_ARGUMENT');
  });

  it('ping, hello, dbsize, info, compact', async () => {
    expect(await client.ping()).toBe('PONG');
    expect(await client.ping('echo')).toBe('echo');
    const hello = await client.hello();
    expect(hello.server).toBe('segkv');
    expect(hello.protocol).toBe(1);
    expect(hello.commands).toContain('COMPACT');
    await client.set('d', 'x');
    expect(await client.dbsize()).toBeGreaterThan(0);
    const info = await client.info();
    expect(Object.keys(info)).toEqual([
      'server',
      'keyspace',
      'storage',
      'compaction',
      'clients',
      'stats',
      'replication',
    ]);
    expect((info.clients as { connected: number }).connected).toBeGreaterThanOrEqual(1);
    expect((info.keyspace as { keys: number }).keys).toBe(await client.dbsize());
    expect(Object.keys(await client.info('storage'))).toEqual(['storage']);
    const c = await code(client.compact());
    expect(['resolved', 'NOT_SUPPORTED', 'BUSY']).toContain(c);
  });

  it('server errors reject with KvError and their code', async () => {
    expect(await code(client.get(''))).toBe('INVALID_KEY');
    expect(await code(client.set('k', 'v', { ttlMs: -5 }))).toBe('INVALID_ARGUMENT');
    await client.set('word', 'abc');
    expect(await code(client.incr('word'))).toBe('INVALID_VALUE');
    // The connection stays usable after an error reply.
    expect(await client.ping()).toBe('PONG');
  });

  it('answers 10,000 pipelined requests in order, in few writes', async () => {
    const n = 10_000;
    const writes: Promise<boolean>[] = [];
    for (let i = 0; i < n; i++) writes.push(client.set(`p:${i % 500}`, `v${i}`));
    const reads: Promise<string | undefined>[] = [];
    for (let i = 0; i < n; i++) reads.push(client.get(`p:${i % 500}`));
    expect((await Promise.all(writes)).every((x) => x)).toBe(true);
    const got = await Promise.all(reads);
    // Every GET was sent after every SET, so it sees the last value of its key.
    for (let i = 0; i < n; i++) expect(got[i]).toBe(`v${n - 500 + (i % 500)}`);
  });

  it('value encodings: buffer, json, msgpack', async () => {
    const b = track(await connect({ port: server.port, valueEncoding: 'buffer' }));
    await b.set('enc:b', Buffer.from([1, 2, 3]));
    expect(await b.get('enc:b')).toEqual(Buffer.from([1, 2, 3]));
    const j = track(await connect<{ n: number; s: string[] }>({ port: server.port, valueEncoding: 'json' }));
    await j.set('enc:j', { n: 1, s: ['x'] });
    expect(await j.get('enc:j')).toEqual({ n: 1, s: ['x'] });
    expect(await client.get('enc:j')).toBe('{"n":1,"s":["x"]}');
    const m = track(await connect<unknown>({ port: server.port, valueEncoding: 'msgpack' }));
    await m.mset({ 'enc:m': { deep: [1, 'two', null] } });
    expect(await m.mget(['enc:m', 'nope'])).toEqual([{ deep: [1, 'two', null] }, undefined]);
    expect(await code(j.get('enc:b'))).toBe('INVALID_VALUE');
  });

  it('close(): sent commands get their replies, later ones reject with CLOSED', async () => {
    const c = track(new KvClient({ port: server.port }));
    const events: string[] = [];
    c.on('connect', () => events.push('connect'));
    c.on('close', () => events.push('close'));
    const p = c.set('closing', 'yes');
    await c.ready();
    const closed = c.close();
    expect(await p).toBe(true);
    await closed;
    expect(c.status).toBe('closed');
    expect(await code(c.get('closing'))).toBe('CLOSED');
    expect(events).toEqual(['connect', 'close']);
  });

  it('request timeout rejects with TIMEOUT while the server is stopped', async () => {
    const c = track(await connect({ port: server.port, requestTimeoutMs: 300 }));
    server.proc.kill('SIGSTOP');
    try {
      const t0 = Date.now();
      expect(await code(c.get('a'))).toBe('TIMEOUT');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    } finally {
      server.proc.kill('SIGCONT');
    }
    // The late reply is matched to the timed-out command and dropped; the next works.
    expect(await c.ping()).toBe('PONG');
  });

  it('values near the max frame size; over it the client refuses before sending, alone', async () => {
    const max = 8 * 1024 * 1024;
    const s = await spawnServer({ args: ['--max-frame-bytes', String(max)] });
    try {
      const c = track(await connect({ port: s.port, valueEncoding: 'buffer', retryMinDelayMs: 20 }));
      const big = Buffer.alloc(max - 64, 7);
      expect(await c.set('big', big)).toBe(true);
      const back = await c.get('big');
      expect(back?.length).toBe(big.length);
      expect(back?.equals(big)).toBe(true);
      const errors: string[] = [];
      c.on('error', (e) => errors.push((e as KvError).code));
      const closes: number[] = [];
      c.on('close', () => closes.push(1));
      // Commands of the same tick around the oversized one are not affected, nor is the connection.
      const before = c.set('same-tick-1', Buffer.from('a'));
      const over = c.set('bigger', Buffer.alloc(max + 1));
      const after = c.get('big');
      expect(await code(over)).toBe('TOO_LARGE');
      expect(await before).toBe(true);
      expect((await after)?.length).toBe(big.length);
      const err = await over.catch((e: KvError) => e);
      expect((err as KvError).message).toMatch(
        /frame limit of 8388608 bytes.*--max-frame-bytes.*nothing was sent/,
      );
      // The exact boundary: a request of exactly max bytes goes, one byte more does not.
      const fits = Buffer.alloc(max - 24, 1);
      const sent = await code(c.set('edge', fits));
      expect(['resolved', 'TOO_LARGE']).toContain(sent);
      expect(errors).toEqual([]);
      expect(closes).toEqual([]);
      expect(c.status).toBe('ready');
      expect(await s.stderr()).not.toMatch(/TOO_LARGE|too large/i);
    } finally {
      await s.stop();
    }
  });
});

describe('reconnect', () => {
  it('pending commands reject when the server dies; the client reconnects when it is back', async () => {
    const dir = tempDir();
    const first = await spawnServer({ dir, args: ['--fsync', 'always'] });
    const port = first.port;
    const c = track(await connect({ port, retryMinDelayMs: 20, retryMaxDelayMs: 100 }));
    const reconnecting: number[] = [];
    c.on('reconnecting', ({ attempt }) => reconnecting.push(attempt));
    c.on('error', () => {});
    await c.set('before', 'crash');
    const inflight = Array.from({ length: 2000 }, (_, i) => c.set(`f${i}`, 'x'));
    await new Promise((r) => setImmediate(r));
    first.proc.kill('SIGKILL');
    const settled = await Promise.allSettled(inflight);
    const rejected = settled.filter((s) => s.status === 'rejected');
    for (const r of rejected) expect((r.reason as KvError).code).toBe('CONNECTION_CLOSED');
    await first.stop();
    // Issued while down: waits in the offline queue.
    const queued = c.get('before');
    await new Promise((r) => setTimeout(r, 150));
    expect(reconnecting.length).toBeGreaterThan(0);
    const second = await spawnServer({ dir, port, args: ['--fsync', 'always'] });
    try {
      expect(await queued).toBe('crash');
      expect(c.status).toBe('ready');
      expect(await c.ping()).toBe('PONG');
    } finally {
      await c.close();
      await second.stop();
    }
  });

  it('bounded offline queue; no reconnect when disabled', async () => {
    const s = await spawnServer();
    await s.stop();
    const c = track(new KvClient({ port: s.port, offlineQueueLimit: 2, retryMinDelayMs: 50 }));
    c.on('error', () => {});
    const a = c.get('x');
    const b = c.get('y');
    expect(await code(c.get('z'))).toBe('CONNECTION_CLOSED');
    const codes = Promise.all([code(a), code(b)]);
    await c.close();
    expect(await codes).toEqual(['CLOSED', 'CLOSED']);
    const once = track(new KvClient({ port: s.port, reconnect: false }));
    once.on('error', () => {});
    expect(await code(once.get('x'))).toBe('CONNECTION_FAILED');
    expect(once.status).toBe('closed');
  });
});

describe('auth and TLS', () => {
  it('right password works, wrong or missing password is refused', async () => {
    const s = await spawnServer({ env: { SEGKV_PASSWORD: 'correct horse' } });
    try {
      const good = track(await connect({ port: s.port, password: 'correct horse' }));
      expect(await good.set('k', 'v')).toBe(true);
      const none = track(await connect({ port: s.port }));
      expect(await code(none.get('k'))).toBe('NOAUTH');
      expect(await none.ping()).toBe('PONG');
      expect(await code(connect({ port: s.port, password: 'battery' }))).toBe('AUTH_FAILED');
      const wrong = track(new KvClient({ port: s.port, password: 'battery' }));
      const errors: string[] = [];
      wrong.on('error', (e) => errors.push((e as KvError).code));
      expect(await code(wrong.get('k'))).toBe('AUTH_FAILED');
      expect(await code(wrong.ready())).toBe('AUTH_FAILED');
      if (wrong.status !== 'closed') await new Promise((r) => wrong.once('close', () => r(undefined)));
      expect(wrong.status).toBe('closed');
      expect(errors).toContain('AUTH_FAILED');
    } finally {
      await s.stop();
    }
  });

  it('TLS with a certificate generated for the test', async () => {
    const dir = tempDir();
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
      ],
      { stdio: 'ignore' },
    );
    const s = await spawnServer({ dir: tempDir(), args: ['--tls-cert', cert, '--tls-key', key] });
    try {
      const c = track(await connect({ port: s.port, tls: { ca: readFileSync(cert) } }));
      expect(await c.set('secure', 'yes')).toBe(true);
      expect(await c.get('secure')).toBe('yes');
      expect(((await c.info('server')).server as { tls: boolean }).tls).toBe(true);
      // A client that does not trust the certificate is refused, and told what to pass.
      const untrusting = await connect({ port: s.port, tls: true, reconnect: false }).catch(
        (e: KvError) => e,
      );
      expect((untrusting as KvError).code).toBe('CONNECTION_FAILED');
      expect((untrusting as KvError).message).toMatch(
        /not trusted.*tls: \{ ca \}.*--cacert.*rejectUnauthorized: false.*--insecure/,
      );
      // Without TLS against the TLS server: told to pass tls.
      const plain = await connect({ port: s.port, reconnect: false }).catch((e: KvError) => e);
      expect((plain as KvError).code).toBe('CONNECTION_FAILED');
      expect((plain as KvError).message).toMatch(/TLS.*(tls option|--tls)/);
    } finally {
      await s.stop();
    }
  });
});

describe('restart', () => {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`data written through the SDK survives ${signal} under --fsync always`, async () => {
      const dir = tempDir();
      const s = await spawnServer({ dir, args: ['--fsync', 'always'] });
      const c = track(await connect({ port: s.port, reconnect: false }));
      c.on('error', () => {});
      const n = 300;
      await Promise.all(Array.from({ length: n }, (_, i) => c.set(`r${i}`, `value-${i}`)));
      await c.mset({ batchA: '1', batchB: '2' });
      await c.del('r0');
      const code = await s.stop(signal);
      if (signal === 'SIGTERM') expect(code).toBe(0);
      await c.close();
      const again = await spawnServer({ dir });
      try {
        const r = track(await connect({ port: again.port }));
        const keys = Array.from({ length: n }, (_, i) => `r${i}`);
        const values = await r.mget(keys);
        expect(values[0]).toBeUndefined();
        for (let i = 1; i < n; i++) expect(values[i]).toBe(`value-${i}`);
        expect(await r.mget(['batchA', 'batchB'])).toEqual(['1', '2']);
      } finally {
        await again.stop();
      }
    });
  }
});

describe('types', () => {
  it('connect() picks the value type from valueEncoding', () => {
    const opts = { port: 1, reconnect: false, lazyConnect: true } as const;
    expectTypeOf(connect(opts)).toEqualTypeOf<Promise<KvClient<string>>>();
    expectTypeOf(connect({ ...opts, valueEncoding: 'buffer' })).toEqualTypeOf<Promise<KvClient<Buffer>>>();
    const utf8 = new KvClient<string>(opts);
    const buf = new KvClient<Buffer>({ ...opts, valueEncoding: 'buffer' });
    const json = new KvClient<{ n: number }>({ ...opts, valueEncoding: 'json' });
    expectTypeOf(utf8).toEqualTypeOf<KvClient<string>>();
    expectTypeOf(buf).toEqualTypeOf<KvClient<Buffer>>();
    expectTypeOf<ReturnType<typeof json.get>>().toEqualTypeOf<Promise<{ n: number } | undefined>>();
    expectTypeOf<ReturnType<typeof utf8.mget>>().toEqualTypeOf<Promise<(string | undefined)[]>>();
    expectTypeOf(utf8.set).toBeCallableWith('k', 'v', { ex: 10, nx: true } satisfies SetOptions);
    expectTypeOf(utf8.set).toBeCallableWith('k', 'v', 'EX', 10, 'NX');
    expectTypeOf(utf8.status).toEqualTypeOf<ClientStatus>();
    for (const c of [utf8, buf, json]) {
      c.on('error', () => {});
      void c.close();
    }
  });
});
