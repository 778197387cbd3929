/**
 * Replication over RESP, with ioredis: ROLE in Redis's shapes on a primary and
 * a replica, WAIT counting the replicas that hold this connection's writes,
 * READONLY on a replica, REPLICAOF NO ONE promoting it, and
 * --min-replicas-ack refusing a write up front (NOREPLICAS) when no replica
 * is connected.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnServer } from '../server/spawn.js';

const clients: Redis[] = [];
const redis = (port: number) => {
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1 });
  clients.push(r);
  return r;
};
const disconnectAll = () => {
  for (const c of clients.splice(0)) c.disconnect();
};
afterAll(disconnectAll);

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('replication over RESP', () => {
  it('ROLE, WAIT, READONLY and REPLICAOF NO ONE as Redis answers them', async () => {
    const primary = await spawnServer();
    const replica = await spawnServer({ args: ['--replica-of', `127.0.0.1:${primary.port}`] });
    const p = redis(primary.port);
    const r = redis(replica.port);
    expect(await p.set('k', 'v')).toBe('OK');
    expect(await p.wait(1, 5000)).toBe(1);
    expect(await r.get('k')).toBe('v');
    const role = (await p.role()) as [string, number, [string, string, string][]];
    expect(role[0]).toBe('master');
    expect(role[1]).toBeGreaterThan(0);
    expect(role[2]).toHaveLength(1);
    expect(role[2][0]![1]).toBe(String(replica.port));
    const rrole = await until('the replica linked', async () => {
      const x = (await r.role()) as [string, string, number, string, number];
      return x[3] === 'connected' ? x : undefined;
    });
    expect(rrole.slice(0, 3)).toEqual(['slave', '127.0.0.1', primary.port]);
    await expect(r.set('k', 'w')).rejects.toThrow("READONLY You can't write against a read only replica.");
    // WAIT with no writes of its own on this connection answers at once.
    expect(await redis(primary.port).wait(1, 0)).toBe(1);
    expect(await r.replicaof('NO', 'ONE')).toBe('OK');
    expect(await r.set('k', 'w')).toBe('OK');
    expect((await r.role())[0]).toBe('master');
    disconnectAll();
    await primary.stop();
    await replica.stop();
  });

  it('--min-replicas-ack 1 without a replica: NOREPLICAS, nothing written', async () => {
    const s = await spawnServer({ args: ['--min-replicas-ack', '1'] });
    const c = redis(s.port);
    await expect(c.set('k', 'v')).rejects.toThrow('NOREPLICAS Not enough good replicas to write.');
    expect(await c.get('k')).toBe(null);
    expect(await c.wait(1, 100)).toBe(0);
    disconnectAll();
    await s.stop();
  });
});
