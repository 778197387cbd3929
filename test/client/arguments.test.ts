/**
 * The SDK as a plain JavaScript caller uses it (no types to help): unknown
 * options and wrong shapes reject with INVALID_ARGUMENT naming them, the
 * names shared with Redis/ioredis mean what they mean there (nx, xx, ex,
 * px, EX, variadic del/mget/exists, glob patterns), and ttl is seconds,
 * pttl milliseconds. Against a real kv-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type KvClient, type KvError } from '../../src/index.js';
import { type ServerProcess, spawnServer } from '../server/spawn.js';

let server: ServerProcess;
let kv: KvClient<string>;
/** The client as JavaScript sees it: any argument goes. */
// biome-ignore lint/suspicious/noExplicitAny: plain JavaScript callers are what this file tests
let js: any;

beforeAll(async () => {
  server = await spawnServer();
  kv = await connect({ port: server.port });
  js = kv;
});
afterAll(async () => {
  await kv.close();
  await server.stop();
});

async function rejection(p: Promise<unknown>): Promise<KvError> {
  try {
    await p;
  } catch (err) {
    return err as KvError;
  }
  throw new Error('expected a rejection');
}

describe('set options', () => {
  it('nx / xx (ioredis names) are honoured, as ifAbsent / ifPresent', async () => {
    await kv.set('x', 'first');
    expect(await js.set('x', 'second', { nx: true })).toBe(false);
    expect(await kv.get('x')).toBe('first');
    expect(await js.set('absent', 'v', { xx: true })).toBe(false);
    expect(await kv.get('absent')).toBeUndefined();
    expect(await js.set('x', 'third', { XX: true })).toBe(true);
    expect(await kv.get('x')).toBe('third');
  });

  it('EX / ex are seconds, PX / px milliseconds, as in Redis', async () => {
    await js.set('ex', 'v', { EX: 10 });
    expect(await kv.ttl('ex')).toBe(10);
    await js.set('ex2', 'v', { ex: 20 });
    expect(await kv.ttl('ex2')).toBe(20);
    await js.set('px', 'v', { px: 5000 });
    expect(await kv.pttl('px')).toBeGreaterThan(4000);
    expect(await kv.pttl('px')).toBeLessThanOrEqual(5000);
  });

  it("ioredis's token form: set(k, v, 'EX', 10, 'NX')", async () => {
    expect(await js.set('tok', 'v', 'EX', 30, 'NX')).toBe(true);
    expect(await kv.ttl('tok')).toBe(30);
    expect(await js.set('tok', 'w', 'nx')).toBe(false);
    expect(await js.set('tok', 'w', 'PX', 1700)).toBe(true);
    expect(await kv.ttl('tok')).toBe(2); // 1.7 s rounds to 2, as Redis rounds
    expect((await rejection(js.set('tok', 'w', 'EX'))).code).toBe('INVALID_ARGUMENT');
    expect((await rejection(js.set('tok', 'w', 'KEEPTTL'))).message).toMatch(/KEEPTTL/);
  });

  it('an unknown option, a wrong type or a conflict rejects with INVALID_ARGUMENT naming it', async () => {
    const unknown = await rejection(js.set('u', 'v', { ttl: 1000 }));
    expect(unknown.code).toBe('INVALID_ARGUMENT');
    expect(unknown.message).toMatch(/unknown option 'ttl'.*ttlMs/);
    expect((await rejection(js.set('u', 'v', { nx: 'yes' }))).message).toMatch(/nx must be a boolean/);
    expect((await rejection(js.set('u', 'v', { ex: 1.5 }))).message).toMatch(/ex must be a positive integer/);
    expect((await rejection(js.set('u', 'v', { ttlMs: 0 }))).code).toBe('INVALID_ARGUMENT');
    expect((await rejection(js.set('u', 'v', { ex: 1, ttlMs: 1000 }))).message).toMatch(/both set a TTL/);
    expect((await rejection(js.set('u', 'v', { nx: true, xx: true }))).message).toMatch(/exclude each other/);
    expect((await rejection(js.set('u', 'v', [1]))).code).toBe('INVALID_ARGUMENT');
    expect((await rejection(js.set(42, 'v'))).code).toBe('INVALID_KEY');
    expect(await kv.exists('u')).toBe(0); // nothing was sent
  });
});

