/**
 * Bad input gets a KvError with its documented code (src/errors.ts): an async
 * call rejects (never throws synchronously), and a refused call writes
 * nothing. Use after close is CLOSED everywhere.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type BatchOp,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  openStore,
  type Store,
  type StoreOptions,
} from '../../src/engine/index.js';
import { KvError } from '../../src/errors.js';
import { removeTempDirs, silentLogger, tempDir } from './helpers.js';

const opts: StoreOptions = { logger: silentLogger, fsync: 'never', compaction: { auto: false } };

/** Calls `f`, which must not throw synchronously, and returns what its promise rejects with. */
async function rejection(f: () => Promise<unknown>): Promise<KvError> {
  let p: Promise<unknown>;
  try {
    p = f();
  } catch (err) {
    throw new Error(`threw synchronously instead of rejecting: ${(err as Error).message}`);
  }
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(KvError);
    return err as KvError;
  }
  throw new Error('resolved instead of rejecting');
}

function thrown(f: () => unknown): KvError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(KvError);
    return err as KvError;
  }
  throw new Error('did not throw');
}

// biome-ignore lint/suspicious/noExplicitAny: wrong types on purpose
const bad = (x: unknown) => x as any;

let dir: string;
let s: Store;

beforeEach(async () => {
  dir = tempDir();
  s = await openStore(dir, opts);
  await s.set('existing', 'v');
});
afterEach(async () => {
  await s.close();
});
afterAll(removeTempDirs);

/** Nothing was written since beforeEach: one record, one key, and the same after a reopen. */
async function expectNothingWritten(): Promise<void> {
  expect(s.stats().nextOffset).toBe(1);
  expect(s.stats().keys).toBe(1);
  await s.close();
  s = await openStore(dir, opts);
  expect(s.stats().nextOffset).toBe(1);
  expect(s.scan({ count: 100 }).keys).toEqual(['existing']);
}

describe('INVALID_KEY', () => {
  const badKeys: [string, unknown][] = [
    ['an empty string', ''],
    ['an empty Buffer', Buffer.alloc(0)],
    ['a string one byte over MAX_KEY_BYTES', 'k'.repeat(MAX_KEY_BYTES + 1)],
    ['a string over MAX_KEY_BYTES in UTF-8 bytes though not in chars', 'é'.repeat(MAX_KEY_BYTES / 2 + 1)],
    ['a Buffer over MAX_KEY_BYTES', Buffer.alloc(MAX_KEY_BYTES + 1, 1)],
    ['a number', 42],
    ['null', null],
    ['undefined', undefined],
    ['an object', { key: 'k' }],
    ['an array', ['k']],
  ];
  for (const [name, key] of badKeys) {
    it(`refuses ${name} in set, delete, batch, get, has and ttl, writing nothing`, async () => {
      expect((await rejection(() => s.set(bad(key), 'v'))).code).toBe('INVALID_KEY');
      expect((await rejection(() => s.delete(bad(key)))).code).toBe('INVALID_KEY');
      expect((await rejection(() => s.batch([{ type: 'set', key: bad(key), value: 'v' }]))).code).toBe(
        'INVALID_KEY',
      );
      expect((await rejection(() => s.get(bad(key)))).code).toBe('INVALID_KEY');
      expect(thrown(() => s.getSync(bad(key))).code).toBe('INVALID_KEY');
      expect(thrown(() => s.has(bad(key))).code).toBe('INVALID_KEY');
      expect(thrown(() => s.ttl(bad(key))).code).toBe('INVALID_KEY');
      await expectNothingWritten();
    });
  }

  it('accepts a key of exactly MAX_KEY_BYTES, and it survives a reopen', async () => {
    const key = 'k'.repeat(MAX_KEY_BYTES);
    await s.set(key, 'long');
    await s.close();
    s = await openStore(dir, opts);
    expect(s.getSync(key)?.toString()).toBe('long');
  });
});

