/**
 * Synchronous acknowledgement and observability of replication, with real
 * kv-server processes (issue 12 steps 3 and 4): INFO `replication` on both
 * sides, WAIT (Redis semantics), `--min-replicas-ack` (writes wait for a
 * replica, time out with NOT_ENOUGH_REPLICAS while it is stopped), a
 * SIGSTOPped replica that does not grow the primary's memory nor block its
 * other clients, and SIGKILLs of a primary under `--min-replicas-ack 1`
 * after which the most advanced replica, promoted, has every acknowledged
 * write.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KvClient, KvError } from '../../src/index.js';
import type { ReplicationInfo } from '../../src/replication/replication.js';
import { type ServerProcess, spawnServer } from '../server/spawn.js';
import { testClients, until } from './helpers.js';

const { client, track } = testClients(30_000);

async function replInfo(c: KvClient<unknown>): Promise<ReplicationInfo> {
  return (await c.info('replication')).replication as ReplicationInfo;
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

const QUIET = ['--compaction-check-interval-ms', '3600000'];

async function replicaOf(p: ServerProcess, extra: string[] = []): Promise<ServerProcess> {
  const r = await spawnServer({ args: [...QUIET, ...extra, '--replica-of', `127.0.0.1:${p.port}`] });
  const pc = client(p.port);
  await until('the replica to connect', async () =>
    (await replInfo(pc)).replicas.some((x) => x.address.endsWith(`:${r.port}`)),
  );
  return r;
}

describe('INFO replication and WAIT', () => {
  it('INFO shows the replica on the primary (acked offset, lag) and the link on the replica; WAIT counts replicas', async () => {
    const p = await spawnServer({ args: QUIET });
    const r = await replicaOf(p);
    const pc = client(p.port);
    const rc = client(r.port);
    for (let i = 0; i < 50; i++) await pc.set(`k${i}`, `v${i}`);
    expect(await pc.wait(1, 10_000)).toBe(1);
    const pi = await replInfo(pc);
    expect(pi.role).toBe('primary');
    expect(pi.connectedReplicas).toBe(1);
    expect(pi.replicas[0]).toMatchObject({
      address: `127.0.0.1:${r.port}`,
      ackedOffset: 50,
      lagRecords: 0,
      lagMs: 0,
    });
    const ri = await replInfo(rc);
    expect(ri).toMatchObject({
      role: 'replica',
      primary: `127.0.0.1:${p.port}`,
      link: 'up',
      offset: 50,
      fullResyncs: 1,
    });
    expect(ri.logId).toBe(pi.logId);
    // Asking for more replicas than there are: the timeout, then how many hold the writes.
    const t0 = Date.now();
    expect(await pc.wait(2, 300)).toBe(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    // A replica that stops acknowledging shows a growing lag.
    r.proc.kill('SIGSTOP');
    for (let i = 0; i < 20; i++) await pc.set(`late${i}`, 'x');
    await new Promise((res) => setTimeout(res, 200));
    const lagging = (await replInfo(pc)).replicas[0]!;
    expect(lagging.lagRecords).toBe(20);
    expect(lagging.lagMs).toBeGreaterThanOrEqual(150);
    expect(await pc.wait(1, 100)).toBe(0);
    r.proc.kill('SIGCONT');
    expect(await pc.wait(1, 10_000)).toBe(1);
  }, 60_000);
});

describe('--min-replicas-ack', () => {
  it('a write is acknowledged once a replica has it; while the replica is stopped writes time out with NOT_ENOUGH_REPLICAS', async () => {
    const p = await spawnServer({
      args: [...QUIET, '--min-replicas-ack', '1', '--min-replicas-timeout-ms', '500'],
    });
    const r = await replicaOf(p);
    const pc = client(p.port);
    const rc = client(r.port);
    for (let i = 0; i < 30; i++) {
      await pc.set(`k${i}`, `v${i}`);
      // Acknowledged means the replica has applied it: readable there at once.
      expect(await rc.get(`k${i}`)).toBe(`v${i}`);
    }
    r.proc.kill('SIGSTOP');
    const t0 = Date.now();
    const err = await pc.set('stuck', '1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KvError);
    expect((err as KvError).code).toBe('NOT_ENOUGH_REPLICAS');
    expect((err as KvError).message).toContain('--min-replicas-ack');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
    // Reads are not held up meanwhile.
    const t1 = Date.now();
    expect(await pc.get('k1')).toBe('v1');
    expect(Date.now() - t1).toBeLessThan(400);
    r.proc.kill('SIGCONT');
    await pc.set('after', '1');
    expect(await rc.get('stuck')).toBe('1'); // it was in the log: it reached the replica later
    expect(await rc.get('after')).toBe('1');
  }, 60_000);

  it("a SIGSTOPped replica does not grow the primary's memory, nor slow its other clients", async () => {
    const p = await spawnServer({ args: [...QUIET, '--cache-bytes', '0'] });
    const r = await replicaOf(p);
    const pc = track(
      new KvClient<Buffer>({
        port: p.port,
        valueEncoding: 'buffer',
        reconnect: false,
        requestTimeoutMs: 30_000,
      }),
    );
    r.proc.kill('SIGSTOP');
    const value = Buffer.alloc(64 * 1024, 3);
    for (let i = 0; i < 100; i++) await pc.set(`warm${i}`, value);
    const before = rssBytes(p.proc.pid!);
    // 1600 × 64 KiB = 100 MiB the stalled replica would need.
    const pending: Promise<boolean>[] = [];
    for (let i = 0; i < 1600; i++) {
      pending.push(pc.set(`big${i}`, value));
      if (pending.length >= 32) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    const t0 = Date.now();
    expect((await pc.get('big7'))?.length).toBe(value.length);
    expect(Date.now() - t0).toBeLessThan(1000);
    const grown = rssBytes(p.proc.pid!) - before;
    expect(grown).toBeLessThan(48 * 1024 * 1024);
    const lag = (await (pc.info('replication') as Promise<{ replication: ReplicationInfo }>)).replication;
    expect(lag.replicas[0]!.lagRecords).toBeGreaterThan(1000);
    r.proc.kill('SIGCONT');
  }, 90_000);

  it('SIGKILL of the primary under load: the most advanced replica, promoted, has every acknowledged write', async () => {
    for (let cycle = 0; cycle < 3; cycle++) {
      const p = await spawnServer({
        args: [...QUIET, '--min-replicas-ack', '1', '--max-segment-bytes', '65536'],
      });
      const r1 = await replicaOf(p);
      const r2 = await replicaOf(p);
      // Per key: the last acknowledged value (undefined: deleted); per writer: the op in flight.
      const acked = new Map<string, string | undefined>();
      const inFlight: ({ k: string; v: string | undefined } | undefined)[] = [];
      let stop = false;
      const writers = [0, 1, 2, 3].map(async (w) => {
        const c = track(new KvClient<string>({ port: p.port, reconnect: false, requestTimeoutMs: 5_000 }));
        for (let i = 0; !stop; i++) {
          const k = `w${w}-${i % 200}`;
          const v = i % 10 === 9 ? undefined : `${cycle}-${w}-${i}`;
          inFlight[w] = { k, v };
          try {
            if (v === undefined) await c.del(k);
            else await c.set(k, v);
          } catch {
            return; // the primary died: this write may or may not be anywhere
          }
          acked.set(k, v);
          inFlight[w] = undefined;
        }
      });
      await new Promise((res) => setTimeout(res, 500 + Math.floor(Math.random() * 1000)));
      await p.stop('SIGKILL');
      stop = true;
      await Promise.all(writers);
      expect(acked.size).toBeGreaterThan(10);
      const ends = await Promise.all([r1, r2].map(async (r) => (await client(r.port).role()).end));
      const best = ends[0]! >= ends[1]! ? r1 : r2;
      const bc = client(best.port);
      await bc.replicaOf(null);
      for (const [k, v] of acked) {
        const got = await bc.get(k);
        if (got === v) continue;
        const w = Number(k.slice(1, k.indexOf('-')));
        const f = inFlight[w];
        expect(
          f !== undefined && f.k === k && f.v === got,
          `${k}: acknowledged ${v}, promoted replica has ${got}`,
        ).toBe(true);
      }
      await Promise.all([r1.stop('SIGKILL'), r2.stop('SIGKILL')]);
    }
  }, 120_000);
});
