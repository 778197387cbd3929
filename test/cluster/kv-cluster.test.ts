/** kv-cluster create/status as real processes against a private etcd (failover: switchover.test.ts). */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { switchoverKey } from '../../src/cluster/etcd-keys.js';
import { ShardMember } from '../../src/cluster/shard-member.js';
import { newSwitchover } from '../../src/cluster/switchover-request.js';
import { type EtcdProcess, etcdAvailable, freePort, startEtcd } from './etcd.js';

const TOOL = resolve(import.meta.dirname, '../../dist/tools/kv-cluster.js');

/** Runs kv-cluster without blocking the event loop (the members in this process keep renewing their leases). */
function run(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [TOOL, ...args],
      { encoding: 'utf8', timeout: 30_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
      },
    );
  });
}

describe.skipIf(!etcdAvailable)('kv-cluster', () => {
  let etcd: EtcdProcess;
  const members: ShardMember[] = [];
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await Promise.all(members.map((m) => m.stop()));
    await etcd?.stop();
  });

  it('create splits the slots over the shards, once', async () => {
    const created = await run('create', '--etcd', etcd.url, '--cluster', 'k1', '--shards', '3');
    expect(created.stderr).toBe('');
    expect(created.stdout).toBe('created cluster k1: s1: 0-5461; s2: 5462-10922; s3: 10923-16383\n');
    expect(created.code).toBe(0);
    const again = await run('create', '--etcd', etcd.url, '--cluster', 'k1', '--shards', 'a,b');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/cluster k1 already exists/);
  });

  it('status shows each shard with its primary, replicas, epochs and lag; exit 1 while a shard has no primary', async () => {
    await run('create', '--etcd', etcd.url, '--cluster', 'k2', '--shards', 'a,b');
    const before = await run('status', '--etcd', etcd.url, '--cluster', 'k2');
    expect(before.code).toBe(1);
    expect(before.stdout).toMatch(/shard a {2}slots 0-8191 {2}NO PRIMARY/);
    const client = etcd.client();
    const join = async (shard: string, node: string, offset: number) => {
      const m = new ShardMember({
        etcd: client,
        cluster: 'k2',
        shard,
        node,
        host: '127.0.0.1',
        port: 7000 + members.length,
        leaseTtlMs: 2000,
        position: () => ({ epoch: 0, offset }),
      });
      members.push(m);
      await m.start();
      return m;
    };
    const a1 = await join('a', 'a1', 10);
    await join('b', 'b1', 5);
    await join('a', 'a2', 7);
    const status = await run('status', '--etcd', etcd.url, '--cluster', 'k2');
    expect(status.code, status.stdout + status.stderr).toBe(0);
    expect(status.stdout).toContain(`primary  a1  127.0.0.1:7000  epoch ${a1.epoch}  offset 10`);
    expect(status.stdout).toMatch(
      /replica {2}a2 {2}127\.0\.0\.1:7002 {2}epoch 0 {2}offset 7 {2}lag 3 records/,
    );
    expect(status.stdout).toMatch(/shard b {2}slots 8192-16383 {2}ok, no replica/);
    const json = JSON.parse((await run('status', '--etcd', etcd.url, '--cluster', 'k2', '--json')).stdout);
    expect(json.healthy, JSON.stringify(json)).toBe(true);
    expect(json.shards[0].leader.node).toBe('a1');

    // A planned switchover in progress shows with its phase (kv-cluster failover writes this key).
    const request = { ...newSwitchover('a1', 'a2', a1.epoch, 5_000), phase: 'paused', offset: 10 };
    await client.put(switchoverKey('k2', 'a')).value(JSON.stringify(request));
    const during = await run('status', '--etcd', etcd.url, '--cluster', 'k2');
    expect(during.stdout).toContain(
      '  switchover  a1 -> a2  paused (the primary refuses writes: CLUSTERDOWN, retried)  at offset 10',
    );
    const duringJson = JSON.parse(
      (await run('status', '--etcd', etcd.url, '--cluster', 'k2', '--json')).stdout,
    );
    expect(duringJson.shards[0].switchover).toMatchObject({ from: 'a1', to: 'a2', phase: 'paused' });
    expect(duringJson.shards[1].switchover).toBeUndefined();
    await client.delete().key(switchoverKey('k2', 'a'));
    expect((await run('status', '--etcd', etcd.url, '--cluster', 'k2')).stdout).not.toContain('switchover');
  });

  it('says what is wrong: unknown cluster, no etcd, usage', async () => {
    const none = await run('status', '--etcd', etcd.url, '--cluster', 'nope');
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no cluster named nope in etcd \(create it with kv-cluster create\)/);
    const unreachable = await run(
      'status',
      '--etcd',
      `http://127.0.0.1:${await freePort()}`,
      '--cluster',
      'k1',
    );
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/cannot reach etcd/);
    expect((await run('frobnicate', '--etcd', etcd.url)).stderr).toMatch(/unknown command "frobnicate"/);
    expect((await run('create', '--etcd', etcd.url)).code).toBe(2);
  });
});
