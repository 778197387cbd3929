/**
 * `kv-cli -c` against a real 2-shard cluster (etcd + one kv-server per
 * shard): one-shot and prompt modes follow MOVED to the node owning the
 * key's slot, as `redis-cli -c` does; without -c the MOVED is the reply.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SlotMap } from '../../src/cluster/slot-map.js';
import { keySlot } from '../../src/cluster/slots.js';
import { createCluster } from '../../src/cluster/state.js';
import { type EtcdProcess, etcdAvailable, startEtcd } from '../cluster/etcd.js';
import { clusterNode, until } from '../cluster/harness.js';
import { WireClient } from '../cluster/wire-client.js';
import type { ServerProcess } from '../server/spawn.js';
import { cli, ensureBuilt } from './helpers.js';

/** The first key `prefix<i>` whose slot lies in [first, last]. */
function keyIn(first: number, last: number, prefix: string): string {
  for (let i = 0; ; i++) {
    const k = `${prefix}${i}`;
    const slot = keySlot(k);
    if (slot >= first && slot <= last) return k;
  }
}

describe.skipIf(!etcdAvailable)('kv-cli -c on a 2-shard cluster', () => {
  let etcd: EtcdProcess;
  let a: ServerProcess;
  let b: ServerProcess;
  const keyA = keyIn(0, 8191, 'a');
  const keyB = keyIn(8192, 16383, 'b');

  beforeAll(async () => {
    ensureBuilt();
    etcd = await startEtcd();
    await createCluster(etcd.client(), 'clic', SlotMap.even(['s1', 's2']));
    const spec = { etcd: etcd.url, cluster: 'clic', leaseMs: 2_000 };
    [a, b] = await Promise.all([
      clusterNode({ ...spec, shard: 's1', name: 'a' }),
      clusterNode({ ...spec, shard: 's2', name: 'b' }),
    ]);
    await until('both shards to have a primary', async () => {
      const c = await WireClient.open(a.port);
      try {
        const r = await c.call('CLUSTER', 'SLOTS');
        const rows = r.ok ? (r.value as { primary: unknown }[]) : [];
        return rows.length === 2 && rows.every((row) => row.primary !== null) ? true : undefined;
      } finally {
        c.close();
      }
    });
  }, 60_000);
  afterAll(async () => {
    await etcd?.stop();
  });

  it('one-shot: follows MOVED silently and prints the reply; without -c the MOVED is the error', () => {
    const moved = cli(['-p', String(a.port), 'set', keyB, 'v']);
    expect(moved.code).toBe(1);
    expect(moved.stderr).toBe(`(error) MOVED ${keySlot(keyB)} 127.0.0.1:${b.port}\n`);

    const set = cli(['-c', '-p', String(a.port), 'set', keyB, 'v1']);
    expect(set.stderr).toBe('');
    expect(set.stdout).toBe('OK\n');
    expect(set.code).toBe(0);
    // It landed on the slot's owner.
    expect(cli(['-p', String(b.port), 'get', keyB]).stdout).toBe('"v1"\n');
    // A key of the first node's own slots needs no redirect.
    expect(cli(['-c', '-p', String(a.port), '--raw', 'set', keyA, 'x']).stdout).toBe('OK\n');
    // An error that is not a redirect is still an error.
    const wrong = cli(['-c', '-p', String(b.port), 'incr', keyB]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^\(error\) /);
  });

  it('prompt: prints the redirect, moves to the node, and stays there', () => {
    const input = [`set ${keyA} 1`, `set ${keyB} 2`, `get ${keyB}`, `get ${keyA}`, 'quit'].join('\n');
    const r = cli(['-c', '-p', String(a.port)], `${input}\n`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(
      [
        'OK',
        `-> Redirected to slot [${keySlot(keyB)}] located at 127.0.0.1:${b.port}`,
        'OK',
        // Already on b: no redirect.
        '"2"',
        `-> Redirected to slot [${keySlot(keyA)}] located at 127.0.0.1:${a.port}`,
        '"1"',
        '',
      ].join('\n'),
    );
    expect(r.code).toBe(0);
    // Without -c the prompt prints the MOVED and stays put.
    const plain = cli(['-p', String(a.port)], `get ${keyB}\n`);
    expect(plain.stdout).toBe(`(error) MOVED ${keySlot(keyB)} 127.0.0.1:${b.port}\n`);
  });

  it('-c is refused where it means nothing', () => {
    const r = cli(['-c', '--scan', '-p', String(a.port)]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/-c goes with a command or the prompt, not --scan/);
  });
});
