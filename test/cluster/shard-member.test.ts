/**
 * Leadership and fencing of a shard on a real, private etcd: one primary per
 * shard, failover to the most advanced member when the primary's lease ends
 * (revoked, or its process SIGKILLed), a paused primary (SIGSTOP) that wakes
 * after its lease expired acknowledges nothing, and an unreachable etcd makes
 * the primary fence itself before its lease could expire.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leaderKey } from '../../src/cluster/etcd-keys.js';
import { type MemberPosition, ShardMember } from '../../src/cluster/shard-member.js';
import { type EtcdProcess, etcdAvailable, startEtcd } from './etcd.js';

const TTL_MS = 2_000;
const MARGIN_MS = 500;
const MEMBER_JS = resolve(import.meta.dirname, '../../dist/src/cluster/shard-member.js');

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.skipIf(!etcdAvailable)('shard leadership on etcd', () => {
  let etcd: EtcdProcess;
  let client: Etcd3;
  const members: ShardMember[] = [];
  const children: ChildProcess[] = [];
  let shardNo = 0;

  beforeAll(async () => {
    etcd = await startEtcd();
    client = etcd.client();
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(members.map((m) => m.stop()));
    await etcd?.stop();
  });

  function member(
    shard: string,
    node: string,
    position: MemberPosition = { epoch: 0, offset: 0 },
    port = 7000,
  ) {
    const m = new ShardMember({
      etcd: client,
      cluster: 'c1',
      shard,
      node,
      host: '127.0.0.1',
      port,
      leaseTtlMs: TTL_MS,
      safetyMarginMs: MARGIN_MS,
      position: () => position,
    });
    members.push(m);
    return m;
  }

  /** A member in its own process, printing `<writable> <role>` every 20 ms. */
  async function childMember(shard: string, node: string, offset: number) {
    const script = `
      import { Etcd3 } from 'etcd3';
      import { ShardMember } from ${JSON.stringify(MEMBER_JS)};
      const m = new ShardMember({ etcd: new Etcd3({ hosts: ${JSON.stringify(etcd.url)} }), cluster: 'c1',
        shard: ${JSON.stringify(shard)}, node: ${JSON.stringify(node)}, host: '127.0.0.1', port: 1,
        leaseTtlMs: ${TTL_MS}, safetyMarginMs: ${MARGIN_MS}, position: () => ({ epoch: 0, offset: ${offset} }) });
      await m.start();
      setInterval(() => console.log(Date.now() + ' ' + (m.writable() ? 'W ' : 'R ') + m.role), 20);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: resolve(import.meta.dirname, '../..'),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    /** Lines without their time stamp; `times[i]` is when line i was printed (child's Date.now()). */
    const lines: string[] = [];
    const times: number[] = [];
    createInterface({ input: child.stdout! }).on('line', (l) => {
      const space = l.indexOf(' ');
      times.push(Number(l.slice(0, space)));
      lines.push(l.slice(space + 1));
    });
    return { child, lines, times };
  }

  it('elects exactly one primary per shard; its epoch is the leader key revision', async () => {
    const shard = `s${++shardNo}`;
    const a = member(shard, 'a');
    const b = member(shard, 'b');
    await Promise.all([a.start(), b.start()]);
    await until('a primary', () => a.role === 'primary' || b.role === 'primary');
    const [p, r] = a.role === 'primary' ? [a, b] : [b, a];
    await until('the replica to see the leader', () => r.leader?.node === p.node);
    expect(r.role).toBe('replica');
    expect(p.writable()).toBe(true);
    expect(r.writable()).toBe(false);
    const kv = (await client.get(leaderKey('c1', shard)).exec()).kvs[0]!;
    expect(Number(kv.create_revision)).toBe(p.epoch);
    expect(r.leader?.epoch).toBe(p.epoch);
  });

  it('fails over when the primary leaves, to a new and higher epoch', async () => {
    const shard = `s${++shardNo}`;
    const a = member(shard, 'a');
    await a.start();
    await until('a primary', () => a.role === 'primary');
    const first = a.epoch;
    const b = member(shard, 'b');
    await b.start();
    await until('b to follow a', () => b.leader?.node === 'a');
    const fenced: string[] = [];
    a.on('fenced', (why) => fenced.push(why));
    await a.stop();
    expect(fenced).toEqual(['stopped']);
    await until('b primary', () => b.role === 'primary');
    expect(b.epoch).toBeGreaterThan(first);
  });

  it('the most advanced member takes over when the primary is killed', async () => {
    const shard = `s${++shardNo}`;
    const primary = await childMember(shard, 'p', 100);
    await until('the child to lead', () => primary.lines.at(-1) === 'W primary');
    const behind = member(shard, 'behind', { epoch: 0, offset: 50 });
    const ahead = member(shard, 'zahead', { epoch: 0, offset: 90 });
    await Promise.all([behind.start(), ahead.start()]);
    await until('both to follow p', () => behind.leader?.node === 'p' && ahead.leader?.node === 'p');
    const killedAt = Date.now();
    primary.child.kill('SIGKILL');
    await until('a new primary', () => behind.role === 'primary' || ahead.role === 'primary');
    expect(ahead.role).toBe('primary');
    expect(behind.role).toBe('replica');
    // Failover waits for the lease, and not much longer.
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(TTL_MS - MARGIN_MS);
  });

  it('a primary paused past its lease (SIGSTOP) wakes up fenced and acknowledges nothing', async () => {
    const shard = `s${++shardNo}`;
    const old = await childMember(shard, 'old', 10);
    await until('the child to lead', () => old.lines.at(-1) === 'W primary');
    const next = member(shard, 'next', { epoch: 0, offset: 10 });
    await next.start();
    await until('next to follow old', () => next.leader?.node === 'old');
    old.child.kill('SIGSTOP');
    const stoppedAt = Date.now();
    await until('next primary', () => next.role === 'primary', 20_000);
    const wokeAt = Date.now();
    old.child.kill('SIGCONT');
    await until('the child to print again', () => old.times.filter((t) => t >= wokeAt).length > 5);
    // Every line printed after waking says "not writable".
    const after = old.lines.filter((_, i) => old.times[i]! >= wokeAt);
    expect(after.filter((l) => l.startsWith('W'))).toEqual([]);
    expect(wokeAt - stoppedAt).toBeGreaterThan(TTL_MS - MARGIN_MS);
    await until('the child to follow', () => old.lines.at(-1) === 'R replica');
    expect(next.writable()).toBe(true);
  });

  it('an unreachable etcd fences the primary before its lease can expire; it leads again when etcd returns', async () => {
    const shard = `s${++shardNo}`;
    const a = member(shard, 'a');
    await a.start();
    await until('a primary', () => a.role === 'primary');
    let fencedAt = 0;
    a.once('fenced', () => {
      fencedAt = Date.now();
    });
    const pausedAt = Date.now();
    etcd.signal('SIGSTOP');
    try {
      await until('a fenced', () => !a.writable(), TTL_MS + 1_000);
      await until('the fenced event', () => fencedAt > 0, TTL_MS);
      expect(fencedAt - pausedAt).toBeLessThan(TTL_MS);
    } finally {
      etcd.signal('SIGCONT');
    }
    // The etcd client's circuit breaker may hold calls back for a few seconds after the failures.
    await until('a primary again', () => a.writable(), 40_000);
  });

  it('refuses unknown options and bad names', () => {
    const base = {
      etcd: client,
      cluster: 'c1',
      shard: 's',
      node: 'n',
      host: 'h',
      port: 1,
      position: () => ({ epoch: 0, offset: 0 }),
    };
    expect(() => new ShardMember({ ...base, ttl: 5 } as never)).toThrow(/unknown ShardMember option "ttl"/);
    expect(() => new ShardMember({ ...base, shard: 'a/b' })).toThrow(/shard id/);
    expect(() => new ShardMember({ ...base, leaseTtlMs: 1500 })).toThrow(/whole number of seconds/);
  });
});
