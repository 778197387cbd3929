/**
 * Keys are bytes: a key written as a Buffer that is not valid UTF-8 is
 * listed exactly by scanBuffers (scan decodes it as UTF-8, lossily), and
 * prefixes and bounds given as Buffers select by byte order. Checked against
 * a model with fast-check, paging by cursor, across a reopen.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, type StoreOptions } from '../../src/engine/index.js';
import { removeTempDirs, silentLogger, tempDir } from './helpers.js';

const opts: StoreOptions = { logger: silentLogger, fsync: 'never', compaction: { auto: false } };

afterAll(removeTempDirs);

const hex = (b: Buffer) => b.toString('hex');

/** Every key of a scan, page by page. */
function scanAll(
  store: Awaited<ReturnType<typeof openStore>>,
  o: { prefix?: Buffer; start?: Buffer; end?: Buffer },
  count: number,
): Buffer[] {
  const out: Buffer[] = [];
  let cursor: string | null = null;
  do {
    const page = store.scanBuffers({ ...o, count, ...(cursor !== null && { cursor }) });
    expect(page.keys.length).toBeLessThanOrEqual(count);
    out.push(...page.keys);
    cursor = page.cursor;
  } while (cursor !== null);
  return out;
}

describe('scanBuffers', () => {
  it('returns a key that is not UTF-8 byte for byte, where scan decodes it', async () => {
    const dir = tempDir();
    const store = await openStore(dir, opts);
    const binary = Buffer.from([0xff, 0x00, 0x80, 0x41]);
    await store.set(binary, 'v');
    await store.set('caf\u00e9', 'w');
    expect(store.scanBuffers().keys.map(hex)).toEqual([hex(Buffer.from('caf\u00e9')), hex(binary)]);
    // scan is UTF-8 decoded: the invalid bytes become U+FFFD and the key cannot be addressed back.
    expect(store.scan().keys).toEqual(['caf\u00e9', '\ufffd\u0000\ufffdA']);
    // The bytes from scanBuffers address the key.
    const [, listed] = store.scanBuffers().keys;
    expect((await store.get(listed!))?.toString()).toBe('v');
    expect(store.scanBuffers({ prefix: Buffer.from([0xff]) }).keys.map(hex)).toEqual([hex(binary)]);
    expect(store.scanBuffers({ prefix: Buffer.from([0xfe]) }).keys).toEqual([]);
    await store.close();
  });

  it('pages, prefixes and ranges over random byte keys agree with a sorted model, before and after a reopen', async () => {
    const key = fc.uint8Array({ minLength: 1, maxLength: 6 }).map((a) => Buffer.from(a));
    const bound = fc.option(
      fc.uint8Array({ minLength: 0, maxLength: 3 }).map((a) => Buffer.from(a)),
      {
        nil: undefined,
      },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(key, fc.boolean()), { minLength: 1, maxLength: 60 }),
        fc.record({ prefix: bound, start: bound, end: bound }),
        fc.integer({ min: 1, max: 7 }),
        async (ops, filter, count) => {
          const dir = tempDir();
          let store = await openStore(dir, { ...opts, maxSegmentBytes: 1024 });
          const model = new Map<string, Buffer>();
          for (const [k, del] of ops) {
            if (del) {
              await store.delete(k);
              model.delete(hex(k));
            } else {
              await store.set(k, k);
              model.set(hex(k), k);
            }
          }
          const o = Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== undefined));
          const want = [...model.values()]
            .filter(
              (k) =>
                (!filter.prefix || k.subarray(0, filter.prefix.length).equals(filter.prefix)) &&
                (!filter.start || Buffer.compare(k, filter.start) >= 0) &&
                (!filter.end || Buffer.compare(k, filter.end) < 0),
            )
            .sort(Buffer.compare)
            .map(hex);
          for (let round = 0; round < 2; round++) {
            expect(scanAll(store, o, count).map(hex)).toEqual(want);
            await store.close();
            store = await openStore(dir, { ...opts, maxSegmentBytes: 1024 });
          }
          await store.close();
        },
      ),
      { numRuns: 60 },
    );
  });
});
