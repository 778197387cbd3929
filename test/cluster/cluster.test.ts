/**
 * kv-server nodes in a cluster on a private etcd, as real processes: routing
 * by slot (MOVED, CROSSSLOT), replicas refusing writes (READONLY), automatic
 * failover after a SIGKILL with every replicated write kept, and a primary
 * paused by SIGSTOP past its lease that acknowledges nothing when it wakes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SlotMap } from '../../src/cluster/slot-map.js';
import { keySlot } from '../../src/cluster/slots.js';
import { createCluster } from '../../src/cluster/state.js';
import type { ServerProcess } from '../server/spawn.js';
import { type EtcdProcess, etcdAvailable, startEtcd } from './etcd.js';
import { clusterNode, until } from './harness.js';
import { type Reply, WireClient } from './wire-client.js';

const LEASE_MS = 2_000;

/** Keys whose slot falls in [first, last]. */
function keysIn(first: number, last: number, n: number, prefix = 'k'): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) {
    const k = `${prefix}${i}`;
    const slot = keySlot(k);
    if (slot >= first && slot <= last) out.push(k);
  }
  return out;
}

interface SlotRow {
  start: number;
  end: number;
  shard: string;
  primary: { node: string; port: number } | null;
  replicas: { node: string; port: number }[];
}

describe.skipIf(!etcdAvailable)('a cluster of kv-servers on etcd', () => {
  let etcd: EtcdProcess;
  const clients: WireClient[] = [];
  const open = async (port: number) => {
    const c = await WireClient.open(port);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    etcd = await startEtcd();
    await createCluster(etcd.client(), 'c', SlotMap.even(['s1', 's2']));
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await etcd?.stop();
  });

  const node = (shard: string, name: string, dir?: string) =>
    clusterNode({
      etcd: etcd.url,
      cluster: 'c',
      shard,
      name,
      leaseMs: LEASE_MS,
      args: ['--fsync', 'always'],
      ...(dir !== undefined && { dir }),
    });

  async function slots(port: number): Promise<SlotRow[]> {
    const c = await WireClient.open(port);
    try {
      const r = await c.call('CLUSTER', 'SLOTS');
      if (!r.ok) throw new Error(`${r.code} ${r.message}`);
      return r.value as SlotRow[];
    } finally {
      c.close();
    }
  }

  const s1Keys = keysIn(0, 8191, 200);
  const s2Key = keysIn(8192, 16383, 1)[0]!;
  const [after, second, late] = keysIn(0, 8191, 3, 'extra') as [string, string, string];
  let a: ServerProcess[] = [];
  let primary: ServerProcess;
  let replica: ServerProcess;

  it('routes by slot, refuses writes on replicas, and replicates', async () => {
    a = await Promise.all([node('s1', 'a1'), node('s1', 'a2')]);
    const b = await node('s2', 'b1');
    const rows = await until('both shards led and s1 replicated', async () => {
      const r = await slots(b.port);
      return r.length === 2 && r.every((row) => row.primary !== null) && r[0]!.replicas.length === 1
        ? r
        : undefined;
    });
    expect(rows.map((r) => [r.start, r.end, r.shard])).toEqual([
      [0, 8191, 's1'],
      [8192, 16383, 's2'],
    ]);
    expect(rows[1]!.primary!.port).toBe(b.port);
    primary = a.find((s) => s.port === rows[0]!.primary!.port)!;
    replica = a.find((s) => s !== primary)!;
    const p = await open(primary.port);
    const r = await open(replica.port);

    expect(await p.call('SET', s1Keys[0], 'v0')).toEqual({ ok: true, value: true });
    expect(await p.call('SET', s2Key, 'x')).toEqual({
      ok: false,
      code: 'MOVED',
      message: `${keySlot(s2Key)} 127.0.0.1:${b.port}`,
    });
    expect(await p.call('GET', s2Key)).toMatchObject({ ok: false, code: 'MOVED' });
    expect(await p.call('MSET', s1Keys[1], 'a', s2Key, 'b')).toMatchObject({ ok: false, code: 'CROSSSLOT' });
    expect(await r.call('SET', s1Keys[0], 'nope')).toMatchObject({ ok: false, code: 'READONLY' });
    expect(await r.call('REPLICAOF', 'NO', 'ONE')).toMatchObject({ ok: false, code: 'NOT_SUPPORTED' });
    expect(await p.call('CLUSTER', 'KEYSLOT', 'foo')).toEqual({ ok: true, value: 12182 });
    await until('the replica to read v0', async () => {
      const got = (await r.call('GET', s1Keys[0])) as Reply;
      return got.ok && got.value !== null ? got : undefined;
    });
  });

  it('fails over to the replica when the primary is SIGKILLed; every replicated write is kept', async () => {
    const p = await open(primary.port);
    const acked = await Promise.all(s1Keys.map((k, i) => p.call('SET', k, `v${i}`)));
    expect(acked.every((x) => x.ok)).toBe(true);
    const r = await open(replica.port);
    await until('the replica to hold every write', async () => {
      const last = await r.call('GET', s1Keys.at(-1));
      return last.ok && last.value !== null ? true : undefined;
    });
    const killedAt = Date.now();
    await primary.stop('SIGKILL');
    await until('the replica to take writes', async () => {
      const w = await r.call('SET', after, 'failover');
      return w.ok ? w : undefined;
    });
    const failoverMs = Date.now() - killedAt;
    expect(failoverMs).toBeLessThan(LEASE_MS * 5);
    const values = await Promise.all(s1Keys.map((k) => r.call('GET', k)));
    expect(values.map((v) => (v.ok ? String(v.value) : v.code))).toEqual(s1Keys.map((_, i) => `v${i}`));
  });

  it('the old primary rejoins as a replica; a primary paused past its lease acknowledges nothing when it wakes', async () => {
    const old = await node('s1', primary === a[0] ? 'a1' : 'a2', primary.dir);
    const current = replica;
    const o = await open(old.port);
    await until('the old primary to follow and catch up', async () => {
      const got = await o.call('GET', after);
      return got.ok && got.value !== null ? true : undefined;
    });
    expect(await o.call('SET', s1Keys[0], 'x')).toMatchObject({ ok: false, code: 'READONLY' });

    const c = await open(current.port);
    current.proc.kill('SIGSTOP');
    try {
      await until(
        'the rejoined node to take over',
        async () => {
          const w = await o.call('SET', second, 'failover');
          return w.ok ? w : undefined;
        },
        30_000,
      );
      // Sent while the paused primary sleeps; read by it only when it wakes.
      const lateReply = c.call('SET', late, 'write');
      current.proc.kill('SIGCONT');
      const reply = await lateReply;
      expect(reply.ok, JSON.stringify(reply)).toBe(false);
      expect(['READONLY', 'CLUSTERDOWN', 'FENCED']).toContain((reply as { code: string }).code);
    } finally {
      current.proc.kill('SIGCONT');
    }
    expect(await o.call('GET', late)).toEqual({ ok: true, value: null });
    await old.stop('SIGTERM');
    await current.stop('SIGTERM');
  });
});