describe('INVALID_VALUE', () => {
  const badValues: [string, () => unknown][] = [
    ['a value one byte over MAX_VALUE_BYTES', () => new Uint8Array(MAX_VALUE_BYTES + 1)],
    ['a number', () => 42],
    ['null', () => null],
    ['undefined', () => undefined],
    ['an object', () => ({ v: 1 })],
  ];
  for (const [name, value] of badValues) {
    it(`refuses ${name} in set and batch, writing nothing`, async () => {
      expect((await rejection(() => s.set('k', bad(value())))).code).toBe('INVALID_VALUE');
      expect((await rejection(() => s.batch([{ type: 'set', key: 'k', value: bad(value()) }]))).code).toBe(
        'INVALID_VALUE',
      );
      await expectNothingWritten();
    });
  }
});

describe('INVALID_ARGUMENT', () => {
  for (const ttlMs of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '100', null]) {
    it(`refuses ttlMs ${String(ttlMs)} in set and batch, writing nothing`, async () => {
      expect((await rejection(() => s.set('k', 'v', { ttlMs: bad(ttlMs) }))).code).toBe('INVALID_ARGUMENT');
      expect(
        (await rejection(() => s.batch([{ type: 'set', key: 'k', value: 'v', ttlMs: bad(ttlMs) }]))).code,
      ).toBe('INVALID_ARGUMENT');
      await expectNothingWritten();
    });
  }

  it('refuses a batch that is not an array, or holds an unknown or missing op, writing none of it', async () => {
    const good: BatchOp = { type: 'set', key: 'a', value: '1' };
    const cases: unknown[] = [
      'not an array',
      { type: 'set', key: 'a', value: '1' },
      [good, { type: 'put', key: 'b', value: '2' }],
      [good, { key: 'b', value: '2' }],
      [good, null],
      [good, 'set b 2'],
    ];
    for (const ops of cases) {
      const err = await rejection(() => s.batch(bad(ops)));
      expect(err.code, JSON.stringify(ops)).toBe('INVALID_ARGUMENT');
    }
    await expectNothingWritten();
  });

  it('refuses scan counts outside 1..100000', () => {
    for (const count of [0, -1, 1.5, 100_001, Number.NaN]) {
      expect(thrown(() => s.scan({ count })).code).toBe('INVALID_ARGUMENT');
    }
  });

  it('refuses bad options at open', async () => {
    const d = tempDir();
    const badOptions: unknown[] = [
      { fsync: 'sometimes' },
      { maxSegmentBytes: 10 },
      { maxSegmentBytes: 2 ** 33 },
      { fsyncIntervalMs: 0 },
      { cacheBytes: -1 },
    ];
    for (const o of badOptions) {
      const err = await rejection(() => openStore(d, { ...opts, ...(o as StoreOptions) }));
      expect(err.code, JSON.stringify(o)).toBe('INVALID_ARGUMENT');
    }
  });
});

describe('CLOSED', () => {
  it('refuses every call after close, and close is idempotent', async () => {
    await s.close();
    await s.close();
    expect((await rejection(() => s.set('k', 'v'))).code).toBe('CLOSED');
    expect((await rejection(() => s.delete('existing'))).code).toBe('CLOSED');
    expect((await rejection(() => s.batch([{ type: 'del', key: 'existing' }]))).code).toBe('CLOSED');
    expect((await rejection(() => s.get('existing'))).code).toBe('CLOSED');
    expect((await rejection(() => s.sync())).code).toBe('CLOSED');
    expect((await rejection(() => s.readFrom(0).next())).code).toBe('CLOSED');
    expect((await rejection(() => s.keys().next())).code).toBe('CLOSED');
    expect(thrown(() => s.getSync('existing')).code).toBe('CLOSED');
    expect(thrown(() => s.has('existing')).code).toBe('CLOSED');
    expect(thrown(() => s.ttl('existing')).code).toBe('CLOSED');
    expect(thrown(() => s.scan()).code).toBe('CLOSED');
    expect(thrown(() => s.stats()).code).toBe('CLOSED');
    // The data is intact for the next open.
    s = await openStore(dir, opts);
    expect(s.getSync('existing')?.toString()).toBe('v');
  });
});
