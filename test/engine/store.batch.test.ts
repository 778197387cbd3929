/**
 * Store.batch reuses its validation arrays from one batch to the next
 * (store.ts batchNow): a batch writes exactly its own ops, whatever a longer
 * or refused batch left in them, dels of keys absent at that point of the
 * batch write nothing, and a reopen (recovery from the log) agrees.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, type StoreOptions } from '../../src/engine/index.js';
import { removeTempDirs, silentLogger, tempDir } from './helpers.js';

afterAll(removeTempDirs);

const opts: StoreOptions = { logger: silentLogger, fsync: 'never', compaction: { auto: false } };

async function state(
  s: Awaited<ReturnType<typeof openStore>>,
  keys: string[],
): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {};
  for (const k of keys) out[k] = (await s.get(k))?.toString() ?? null;
  return out;
}

describe('Store.batch', () => {
  it('writes only its own ops after a longer batch and a refused one, and recovery agrees', async () => {
    const dir = tempDir();
    const s = await openStore(dir, opts);
    const all = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'zz'];
    expect(
      await s.batch(
        ['a', 'b', 'c', 'd', 'e', 'f'].map((key) => ({ type: 'set' as const, key, value: `1${key}` })),
      ),
    ).toBe(6);
    expect(
      await s.batch([
        { type: 'set', key: 'g', value: '2g' },
        { type: 'del', key: 'a' },
        { type: 'del', key: 'zz' }, // absent: no record
        { type: 'set', key: 'g', value: '3g' },
        { type: 'del', key: 'g' },
        { type: 'del', key: 'g' }, // deleted earlier in this batch: no record
      ]),
    ).toBe(4);
    await expect(
      s.batch([{ type: 'set', key: 'h', value: '4h' }, { type: 'put', key: 'i' } as never]),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await s.batch([{ type: 'set', key: 'i', value: '5i' }])).toBe(1);
    const expected = {
      a: null,
      b: '1b',
      c: '1c',
      d: '1d',
      e: '1e',
      f: '1f',
      g: null,
      h: null,
      i: '5i',
      zz: null,
    };
    expect(await state(s, all)).toEqual(expected);
    expect(s.stats().keys).toBe(6);
    await s.close();
    const r = await openStore(dir, opts);
    expect(await state(r, all)).toEqual(expected);
    await r.close();
  });
});
