/**
 * The largest TTL (MAX_TTL_MS = 2^52 ms) survives a restart exactly; anything
 * larger is refused with INVALID_ARGUMENT naming the limit, on the wire (SET
 * ttl, EXPIRE), in the SDK and in kv-cli (issue 11, item 1: a TTL of 2^64-1
 * was acknowledged and then lost on restart, its u64 expiry wrapped).
 */
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_TTL_MS } from '../../src/engine/limits.js';
import { connect } from '../../src/index.js';
import { rawFrame } from '../../tools/lib/raw-connection.js';
import { cli, ensureBuilt } from '../cli/helpers.js';
import { RawConnection, type ServerProcess, spawnServer } from './spawn.js';

// bigint → MessagePack int 64 / uint 64, the widths a foreign client sends.
const packr = new Packr({ useRecords: false, variableMapSize: true, useBigIntExtension: false });
const send = (c: RawConnection, req: unknown[]) => c.write(rawFrame(packr.pack(req)));

async function reply(c: RawConnection): Promise<unknown[]> {
  const r = await c.next(5000);
  if (!Array.isArray(r)) throw new Error(`no reply: ${String(r)}`);
  return r;
}

/** The error code of a reply, or 'ok'. */
async function outcome(c: RawConnection): Promise<string> {
  const r = await reply(c);
  return r.length === 2 ? 'ok' : (r[2] as { code: string }).code;
}

let server: ServerProcess;

beforeAll(async () => {
  ensureBuilt();
  server = await spawnServer({ args: ['--fsync', 'always'] });
});

afterAll(async () => {
  await server?.stop('SIGKILL');
});

describe('MAX_TTL_MS, the largest TTL the log keeps exactly', () => {
  it('is 2^52 ms and keeps now + ttl below 2^53 (exact in a JS number) for ~140,000 years', () => {
    expect(MAX_TTL_MS).toBe(2 ** 52);
    expect(Date.now() + MAX_TTL_MS).toBeLessThan(Number.MAX_SAFE_INTEGER);
  });

  it('a TTL at the limit survives a SIGTERM restart; one past it is refused, never wrapped', async () => {
    const c = await RawConnection.open(server.port);
    send(c, [1, 'SET', 'at-limit', 'v', { ttl: MAX_TTL_MS }]);
    expect(await reply(c)).toEqual([1, true]);
    for (const [i, ttl] of [
      [2, MAX_TTL_MS + 1],
      [3, 2n ** 63n - 1n],
      [4, 2n ** 64n - 1n],
    ] as const) {
      send(c, [i, 'SET', `over-${i}`, 'v', { ttl }]);
      const r = await reply(c);
      expect(r[2]).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect((r[2] as { message: string }).message).toContain(String(MAX_TTL_MS));
    }
    send(c, [5, 'SET', 'expire-at-limit', 'v']);
    send(c, [6, 'PEXPIRE', 'expire-at-limit', MAX_TTL_MS]);
    send(c, [7, 'SET', 'expire-over', 'v']);
    send(c, [8, 'PEXPIRE', 'expire-over', MAX_TTL_MS + 1]);
    send(c, [9, 'PEXPIRE', 'expire-over', 2n ** 64n - 1n]);
    expect(await reply(c)).toEqual([5, true]);
    expect(await reply(c)).toEqual([6, true]);
    expect(await reply(c)).toEqual([7, true]);
    expect(await outcome(c)).toBe('INVALID_ARGUMENT');
    expect(await outcome(c)).toBe('INVALID_ARGUMENT');
    c.close();

    expect(await server.stop('SIGTERM')).toBe(0);
    server = await spawnServer({ dir: server.dir, args: ['--fsync', 'always'] });

    const d = await RawConnection.open(server.port);
    const names = ['at-limit', 'expire-at-limit', 'expire-over', 'over-2', 'over-3', 'over-4'];
    for (const [i, k] of names.entries()) send(d, [i, 'PTTL', k]);
    const ttls: number[] = [];
    for (const _ of names) ttls.push((await reply(d))[1] as number);
    // Set a few seconds ago, so a little under the limit; never wrapped into the past.
    for (const t of ttls.slice(0, 2)) {
      expect(t).toBeGreaterThan(MAX_TTL_MS - 120_000);
      expect(t).toBeLessThanOrEqual(MAX_TTL_MS);
    }
    expect(ttls.slice(2)).toEqual([-1, -2, -2, -2]);
    send(d, [9, 'GET', 'at-limit']);
    expect(await reply(d)).toEqual([9, Buffer.from('v')]);
    d.close();
  });

  it('the SDK refuses a TTL over the limit before sending it', async () => {
    const client = await connect({ port: server.port });
    try {
      await expect(client.set('sdk', 'v', { ttlMs: MAX_TTL_MS + 1 })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringContaining(String(MAX_TTL_MS)),
      });
      await expect(client.expire('sdk', 2 ** 64)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect(await client.set('sdk', 'v', { ttlMs: MAX_TTL_MS })).toBe(true);
      expect(await client.pexpire('sdk', MAX_TTL_MS)).toBe(true);
      await expect(client.pexpire('sdk', MAX_TTL_MS + 1)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    } finally {
      await client.close();
    }
  });

  it('kv-cli refuses PX / PEXPIRE over the limit with the limit in the message', () => {
    const p = ['-p', String(server.port)];
    const over = cli([...p, 'set', 'cli', 'v', 'PX', String(MAX_TTL_MS + 1)]);
    expect(over.code).not.toBe(0);
    expect(over.stderr).toContain(String(MAX_TTL_MS));
    expect(cli([...p, 'set', 'cli', 'v', 'PX', String(MAX_TTL_MS)]).stdout).toBe('OK\n');
    const pexpire = cli([...p, 'pexpire', 'cli', String(MAX_TTL_MS + 1)]);
    expect(pexpire.code).not.toBe(0);
    expect(pexpire.stderr).toContain(String(MAX_TTL_MS));
  });
});
