/**
 * scan({ match }): Redis glob patterns over keys, paged by cursor. A page
 * examines `count` keys (Redis's COUNT with MATCH), so it may hold fewer,
 * but the pages together hold exactly the matching keys, each once. Checked
 * against a model with fast-check, and on the wire (native SCAN `match`).
 */

import { Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { globMatch } from '../../src/engine/glob.js';
import { openStore, type ScanOptions, type Store, type StoreOptions } from '../../src/engine/index.js';
import { encodeFrame, FrameReader, unpackr } from '../../src/protocol/frame.js';
import { inProcessServer } from '../server/in-process.js';
import { removeTempDirs, silentLogger, tempDir } from './helpers.js';

const opts: StoreOptions = { logger: silentLogger, fsync: 'never', compaction: { auto: false } };
afterAll(removeTempDirs);

function scanAll(store: Store, o: ScanOptions, count: number): string[] {
  const out: string[] = [];
  let cursor: string | null = null;
  do {
    const page = store.scan({ ...o, count, ...(cursor !== null && { cursor }) });
    expect(page.keys.length).toBeLessThanOrEqual(count);
    out.push(...page.keys);
    cursor = page.cursor;
  } while (cursor !== null);
  return out;
}

describe('scan with match', () => {
  it('lists exactly the keys the glob matches, in order, across pages', async () => {
    const store = await openStore(tempDir(), opts);
    const keys = fc.sample(
      fc
        .array(fc.constantFrom('a', 'b', ':', '1', 'x'), { minLength: 1, maxLength: 5 })
        .map((a) => a.join('')),
      { numRuns: 300, seed: 3 },
    );
    for (const k of keys) await store.set(k, 'v');
    const all = [...new Set(keys)].sort();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('a', 'b', ':', '1', '*', '?', '[a-b]', '[^1]', '\\*'), { maxLength: 5 }),
        fc.integer({ min: 1, max: 40 }),
        async (parts, count) => {
          const pattern = parts.join('');
          expect(scanAll(store, { match: pattern }, count)).toEqual(all.filter((k) => globMatch(pattern, k)));
        },
      ),
      { numRuns: 200, seed: 9 },
    );
    await store.close();
  });

  it('count is the keys examined: a page may be empty while keys remain', async () => {
    const store = await openStore(tempDir(), opts);
    for (let i = 0; i < 50; i++) await store.set(`user:${i}`, 'v');
    const first = store.scan({ match: '*:49', count: 10 });
    expect(first.keys).toEqual([]);
    expect(first.cursor).not.toBeNull();
    expect(scanAll(store, { match: '*:1' }, 10)).toEqual(['user:1']);
    await store.close();
  });

  it('combines with prefix: the longer one seeks, two that disagree match nothing', async () => {
    const store = await openStore(tempDir(), opts);
    for (const k of ['user:1', 'user:2', 'users', 'order:1']) await store.set(k, 'v');
    expect(scanAll(store, { prefix: 'user', match: 'user:*' }, 10)).toEqual(['user:1', 'user:2']);
    expect(scanAll(store, { prefix: 'user:', match: 'u*' }, 10)).toEqual(['user:1', 'user:2']);
    expect(scanAll(store, { prefix: 'order', match: 'user:*' }, 10)).toEqual([]);
    expect(scanAll(store, { match: Buffer.from('*:1') }, 10)).toEqual(['order:1', 'user:1']);
    await store.close();
  });

  it('native SCAN takes a match option', async () => {
    const store = await openStore(tempDir(), opts);
    for (const k of ['user:1', 'user:2', 'order:1']) await store.set(k, 'v');
    const server = inProcessServer(store);
    const { port } = await server.listen();
    const socket = new Socket();
    await new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', resolve));
    const reader = new FrameReader(1 << 20);
    const replies: unknown[] = [];
    socket.on('data', (d: Buffer) => {
      reader.push(d);
      for (let body = reader.next(); body !== undefined; body = reader.next())
        replies.push(unpackr.unpack(body));
    });
    socket.write(encodeFrame([1, 'SCAN', { match: '*:1', count: 100 }]));
    socket.write(encodeFrame([2, 'SCAN', { match: 5 }]));
    await expect.poll(() => replies.length).toBe(2);
    expect(replies[0]).toEqual([1, { keys: ['order:1', 'user:1'], cursor: null }]);
    expect((replies[1] as [number, null, { code: string }])[2].code).toBe('WRONG_ARGS');
    socket.destroy();
    await server.close();
    await store.close();
  });
});
