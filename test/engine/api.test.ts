/**
 * The embedded engine's public API (engine/api.ts) as users get it from
 * 'segkv': only the API is visible — in the types (the @ts-expect-error
 * lines fail the build if an internal leaks back) and at run time — and a
 * plain JavaScript caller's unknown options and wrong shapes throw
 * INVALID_ARGUMENT; Redis's names mean Redis's units (ttl s, pttl ms).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { type KvError, type KvStore, openStore } from '../../src/index.js';
import { tempDir } from '../server/spawn.js';

let store: KvStore | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

async function open(): Promise<KvStore> {
  store = await openStore(tempDir(), { fsync: 'never' });
  return store;
}

async function rejection(p: Promise<unknown>): Promise<KvError> {
  try {
    await p;
  } catch (err) {
    return err as KvError;
  }
  throw new Error('expected a rejection');
}

// biome-ignore lint/suspicious/noExplicitAny: plain JavaScript callers are what this file tests
const asJs = (s: KvStore): any => s;

describe('internals are hidden', () => {
  it('in the types: the Store internals are not on KvStore', async () => {
    const s = await open();
    // @ts-expect-error sealActive is internal
    void s.sealActive;
    // @ts-expect-error point is internal
    void s.point;
    // @ts-expect-error replaceSegments is internal
    void s.replaceSegments;
    // @ts-expect-error the keydir is internal
    void s.keydir;
    expectTypeOf(s.del).returns.toEqualTypeOf<Promise<number>>();
  });

  it('at run time: none of them can be reached', async () => {
    const s = asJs(await open());
    for (const name of [
      'sealActive',
      'point',
      'unpoint',
      'replaceSegments',
      'keydir',
      'segments',
      'flushPending',
    ]) {
      expect(s[name], name).toBeUndefined();
    }
  });

  it("in the published declarations: 'segkv' and 'segkv/engine' name only KvStore", () => {
    const dist = join(import.meta.dirname, '../../dist/src');
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8'));
    expect(pkg.exports['./engine'].types).toBe('./dist/src/engine/api.d.ts');
    const api = readFileSync(join(dist, 'engine/api.d.ts'), 'utf8');
    const index = readFileSync(join(dist, 'index.d.ts'), 'utf8');
    for (const text of [api, index]) {
      expect(text).not.toMatch(/\bsealActive\(|\breplaceSegments\(|\bpoint\(/);
      expect(text).not.toMatch(/export \{[^}]*\bStore\b[^}]*\} from '\.\/store\.js'/);
    }
  });
});

describe('runtime argument checks', () => {
  it("set(k, v, { ttl: 1000 }) throws INVALID_ARGUMENT naming 'ttl' (it is ttlMs, ex or px)", async () => {
    const s = asJs(await open());
    const err = await rejection(s.set('t', 'v', { ttl: 1000 }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatch(/unknown option 'ttl'; the options are ttlMs, px, PX, ex, EX/);
    expect(s.has('t')).toBe(false);
  });

  it('Redis names: nx/xx/ex/px/EX, and the token form', async () => {
    const s = asJs(await open());
    await s.set('a', '1');
    expect(await s.set('a', '2', { nx: true })).toBe(false);
    expect(await s.set('b', '2', { xx: true })).toBe(false);
    await s.set('e', 'v', { EX: 10 });
    expect(s.ttl('e')).toBe(10);
    await s.set('e', 'v', 'PX', 4000, 'XX');
    expect(s.pttl('e')).toBeLessThanOrEqual(4000);
    expect(s.pttl('e')).toBeGreaterThan(3000);
    expect((await rejection(s.set('e', 'v', { nx: true, ifPresent: true }))).code).toBe('INVALID_ARGUMENT');
  });

  it('scan, batch and openStore options are checked too', async () => {
    const s = asJs(await open());
    expect(() => s.scan({ prefx: 'a' })).toThrow(/unknown option 'prefx'/);
    expect((await rejection(s.batch([{ type: 'set', key: 'k', value: 'v', ttl: 5 }]))).message).toMatch(
      /unknown option 'ttl'/,
    );
    expect((await rejection(s.expire('a', 10, 'NX'))).code).toBe('INVALID_ARGUMENT');
    expect((await rejection(s.expire('a', null))).message).toMatch(/persist/);
    const bad = await rejection(openStore(tempDir(), { fsyncMode: 'always' } as never));
    expect(bad.code).toBe('INVALID_ARGUMENT');
    expect(bad.message).toMatch(/unknown option 'fsyncMode'/);
    expect(
      (await rejection(openStore(tempDir(), { compaction: { auto: false, minRatio: 1 } } as never))).message,
    ).toMatch(/minRatio/);
  });
});

describe('wrong shapes a plain JavaScript caller can pass', () => {
  it("openStore: readOnly and compaction.auto are booleans ('false' is not false)", async () => {
    for (const options of [
      { readOnly: 'false' },
      { readOnly: 1 },
      { compaction: { auto: 'no' } },
      { compaction: { auto: 0 } },
    ]) {
      const err = await rejection(openStore(tempDir(), options as never));
      expect(err.code).toBe('INVALID_ARGUMENT');
      expect(err.message).toMatch(/option (readOnly|compaction\.auto) must be true or false/);
    }
  });

  it('openStore: an injected logger, fs or clock without the methods the engine calls is refused at once', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ logger: console }, /option logger must have the methods .*; fatal is missing/],
      [{ logger: 'debug' }, /option logger must be an object/],
      [{ clock: Date.now }, /option clock must be an object/],
      [{ clock: {} }, /option clock must have the methods now; now is missing/],
      [{ fs: { open() {} } }, /option fs must have the methods .*; mkdirp is missing/],
    ];
    for (const [options, message] of cases) {
      const err = await rejection(openStore(tempDir(), options as never));
      expect(err.code, String(message)).toBe('INVALID_ARGUMENT');
      expect(err.message).toMatch(message);
    }
  });

  it("readFrom's limit is an integer ≥ 0", async () => {
    const s = asJs(await open());
    await s.set('a', '1');
    await s.set('b', '2');
    for (const limit of ['1', -1, 1.5, Number.NaN, null]) {
      expect(() => s.readFrom(0, { limit }), String(limit)).toThrow(
        /readFrom: option limit must be an integer ≥ 0/,
      );
    }
    const read = async (limit: number) => {
      const out: string[] = [];
      for await (const r of s.readFrom(0, { limit })) out.push(String(r.key));
      return out;
    };
    expect(await read(1)).toEqual(['a']);
    expect(await read(0)).toEqual([]);
  });

  it('on, once and off take the events a KvStore emits, not a misspelt one', async () => {
    const s = asJs(await open());
    for (const m of ['on', 'once', 'off'])
      for (const event of ['closed', 'Compaction', 'error', 7])
        expect(() => s[m](event, () => {}), `${m} ${event}`).toThrow(
          /a KvStore emits compaction and close, not/,
        );
    let closed = 0;
    expect(s.once('close', () => closed++)).toBe(s);
    expect(s.on('compaction', () => {})).toBe(s);
    await s.close();
    expect(closed).toBe(1);
  });
});

describe('extra arguments', () => {
  it('a call with more arguments than the method takes is refused, not half-done', async () => {
    const s = asJs(await open());
    await s.set('a', '1');
    await s.set('b', '2');
    // get('a', 'b') reads as "get both" to an ioredis user: it must not answer a's value alone.
    const err = await rejection(s.get('a', 'b'));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toBe('get takes (key), got 2 arguments');
    expect(() => s.has('a', 'b')).toThrow(/has takes \(key\), got 2 arguments/);
    expect(() => s.readFrom(0, {}, 1)).toThrow(/readFrom takes \(offset, options\)/);
    expect((await rejection(s.close(() => {}))).message).toBe('close takes no arguments, got 1 argument');
    // Nothing was done by the refused calls: the store is still open and whole.
    expect(s.isClosed).toBe(false);
    expect((await s.get('a')).toString()).toBe('1');
    expect(s.has('b')).toBe(true);
  });
});

describe('Redis semantics', () => {
  it('ttl is seconds, pttl ms; expire seconds, pexpire ms; ≤ 0 deletes', async () => {
    const s = await open();
    await s.set('k', 'v');
    expect(s.ttl('k')).toBe(-1);
    expect(s.ttl('nope')).toBe(-2);
    expect(await s.expire('k', 60)).toBe(true);
    expect(s.ttl('k')).toBe(60);
    expect(s.pttl('k')).toBeGreaterThan(59_000);
    expect(await s.pexpire('k', 10_000)).toBe(true);
    expect(s.ttl('k')).toBe(10);
    expect(await s.persist('k')).toBe(true);
    expect(s.pttl('k')).toBe(-1);
    expect(await s.expire('k', -5)).toBe(true);
    expect(s.has('k')).toBe(false);
    expect(await s.expire('k', 5)).toBe(false);
  });

  it('del is the verb, as in the SDK: variadic, counts what existed; delete() stays as an alias', async () => {
    const s = await open();
    await s.batch([
      { type: 'set', key: 'a', value: '1' },
      { type: 'set', key: 'b', value: '2' },
      { type: 'set', key: 'c', value: '3' },
    ]);
    expect(s.exists('a', 'b', 'nope')).toBe(2);
    expect(s.exists(['a', 'a'])).toBe(2);
    expect(await s.del('a', 'b', 'a', 'nope')).toBe(2);
    expect(await s.del(['c'])).toBe(1);
    expect(await s.del('c')).toBe(0);
    await s.set('d', '4');
    expect(await s.delete('d')).toBe(true);
    expect(s.size).toBe(0);
  });

  it("keys('user:*') takes a glob, as Redis's KEYS and the SDK", async () => {
    const s = await open();
    await s.batch(['user:1', 'user:2', 'order:1'].map((key) => ({ type: 'set' as const, key, value: 'v' })));
    const all = async (it: AsyncIterable<string>) => {
      const out: string[] = [];
      for await (const k of it) out.push(k);
      return out.sort();
    };
    expect(await all(s.keys('user:*'))).toEqual(['user:1', 'user:2']);
    expect(await all(s.keys('*:1'))).toEqual(['order:1', 'user:1']);
    expect(await all(s.keys({ prefix: 'order' }))).toEqual(['order:1']);
  });
});
