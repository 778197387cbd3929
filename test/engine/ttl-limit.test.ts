/**
 * The engine keeps a TTL of MAX_TTL_MS exactly across a reopen, from the log
 * and from a hint file, and refuses a larger one (issue 11, item 1: a u64
 * expiry past 2^53 was wrapped when written, so the key vanished on restart).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/engine/clock.js';
import { MAX_TTL_MS } from '../../src/engine/limits.js';
import { openStore, type Store } from '../../src/engine/store.js';
import { removeTempDirs, silentLogger, tempDir } from './helpers.js';

afterEach(removeTempDirs);

const NOW = Date.UTC(2026, 11, 5);

function open(dir: string, clock: ManualClock): Promise<Store> {
  return openStore(dir, {
    fsync: 'always',
    maxSegmentBytes: 4096,
    clock,
    logger: silentLogger,
    compaction: { auto: false },
  });
}

describe('TTL at and past MAX_TTL_MS', () => {
  it('a TTL at the limit reads back exactly after a reopen (log and hint); past it is refused', async () => {
    const dir = tempDir();
    const clock = new ManualClock(NOW);
    let s = await open(dir, clock);
    await s.set('sealed', 'v', { ttlMs: MAX_TTL_MS });
    await s.set('expired-later', 'v');
    expect(await s.expire('expired-later', MAX_TTL_MS)).toBe(true);
    for (let i = 0; i < 60; i++) await s.set(`filler-${i}`, 'x'.repeat(100)); // seals the first segment: a hint
    await s.set('active', 'v', { ttlMs: MAX_TTL_MS });
    for (const ttl of [MAX_TTL_MS + 1, 2 ** 63, 2 ** 64, 1.5, 0]) {
      await expect(s.set('over', 'v', { ttlMs: ttl })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(s.expire('active', ttl)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(s.batch([{ type: 'set', key: 'over', value: 'v', ttlMs: ttl }])).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    }
    await expect(s.set('over', 'v', { ttlMs: MAX_TTL_MS + 1 })).rejects.toThrow(String(MAX_TTL_MS));
    expect(s.stats().segments.length).toBeGreaterThan(1);
    await s.close();

    clock.advance(1000);
    s = await open(dir, clock);
    expect(s.ttl('sealed')).toBe(MAX_TTL_MS - 1000);
    expect(s.ttl('expired-later')).toBe(MAX_TTL_MS - 1000);
    expect(s.ttl('active')).toBe(MAX_TTL_MS - 1000);
    expect(s.ttl('over')).toBe(-2);
    expect(s.getSync('sealed')?.toString()).toBe('v');
    await s.close();
  });
});
