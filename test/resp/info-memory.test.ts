/**
 * INFO `used_memory` keeps Redis's meaning (bytes the process's allocators
 * handed out for data, without fragmentation or mapped files): V8's live
 * heap plus its external memory, less the never-written tails of the
 * slab-sized buffers (slabs.ts). Those are counted by V8 at full length
 * (SLAB_BYTES, 36 MiB each): past ~25k keys the keydir's table is one, the
 * write chunks' slab another, and counted whole they made used_memory
 * tens of MiB larger than the process's resident memory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SLAB_BYTES } from '../../src/engine/limits.js';
import { KvClient } from '../../src/index.js';
import { type ServerProcess, spawnServer } from '../server/spawn.js';
import { RawResp } from './raw.js';

function field(info: string, name: string): number {
  const m = new RegExp(`\\r\\n${name}:(\\d+)\\r\\n`).exec(info);
  if (m === null) throw new Error(`no ${name} in INFO:\n${info}`);
  return Number(m[1]);
}

describe('RESP INFO memory', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await spawnServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('used_memory counts what slab-sized buffers hold, not their length: below RSS, below one slab', async () => {
    const native = new KvClient({ port: server.port });
    const value = 'v'.repeat(100);
    // 40k keys: the keydir's table grows to 64k buckets (256 KiB), a SLAB_BYTES buffer.
    for (let i = 0; i < 40_000; i += 1000) {
      const pairs: Record<string, string> = {};
      for (let j = i; j < i + 1000; j++) pairs[`key:${String(j).padStart(12, '0')}`] = value;
      await native.mset(pairs);
    }
    const c = await RawResp.connect(server.port);
    const info = (await c.call('INFO', 'memory')).value as string;
    const used = field(info, 'used_memory');
    const rss = field(info, 'used_memory_rss');
    expect(used).toBeGreaterThan(1024 * 1024);
    expect(used).toBeLessThan(SLAB_BYTES);
    expect(used).toBeLessThan(rss);
    c.close();
    await native.close();
  });
});
