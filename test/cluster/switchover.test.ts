/**
 * `kv-cluster failover --shard ID` as real processes on a private etcd: a
 * planned switchover under continuous SDK writes through connectCluster,
 * without --min-replicas-ack, then again with the target paused (SIGSTOP)
 * while the primary acknowledged writes it never got. The former replica
 * leads afterwards, its epoch starts exactly where the old primary's log
 * ended, the old primary follows it without cutting anything, and every
 * acknowledged write is on the new primary.
 * A target that cannot catch up (SIGSTOPped) makes the switchover time out,
 * and the old primary takes writes again.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectCluster, type KvClusterClient } from '../../src/client/cluster.js';
import { connect } from '../../src/client/index.js';
import { SlotMap } from '../../src/cluster/slot-map.js';
import { keySlot } from '../../src/cluster/slots.js';
import { createCluster } from '../../src/cluster/state.js';
import type { ServerProcess } from '../server/spawn.js';
import { type EtcdProcess, etcdAvailable, startEtcd } from './etcd.js';
import { clusterNode, until } from './harness.js';
import { WireClient } from './wire-client.js';

const TOOL = resolve(import.meta.dirname, '../../dist/tools/kv-cluster.js');
/** Long enough that a target paused for the timeout test stays a live member (the tool checks) on a busy machine. */
const LEASE_MS = 6_000;
const WRITERS = 4;
const KEYS_PER_WRITER = 50;
const LAG_VALUE_BYTES = 8 * 1024;

