/**
 * SCAN cursors are verifiable (issue 11, item 7): a cursor the server did not
 * produce — "not a cursor!", "a b c", a well-formed base64url string it never
 * returned, one with a flipped bit, one from another server process — gets
 * INVALID_ARGUMENT, never `{keys: [], cursor: nil}` ("scan complete" while
 * keys remain). Real cursors page through every key.
 */
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from '../../src/engine/scan-cursor.js';
import { rawFrame } from '../../tools/lib/raw-connection.js';
import { RawConnection, type ServerProcess, spawnServer } from './spawn.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });

let a: ServerProcess;
let b: ServerProcess;
let ca: RawConnection;
let cb: RawConnection;

async function call(c: RawConnection, req: unknown[]): Promise<unknown[]> {
  c.write(rawFrame(packr.pack(req)));
  const r = await c.next(5000);
  if (!Array.isArray(r)) throw new Error(`no reply: ${String(r)}`);
  return r;
}

beforeAll(async () => {
  [a, b] = await Promise.all([spawnServer(), spawnServer()]);
  ca = await RawConnection.open(a.port);
  cb = await RawConnection.open(b.port);
  const pairs = Array.from({ length: 10 }, (_, i) => [`user:${i}`, Buffer.from('v')]).flat();
  expect(await call(ca, [1, 'MSET', ...pairs])).toEqual([1, true]);
  expect(await call(cb, [1, 'MSET', ...pairs])).toEqual([1, true]);
});

afterAll(async () => {
  ca?.close();
  cb?.close();
  await Promise.all([a?.stop('SIGKILL'), b?.stop('SIGKILL')]);
});

describe('SCAN cursors', () => {
  it('a real cursor pages through every key', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let id = 1; id < 20; id++) {
      const opts: Record<string, unknown> = { prefix: 'user:', count: 3 };
      if (cursor !== null) opts.cursor = cursor;
      const [, page] = (await call(ca, [id, 'SCAN', opts])) as [
        number,
        { keys: string[]; cursor: string | null },
      ];
      seen.push(...page.keys);
      cursor = page.cursor;
      if (cursor === null) break;
    }
    expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => `user:${i}`));
  });

  it('a cursor the server never produced is INVALID_ARGUMENT, whatever it looks like', async () => {
    const [, first] = (await call(ca, [1, 'SCAN', { count: 3 }])) as [number, { cursor: string }];
    const real = first.cursor;
    const bytes = Buffer.from(real, 'base64url');
    const flipped = Buffer.from(bytes);
    flipped[5]! ^= 1;
    const otherKey = Buffer.from(bytes);
    otherKey[otherKey.length - 1]! ^= 1;
    const [, pageB] = (await call(cb, [2, 'SCAN', { count: 3 }])) as [number, { cursor: string }];
    const fromB = pageB.cursor;
    const foreign = [
      'not a cursor!',
      'a b c',
      '',
      Buffer.from('user:2').toString('base64url'), // well-formed base64url, the old cursor format
      Buffer.from('user:2').toString('base64'),
      flipped.toString('base64url'),
      otherKey.toString('base64url'),
      `${real}=`,
      `${real}A`,
      real.slice(0, -1),
      fromB, // another server process's cursor, well-formed and for the same keys
    ];
    for (const [i, cursor] of foreign.entries()) {
      const r = await call(ca, [10 + i, 'SCAN', { count: 3, cursor }]);
      expect(r, JSON.stringify(cursor)).toMatchObject([10 + i, null, { code: 'INVALID_ARGUMENT' }]);
    }
    expect(await call(ca, [30, 'SCAN', { count: 3, cursor: real }])).toMatchObject([
      30,
      { keys: ['user:3', 'user:4', 'user:5'] },
    ]);
  });
});

describe('scan-cursor format', () => {
  it('round-trips any key, including bytes that are not UTF-8, and refuses every other string', () => {
    for (const k of ['a', 'user:9', '\u00ff\u0000\u0080', 'x'.repeat(16384)]) {
      expect(decodeCursor(encodeCursor(k))).toBe(k);
    }
    expect(() => decodeCursor(encodeCursor('k').replace(/^./, 'B'))).toThrow(/cursor/);
    expect(() => decodeCursor(42 as unknown as string)).toThrow(/cursor/);
  });
});
