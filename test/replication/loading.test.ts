/**
 * A replica in a full resync holds partial data, so it answers reads with
 * LOADING (as a Redis replica does while it loads the primary's RDB) until
 * its log reaches the primary's end as of the resync's start — never a
 * missing key the primary has. The RESYNC file keeps that across a SIGKILL
 * and restart; catching up removes it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type KvClient, KvError } from '../../src/index.js';
import { RawResp } from '../resp/raw.js';
import { spawnServer } from '../server/spawn.js';
import { testClients, until } from './helpers.js';

const { client } = testClients(20_000);

/** GET on the replica: the value, or 'LOADING'; anything else throws. */
async function read(c: KvClient<string>, key: string): Promise<string | undefined> {
  try {
    return await c.get(key);
  } catch (err) {
    if (err instanceof KvError && err.code === 'LOADING') return 'LOADING';
    throw err;
  }
}

const ARGS = ['--compaction-check-interval-ms', '3600000'];
const KEYS = 4000;
const VALUE = 'v'.repeat(8 * 1024);

describe('a replica in a full resync', () => {
  it('answers reads with LOADING, never partial data, across a SIGKILL and restart; then serves them', async () => {
    const p = await spawnServer({ args: ARGS });
    const pc = client(p.port);
    // ~32 MiB: long enough a resync to read in the middle of it.
    for (let i = 0; i < KEYS; i += 100) {
      const batch: Record<string, string> = {};
      for (let j = i; j < i + 100; j++) batch[`k${j}`] = `${j}:${VALUE}`;
      await pc.mset(batch);
    }
    await pc.set('last', 'written last');
    const end = (await pc.role()).end;

    const r = await spawnServer({ args: [...ARGS, '--replica-of', `127.0.0.1:${p.port}`] });
    const rc = client(r.port);
    // Until it has loaded, the key written last reads LOADING, never "missing".
    const first = await read(rc, 'last');
    expect(first === 'LOADING' || first === 'written last').toBe(true);
    if (first === 'LOADING') {
      // Caught in the middle: kill it there, stop the primary so it cannot finish, restart.
      await r.stop('SIGKILL');
      expect(existsSync(join(r.dir, 'RESYNC'))).toBe(true);
      p.proc.kill('SIGSTOP');
      const again = await spawnServer({ dir: r.dir, args: [...ARGS, '--replica-of', `127.0.0.1:${p.port}`] });
      const ac = client(again.port);
      // Its log is partial and it cannot reach its primary: every read is refused, the rest answers.
      for (const key of ['last', 'k0', `k${KEYS - 1}`, 'never-written']) {
        const err = await ac.get(key).catch((e: unknown) => e);
        expect((err as KvError).code, key).toBe('LOADING');
        expect((err as KvError).message).toContain(`127.0.0.1:${p.port}`);
      }
      for (const op of [
        () => ac.exists('k0'),
        () => ac.ttl('k0'),
        () => ac.dbsize(),
        () => ac.mget(['k0']),
      ]) {
        expect(((await op().catch((e: unknown) => e)) as KvError).code).toBe('LOADING');
      }
      expect(await ac.ping()).toBeTruthy();
      expect((await ac.role()).role).toBe('replica');
      const resp = await RawResp.connect(again.port);
      expect((await resp.call('GET', 'last')).raw).toMatch(/^-LOADING /);
      expect((await resp.call('DBSIZE')).raw).toMatch(/^-LOADING /);
      expect((await resp.call('PING')).raw).toBe('+PONG\r\n');
      resp.close();
      p.proc.kill('SIGCONT');
      await until(
        'the restarted replica to catch up',
        async () => (await read(ac, 'last')) !== 'LOADING',
        30_000,
      );
      expect((await ac.role()).end).toBeGreaterThanOrEqual(end);
      expect(existsSync(join(again.dir, 'RESYNC'))).toBe(false);
      expect(again.stderr()).toContain('full resync complete: serving reads');
      expect(await ac.get('last')).toBe('written last');
      expect(await ac.get(`k${KEYS - 1}`)).toBe(`${KEYS - 1}:${VALUE}`);
      expect(await ac.dbsize()).toBe(KEYS + 1);
    } else {
      // The whole resync finished before the first read (a fast machine): nothing partial was served either.
      expect(existsSync(join(r.dir, 'RESYNC'))).toBe(false);
      expect(await rc.dbsize()).toBe(KEYS + 1);
    }
  }, 120_000);

  it('a promotion in the middle of it clears the mark and serves what it has', async () => {
    const p = await spawnServer({ args: ARGS });
    const pc = client(p.port);
    await pc.set('a', '1');
    // The primary never answers: the replica's empty log stays "loading" from the start.
    p.proc.kill('SIGSTOP');
    const r = await spawnServer({ args: [...ARGS, '--replica-of', `127.0.0.1:${p.port}`] });
    const rc = client(r.port);
    expect(((await rc.get('a').catch((e: unknown) => e)) as KvError).code).toBe('LOADING');
    expect(existsSync(join(r.dir, 'RESYNC'))).toBe(true);
    await rc.replicaOf(null);
    expect(await rc.get('a')).toBeUndefined();
    expect(existsSync(join(r.dir, 'RESYNC'))).toBe(false);
    expect(r.stderr()).toContain('promoted in the middle of a full resync');
    p.proc.kill('SIGCONT');
  }, 60_000);
});
