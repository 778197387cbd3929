/**
 * Disk full and I/O errors seen from a client (DESIGN.md §1.1, §1.6): the
 * server's command layer runs in-process (KvServer takes an open Store, so
 * no factory change was needed) on a store over MemFs with injected faults.
 *
 * While writes fail with ENOSPC (or fsync with EIO): every write is refused
 * with IO_ERROR and is not acknowledged, nothing it tried becomes visible
 * (now or after a simulated power loss), the server stays up, reads and
 * PING keep working, other connections are unaffected; once space returns,
 * writes succeed again. A compaction that hits the fault is refused with
 * IO_ERROR and leaves every key as it was (the engine side of this is
 * test/engine/compaction/failure.test.ts; this is the server side).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/engine/index.js';
import { MemFs, memPath } from '../../src/engine/mem-fs.js';
import { KvClient } from '../../src/index.js';
import type { KvServer } from '../../src/server/server.js';
import { silentLogger } from '../engine/helpers.js';
import { inProcessServer } from '../server/in-process.js';

interface Rig {
  mem: MemFs;
  store: Store;
  server: KvServer;
  client: KvClient;
  other: KvClient;
}

const rigs: Rig[] = [];

async function rig(fsync: 'always' | 'interval'): Promise<Rig> {
  const mem = new MemFs();
  const store = await openStore(memPath('data'), {
    fs: mem,
    fsync,
    fsyncIntervalMs: 20,
    maxSegmentBytes: 4096,
    logger: silentLogger,
    compaction: { auto: false },
  });
  const server = inProcessServer(store);
  const { port } = await server.listen();
  const opts = { host: '127.0.0.1', port, reconnect: false, requestTimeoutMs: 5000 };
  const r = { mem, store, server, client: new KvClient(opts), other: new KvClient(opts) };
  rigs.push(r);
  return r;
}

afterEach(async () => {
  for (const r of rigs.splice(0)) {
    r.mem.failWrites(undefined);
    r.mem.failFsync(undefined);
    await r.client.close().catch(() => {});
    await r.other.close().catch(() => {});
    await r.server.close();
    await r.store.close().catch(() => {});
  }
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

describe('disk full and I/O errors through the server', () => {
  for (const fsync of ['always', 'interval'] as const) {
    it(`ENOSPC (${fsync}): writes get IO_ERROR, nothing unacknowledged shows, reads go on, writes resume`, async () => {
      const r = await rig(fsync);
      for (let i = 0; i < 50; i++) await r.client.set(`k${i}`, `v${i}`);
      await r.client.del('k0');

      r.mem.failWrites(() => 'ENOSPC');
      expect(await codeOf(r.client.set('k1', 'NEW'))).toBe('IO_ERROR');
      expect(await codeOf(r.client.set('fresh', 'x'))).toBe('IO_ERROR');
      expect(
        await codeOf(
          r.client.mset([
            ['k2', 'NEW'],
            ['k3', 'NEW'],
          ]),
        ),
      ).toBe('IO_ERROR');
      expect(await codeOf(r.client.del('k4'))).toBe('IO_ERROR');
      expect(await codeOf(r.client.del(['k5', 'k6']))).toBe('IO_ERROR');
      // The error says what failed.
      await expect(r.client.set('k1', 'NEW')).rejects.toThrow(/ENOSPC/);
      // Nothing of the refused writes is visible; reads and other clients work.
      expect(await r.client.mget(['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'fresh'])).toEqual([
        undefined,
        'v1',
        'v2',
        'v3',
        'v4',
        'v5',
        'v6',
        undefined,
      ]);
      expect(await r.other.get('k7')).toBe('v7');
      expect(await r.other.ping()).toBeTruthy();
      expect(await r.client.dbsize()).toBe(49);

      // Space returns: writes are accepted again.
      r.mem.failWrites(undefined);
      await r.client.set('k1', 'AFTER');
      await r.client.mset([
        ['k2', 'AFTER'],
        ['k3', 'AFTER'],
      ]);
      expect(await r.other.mget(['k1', 'k2', 'k3', 'fresh'])).toEqual(['AFTER', 'AFTER', 'AFTER', undefined]);

      // A power loss now: acknowledged writes are there (always; interval after its tick), refused ones never were.
      if (fsync === 'interval') await new Promise((res) => setTimeout(res, 200)); // ten 20 ms ticks
      const rebooted = r.mem.crash('tear');
      const again = await openStore(memPath('data'), {
        fs: rebooted,
        logger: silentLogger,
        compaction: { auto: false },
      });
      try {
        expect(again.getSync('k1')?.toString()).toBe('AFTER');
        expect(again.getSync('k3')?.toString()).toBe('AFTER');
        expect(again.getSync('k4')?.toString()).toBe('v4');
        expect(again.getSync('k0')).toBeUndefined();
        expect(again.getSync('fresh')).toBeUndefined();
      } finally {
        await again.close();
      }
    });
  }

  it('ENOSPC creating a new segment (rotation) answers IO_ERROR, not INTERNAL, and leaves no empty segment', async () => {
    const r = await rig('interval');
    await r.client.set('a', '1');
    const active = r.store.stats().segments.at(-1)!.file;
    r.mem.failWrites((p) => (p.endsWith('.seg') && !p.endsWith(active) ? 'ENOSPC' : undefined));
    const codes = new Set<string>();
    for (let i = 0; i < 40; i++) codes.add(await codeOf(r.client.set(`big${i}`, 'x'.repeat(500))));
    expect([...codes].sort()).toEqual(['IO_ERROR', 'OK']);
    await expect(r.client.set('more', 'x'.repeat(500))).rejects.toThrow(/creating segment .*ENOSPC/);
    expect(r.mem.readdir(memPath('data')).filter((n) => n.endsWith('.seg'))).toEqual([active]);
    expect(await r.other.get('a')).toBe('1');
    r.mem.failWrites(undefined);
    await r.client.set('more', 'x'.repeat(500));
    expect(r.store.stats().segments.length).toBe(2);
  });

  it('a failing fsync (EIO, always) refuses the write; later writes are refused until a reopen (documented in store.ts)', async () => {
    const r = await rig('always');
    await r.client.set('a', '1');
    await r.client.set('c', '1');
    r.mem.failFsync((p) => (p.endsWith('.seg') ? 'EIO' : undefined));
    expect(await codeOf(r.client.set('a', '2'))).toBe('IO_ERROR');
    // Bytes reached the OS with unknown durability: the store refuses every later write
    // (as PostgreSQL does since fsyncgate) rather than ack on top of them.
    r.mem.failFsync(undefined);
    expect(await codeOf(r.client.set('b', '2'))).toBe('IO_ERROR');
    // The server stays up and serves reads; 'a' may show the refused '2' until the reopen (store.ts header).
    expect(['1', '2']).toContain(await r.other.get('a'));
    expect(await r.other.mget(['b', 'c'])).toEqual([undefined, '1']);
    expect(await r.other.ping()).toBeTruthy();
    // A reopen (here after a power loss) clears the failure and shows only what was acknowledged or refused.
    const rebooted = r.mem.crash('drop');
    const again = await openStore(memPath('data'), {
      fs: rebooted,
      logger: silentLogger,
      compaction: { auto: false },
    });
    try {
      expect(again.getSync('a')?.toString()).toBe('1');
      expect(again.getSync('b')).toBeUndefined();
      await again.set('b', '3');
      expect(again.getSync('b')?.toString()).toBe('3');
    } finally {
      await again.close();
    }
  });

  it('a compaction that hits ENOSPC is refused with IO_ERROR and leaves every key as it was', async () => {
    const r = await rig('always');
    const want = new Map<string, string>();
    for (let round = 0; round < 6; round++) {
      const entries: [string, string][] = [];
      for (let i = 0; i < 40; i++) {
        const v = `r${round}.${i}.${'x'.repeat(40)}`;
        entries.push([`key${i}`, v]);
        want.set(`key${i}`, v);
      }
      await r.client.mset(entries);
      if (round % 2 === 1) {
        await r.client.del('key0');
        want.delete('key0');
      }
    }
    const keys = [...want.keys(), 'key0'];
    const before = await r.client.mget(keys);
    r.mem.failWrites((p) => (p.endsWith('.compacting') ? 'ENOSPC' : undefined));
    expect(await codeOf(r.client.compact())).toBe('IO_ERROR');
    expect(await r.other.mget(keys)).toEqual(before);
    expect(
      r.mem.readdir(memPath('data')).filter((n) => n.endsWith('.compacting') || n.endsWith('.tmp')),
    ).toEqual([]);
    // The server stays up; writes go on; once space returns a compaction succeeds and changes nothing visible.
    await r.client.set('key1', 'during');
    want.set('key1', 'during');
    r.mem.failWrites(undefined);
    expect(await codeOf(r.client.compact())).toBe('OK');
    const after = await r.other.mget(keys);
    expect(after).toEqual(keys.map((k) => want.get(k)));
  });
});
