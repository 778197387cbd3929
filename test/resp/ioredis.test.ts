/**
 * ioredis (devDependency) drives the same scenario against kv-server and a
 * real redis-server, over RESP3 (ioredis 6's default: HELLO 3 at connect) and
 * RESP2; every result and every error message must be the same. Then the
 * parts only a client library exercises: AUTH at connect against a
 * password, scanStream over integer cursors, pipelines, reconnect.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerProcess, spawnServer } from '../server/spawn.js';
import { haveTools, type RedisPeer, startRedis } from './peers.js';

/** One result per step: the value, or `error: <message>`. */
async function scenario(r: Redis): Promise<unknown[]> {
  const out: unknown[] = [];
  const step = async (f: () => Promise<unknown>) => {
    try {
      const v = await f();
      out.push(Buffer.isBuffer(v) ? `buffer:${v.toString('hex')}` : v);
    } catch (e) {
      out.push(`error: ${(e as Error).message}`);
    }
  };
  await r.flushall();
  await step(() => r.ping());
  await step(() => r.set('greeting', 'hello'));
  await step(() => r.get('greeting'));
  await step(() => r.getBuffer('greeting'));
  await step(() => r.get('missing'));
  await step(() => r.set('greeting', 'x', 'NX'));
  await step(() => r.set('greeting', 'hola', 'XX', 'GET'));
  await step(() => r.set('session', 'v', 'EX', 100));
  await step(() => r.ttl('session'));
  await step(() => r.set('session', 'v', 'EX', 0));
  await step(() => r.setex('s2', 100, 'v'));
  await step(() => r.psetex('s3', 100000, 'v'));
  await step(() => r.setnx('greeting', 'x'));
  await step(() => r.getset('greeting', 'bonjour'));
  await step(() => r.getdel('greeting'));
  await step(() => r.getex('s2', 'PERSIST'));
  await step(() => r.ttl('s2'));
  await step(() => r.mset('a', '1', 'b', '2'));
  await step(() => r.mset({ c: '3', d: '4' }));
  await step(() => r.mget('a', 'b', 'missing', 'd'));
  await step(() => r.msetnx('a', '9', 'z', '9'));
  await step(() => r.incr('counter'));
  await step(() => r.incrby('counter', 41));
  await step(() => r.decr('counter'));
  await step(() => r.decrby('counter', 2));
  await step(() => r.incr('a'));
  await step(() => r.set('text', 'abc'));
  await step(() => r.incr('text'));
  await step(() => r.append('text', 'def'));
  await step(() => r.strlen('text'));
  await step(() => r.exists('a', 'b', 'missing', 'a'));
  await step(() => r.type('a'));
  await step(() => r.type('missing'));
  await step(() => r.expire('a', 100));
  await step(() => r.expire('a', 100, 'NX'));
  await step(() => r.expire('a', 200, 'GT'));
  await step(() => r.pexpire('b', 100000));
  await step(() => r.persist('b'));
  await step(() => r.ttl('b'));
  await step(() => r.pttl('missing'));
  await step(() => r.expire('b', 0));
  await step(() => r.exists('b'));
  await step(() => r.del('c', 'd', 'missing'));
  await step(() => r.unlink('counter'));
  await step(() => r.keys('*').then((k) => k.sort()));
  await step(() => r.dbsize());
  await step(() => r.echo('echo'));
  await step(() => r.select(0));
  await step(() => r.select(3));
  await step(() => r.client('SETNAME', 'tester'));
  await step(() => r.client('GETNAME'));
  await step(() => r.config('GET', 'maxclients'));
  await step(() => r.call('nosuchcommand', 'x'));
  await step(() => r.call('get'));
  const p = r.pipeline();
  p.set('p1', 'a').get('p1').incr('p1').del('p1').get('p1');
  await step(() => p.exec());
  await step(() => r.flushdb());
  await step(() => r.dbsize());
  return out;
}

describe.runIf(haveTools('redis-server'))('ioredis against kv-server and redis-server', () => {
  let segkv: ServerProcess;
  let redis: RedisPeer;
  let secured: ServerProcess;

  beforeAll(async () => {
    [segkv, redis, secured] = await Promise.all([
      spawnServer(),
      startRedis(['--databases', '1']),
      spawnServer({ env: { SEGKV_PASSWORD: 'sekret' } }),
    ]);
  });
  afterAll(async () => {
    redis?.stop();
    await Promise.all([segkv?.stop(), secured?.stop()]);
  });

  for (const protocol of [3, 2] as const) {
    it(`the same results and errors over RESP${protocol}`, async () => {
      const ours = new Redis({ port: segkv.port, protocol, lazyConnect: true });
      const theirs = new Redis({ port: redis.port, protocol, lazyConnect: true });
      await Promise.all([ours.connect(), theirs.connect()]);
      const [a, b] = [await scenario(ours), await scenario(theirs)];
      expect(a).toEqual(b);
      expect(a).toContain('hola'); // the scenario ran
      ours.disconnect();
      theirs.disconnect();
    });
  }

  it('AUTH at connect: the right password works, a wrong one is WRONGPASS, none is NOAUTH', async () => {
    const good = new Redis({ port: secured.port, password: 'sekret', lazyConnect: true });
    await good.connect();
    expect(await good.set('k', 'v')).toBe('OK');
    expect(await good.get('k')).toBe('v');
    good.disconnect();
    const named = new Redis({
      port: secured.port,
      username: 'default',
      password: 'sekret',
      protocol: 2,
      lazyConnect: true,
    });
    await named.connect();
    expect(await named.get('k')).toBe('v');
    named.disconnect();
    // As against redis-server: the handshake's error is emitted, then connect() rejects.
    const bad = new Redis({
      port: secured.port,
      password: 'wrong',
      lazyConnect: true,
      retryStrategy: () => null,
    });
    const emitted: string[] = [];
    bad.on('error', (e: Error) => emitted.push(e.message));
    await expect(bad.connect()).rejects.toThrow();
    expect(emitted).toContain('WRONGPASS invalid username-password pair or user is disabled.');
    bad.disconnect();
    const none = new Redis({
      port: secured.port,
      protocol: 2,
      lazyConnect: true,
      retryStrategy: () => null,
      enableReadyCheck: false,
    });
    await none.connect();
    await expect(none.get('k')).rejects.toThrow('NOAUTH Authentication required.');
    none.disconnect();
  });

  it('scanStream walks every key once over the integer cursors', async () => {
    const r = new Redis({ port: segkv.port, lazyConnect: true });
    await r.connect();
    await r.flushall();
    const pipeline = r.pipeline();
    for (let i = 0; i < 500; i++) pipeline.set(`user:${i}`, String(i));
    await pipeline.exec();
    const seen: string[] = [];
    for await (const keys of r.scanStream({ match: 'user:1*', count: 25 })) seen.push(...(keys as string[]));
    const expected = Array.from({ length: 500 }, (_, i) => `user:${i}`).filter((k) => k.startsWith('user:1'));
    expect(seen.sort()).toEqual(expected.sort());
    r.disconnect();
  });

  it('a deep pipeline of writes is answered in order', async () => {
    const r = new Redis({ port: segkv.port, lazyConnect: true });
    await r.connect();
    const p = r.pipeline();
    for (let i = 0; i < 5000; i++) p.incr('deep');
    const results = await p.exec();
    expect(results?.map(([, v]) => v)).toEqual(Array.from({ length: 5000 }, (_, i) => i + 1));
    r.disconnect();
  });
});