function kvCluster(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [TOOL, ...args],
      { encoding: 'utf8', timeout: 60_000 },
      (err, stdout, stderr) =>
        done({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The server's JSON log lines whose msg is `msg`. */
function logLines(s: ServerProcess, msg: string): Record<string, unknown>[] {
  return s
    .stderr()
    .split('\n')
    .filter((l) => l.includes(`"msg":${JSON.stringify(msg)}`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

interface SlotRow {
  shard: string;
  primary: { node: string; port: number } | null;
  replicas: { node: string; port: number }[];
}

/** Per key: the last acknowledged state, and states sent since whose fate is unknown. */
interface KeyLog {
  acked: string | null;
  maybe: (string | null)[];
}

describe.skipIf(!etcdAvailable)('kv-cluster failover (planned switchover)', () => {
  let etcd: EtcdProcess;
  const nodes = new Map<string, ServerProcess>();
  let kv: KvClusterClient;
  const tool = (...args: string[]) => kvCluster(...args, '--etcd', etcd.url, '--cluster', 'sw');

  async function rows(): Promise<SlotRow[]> {
    for (const s of nodes.values()) {
      const c = await WireClient.open(s.port).catch(() => undefined);
      if (!c) continue;
      const r = await Promise.race([
        c.call('CLUSTER', 'SLOTS'),
        new Promise<undefined>((res) => setTimeout(() => res(undefined), 1000)),
      ]);
      c.close();
      if (r?.ok) return r.value as SlotRow[];
    }
    return [];
  }
  const shard0 = async () => (await rows()).find((r) => r.shard === '0');
  const replicated = () =>
    until(
      'shard 0 to have a primary and a replica',
      async () => {
        const r = await shard0();
        return r?.primary && r.replicas.length === 1 ? r : undefined;
      },
      30_000,
    );

  beforeAll(async () => {
    etcd = await startEtcd();
    await createCluster(etcd.client(), 'sw', SlotMap.even(['0', '1']));
    const spec = { etcd: etcd.url, cluster: 'sw', leaseMs: LEASE_MS };
    const started = await Promise.all([
      clusterNode({ ...spec, shard: '0', name: 'a1' }),
      clusterNode({ ...spec, shard: '0', name: 'a2' }),
      clusterNode({ ...spec, shard: '1', name: 'b1' }),
    ]);
    for (const [i, name] of ['a1', 'a2', 'b1'].entries()) nodes.set(name, started[i]!);
    await replicated();
    await until('shard 1 to have a primary', async () =>
      (await rows()).find((r) => r.shard === '1')?.primary ? true : undefined,
    );
    kv = await connectCluster({
      nodes: [...nodes.values()].map((s) => ({ host: '127.0.0.1', port: s.port })),
      requestTimeoutMs: 5_000,
    });
  }, 90_000);
  afterAll(async () => {
    await kv?.close();
    for (const s of nodes.values()) s.proc.kill('SIGCONT');
    await etcd?.stop();
  });

  /** SDK writers through connectCluster, recording what was acknowledged, until stopped. */
  function startWriters(valueBytes = 0) {
    const pad = 'x'.repeat(valueBytes);
    const logs = new Map<string, KeyLog>();
    const failures = new Map<string, number>();
    let acks = 0;
    let stop = false;
    const writers = Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const key = `w${w}:${i % KEYS_PER_WRITER}`;
        const log = logs.get(key) ?? { acked: null, maybe: [] };
        logs.set(key, log);
        const value = i % 7 === 3 ? null : `${w}-${i}${pad}`;
        try {
          if (value === null) await kv.del(key);
          else await kv.set(key, value);
          log.acked = value;
          log.maybe = [];
          acks++;
        } catch (err) {
          log.maybe.push(value);
          const code = (err as { code: string }).code;
          failures.set(code, (failures.get(code) ?? 0) + 1);
          if (!['FENCED', 'CONNECTION_CLOSED', 'CLUSTERDOWN', 'TIMEOUT'].includes(code)) throw err;
        }
      }
    });
    return {
      acks: () => acks,
      async stop() {
        stop = true;
        await Promise.all(writers);
        return { logs, acks, failures: Object.fromEntries(failures) };
      },
    };
  }

  /**
   * After a switchover from `oldPrimary` to `formerReplica`: the former
   * replica leads, the old primary follows it without cutting anything from
   * its log, the new epoch starts exactly where the old primary's log ended,
   * and every key of shard 0 reads, on the new primary itself, as its last
   * acknowledged state (or a later one whose fate is unknown).
   */
  async function expectHandedOver(oldPrimary: string, formerReplica: string, logs: Map<string, KeyLog>) {
    const after = await replicated();
    expect(after.primary!.node).toBe(formerReplica);
    expect(after.replicas.map((x) => x.node)).toEqual([oldPrimary]);
    const newPrimary = nodes.get(formerReplica)!;
    const old = nodes.get(oldPrimary)!;
    const c = await WireClient.open(old.port);
    const role = await until('the old primary to follow the new one', async () => {
      const x = await c.call('ROLE');
      const v = x.ok ? (x.value as { role: string; primary: string | null; link: string | null }) : undefined;
      return v?.role === 'replica' && v.link === 'up' ? v : undefined;
    });
    c.close();
    expect(role.primary).toBe(`127.0.0.1:${newPrimary.port}`);
    const released = logLines(old, 'cluster: switchover: released the shard; the target takes it over').at(
      -1,
    );
    const promoted = logLines(newPrimary, 'promoted to primary: a new epoch starts').at(-1);
    expect(released?.offset).toBeGreaterThan(0);
    expect(promoted?.startOffset, 'the new epoch starts where the old primary stopped').toBe(
      released?.offset,
    );
    expect(logLines(old, 'truncating a divergent tail before following')).toEqual([]);

    const direct = await connect({ host: '127.0.0.1', port: newPrimary.port });
    try {
      let checked = 0;
      for (const [key, log] of logs) {
        if (keySlot(key) > 8191) continue;
        const got = (await direct.get(key)) ?? null;
        expect([log.acked, ...log.maybe], `${key} (slot ${keySlot(key)}) reads ${String(got)}`).toContain(
          got,
        );
        checked++;
      }
      expect(checked).toBeGreaterThan(20);
    } finally {
      await direct.close();
    }
  }

  it('hands shard 0 to its replica under SDK writes; no acknowledged write is lost', async () => {
    const before = await replicated();
    const oldPrimary = before.primary!.node;
    const formerReplica = before.replicas[0]!.node;
    const writers = startWriters();
    await sleep(1_000);
    const acksBefore = writers.acks();
    const r = await tool('failover', '--shard', '0');
    await sleep(1_000);
    const { logs, acks, failures } = await writers.stop();

    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(
        `^shard 0: ${formerReplica} \\(127\\.0\\.0\\.1:\\d+\\) is the primary in epoch \\d+, ${oldPrimary} \\(127\\.0\\.0\\.1:\\d+, epoch \\d+\\) follows it; switchover took \\d+ ms\\n$`,
      ),
    );
    expect(acks - acksBefore, 'writes kept being acknowledged across the switchover').toBeGreaterThan(50);
    await expectHandedOver(oldPrimary, formerReplica, logs);
    console.log(
      `switchover under load: ${acks} writes acknowledged; not acknowledged: ${JSON.stringify(failures)}; ${r.stdout.trim()}`,
    );
  }, 120_000);

  it('a target that lags (paused while the primary acknowledged writes) catches up before it takes over', async () => {
    const before = await replicated();
    const oldPrimary = before.primary!.node;
    const formerReplica = before.replicas[0]!.node;
    const target = nodes.get(formerReplica)!;
    // Large values: the backlog the target replays after waking takes a while.
    const writers = startWriters(LAG_VALUE_BYTES);
    await sleep(300);
    // Without --min-replicas-ack the primary acknowledges what the stopped replica never got.
    target.proc.kill('SIGSTOP');
    let r: Awaited<ReturnType<typeof tool>>;
    try {
      await sleep(1_000);
      const run = tool('failover', '--shard', '0', '--timeout-ms', '30000');
      await sleep(1_500);
      target.proc.kill('SIGCONT');
      r = await run;
    } finally {
      target.proc.kill('SIGCONT');
    }
    await sleep(500);
    const { logs, acks, failures } = await writers.stop();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^shard 0: ${formerReplica} .* is the primary in epoch`));
    await expectHandedOver(oldPrimary, formerReplica, logs);
    console.log(`lagging target: ${acks} writes acknowledged; not acknowledged: ${JSON.stringify(failures)}`);
  }, 120_000);

  it('times out when the target cannot catch up, and the old primary takes writes again', async () => {
    const before = await replicated();
    const primary = nodes.get(before.primary!.node)!;
    const target = nodes.get(before.replicas[0]!.node)!;
    const c = await WireClient.open(primary.port);
    let key = 'r0';
    for (let i = 1; keySlot(key) > 8191; i++) key = `r${i}`;
    target.proc.kill('SIGSTOP');
    try {
      const started = Date.now();
      const r = await tool(
        'failover',
        '--shard',
        '0',
        '--to',
        before.replicas[0]!.node,
        '--timeout-ms',
        '1500',
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          `^kv-cluster: switchover of shard 0 from ${before.primary!.node} to ${before.replicas[0]!.node} ` +
            '(timed out after 1500 ms in phase paused \\(the target had not caught up with the primary\\)|was aborted by the primary: the target)',
        ),
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
      // The old primary resumes: a write on a slot of shard 0 is acknowledged there.
      const ok = await until('the old primary to take writes again', async () => {
        const w = await c.call('SET', key, 'resumed');
        return w.ok ? w : undefined;
      });
      expect(ok).toEqual({ ok: true, value: true });
    } finally {
      target.proc.kill('SIGCONT');
      c.close();
    }
    expect((await shard0())?.primary?.node).toBe(before.primary!.node);
  }, 60_000);

  it('says what is wrong: no --shard, an unknown shard, --to the primary', async () => {
    const none = await tool('failover');
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/failover needs --shard ID/);
    const unknown = await tool('failover', '--shard', 'nope');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/cluster sw has no shard nope \(its shards: 0, 1\)/);
    const primary = (await replicated()).primary!.node;
    const self = await tool('failover', '--shard', '0', '--to', primary);
    expect(self.code).toBe(1);
    expect(self.stderr).toMatch(new RegExp(`${primary} already is the primary of shard 0`));
    const lonely = await tool('failover', '--shard', '1');
    expect(lonely.code).toBe(1);
    expect(lonely.stderr).toMatch(/shard 1 has no replica to switch over to/);
  }, 60_000);
});
