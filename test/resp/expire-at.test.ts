/**
 * RESP's absolute expiries are stored as given, and a relative one is
 * computed from one read of the store's clock: PEXPIREAT T then PEXPIRETIME
 * answers T, also when the millisecond ticks during the command (a store
 * whose clock moves at every read). A command that read Date.now() and then
 * handed the store a TTL, which the store added to its own clock read,
 * stored T + 1 whenever the clock ticked between the two (a flaky
 * differential test against redis-server found it).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/engine/clock.js';
import { openStore } from '../../src/engine/index.js';
import { RESP_COMMANDS } from '../../src/resp/table.js';
import { removeTempDirs, silentLogger, tempDir } from '../engine/helpers.js';

afterAll(removeTempDirs);

const argv = (...xs: string[]) => xs.map((x) => Buffer.from(x));

/** A clock that moves 1 ms at every read. */
class TickingClock implements Clock {
  reads = 0;
  constructor(private t: number) {}
  now(): number {
    this.reads++;
    return this.t++;
  }
}

describe('RESP absolute expiries', () => {
  it('PEXPIREAT, EXPIREAT, SET PXAT/EXAT and GETEX PXAT store the time given; PX/EX add one clock read', async () => {
    const start = 1_800_000_000_000;
    const clock = new TickingClock(start);
    const store = await openStore(tempDir(), { logger: silentLogger, fsync: 'never', clock });
    try {
      const s = { store } as never;
      const run = (...xs: string[]) => RESP_COMMANDS.get(xs[0]!.toLowerCase())!.run(s, argv(...xs));
      const at = start + 3_600_000;
      run('SET', 'k', 'v');
      run('PEXPIREAT', 'k', String(at));
      expect(store.expiresAt('k')).toBe(at);
      run('EXPIREAT', 'k', String(at / 1000 + 7));
      expect(store.expiresAt('k')).toBe(at + 7000);
      run('SET', 'k', 'v', 'PXAT', String(at + 1));
      expect(store.expiresAt('k')).toBe(at + 1);
      run('SET', 'k', 'v', 'EXAT', String(at / 1000 + 2));
      expect(store.expiresAt('k')).toBe(at + 2000);
      run('GETEX', 'k', 'PXAT', String(at + 3));
      expect(store.expiresAt('k')).toBe(at + 3);
      run('PSETEX', 'k', '5000', 'v');
      const psetexAt = store.expiresAt('k');
      run('PEXPIRE', 'k', '9000');
      const pexpireAt = store.expiresAt('k');
      // Each relative expiry is one clock read plus the TTL: the reads are a tick apart, never added twice.
      expect(psetexAt - 5000).toBeGreaterThan(start);
      expect(psetexAt - 5000).toBeLessThan(clock.now());
      expect(pexpireAt - 9000).toBeGreaterThan(psetexAt - 5000);
      expect(pexpireAt - 9000).toBeLessThan(clock.now());
      // An absolute time already past deletes the key (Redis: EXPIREAT in the past).
      run('PEXPIREAT', 'k', String(start));
      expect(store.has('k')).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('the store refuses an absolute expiry that is not a positive safe integer', async () => {
    const store = await openStore(tempDir(), { logger: silentLogger, fsync: 'never' });
    try {
      store.setNow('k', 'v');
      for (const bad of [0, -1, 1.5, 2 ** 53, Number.NaN])
        expect(() => store.setExpiringNow('k', 'v', bad)).toThrow(/positive integer ms since the epoch/);
      expect(() => store.expireAtNow('k', 2 ** 53)).toThrow(/positive integer ms since the epoch/);
      expect(store.expireAtNow('k', Date.now() + 60_000)).toBe(true);
      expect(store.expireAtNow('k', null)).toBe(true);
      expect(store.expiresAt('k')).toBe(-1);
    } finally {
      await store.close();
    }
  });
});
