/**
 * A replica fills its small-value cache from the records it applies only
 * while it serves reads (replica.ts fillsCache, REPLICA_CACHE_FILL_MS): a
 * replica nobody reads from keeps no values cached, so its apply neither
 * probes nor refills the cache; once it answers a read, the records it
 * applies are cached again and its GETs of them are hits.
 */
import { describe, expect, it } from 'vitest';
import type { KvClient } from '../../src/index.js';
import { spawnServer } from '../server/spawn.js';
import { testClients, until } from './helpers.js';

const { client } = testClients(20_000);

interface CacheInfo {
  entries: number;
  hits: number;
  misses: number;
}

async function cacheOf(c: KvClient<string>): Promise<CacheInfo> {
  const info = (await c.info('storage')) as { storage: { cache: CacheInfo } };
  return info.storage.cache;
}

async function caughtUp(primary: KvClient<string>, replica: KvClient<string>): Promise<void> {
  await until('the replica to catch up', async () => {
    const [p, r] = await Promise.all([primary.role(), replica.role()]);
    return r.link === 'up' && r.end === p.end;
  });
}

describe('a replica cache', () => {
  it('holds no replicated values while nothing reads the replica, and fills again once it serves reads', async () => {
    const args = ['--compaction-check-interval-ms', '3600000'];
    const p = await spawnServer({ args });
    const r = await spawnServer({ args: [...args, '--replica-of', `127.0.0.1:${p.port}`] });
    const pc = client(p.port);
    const rc = client(r.port);
    const KEYS = 200;
    for (let i = 0; i < KEYS; i++) await pc.set(`k${i}`, `a${i}`);
    await caughtUp(pc, rc);
    // The primary filled its cache on write; the unread replica did not.
    expect((await cacheOf(pc)).entries).toBe(KEYS);
    expect(await cacheOf(rc)).toEqual({ entries: 0, bytes: 0, hits: 0, misses: 0 });

    // One read (a miss, then cached): from now on the replica fills its cache as it applies.
    expect(await rc.get('k0')).toBe('a0');
    const afterRead = await cacheOf(rc);
    expect([afterRead.entries, afterRead.hits, afterRead.misses]).toEqual([1, 0, 1]);
    for (let i = 0; i < KEYS; i++) await pc.set(`k${i}`, `b${i}`);
    await caughtUp(pc, rc);
    expect((await cacheOf(rc)).entries).toBe(KEYS);
    for (let i = 0; i < KEYS; i++) expect(await rc.get(`k${i}`)).toBe(`b${i}`);
    const after = await cacheOf(rc);
    expect([after.hits, after.misses]).toEqual([KEYS, 1]);
    await Promise.all([p.stop(), r.stop()]);
  }, 60_000);
});
