/**
 * bench:server marks the runs that held a server's log upkeep
 * (tools/bench/server-procs.ts readUpkeep / upkeepDuring): the rows run in
 * order on the same servers, so segkv's first seal of a full segment and its
 * first compaction land in whichever row the writes before reach the segment
 * size (interval: usually mixed P1, whose p99 they made 1.4× Redis's), and
 * Redis's AOF rewrite in another. Read from real servers: a segkv that seals
 * and compacts, a Redis that rewrites its AOF.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { findRedisServer, parseInfo, RedisPeer } from '../../tools/bench/redis-peer.js';
import { readUpkeep, upkeepDuring } from '../../tools/bench/server-procs.js';
import { spawnServer } from '../server/spawn.js';

const root = mkdtempSync(join(tmpdir(), 'segkv-upkeep-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('bench:server upkeep marks', () => {
  it('segkv: a seal of the active segment, then a compaction; nothing between', async () => {
    const server = await spawnServer({ args: ['--max-segment-bytes', String(1 << 20)] });
    const c = new KvClient<string>({ port: server.port, reconnect: false });
    try {
      const start = await readUpkeep('segkv', server.port, server.dir);
      await c.set('k', 'v');
      const idle = await readUpkeep('segkv', server.port, server.dir);
      expect(upkeepDuring('segkv', start, idle)).toEqual([]);
      // 1.5 MiB of overwrites of 100 keys: the 1 MiB segment fills and is sealed, mostly dead.
      const value = 'x'.repeat(1000);
      for (let i = 0; i < 1500; i++) await c.set(`key:${i % 100}`, value);
      const sealed = await readUpkeep('segkv', server.port, server.dir);
      expect(upkeepDuring('segkv', idle, sealed)).toEqual(['seal']);
      await c.compact();
      const compacted = await readUpkeep('segkv', server.port, server.dir);
      expect(upkeepDuring('segkv', sealed, compacted)).toContain('compaction');
    } finally {
      await c.close();
      await server.stop();
    }
  });

  it.skipIf(findRedisServer() === undefined)('redis: an AOF rewrite', async () => {
    const dir = join(root, 'redis');
    mkdirSync(dir);
    const redis = await RedisPeer.start(findRedisServer()!, dir);
    try {
      const before = await readUpkeep('redis', redis.port, redis.dir);
      expect(upkeepDuring('redis', before, await readUpkeep('redis', redis.port, redis.dir))).toEqual([]);
      await redis.client.command(['SET', 'k', 'v']);
      await redis.client.command(['BGREWRITEAOF']);
      for (let i = 0; i < 500; i++) {
        const p = parseInfo(await redis.client.command(['INFO', 'persistence']));
        if (p.get('aof_rewrites') === '1' && p.get('aof_rewrite_in_progress') === '0') break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(upkeepDuring('redis', before, await readUpkeep('redis', redis.port, redis.dir))).toEqual([
        'aof-rewrite',
      ]);
    } finally {
      await redis.stop();
    }
  });
});
