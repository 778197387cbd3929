/**
 * Integers on the wire (issue 11, items 5 and 6): INCR past ±(2^53-1)
 * answers INVALID_VALUE as PROTOCOL.md §6 says (a delta of 2^53 was
 * WRONG_ARGS), a non-integral delta INVALID_ARGUMENT as for every integer
 * argument, and every integral reply field goes out as the smallest
 * MessagePack int (a result below -2^31 was a float 64), byte for byte.
 */
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawFrame } from '../../tools/lib/raw-connection.js';
import { RawConnection, type ServerProcess, spawnServer } from './spawn.js';

const packr = new Packr({ useRecords: false, variableMapSize: true, useBigIntExtension: false });

let server: ServerProcess;
let c: RawConnection;

beforeAll(async () => {
  server = await spawnServer();
  c = await RawConnection.open(server.port);
});

afterAll(async () => {
  c?.close();
  await server?.stop('SIGKILL');
});

async function call(req: unknown[]): Promise<unknown[]> {
  c.write(rawFrame(packr.pack(req)));
  const r = await c.next(5000);
  if (!Array.isArray(r)) throw new Error(`no reply: ${String(r)}`);
  return r;
}

const code = (r: unknown[]) => (r.length === 2 ? 'ok' : (r[2] as { code: string }).code);

describe('INCR range', () => {
  it('a delta or result outside ±(2^53-1) is INVALID_VALUE, and nothing is written', async () => {
    expect(await call([1, 'SET', 'n', '5'])).toEqual([1, true]);
    for (const delta of [2 ** 53, -(2 ** 53), 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n, 1e300]) {
      expect(code(await call([2, 'INCR', 'n', delta]))).toBe('INVALID_VALUE');
      expect(code(await call([3, 'INCR', 'absent', delta]))).toBe('INVALID_VALUE');
    }
    expect(await call([4, 'GET', 'n'])).toEqual([4, Buffer.from('5')]);
    expect(await call([5, 'INCR', 'n', 2 ** 53 - 1 - 5])).toEqual([5, 2 ** 53 - 1]);
    expect(code(await call([6, 'INCR', 'n']))).toBe('INVALID_VALUE');
    expect(await call([7, 'INCR', 'n', -(2 ** 53 - 1)])).toEqual([7, 0]);
    expect(await call([8, 'INCR', 'n', -(2 ** 53 - 1)])).toEqual([8, -(2 ** 53 - 1)]);
    expect(code(await call([9, 'INCR', 'n', -1]))).toBe('INVALID_VALUE');
    expect(await call([10, 'EXISTS', 'absent'])).toEqual([10, 0]);
  });

  it('a non-integral delta is INVALID_ARGUMENT; a delta of the wrong type (nil too) is WRONG_ARGS', async () => {
    for (const delta of [1.5, -0.25, Number.NaN, Number.POSITIVE_INFINITY])
      expect(code(await call([1, 'INCR', 'f', delta]))).toBe('INVALID_ARGUMENT');
    for (const delta of [null, '1', true, Buffer.from('1'), [1], { d: 1 }])
      expect(code(await call([2, 'INCR', 'f', delta]))).toBe('WRONG_ARGS');
    // An integral float 64 is that integer (PROTOCOL.md §3).
    expect(await call([3, 'INCR', 'f', 2.0])).toEqual([3, 2]);
  });
});

describe('minimal integer encoding of replies', () => {
  it('[37, -2147483649] is int 64 (d3), not float 64 (cb)', async () => {
    expect(await call([1, 'SET', 'neg', '0'])).toEqual([1, true]);
    c.write(rawFrame(packr.pack([37, 'INCR', 'neg', -2147483649])));
    expect((await c.frame(5000))?.toString('hex')).toBe('0000000b9225d3ffffffff7fffffff');
    c.write(rawFrame(packr.pack([38, 'INCR', 'neg', 2147483649 + 2 ** 32])));
    expect((await c.frame(5000))?.toString('hex')).toBe('0000000b9226cf0000000100000000');
    c.write(rawFrame(packr.pack([39, 'INCR', 'neg', -(2 ** 32) - 2 ** 31])));
    expect((await c.frame(5000))?.toString('hex')).toBe('000000079227d280000000');
  });
});