describe('variadic keys (ioredis forms)', () => {
  it('del, mget and exists take keys as arguments or arrays', async () => {
    await kv.mset({ a: '1', b: '2', c: '3' });
    expect(await js.mget('a', 'b')).toEqual(['1', '2']);
    expect(await js.mget(['a', 'b'], 'c')).toEqual(['1', '2', '3']);
    expect(await js.exists('a', 'b', 'nope')).toBe(2);
    expect(await js.exists(['a', 'a'])).toBe(2);
    expect(await js.del('a', 'b')).toBe(2);
    expect(await js.mget('a', 'b', 'c')).toEqual([undefined, undefined, '3']);
    expect(await js.del(['c', 'c', 'nope'])).toBe(1);
  });

  it('a lone string key is one key, never split into characters', async () => {
    await kv.set('user:1', 'Ada');
    expect(await js.mget('user:1')).toEqual(['Ada']);
    expect(await js.exists('user:1')).toBe(1);
  });

  it('no keys, or a key that is not a string or Buffer, rejects', async () => {
    expect((await rejection(js.del())).code).toBe('INVALID_ARGUMENT');
    expect((await rejection(js.mget([]))).code).toBe('INVALID_ARGUMENT');
    expect((await rejection(js.mget('a', 7))).code).toBe('INVALID_KEY');
    expect((await rejection(js.get({ key: 'a' }))).code).toBe('INVALID_KEY');
  });

  it("mset takes ioredis's key, value, key, value form too", async () => {
    await js.mset('m1', 'one', 'm2', 'two');
    expect(await kv.mget('m1', 'm2')).toEqual(['one', 'two']);
    expect((await rejection(js.mset('m1', 'one', 'm2'))).code).toBe('INVALID_ARGUMENT');
  });
});

describe('ttl and expire: Redis units', () => {
  it('ttl is seconds, pttl milliseconds; expire seconds, pexpire milliseconds', async () => {
    await kv.set('e', 'v');
    expect(await kv.expire('e', 100)).toBe(true);
    expect(await kv.ttl('e')).toBe(100);
    expect(await kv.pttl('e')).toBeGreaterThan(99_000);
    expect(await kv.pexpire('e', 2700)).toBe(true);
    expect(await kv.ttl('e')).toBe(3);
    expect(await kv.pttl('e')).toBeLessThanOrEqual(2700);
  });

  it('expire with a time ≤ 0 deletes the key, as Redis does', async () => {
    await kv.set('gone', 'v');
    expect(await kv.expire('gone', -5)).toBe(true);
    expect(await kv.exists('gone')).toBe(0);
    expect(await kv.expire('gone', 0)).toBe(false);
    await kv.set('gone', 'v');
    expect(await kv.pexpire('gone', 0)).toBe(true);
    expect(await kv.get('gone')).toBeUndefined();
  });

  it("Redis 7's NX/XX/GT/LT flags and non-integers reject instead of being ignored", async () => {
    await kv.set('f', 'v');
    expect((await rejection(js.expire('f', 10, 'NX'))).message).toMatch(/NX\/XX\/GT\/LT/);
    expect((await rejection(js.expire('f', '10'))).code).toBe('INVALID_ARGUMENT');
    expect(await kv.ttl('f')).toBe(-1);
  });
});

describe('keys and scan take glob patterns', () => {
  it("keys('user:*') honours the pattern; '*:1' and '?' work (server-side glob)", async () => {
    await kv.mset({ 'user:1': 'a', 'user:2': 'b', 'order:1': 'c', 'user:10': 'd' });
    const collect = async (it: AsyncIterable<string>) => {
      const out: string[] = [];
      for await (const k of it) out.push(k);
      return out.sort();
    };
    expect(await collect(kv.keys('user:*'))).toEqual(['user:1', 'user:10', 'user:2']);
    expect(await collect(kv.keys('*:1'))).toEqual(['order:1', 'user:1']);
    expect(await collect(kv.keys('user:?'))).toEqual(['user:1', 'user:2']);
    expect(await collect(kv.keys({ match: 'user:1*', count: 1 }))).toEqual(['user:1', 'user:10']);
    const page = await kv.scan({ match: '*:1', count: 1000 });
    expect(page.keys.sort()).toEqual(['order:1', 'user:1']);
  });

  it('unknown scan options reject', async () => {
    expect((await rejection(js.scan({ pattern: 'user:*' }))).message).toMatch(
      /unknown option 'pattern'.*match/,
    );
    expect(() => js.keys({ cursor: 'x' })).toThrow(/unknown option 'cursor'/);
  });
});

describe('connect options', () => {
  it('an unknown option or a wrong type rejects with INVALID_ARGUMENT', async () => {
    const err = await rejection((connect as (o: unknown) => Promise<unknown>)({ prot: server.port }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatch(/unknown option 'prot'/);
    expect((await rejection((connect as (o: unknown) => Promise<unknown>)({ port: '7379' }))).code).toBe(
      'INVALID_ARGUMENT',
    );
  });
});

describe('extra arguments', () => {
  it('are refused with INVALID_ARGUMENT, and the call is not sent', async () => {
    await kv.set('one', '1');
    const err = await rejection(js.get('one', 'two'));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toBe('get takes (key), got 2 arguments');
    expect((await rejection(js.ttl('one', 5))).message).toMatch(/^ttl takes \(key\)/);
    expect((await rejection(js.incr('n', 1, 2))).message).toMatch(/^incr takes \(key, delta\)/);
    expect(() => js.keys('a*', 'b*')).toThrow(/keys takes \(patternOrOptions\), got 2 arguments/);
    // close(callback) would leave the caller waiting on a callback that is never called.
    expect((await rejection(js.close(() => {}))).message).toBe('close takes no arguments, got 1 argument');
    expect(kv.status).toBe('ready');
    expect(await kv.get('one')).toBe('1');
    expect(await js.incr('n', 2)).toBe(2);
  });
});
